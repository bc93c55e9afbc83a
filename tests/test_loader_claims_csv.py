"""The claims CSV: the documented example, round trips, one test per failure mode."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from kb.sample_agency import AgencyProfile, generate_claims, synthetic_npi
from loaders.claim_record import Claim, ClaimLine
from loaders.claims_csv import COLUMNS, read_claims_csv, write_claims_csv
from loaders.errors import LoadError
from loaders.x12_837i import read_837i

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLE = ROOT / "tests" / "fixtures" / "claims" / "two-claims.csv"


def test_documented_example_is_the_fixture():
    assert EXAMPLE.read_text() in (ROOT / "docs" / "claims-csv.md").read_text()


def test_documented_example_reads():
    first, second = read_claims_csv(EXAMPLE)
    assert (first.claim_id, first.hipps, first.condition_codes, first.review_tracking_number) == (
        "P0000001-01", "1FC21", ("47",), "OH230155000001",
    )
    assert first.occurrence_codes == (("50", date(2023, 7, 11)), ("61", date(2023, 7, 1)))
    assert first.diagnoses == ("I5022", "I10")
    assert first.source_segment == 2
    assert [line.hcpcs for line in first.lines] == [None, "G0299", "Q5001", "G0320"]
    assert second.quality_data_submitted is False
    assert (second.cbsa, second.fips_county) == ("17140", "01001")
    assert second.value_codes == (("61", Decimal("17140")), ("85", Decimal("1001")))
    assert second.lines[1] == ClaimLine(2, "0421", "G0151", None, ("GP",), Decimal(3), Decimal("195.00"), date(2023, 8, 10))
    assert second.source_segment == 6


def test_writing_the_example_gives_it_back_byte_for_byte():
    stream = io.StringIO()
    write_claims_csv(read_claims_csv(EXAMPLE), stream)
    assert stream.getvalue() == EXAMPLE.read_text()


def test_generated_claims_round_trip():
    profile = AgencyProfile(
        agency_id=synthetic_npi(3), state="TX", cbsa="19124", fips_county="48113", periods=80, quality_data_submitted=False
    )
    claims = generate_claims(profile, year=2024, seed=5)
    stream = io.StringIO()
    write_claims_csv(claims, stream)
    assert list(read_claims_csv(io.StringIO(stream.getvalue()))) == claims


def test_claims_of_the_x12_samples_round_trip():
    for sample in sorted((SHARED / "x12").glob("*.837i")):
        claims = [claim for claim in read_837i(sample, beneficiary_hash_key=b"k") if isinstance(claim, Claim)]
        stream = io.StringIO()
        write_claims_csv(claims, stream)
        assert list(read_claims_csv(io.StringIO(stream.getvalue()))) == claims, sample.name


# ---------------------------------------------------------------------------------------------
# Failure modes: each names the file, the line and the column.


def example_rows() -> list[list[str]]:
    import csv

    return list(csv.reader(io.StringIO(EXAMPLE.read_text())))


def read_rows(rows: list[list[str]]) -> list[Claim]:
    import csv

    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n").writerows(rows)
    return list(read_claims_csv(io.StringIO(stream.getvalue()), path="claims.csv"))


def with_cell(column: str, value: str, *, row: int = 1) -> list[list[str]]:
    rows = example_rows()
    rows[row][COLUMNS.index(column)] = value
    return rows


def assert_error(rows: list[list[str]], *, line: int, field: str | None, message: str) -> None:
    with pytest.raises(LoadError) as caught:
        read_rows(rows)
    error = caught.value
    assert (error.path, error.line, error.field) == ("claims.csv", line, field)
    assert message in error.message
    assert str(error).startswith(f"claims.csv, line {line}")


def test_empty_file():
    assert_error([], line=1, field=None, message="the file is empty")


def test_missing_column():
    rows = [[cell for index, cell in enumerate(row) if index != COLUMNS.index("units")] for row in example_rows()]
    assert_error(rows, line=1, field="units", message="header lacks column(s) units")


def test_unknown_column():
    rows = [row + ["x"] for row in example_rows()]
    rows[0][-1] = "colour"
    assert_error(rows, line=1, field="colour", message="unknown column(s) colour")


def test_row_with_too_few_cells():
    rows = example_rows()
    rows[3] = rows[3][:-1]
    assert_error(rows, line=4, field=None, message="row has 26 cells, the header 27")


def test_empty_required_cell():
    assert_error(with_cell("charge", "", row=2), line=3, field="charge", message="empty, but required")


def test_bad_date():
    assert_error(with_cell("service_date", "2023-02-30", row=2), line=3, field="service_date", message="not a date that exists")


def test_date_in_another_format():
    assert_error(with_cell("service_date", "07/11/2023", row=2), line=3, field="service_date", message="YYYY-MM-DD")


def test_bad_decimal():
    assert_error(with_cell("units", "4 units", row=2), line=3, field="units", message="is not a decimal number")


def test_bad_revenue_code():
    assert_error(with_cell("revenue_code", "551", row=2), line=3, field="revenue_code", message="is not four digits")


def test_bad_type_of_bill():
    rows = example_rows()
    for row in rows[1:5]:
        row[COLUMNS.index("type_of_bill")] = "329"
    assert_error(rows, line=2, field="type_of_bill", message="is not 0 + facility + frequency")


def test_claim_field_differs_between_rows_of_a_claim():
    assert_error(with_cell("hipps", "1FC31", row=3), line=4, field="hipps", message="differs from the claim's first row (line 2)")


def test_rows_of_a_claim_not_contiguous():
    rows = example_rows()
    rows.append(rows[1])
    assert_error(rows, line=8, field="claim_id", message="rows must be contiguous")


def test_bad_quality_flag():
    rows = example_rows()
    for row in rows[5:]:
        row[COLUMNS.index("quality_data_submitted")] = "no"
    assert_error(rows, line=6, field="quality_data_submitted", message="neither Y nor N")


def test_beneficiary_identifier_instead_of_key():
    rows = example_rows()
    for row in rows[5:]:
        row[COLUMNS.index("beneficiary_key")] = "1EG4TE5MK73"
    assert_error(rows, line=6, field="beneficiary_key", message="not 64 lowercase hex digits")


def test_hipps_disagrees_with_the_0023_line():
    assert_error(with_cell("line_hipps", "1FC31", row=1), line=2, field="hipps", message="disagrees with the HIPPS")


def test_cbsa_disagrees_with_value_code_61():
    rows = example_rows()
    for row in rows[5:]:
        row[COLUMNS.index("cbsa")] = "17141"
    assert_error(rows, line=6, field="cbsa", message="disagrees with value code 61 (17140)")


def test_value_code_61_not_a_code():
    rows = example_rows()
    for row in rows[5:]:
        row[COLUMNS.index("value_codes")] = "61=17140.5;85=1001"
    assert_error(rows, line=6, field="value_codes", message="is not a five-digit code")


def test_pair_without_separator():
    rows = example_rows()
    for row in rows[1:5]:
        row[COLUMNS.index("occurrence_codes")] = "50:2023-07-11"
    assert_error(rows, line=2, field="occurrence_codes", message="is not CODE=VALUE")


def test_line_with_hcpcs_and_hipps():
    assert_error(with_cell("line_hipps", "1FC21", row=2), line=3, field="line_hipps", message="not both")


def test_lowercase_diagnosis():
    rows = example_rows()
    for row in rows[5:]:
        row[COLUMNS.index("diagnoses")] = "m1711"
    assert_error(rows, line=6, field="diagnoses", message="is not a code")


def test_writer_refuses_a_claim_without_lines():
    (claim, _) = read_claims_csv(EXAMPLE)
    from dataclasses import replace

    with pytest.raises(ValueError, match="no lines"):
        write_claims_csv([replace(claim, lines=())], io.StringIO())
