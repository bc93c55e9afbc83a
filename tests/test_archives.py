"""Zip archives are read without trusting what they declare: every zip-reading loader refuses a bomb."""

from __future__ import annotations

import io
import zipfile

import pytest

from loaders import archives
from loaders.errors import LoadError
from loaders.hcpcs_changes import read_hcpcs_changes
from loaders.hcpcs_corrections import is_corrections_file, read_corrections


def bomb(tmp_path, name: str, member: str, size: int):
    """A zip whose one member expands to ``size`` zero bytes (a few kilobytes on disk)."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as stream:
            block = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                stream.write(block)
    return path


def test_a_member_over_the_limit_is_refused_before_it_is_expanded():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.txt", b"x" * 5000)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        info = archive.getinfo("big.txt")
        with pytest.raises(LoadError) as caught:
            archives.read_member(archive, info, "a.zip!big.txt", limit=1000)
    assert caught.value.field == "uncompressed size" and "refusing to expand it" in str(caught.value)
    with pytest.raises(LoadError, match="damaged or truncated"):
        archives.open_zip(buffer.getvalue()[:100], "a.zip")


def test_the_corrections_reader_refuses_a_zip_bomb(tmp_path, monkeypatch):
    import loaders.hcpcs_corrections as corrections

    monkeypatch.setattr(corrections, "MAX_DOCUMENT_BYTES", 2 << 20)
    path = bomb(tmp_path, "2018-HCPCS-Alpha-Numeric-Corrections.zip", "V1_HCPC2018_Corrections_ANWEB.txt", 8 << 20)
    with pytest.raises(LoadError) as caught:
        read_corrections(path)
    assert "V1_HCPC2018_Corrections_ANWEB.txt" in caught.value.path and caught.value.field == "uncompressed size"
    assert is_corrections_file(path) is False


def test_the_change_report_reader_refuses_a_zip_bomb(tmp_path, monkeypatch):
    import loaders.hcpcs_changes as changes

    monkeypatch.setattr(changes, "MAX_REPORT_BYTES", 2 << 20)
    path = bomb(tmp_path, "2019-Alpha-Numeric-HCPCS-File.zip", "Changes_by_HCPCSCode.prn", 8 << 20)
    with pytest.raises(LoadError) as caught:
        read_hcpcs_changes(path)
    assert caught.value.field == "uncompressed size"


def test_a_corrections_workbook_on_its_own_is_read_as_a_workbook_not_an_archive(tmp_path):
    from tests.conftest import HCPCS_DIR

    with zipfile.ZipFile(HCPCS_DIR / "2018-HCPCS-Alpha-Numeric-Corrections.zip") as archive:
        data = archive.read("V2_HCPC2018_Corrections_ANWEB.xlsx")
    path = tmp_path / "V2_HCPC2018_Corrections_ANWEB.xlsx"
    path.write_bytes(data)
    assert is_corrections_file(path)
    [document] = read_corrections(path)
    assert (document.release_year, document.version, len(document.events)) == (2018, 2, 28)
