"""Claims files in the knowledge base: store, read back, bad files and bad claims, pricing glue."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from kb import database, ingest
from kb.claims import (
    BENEFICIARY_KEY_VARIABLE,
    TablesCache,
    beneficiary_hash_key,
    claim_parameters,
    is_rural_cbsa,
    load_claims_files,
    price_claim,
    read_claims,
    rural_add_on_category,
    store_claims,
    superseded_claims,
    to_period_claim,
)
from kb.models import AgencyClaim, AgencyClaimLine, Release
from kb.pricing import PricingError, price_period, round_cents
from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi
from kb.store import FileIdentity
from loaders.claim_record import Claim, ClaimLine
from loaders.claims_csv import write_claims_csv
from loaders.errors import LoadError
from loaders.x12_837i import write_837i
from tests.conftest import HHPPS_DIR

KEY = SAMPLE_BENEFICIARY_HASH_KEY
YEARS_FILES = [HHPPS_DIR / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index") for year in (2023, 2024)]


@cache
def sample(periods: int = 40, serial: int = 5, cbsa: str = "17140", county: str = "39061"):
    profile = AgencyProfile(agency_id=synthetic_npi(serial), state="OH", cbsa=cbsa, fips_county=county, periods=periods)
    return generate_sample(profile, year=2023, seed=3)


def write_837i_file(path: Path, claims=None, member_ids=None) -> Path:
    generated = sample()
    with open(path, "w", encoding="ascii", newline="") as stream:
        write_837i(claims or generated.claims, stream, member_ids=member_ids or generated.member_ids)
    return path


def write_csv_file(path: Path, claims=None) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        write_claims_csv(claims or sample().claims, stream)
    return path


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        return tuple(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (Release.__table__, AgencyClaim.__table__, AgencyClaimLine.__table__))


def load(engine, *paths):
    return load_claims_files(engine, paths, beneficiary_hash_key=KEY)


# ---------------------------------------------------------------------------------------------
# Storing and reading back


def test_an_837i_file_round_trips_through_the_database(engine, tmp_path):
    report = load(engine, write_837i_file(tmp_path / "agency.837i"))
    summary = report.files[0].summary
    claims = sample().claims
    assert not summary.already_loaded and summary.records == len(claims) and not report.skipped
    release = summary.release
    assert (release.source, release.file_format) == ("claims", "837i")
    assert release.effective_date == min(c.period_from for c in claims)
    assert release.published_date == date.today()
    with Session(engine) as session:
        assert read_claims(session) == list(claims)
    assert counts(engine)[2] == sum(len(c.lines) for c in claims)


def test_a_claims_csv_round_trips_and_filters_select_claims(engine, tmp_path):
    report = load(engine, write_csv_file(tmp_path / "agency.csv"))
    assert report.files[0].file_format == "csv"
    claims = sample().claims
    with Session(engine) as session:
        assert read_claims(session, agency=claims[0].agency_id) == list(claims)
        assert read_claims(session, agency="9999999999") == []
        june = read_claims(session, period_from=date(2023, 6, 1), period_through=date(2023, 6, 30))
    assert june == [c for c in claims if date(2023, 6, 1) <= c.period_from <= date(2023, 6, 30)] and june


def test_loading_the_same_file_twice_is_a_no_op(engine, tmp_path):
    path = write_837i_file(tmp_path / "agency.837i")
    load(engine, path)
    before = counts(engine)
    again = load(engine, path).files[0].summary
    assert again.already_loaded and "already loaded" in again.describe()
    assert counts(engine) == before


def test_a_claim_already_loaded_from_another_file_names_both_files(engine, tmp_path):
    load(engine, write_837i_file(tmp_path / "first.837i"))
    before = counts(engine)
    with pytest.raises(LoadError) as raised:
        load(engine, write_csv_file(tmp_path / "second.csv"))
    message = str(raised.value)
    assert "second.csv" in message and "already loaded from first.837i" in message
    assert raised.value.field == "claim_id" and raised.value.line is not None
    assert counts(engine) == before


def test_adjustments_replace_and_voids_cancel_the_versions_loaded_before_them(engine, tmp_path):
    finals = [c for c in sample().claims if c.type_of_bill == "0329"]
    a, b, c, d = finals[:4]

    def version(claim, claim_id, frequency):
        return dataclasses.replace(claim, claim_id=claim_id, type_of_bill="032" + frequency)

    first = [*finals, version(d, "D-NOA", "A")]
    # a: adjusted twice; b: voided, then billed anew; c: a void of another agency's claim does
    # not touch it; d: a notice of admission takes no part, a later adjustment replaces the claim
    second = [version(a, "A-ADJ-1", "7"), version(b, "B-VOID", "8"),
              dataclasses.replace(version(c, "C-VOID", "8"), agency_id=synthetic_npi(6))]
    third = [version(a, "A-ADJ-2", "7"), version(b, "B-REBILL", "9"), version(d, "D-ADJ", "7")]
    generated = sample()
    for number, claims in enumerate((first, second, third)):
        load(engine, write_837i_file(tmp_path / f"batch-{number}.837i", claims, generated.member_ids))
    with Session(engine) as session:
        superseded = {s.claim_id: s.reason for s in superseded_claims(session)}
        only_other_agency = superseded_claims(session, agency=synthetic_npi(6))
    assert superseded == {
        a.claim_id: "replaced by adjustment A-ADJ-1 (type of bill 0327), loaded after it; not priced",
        "A-ADJ-1": "replaced by adjustment A-ADJ-2 (type of bill 0327), loaded after it; not priced",
        b.claim_id: "cancelled by void B-VOID (type of bill 0328), loaded after it; not priced",
        d.claim_id: "replaced by adjustment D-ADJ (type of bill 0327), loaded after it; not priced",
    }
    assert only_other_agency == []


def test_a_claim_listed_twice_in_one_file_is_refused_by_store_claims(engine):
    claim = sample().claims[0]
    with Session(engine) as session, pytest.raises(LoadError, match="listed twice") as raised:
        store_claims(session, [claim, claim], FileIdentity("twice.837i", "0" * 64, 1), file_format="837i", label="x")
    assert raised.value.path == "twice.837i" and raised.value.field == "claim_id"


def test_member_ids_are_never_stored(engine, tmp_path):
    load(engine, write_837i_file(tmp_path / "agency.837i"))
    with engine.connect() as connection:
        rows = connection.execute(sa.select(AgencyClaim.__table__)).all()
    text = " ".join(str(value) for row in rows for value in row)
    assert "SYN" not in text and "SAMPLE" not in text
    assert all(re.fullmatch(r"[0-9a-f]{64}", row.beneficiary_key) for row in rows)


# ---------------------------------------------------------------------------------------------
# Bad files and bad claims: one test per failure mode


def test_a_file_that_is_not_x12_nor_a_claims_csv_changes_nothing(engine, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Dear biller,\nplease find the claims attached.\n")
    before = counts(engine)
    with pytest.raises(LoadError, match="neither an X12 837I interchange") as raised:
        load(engine, path)
    assert raised.value.path == str(path)
    assert counts(engine) == before


def test_a_truncated_837i_changes_nothing(engine, tmp_path, monkeypatch):
    monkeypatch.setattr("kb.claims.STORE_BATCH", 5)  # batches are stored before the cut is found
    whole = write_837i_file(tmp_path / "whole.837i").read_text()
    path = tmp_path / "cut.837i"
    path.write_text(whole[: len(whole) // 2])
    before = counts(engine)
    with pytest.raises(LoadError) as raised:
        load(engine, path)
    assert raised.value.path == str(path) and "IEA" in raised.value.message
    assert counts(engine) == before


def test_a_claim_with_a_bad_date_is_reported_and_skipped_the_rest_load(engine, tmp_path):
    text = write_837i_file(tmp_path / "good.837i").read_text()
    bad_text, replaced = re.subn(r"DTP\*434\*RD8\*(\d{8})-", "DTP*434*RD8*20231340-", text, count=1)
    assert replaced == 1
    path = tmp_path / "bad-date.837i"
    path.write_text(bad_text)
    report = load(engine, path)
    [bad] = report.skipped
    assert bad.path == str(path) and bad.claim_id == sample().claims[0].claim_id
    assert "DTP" in bad.location and re.search(r"segment \d+", bad.location)
    assert "20231340" in bad.message
    with Session(engine) as session:
        assert read_claims(session) == list(sample().claims[1:])


def test_a_claims_csv_without_a_column_changes_nothing(engine, tmp_path):
    text = write_csv_file(tmp_path / "good.csv").read_text()
    rows = [line.split(",") for line in text.splitlines()]
    column = rows[0].index("period_through")
    path = tmp_path / "missing-column.csv"
    path.write_text("\n".join(",".join(cells[:column] + cells[column + 1:]) for cells in rows) + "\n")
    before = counts(engine)
    with pytest.raises(LoadError) as raised:
        load(engine, path)
    assert (raised.value.path, raised.value.line, raised.value.field) == (str(path), 1, "period_through")
    assert counts(engine) == before


def test_a_claims_csv_row_with_a_bad_date_skips_that_claim_only(engine, tmp_path):
    lines = write_csv_file(tmp_path / "good.csv").read_text().splitlines()
    header = lines[0].split(",")
    second_claim = sample().claims[1]
    rows = [n for n, line in enumerate(lines) if line.split(",")[header.index("claim_id")] == second_claim.claim_id]
    for row in rows:
        cells = lines[row].split(",")
        cells[header.index("period_from")] = "2023-02-30"
        lines[row] = ",".join(cells)
    path = tmp_path / "bad-row.csv"
    path.write_text("\n".join(lines) + "\n")
    report = load(engine, path)
    [bad] = report.skipped
    assert bad.location == f"line {rows[0] + 1}, field period_from" and bad.claim_id == second_claim.claim_id
    assert "2023-02-30" in bad.message and bad.path == str(path)
    with Session(engine) as session:
        assert read_claims(session) == [c for c in sample().claims if c.claim_id != second_claim.claim_id]


def test_a_claims_csv_row_that_disagrees_with_its_claim_skips_that_claim_only(engine, tmp_path):
    lines = write_csv_file(tmp_path / "good.csv").read_text().splitlines()
    header = lines[0].split(",")
    claim = next(c for c in sample().claims if len(c.lines) > 2)
    rows = [n for n, line in enumerate(lines) if line.split(",")[header.index("claim_id")] == claim.claim_id]
    cells = lines[rows[1]].split(",")
    cells[header.index("hipps")] = "1AA11" if claim.hipps != "1AA11" else "1AA21"
    lines[rows[1]] = ",".join(cells)
    path = tmp_path / "disagreeing.csv"
    path.write_text("\n".join(lines) + "\n")
    [bad] = load(engine, path).skipped
    assert bad.location == f"line {rows[1] + 1}, field hipps" and "differs from the claim's first row" in bad.message
    with Session(engine) as session:
        assert read_claims(session) == [c for c in sample().claims if c.claim_id != claim.claim_id]


# ---------------------------------------------------------------------------------------------
# The beneficiary hash key


def test_the_hash_key_is_kept_beside_a_sqlite_database_or_taken_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(BENEFICIARY_KEY_VARIABLE, raising=False)
    engine = database.open_database(f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    assert not (tmp_path / "kb.sqlite3.beneficiary-key").exists()
    first = beneficiary_hash_key(engine, storing=True)
    key_file = tmp_path / "kb.sqlite3.beneficiary-key"
    assert key_file.exists() and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert beneficiary_hash_key(engine) == first and len(first) == 64
    with pytest.raises(LoadError, match=BENEFICIARY_KEY_VARIABLE):
        beneficiary_hash_key(database.make_engine("postgresql://nobody@localhost/none"), storing=True)


# ---------------------------------------------------------------------------------------------
# Pricing from stored parameters


@pytest.fixture
def hhpps(engine):
    ingest.load_files(engine, YEARS_FILES)
    return engine


def worked_claim(from_date: date) -> Claim:
    lines = (ClaimLine(1, "0023", None, "1FC11", (), Decimal(0), Decimal(0), from_date),) + tuple(
        ClaimLine(n, "0551", "G0299", None, (), Decimal(4), Decimal("165.00"), from_date.replace(day=day))
        for n, day in enumerate((2, 5, 9, 12, 16, 20), start=2)
    )
    return Claim(
        agency_id="9000000056", claim_id="W1", type_of_bill="0329", period_from=from_date,
        period_through=from_date.replace(day=30), admission_date=from_date, admission_source="1",
        patient_status="01", hipps="1FC11", cbsa="17140", fips_county="39061", quality_data_submitted=True,
        review_tracking_number=None, state="OH", diagnoses=("F200",), condition_codes=(), occurrence_codes=(),
        value_codes=(("61", Decimal(17140)), ("85", Decimal(39061))), beneficiary_key="0" * 64, source_segment=0,
        lines=lines,
    )


def test_stored_parameters_reproduce_the_worked_1fc11_figures(hhpps):
    claim = worked_claim(date(2023, 3, 1))
    with Session(hhpps) as session:
        cache = TablesCache(session)
        for rules_year, expected, wage_index, labor_share in (
            (2023, Decimal("2213.57"), Decimal("0.9266"), Decimal("0.761")),
            (2024, Decimal("2227.47"), Decimal("0.9103"), Decimal("0.749")),
        ):
            tables = cache.on(date(rules_year, 1, 1))
            at_one = dataclasses.replace(claim_parameters(claim, tables), wage_index=Decimal("1.0"))
            assert price_period(to_period_claim(claim, tables), at_one).period_payment == expected
            # in Cincinnati (CBSA 17140), the year's wage index from the stored table
            priced = price_claim(session, claim, rules_year=rules_year, cache=cache)
            assert priced.parameters.wage_index == wage_index
            adjusted = round_cents(wage_index * labor_share * expected) + round_cents((1 - labor_share) * expected)
            assert priced.result.period_payment == adjusted
            assert "cbsa-wage-index" in priced.parameters.citations["wage_index"]
        # no year asked for: the year of the through date, as CMS's driver chooses it
        priced = price_claim(session, claim, cache=cache)
        assert priced.rules_on == date(2023, 3, 30)
        assert priced.chosen_by == "its through date 2023-03-30"


def test_a_claim_that_cannot_be_priced_says_why(hhpps):
    claim = dataclasses.replace(worked_claim(date(2023, 3, 1)), cbsa="00000")
    with Session(hhpps) as session, pytest.raises(PricingError, match="CBSA 00000 is not in the wage index"):
        price_claim(session, claim)
    no_admission = dataclasses.replace(worked_claim(date(2023, 3, 1)), admission_date=None)
    with Session(hhpps) as session, pytest.raises(PricingError, match="no admission date"):
        price_claim(session, no_admission)


def test_rural_rates_follow_the_pricer_and_the_add_on_needs_a_year_that_has_one(hhpps):
    assert is_rural_cbsa("99936") and is_rural_cbsa("50001") and not is_rural_cbsa("17140")
    claim = dataclasses.replace(worked_claim(date(2023, 3, 1)), cbsa="99936", fips_county="39001")
    with Session(hhpps) as session:
        tables = TablesCache(session).on(date(2023, 1, 1))
    assert rural_add_on_category(claim, tables) is None  # the rural add-on ended with CY2022
    assert to_period_claim(claim, tables).rural_add_on_category is None
    # a replacement claim is an ordinary claim to the pricer; condition code 47 is its transfer input
    replacement = to_period_claim(dataclasses.replace(claim, type_of_bill="0327"), tables)
    assert (replacement.lupa_source_admission, replacement.adjustment_indicator) == ("1", "0")
    transfer = to_period_claim(dataclasses.replace(claim, condition_codes=("47",)), tables)
    assert transfer.lupa_source_admission == "B"
    # point of origin B (discontinued 2010-07-01 for condition code 47) is not read
    assert to_period_claim(dataclasses.replace(claim, admission_source="B"), tables).lupa_source_admission == "1"
