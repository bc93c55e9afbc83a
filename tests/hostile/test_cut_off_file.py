"""A cut-off fixed-width HCPCS txt is refused, naming the file and the line: one that ends inside a
record, and one cut at a line end whose missing records would read as codes the release dropped.
The database is left as it was, on both databases."""

from __future__ import annotations

import zipfile

from tests.conftest import HCPCS_DIR
from tests.hostile.conftest import one_line_error
from tests.test_cli import row_counts

ANNUAL_2018 = HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip"


def annual_2018_txt() -> bytes:
    with zipfile.ZipFile(ANNUAL_2018) as archive:
        return archive.read("HCPC2018_CONTR_ANWEB_disc.txt")


def test_a_file_that_ends_inside_a_record(hhkb, tmp_path):
    path = tmp_path / "HCPC2018_CONTR_ANWEB_disc.txt"
    path.write_bytes(annual_2018_txt()[:1768912])  # inside line 5503, a continuation line of G9481
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("load", str(path), status=2))
    assert message == (f"error: {path}, line 5503, field coverage_code: the file ends inside a record: its last "
                       "line has 229 of the 320 characters of the record layout and no line end, so the file is "
                       "cut off (download it again)")
    assert row_counts(hhkb.url) == before


def test_a_file_cut_at_a_line_end_drops_too_many_codes(hhkb, tmp_path):
    hhkb("load", str(ANNUAL_2018))
    data = annual_2018_txt()
    cut = data.index(b"\r\n", len(data) // 2) + 2  # at the first line end after the middle
    path = tmp_path / "HCPC2018_JUL_ANWEB.txt"  # a later quarter of the same year
    path.write_bytes(data[:cut])
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("load", str(path), status=2))
    assert message.startswith(f"error: {path}, line ")
    assert ", field code: " in message and "codes in effect before this release are missing from it" in message
    assert "the file looks cut off after its last record" in message
    assert row_counts(hhkb.url) == before
