"""An xlsx whose one cell sits at XFD1048576 (a 1.6 KB file whose dense grid would be 17 billion
cells) is refused in one line naming the file and the sheet, before any grid is built: loaded on
its own, inside a folder, and read by each xlsx reader. The database is left as it was."""

from __future__ import annotations

import zipfile

import pytest

from loaders.errors import LoadError
from loaders.hcpcs import read_hcpcs
from loaders.hcpcs_changes import parse_change_report_xlsx
from loaders.hcpcs_corrections import read_corrections
from loaders.xlsx_extent import MAX_GRID_CELLS, check_sheet_extents, column_number
from tests.conftest import HHPPS_DIR
from tests.hostile.conftest import one_line_error
from tests.test_cli import row_counts
from tests.test_loader_hcpcs import XLSX_HEADER, write_xlsx

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def far_cell_xlsx(path, *, reference="XFD1048576", dimension="A1"):
    """An HCPCS-looking workbook (the header row in sheet "A") plus one cell at ``reference``."""
    write_xlsx(path, [XLSX_HEADER])
    with zipfile.ZipFile(path) as package:
        parts = {name: package.read(name) for name in package.namelist()}
    row = reference.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(
        f'<worksheet xmlns="{MAIN}">'.encode(), f'<worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/>'.encode()
    ).replace(b"</sheetData>", f'<row r="{row}"><c r="{reference}"><v>1</v></c></row></sheetData>'.encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in parts.items():
            package.writestr(name, data)
    return path


def test_the_hostile_file_is_small_and_its_extent_is_read_from_its_cells(tmp_path):
    path = far_cell_xlsx(tmp_path / "HCPC2019_APR_ANWEB.xlsx")
    assert path.stat().st_size < 2500
    assert column_number(b"XFD") == 16384 and column_number(b"A") == 1
    with pytest.raises(LoadError) as error:
        check_sheet_extents(path.read_bytes(), path)
    assert str(error.value) == (
        f"{path}, field sheet: sheet 'A' reaches row 1,048,576 and column 16,384 (17,179,869,184 cells from A1), "
        f"more than the {MAX_GRID_CELLS:,} a sheet may span: refusing to read it")
    check_sheet_extents(far_cell_xlsx(tmp_path / "ok.xlsx", reference="AV7000").read_bytes(), "ok.xlsx")


@pytest.mark.parametrize("reader", [read_hcpcs, read_corrections, parse_change_report_xlsx])
def test_every_xlsx_reader_refuses_it_before_building_a_grid(tmp_path, reader):
    path = far_cell_xlsx(tmp_path / "HCPC2019_Corrections_ALPHA.xlsx")
    argument = path.read_bytes() if reader is parse_change_report_xlsx else path
    with pytest.raises(LoadError, match="sheet 'A' reaches row 1,048,576 and column 16,384"):
        reader(argument, path) if reader is parse_change_report_xlsx else reader(argument)


def test_load_refuses_it_in_one_line(hhkb, tmp_path):
    path = far_cell_xlsx(tmp_path / "HCPC2019_APR_ANWEB.xlsx")
    before = row_counts(hhkb.url)
    result = hhkb("load", str(path), status=2)
    message = one_line_error(result)
    assert message.startswith(f"error: {path}") and "sheet 'A' reaches row 1,048,576 and column 16,384" in message
    assert row_counts(hhkb.url) == before


def test_a_folder_load_skips_it_with_the_reason_and_strict_refuses_it_in_one_line(hhkb, tmp_path):
    folder = tmp_path / "cms"
    folder.mkdir()
    far_cell_xlsx(folder / "HCPC2019_APR_ANWEB.xlsx")
    (folder / "hrg-2024.csv").write_bytes((HHPPS_DIR / "hrg-2024.csv").read_bytes())
    before = row_counts(hhkb.url)
    message = one_line_error(hhkb("load", "--strict", str(folder), status=2))
    assert message.startswith(f"error: {folder / 'HCPC2019_APR_ANWEB.xlsx'}: skipped (sheet 'A' reaches row")
    assert row_counts(hhkb.url) == before
    out = hhkb("load", str(folder)).stdout.splitlines()
    assert out[0].startswith("hrg-2024.csv: release 1")
    assert out[1:3] == ["skipped (--strict refuses a load that skips files): 1 file(s)",
                        f"  {folder / 'HCPC2019_APR_ANWEB.xlsx'}: sheet 'A' reaches row 1,048,576 and column 16,384 "
                        "(17,179,869,184 cells from A1), more than the 5,000,000 a sheet may span: refusing to read it"]
