"""HH PPS pricer tables: the real years, each layout variation CMS shipped, and one bad file per
failure mode."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from loaders.errors import LoadError
from loaders.hhpps import (
    HrgRow,
    RevenueRateRow,
    WageIndexRow,
    is_hhpps_table,
    parse_hhpps_table,
    read_hhpps_folder,
    read_hhpps_table,
    resolve_wage_index,
)

from tests.conftest import HHPPS_DIR as HHPPS
from tests.conftest import HHPPS_FILES
from tests.conftest import HHPPS_YEARS as YEARS

HRG_HEADER = "code,effectiveDate,weight,threshold\n"


@pytest.fixture(scope="module")
def tables():
    return read_hhpps_folder(HHPPS)


def _one(tables, kind, year):
    (table,) = [t for t in tables if t.kind == kind and t.year == year]
    return table


def _weights(tables, year) -> dict[str, HrgRow]:
    return {row.hipps: row for row in _one(tables, "hrg", year).rows}


def test_every_file_is_recognised_by_its_header(tables):
    assert {path.name for path in HHPPS_FILES} <= {Path(t.path).name for t in tables}
    kinds = {(t.kind, t.year) for t in tables}
    for year in YEARS:
        assert {("hrg", year), ("rev", year), ("wage_index", year)} <= kinds
    assert [Path(t.path).name for t in tables if t.kind == "rural_addon"] == [
        "add-on-table.csv",
        "extra-add-on-table.csv",
    ]


def test_recognition_ignores_the_file_name(tmp_path):
    renamed = tmp_path / "whatever.txt"
    renamed.write_bytes((HHPPS / "rev-2022.csv").read_bytes())
    assert is_hhpps_table(renamed)
    assert read_hhpps_table(renamed).kind == "rev"
    other = tmp_path / "hrg-2025.csv"
    other.write_text("HCPC,LONG DESCRIPTION\nG0151,Physical therapy\n")
    assert not is_hhpps_table(other)


@pytest.mark.parametrize("year", YEARS)
def test_each_year_has_432_hipps_effective_january_first(tables, year):
    table = _one(tables, "hrg", year)
    assert len(table.rows) == 432
    assert table.effective_date == date(year, 1, 1)
    assert {row.effective_date for row in table.rows} == {date(year, 1, 1)}
    assert table.warnings == ()


def test_weights_are_exact_decimals(tables):
    assert _weights(tables, 2023)["1FC11"].weight == Decimal("1.1009")
    assert _weights(tables, 2024)["1FC11"].weight == Decimal("1.0929")
    # 2020 writes "01.0124": the value is 1.0124 exactly, digits after the point kept.
    weight_2020 = _weights(tables, 2020)["1AA11"].weight
    assert weight_2020 == Decimal("1.0124") and str(weight_2020) == "1.0124"
    assert all(isinstance(row.weight, Decimal) for row in _one(tables, "hrg", 2020).rows)


def test_41_hipps_change_lupa_threshold_from_2023_to_2024(tables):
    before, after = _weights(tables, 2023), _weights(tables, 2024)
    assert before.keys() == after.keys()
    changed = {h for h in before if before[h].lupa_threshold != after[h].lupa_threshold}
    assert len(changed) == 41


def test_revenue_rates_keep_2023s_short_numbers_exact(tables):
    rates = {row.revenue_code: row for row in _one(tables, "rev", 2023).rows}
    assert sorted(rates) == ["0420", "0430", "0440", "0550", "0560", "0570"]
    slp: RevenueRateRow = rates["0440"]
    assert slp.visit_rate == Decimal("194") and str(slp.visit_rate) == "194"
    assert slp.unit_rate == Decimal("60.50")
    assert slp.visit_rate_no_quality == Decimal("190.27")
    assert rates["0430"].visit_rate == Decimal("179.7")
    assert rates["0420"].row == 2


def test_2023_duplicate_cbsas_are_data_with_conflicts(tables):
    table = _one(tables, "wage_index", 2023)
    assert len(table.rows) == 464
    assert [(c.cbsa, [r.row for r in c.rows]) for c in table.conflicts] == [
        ("49700", [462, 464]),
        ("49740", [463, 465]),
    ]
    assert any("49700" in w for w in table.warnings)
    first = resolve_wage_index(table, "first")
    last = resolve_wage_index(table, "last")
    assert first["49700"].wage_index == Decimal("1.4394")
    assert last["49700"].wage_index == Decimal("1.3095")
    assert first["10180"] == last["10180"]
    assert len(first) == 462
    with pytest.raises(LoadError) as error:
        resolve_wage_index(table, "refuse")
    assert error.value.line == 464 and error.value.field == "cbsa"
    assert "cbsa-wage-index-2023.csv" in error.value.path and "49700" in error.value.message


def test_other_years_have_no_wage_index_conflicts(tables):
    for year in (2020, 2021, 2022, 2024):
        table = _one(tables, "wage_index", year)
        assert table.conflicts == ()
        assert len(resolve_wage_index(table, "refuse")) == len(table.rows)


def test_broken_names_are_kept_and_flagged(tables):
    table = _one(tables, "wage_index", 2024)
    flagged = {flag.key: flag for flag in table.name_flags}
    assert sorted(flagged) == ["32420", "41900", "41980"]
    assert flagged["32420"].name == "Mayag\ufffdez, PR"
    assert flagged["32420"].row == 285 and "U+FFFD" in flagged["32420"].reason
    row: WageIndexRow = next(r for r in table.rows if r.cbsa == "32420")
    assert row.name == "Mayag\ufffdez, PR"
    flagged_2020 = {flag.key: flag.reason for flag in _one(tables, "wage_index", 2020).name_flags}
    assert "question mark" in flagged_2020["32420"]
    assert "U+00DF" in flagged_2020["41900"]
    assert _one(tables, "wage_index", 2022).name_flags == ()


def test_rural_rows_and_rural_addon_tables(tables):
    table = _one(tables, "wage_index", 2024)
    alabama = next(r for r in table.rows if r.cbsa == "99901")
    assert alabama.is_rural and alabama.name == "ALABAMA" and alabama.size is None
    addon, extra = [t for t in tables if t.kind == "rural_addon"]
    assert addon.year is None and len(addon.rows) == 2018 and len(extra.rows) == 47
    categories = {row.county_fips: row.category for row in addon.rows}
    assert {row.category for row in addon.rows} == {"A", "B", "C"}
    # The shipped extra table repeats counties of the main one with the same category.
    assert all(categories[row.county_fips] == row.category for row in extra.rows)


def test_encoding_is_decided_from_the_bytes():
    data = (
        "\ufeffcbsa,effectiveDate,geographicWageIndex,name,imputedFloorWageIndex,"
        "reclassifiedWageIndex,ruralFloorWageIndex,size\n"
    ).encode("utf-8") + b'41900,20240101,0.4134,"San Germ\xe1n, PR",,,,\n'
    table = parse_hhpps_table(data, "cp1252.csv")
    assert table.encoding == "cp1252"
    assert table.rows[0].name == "San Germ\u00e1n, PR"
    assert "read as cp1252" in table.warnings[0]
    assert table.name_flags[0].row == 2


# --- one test per failure mode: the message names the file, the line and the field -----------


def _fails(tmp_path, text: str | bytes, name: str = "table.csv") -> LoadError:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    with pytest.raises(LoadError) as error:
        read_hhpps_table(path)
    assert error.value.path == str(path)
    assert str(path) in str(error.value)
    return error.value


def test_missing_column(tmp_path):
    error = _fails(tmp_path, "code,effectiveDate,threshold\n1AA11,20240101,4\n")
    assert (error.line, error.field) == (1, "weight")
    assert "looks like an HH PPS hrg table but lacks column 'weight'" in str(error)
    error = _fails(tmp_path, "cbsa,effectiveDate,name\n10180,20250101,Abilene\n")
    assert (error.line, error.field) == (1, "geographicWageIndex")
    assert not is_hhpps_table(tmp_path / "table.csv")


def test_a_column_named_twice(tmp_path):
    error = _fails(tmp_path, "code,effectiveDate,weight,Weight,threshold\n1AA11,20240101,1.0,1.0,4\n")
    assert (error.line, error.field) == (1, "weight")
    assert "appears twice" in error.message


def test_a_value_under_a_column_with_no_name(tmp_path):
    error = _fails(tmp_path, "code,effectiveDate,weight,threshold,,\n1AA11,20240101,1.0,4,,\n"
                             "1AA21,20240101,1.1,4,,x\n")
    assert error.line == 3 and "column 6, which the header leaves without a name" in error.message


# --- the variations CMS ships: each read as the same rows ---------------------------------------

WAGE_2024_HEADER = ("cbsa,effectiveDate,geographicWageIndex,name,imputedFloorWageIndex,"
                    "reclassifiedWageIndex,ruralFloorWageIndex,size")
WAGE_ROWS = (WageIndexRow("10180", date(2025, 1, 1), Decimal("0.8141"), "Abilene, TX", None, None, None,
                          None, 2),
             WageIndexRow("99922", date(2025, 1, 1), Decimal("1.0109"), "MASSACHUSETTS", None, None, None,
                          None, 3))


@pytest.mark.parametrize("text", [
    pytest.param(WAGE_2024_HEADER + '\n10180,20250101,0.8141,"Abilene, TX",,,,\n99922,20250101,1.0109,'
                 'MASSACHUSETTS,,,,\n', id="2024-layout"),
    pytest.param('cbsa,effectiveDate,geographicWageIndex,name\n10180,20250101,0.8141,"Abilene, TX"\n'
                 '99922,20250101,1.0109,MASSACHUSETTS\n', id="2025-four-columns"),
    pytest.param('cbsa,effectiveDate,geographicWageIndex,name,,,,,,\n10180,20250101,0.8141,"Abilene, TX",,,,,,'
                 '\n99922,20250101,1.0109,MASSACHUSETTS ,,,,,,\n', id="2026-trailing-empty-and-padded"),
    pytest.param('\ufeffname,CBSA,geographicwageindex,effectiveDate\r\n"Abilene, TX",10180,"0.8141",20250101'
                 '\r\n  MASSACHUSETTS , 99922 ,01.0109,20250101\r\n', id="bom-crlf-any-order-case-quoted"),
    pytest.param('cbsa,effectiveDate,geographicWageIndex,name,note\n10180,20250101,0.8141,"Abilene, TX",a'
                 '\n99922,20250101,1.0109,MASSACHUSETTS,b\n', id="extra-column"),
])
def test_wage_index_layout_variations_read_the_same_rows(text):
    table = parse_hhpps_table(text.encode("utf-8"), "wage.csv")
    assert table.kind == "wage_index" and table.rows == WAGE_ROWS


def test_the_table_says_which_columns_were_absent_and_which_were_not_read():
    four = parse_hhpps_table(b"cbsa,effectiveDate,geographicWageIndex,name,note\n10180,20250101,0.8,A,x\n")
    assert four.absent_columns == ("imputedFloorWageIndex", "reclassifiedWageIndex", "ruralFloorWageIndex",
                                   "size")
    assert four.unread_columns == ("note",)
    assert "columns not read: 'note'" in four.warnings
    full = parse_hhpps_table((WAGE_2024_HEADER + "\n10180,20250101,0.8,A,,,,\n").encode())
    assert full.absent_columns == () and full.unread_columns == () and full.warnings == ()


def test_the_shipped_2025_and_2026_wage_indexes(tables):
    by_year = {year: _one(tables, "wage_index", year) for year in (2024, 2025, 2026)}
    assert by_year[2025].absent_columns == by_year[2026].absent_columns == (
        "imputedFloorWageIndex", "reclassifiedWageIndex", "ruralFloorWageIndex", "size")
    assert by_year[2024].absent_columns == ()
    assert (len(by_year[2025].rows), len(by_year[2026].rows)) == (501, 489)
    massachusetts = next(row for row in by_year[2026].rows if row.cbsa == "50013")
    assert massachusetts.name == "MASSACHUSETTS" and massachusetts.row == 478
    assert next(row.wage_index for row in by_year[2025].rows if row.cbsa == "99901") == Decimal("0.6471")


def test_non_numeric_weight(tmp_path):
    error = _fails(tmp_path, HRG_HEADER + "1AA11,20240101,1.0124,4\n1AA21,20240101,1,06,4\n")
    assert (error.line, error.field) == (3, None)  # one cell too many
    error = _fails(tmp_path, HRG_HEADER + "1AA11,20240101,1.0124,4\n1AA21,20240101,abc,4\n")
    assert (error.line, error.field) == (3, "weight")
    assert "'abc'" in error.message
    assert "line 3, field weight" in str(error)


def test_float_style_weight_is_refused(tmp_path):
    error = _fails(tmp_path, HRG_HEADER + "1AA11,20240101,1e3,4\n")
    assert (error.line, error.field) == (2, "weight")


def test_hipps_of_the_wrong_shape(tmp_path):
    for bad in ("1AA1", "5AA11", "1MA11", "1AD11", "1AA41", "1AA12", "1aa11"):
        error = _fails(tmp_path, HRG_HEADER + f"{bad},20240101,1.0124,4\n")
        assert (error.line, error.field) == (2, "code"), bad
        assert "HIPPS" in error.message


def test_duplicate_hipps(tmp_path):
    error = _fails(
        tmp_path, HRG_HEADER + "1AA11,20240101,1.0124,4\n1AB11,20240101,1.1,5\n1AA11,20240101,1.0,4\n"
    )
    assert (error.line, error.field) == (4, "code")
    assert "duplicate hipps 1AA11 (first on line 2)" in error.message


def test_duplicate_revenue_code(tmp_path):
    header = (HHPPS / "rev-2024.csv").read_text().splitlines()[:2]
    error = _fails(tmp_path, "\n".join([*header, header[1]]) + "\n")
    assert (error.line, error.field) == (3, "code")


def test_bad_date(tmp_path):
    error = _fails(tmp_path, HRG_HEADER + "1AA11,20241301,1.0124,4\n")
    assert (error.line, error.field) == (2, "effectiveDate")


def test_empty_cell(tmp_path):
    error = _fails(tmp_path, HRG_HEADER + "1AA11,20240101,,4\n")
    assert (error.line, error.field) == (2, "weight")
    assert "empty cell" in error.message


def test_empty_file(tmp_path):
    error = _fails(tmp_path, b"")
    assert "empty file" in error.message
    error = _fails(tmp_path, HRG_HEADER)
    assert error.line == 2 and "no rows" in error.message


def test_a_file_of_the_wrong_kind(tmp_path):
    error = _fails(tmp_path, "HCPC,SEQNUM,RECID,LONG DESCRIPTION\nG0151,00100,3,PT\n")
    assert error.line == 1 and "not an HH PPS pricer table" in error.message


def test_folder_skips_files_that_are_not_tables(tmp_path):
    (tmp_path / "README.txt").write_text("not a table\n")
    (tmp_path / "hrg.csv").write_text(HRG_HEADER + "1AA11,20240101,1.0124,4\n")
    (table,) = read_hhpps_folder(tmp_path)
    assert table.kind == "hrg" and table.rows == (HrgRow("1AA11", date(2024, 1, 1), Decimal("1.0124"), 4, 2),)
