"""A NUL or another control character in any text source is refused at load with file, line and
field, and the database is left as it was (PostgreSQL would refuse NUL in text mid-load; SQLite
would store it)."""

from __future__ import annotations

import pytest

from kb.sample_agency import AgencyProfile, generate_sample, synthetic_npi
from loaders.control_characters import find_control_character, refuse_in_text
from loaders.errors import LoadError
from loaders.hcpcs_corrections import read_corrections
from loaders.x12_837i import write_837i
from tests.conftest import FIXTURES, HHPPS_DIR
from tests.hostile.conftest import one_line_error
from tests.test_cli import row_counts
from tests.test_loader_hcpcs import XLSX_HEADER, continuation_row, g0151_row, write_xlsx
from tests.test_loader_hcpcs_corrections import MEMBER, corrections_text, corrections_zip

SAMPLE = FIXTURES / "hcpcs" / "sample_anweb.txt"


def test_which_characters_are_refused():
    assert [find_control_character(f"ab{c}", allowed="\t\r\n") for c in "\x00\x07\x1b\x7f\x85\t\r\n é"] == [
        2, 2, 2, 2, 2, None, None, None, None, None]
    with pytest.raises(LoadError) as error:
        refuse_in_text("first\r\nsecond\nthi\x00rd\n", "x.txt")
    assert str(error.value) == ("x.txt, line 3: control character U+0000 (NUL) at column 4: "
                                "the file is damaged or not a text file of this kind")


def test_nul_in_a_hcpcs_txt(hhkb, tmp_path):
    path = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    path.write_bytes(SAMPLE.read_bytes().replace(b"physical therapist", b"physical\x00therapist"))
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("load", str(path), status=2))
    assert message == (f"error: {path}, line 11, field long_description: control character U+0000 (NUL) at "
                       "column 54: the file is damaged or not a text file of this kind")
    assert row_counts(hhkb.url) == before


def test_escape_in_a_hcpcs_xlsx(hhkb, tmp_path):
    path = tmp_path / "HCPC2019_APR_ANWEB.xlsx"
    write_xlsx(path, [XLSX_HEADER, g0151_row(), continuation_row(),
                      g0151_row(HCPC="G0152", **{"SHORT DESCRIPTION": "Hhcp_x001B_[31m"})])
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("load", str(path), status=2))
    assert message.startswith(f"error: {path}, line 4, field SHORT DESCRIPTION: control character U+001B (ESC)")
    assert row_counts(hhkb.url) == before


def test_nul_in_a_pricer_table(hhkb, tmp_path):
    path = tmp_path / "hrg-2024.csv"
    lines = (HHPPS_DIR / "hrg-2024.csv").read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b",", b"\x00,", 1)
    path.write_bytes(b"\n".join(lines))
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("load", str(path), status=2))
    assert message.startswith(f"error: {path}, line 6: control character U+0000 (NUL)")
    assert row_counts(hhkb.url) == before


def test_bell_in_a_corrections_txt(tmp_path):
    path = corrections_zip(tmp_path, {MEMBER: corrections_text("G0151\tRevise Long Desc\t\t\tNew\x07 text")})
    with pytest.raises(LoadError) as error:
        read_corrections(path)
    assert (error.value.line, error.value.message.split(" at ")[0]) == (5, "control character U+0007 (BEL)")
    assert error.value.path.endswith(MEMBER)


def test_nul_in_a_claims_csv_skips_the_claim_and_says_where(hhkb, tmp_path):
    text = (FIXTURES / "claims" / "two-claims.csv").read_text()
    lines = text.splitlines(keepends=True)
    lines[2] = lines[2].replace("G0299", "G02\x0099")
    path = tmp_path / "claims.csv"
    path.write_text("".join(lines))
    result = hhkb("claims", "load", str(path))
    assert (f"skipped: {path}, line 3, field hcpcs, claim P0000001-01: control character U+0000 (NUL) at column 4"
            in result.stdout)
    assert "1 claims skipped" in result.stdout


def test_nul_in_an_837i(hhkb, tmp_path):
    profile = AgencyProfile(agency_id=synthetic_npi(7), state="OH", cbsa="17140", fips_county="39061", periods=2)
    sample = generate_sample(profile, year=2023, seed=3, lupa_thresholds={})
    path = tmp_path / "agency.837i"
    with open(path, "w", encoding="ascii", newline="") as stream:
        write_837i(sample.claims, stream, member_ids=sample.member_ids)
    first_id = sample.claims[0].claim_id
    path.write_bytes(path.read_bytes().replace(f"CLM*{first_id}".encode(), f"CLM*{first_id}\x00".encode(), 1))
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("claims", "load", str(path), status=2))
    assert message.startswith(f"error: {path}, field CLM01: segment ")
    assert "(CLM): control character U+0000 (NUL)" in message
    assert row_counts(hhkb.url) == before
