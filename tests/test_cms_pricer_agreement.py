"""Where hhkb's pricer must agree with CMS's own: the year chosen by the through date, the rural
add-on found by county, the LUPA add-on inputs, and the inputs a claim does not carry.

Every expected amount is worked out here from the table rows and the rule constants, written out
(the row of ``../shared/cms/hhpps`` in a comment), with CMS's rounding: half up to cents at each step.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from kb import database, ingest
from kb.claim_inputs import SuppliedInputs, load_supplied_inputs
from kb.claims import load_claims_files, price_claim
from kb.impact import impact
from kb.pricing import PricingError
from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY
from loaders.claim_inputs import read_supplied_inputs
from loaders.claim_record import Claim, ClaimLine
from loaders.claims_csv import write_claims_csv
from loaders.errors import LoadError
from regulations.catalogue import load_catalogue
from reports.impact import build_impact_report, render_csv, render_markdown
from tests.conftest import BACKENDS, HHPPS_DIR

CATALOGUE = load_catalogue()
YEARS = (2020, 2021, 2022, 2023)
FILES = [HHPPS_DIR / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index") for year in YEARS] + [
    HHPPS_DIR / "add-on-table.csv", HHPPS_DIR / "extra-add-on-table.csv"]
AGENCY = "9000000099"
SUPPLIED_AGENCY = "9000000098"  # the agency whose inputs are supplied


def r(amount: Decimal) -> Decimal:
    """Half up to cents, as CMS rounds."""
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def wage(amount: Decimal, wage_index: str, labor_share: str = "0.761") -> Decimal:
    """rounded(W x L x A) + rounded((1 - L) x A)."""
    labor = Decimal(labor_share)
    return r(Decimal(wage_index) * labor * amount) + r((1 - labor) * amount)


def claim(claim_id: str, start: date, *, days: tuple[int, ...] = (1, 4, 8, 11, 15), units: int = 4,
          cbsa: str = "17140", county: str = "39061", through: date | None = None, admission: date | None = None,
          **changes) -> Claim:
    """1FC11, one SN visit (G0299, revenue code 0551) on each of ``days`` after ``start``."""
    lines = (ClaimLine(1, "0023", None, "1FC11", (), Decimal(0), Decimal(0), start),) + tuple(
        ClaimLine(n, "0551", "G0299", None, (), Decimal(units), Decimal("150.00"), start + timedelta(days=day))
        for n, day in enumerate(days, start=2))
    base = Claim(
        agency_id=AGENCY, claim_id=claim_id, type_of_bill="0329", period_from=start,
        period_through=through or start + timedelta(days=29), admission_date=admission or start - timedelta(days=30),
        admission_source="1", patient_status="01", hipps="1FC11", cbsa=cbsa, fips_county=county,
        quality_data_submitted=True, review_tracking_number=None, state="OH", diagnoses=("I10",), condition_codes=(),
        occurrence_codes=(), value_codes=(("61", Decimal(int(cbsa))), ("85", Decimal(int(county)))),
        beneficiary_key="0" * 64, source_segment=0, lines=lines,
    )
    return dataclasses.replace(base, **changes)


CROSSING = claim("CROSS-1", date(2021, 12, 15), through=date(2022, 1, 13))
CROSSING_OUTLIER = claim("CROSS-2", date(2021, 12, 15), through=date(2022, 1, 13), days=tuple(range(0, 20, 2)),
                         units=16)
URBAN_EXTRA = claim("EXTRA-1", date(2021, 3, 1), county="05047")  # extra-add-on-table.csv: 05047,C
FIVE_HUNDRED = claim("CBSA500-1", date(2021, 3, 1), cbsa="50001", county="39001")  # add-on-table.csv: 39001,C
RURAL_MISSING = claim("RURAL-X", date(2021, 3, 1), cbsa="99936", county="39999")
RURAL_2023 = claim("RURAL-23", date(2023, 3, 1), cbsa="99936", county="39001")
FIRST_LUPA = claim("LUPA-1", date(2022, 3, 1), days=(0,), admission=date(2022, 3, 1))
SUPPLIED = claim("LATE-1", date(2022, 3, 1), agency_id=SUPPLIED_AGENCY)
STORED = (CROSSING, CROSSING_OUTLIER, URBAN_EXTRA, FIVE_HUNDRED, RURAL_MISSING, FIRST_LUPA, SUPPLIED)


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, tmp_path_factory):
    """CY2020-2023 tables, the add-on tables, the claims above and supplied inputs, per backend."""
    folder = tmp_path_factory.mktemp("agreement")
    if request.param == "sqlite":
        path = folder / "hhkb.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:
        admin, template = request.getfixturevalue("postgres_admin")
        name = f"hhkb_agreement_{os.getpid()}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        drop = (admin, name)
    engine = database.open_database(url)
    ingest.load_files(engine, FILES)
    claims_file = folder / "claims.csv"
    with open(claims_file, "w", encoding="utf-8", newline="") as stream:
        write_claims_csv(STORED, stream)
    load_claims_files(engine, [claims_file], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    vbp = folder / "vbp.csv"
    vbp.write_text(f"agency_id,year,vbp_adjustment_factor\n{SUPPLIED_AGENCY},2022,1.0125\n")
    noa = folder / "noa.csv"
    noa.write_text(f"agency_id,claim_id,noa_received,readmitted_in_period\n{SUPPLIED_AGENCY},LATE-1,2022-03-10,no\n")
    load_supplied_inputs(engine, [vbp, noa])
    yield engine
    engine.dispose()
    if drop is not None:
        admin, name = drop
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def price(engine, the_claim: Claim, rules_year: int | None = None):
    with Session(engine) as session:
        return price_claim(session, the_claim, rules_year=rules_year)


def steps(priced) -> dict[str, str]:
    return {step.name: step.formula for step in priced.result.trace}


# --------------------------------------------------------------------------------------------
# 1. The year by the through date


def test_a_period_crossing_january_1_is_priced_entirely_under_the_new_year(loaded):
    priced = price(loaded, CROSSING)
    assert priced.rules_on == date(2022, 1, 13) and priced.chosen_by == "its through date 2022-01-13"
    # hrg-2022.csv 1FC11,20220101,1.1101,4; CY2022 30-day rate 2031.64 (CMS-1747-F), labor share 0.761;
    # cbsa-wage-index-2022.csv 17140,20220101,0.9424
    period = wage(r(Decimal("1.1101") * Decimal("2031.64")), "0.9424")
    assert r(Decimal("1.1101") * Decimal("2031.64")) == Decimal("2255.32")
    assert priced.result.period_payment == period == Decimal("2156.46")
    assert priced.result.outlier_amount == 0 and priced.result.total == period
    assert priced.parameters.wage_index == Decimal("0.9424")
    # under the from-date's year (CY2021: 1FC11 1.1798, 1901.12, 17140 0.9461) it would pay otherwise
    from_year = price(loaded, CROSSING, rules_year=2021)
    assert from_year.result.total == wage(r(Decimal("1.1798") * Decimal("1901.12")), "0.9461") != period
    assert from_year.chosen_by == "the year asked for (CY2021)"


def test_a_period_crossing_january_1_with_an_outlier_takes_the_new_year_fdl_and_unit_rate(loaded):
    priced = price(loaded, CROSSING_OUTLIER)
    period = wage(r(Decimal("1.1101") * Decimal("2031.64")), "0.9424")
    # rev-2022.csv 0550 nonruralUnitDollarRate 52.53; 10 visits x 16 units = 160 units
    cost = wage(r(160 * Decimal("52.53")), "0.9424")
    # FDL ratio CY2022 0.40: rounded(2031.64 x 0.40) = 812.66, wage-adjusted
    threshold = period + wage(r(Decimal("2031.64") * Decimal("0.40")), "0.9424")
    outlier = r(Decimal("0.80") * (cost - threshold))
    assert (cost, threshold) == (Decimal("8036.39"), Decimal("2933.50"))
    assert priced.result.outlier_amount == outlier == Decimal("4082.31")
    assert priced.result.total == period + outlier
    # CY2021's FDL 0.56 and unit rate 51.10 would give another outlier
    assert price(loaded, CROSSING_OUTLIER, rules_year=2021).result.outlier_amount != outlier


# --------------------------------------------------------------------------------------------
# 2. The rural add-on by county


def test_an_urban_cbsa_county_in_the_extra_table_gets_its_category_in_cy2021_but_not_cy2020(loaded):
    priced = price(loaded, URBAN_EXTRA)
    # extra-add-on-table.csv 05047,C; CY2021 category C 1.010: rounded(1901.12 x 1.010) = 1920.13
    rate = r(Decimal("1901.12") * Decimal("1.010"))
    assert rate == Decimal("1920.13")
    # hrg-2021.csv 1FC11 1.1798; cbsa-wage-index-2021.csv 17140 0.9461
    period = wage(r(Decimal("1.1798") * rate), "0.9461")
    assert priced.result.period_payment == period
    assert priced.parameters.rural_add_on_category == "C"
    assert "category C" in steps(priced)["rural add-on factor"]
    # CY2020's calculator has no extra lookup: no add-on (1FC11 1.1798, 1864.03, 17140 0.9332)
    cy2020 = price(loaded, URBAN_EXTRA, rules_year=2020)
    assert cy2020.parameters.rural_add_on_category is None
    assert cy2020.result.period_payment == wage(r(Decimal("1.1798") * Decimal("1864.03")), "0.9332")


def test_a_500xx_cbsa_takes_rural_rate_columns_but_no_add_on(loaded):
    priced = price(loaded, FIVE_HUNDRED)
    # cbsa-wage-index-2021.csv 50001 0.8774; county 39001 is C in add-on-table.csv, not in the extra table
    assert priced.parameters.rural_add_on_category is None
    assert "rural add-on factor" not in steps(priced)
    assert priced.result.period_payment == wage(r(Decimal("1.1798") * Decimal("1901.12")), "0.8774")
    # rev-2021.csv 0550 ruralUnitDollarRate 51.10 (the rural column)
    assert priced.parameters.per_unit_rates["0550"] == Decimal("51.10")


def test_a_rural_cbsa_whose_county_is_not_in_the_add_on_table_is_refused(loaded):
    with pytest.raises(PricingError, match="return code 31: county 39999 of rural CBSA 99936 is not in the rural"):
        price(loaded, RURAL_MISSING)
    # CY2023 has no rural add-on: no lookup, no refusal
    assert price(loaded, RURAL_MISSING, rules_year=2023).result.total > 0


def test_cy2023_rural_claims_carry_the_open_question_of_category_b(loaded):
    priced = price(loaded, RURAL_2023)
    note = steps(priced)["note"]
    assert "open question" in note and "RURAL_ADDON_B_2023 = 1.010" in note and "category C" in note
    assert "rural add-on factor" not in steps(priced)


# --------------------------------------------------------------------------------------------
# 3. The LUPA add-on inputs, from the claim


def test_the_lupa_add_on_of_a_first_period_and_the_claims_that_lose_it(loaded):
    # rev-2022.csv 0550 nonruralDollarRate 156.90; SN factor 1.8451; cbsa-wage-index-2022.csv 17140 0.9424
    visit = wage(1 * Decimal("156.90"), "0.9424")
    add_on = wage(r(Decimal("156.90") * Decimal("0.8451")), "0.9424")
    assert r(Decimal("156.90") * Decimal("0.8451")) == Decimal("132.60")
    first = price(loaded, FIRST_LUPA)
    assert first.result.lupa and first.result.lupa_add_on == add_on
    assert first.result.total == visit + add_on
    # an ordinary replacement claim (frequency 7) keeps it
    replacement = price(loaded, dataclasses.replace(FIRST_LUPA, claim_id="LUPA-7", type_of_bill="0327"))
    assert replacement.result.lupa_add_on == add_on
    # condition code 47: LUPA source admission 'B' (Claims Processing Manual ch. 10 sec. 70.2)
    transfer = price(loaded, dataclasses.replace(FIRST_LUPA, claim_id="LUPA-47", condition_codes=("47",)))
    assert transfer.result.lupa_add_on == 0 and transfer.result.total == visit
    assert "LUPA source admission 'B'" in steps(transfer)["LUPA add-on"]


# --------------------------------------------------------------------------------------------
# 4. Inputs a claim does not carry


def test_a_supplied_late_noa_and_vbp_factor_change_the_price_as_cms_steps_do(loaded):
    priced = price(loaded, SUPPLIED)
    period = wage(r(Decimal("1.1101") * Decimal("2031.64")), "0.9424")
    # NOA received 2022-03-10, 9 days after the from-date 2022-03-01: more than the 5 days' grace,
    # so the period payment loses rounded(payment x 9 / 30); then x VBP 1.0125 (CY2022), rounded
    cut = r(period * 9 / 30)
    total = r((period - cut) * Decimal("1.0125"))
    assert (cut, total) == (Decimal("646.94"), Decimal("1528.39"))
    assert priced.result.late_noa_reduction == cut
    assert priced.result.total == total
    notes = [step.formula for step in priced.result.trace if step.name == "input"]
    assert any("NOA received 2022-03-10 (supplied: noa.csv line 2)" in n for n in notes)
    assert any("VBP adjustment factor 1.0125 for CY2022 (supplied: vbp.csv line 2)" in n for n in notes)
    assert any("no same-agency readmission within the period (supplied" in n for n in notes)


def test_inputs_not_supplied_are_said_to_be_assumed_absent(loaded):
    priced = price(loaded, URBAN_EXTRA)
    notes = " | ".join(step.formula for step in priced.result.trace if step.name == "input")
    assert "NOA receipt date not supplied: assumed timely" in notes
    assert "VBP adjustment factor for CY2021 not supplied: assumed 1" in notes
    assert "same-agency readmission within the period not supplied: assumed none" in notes


def test_loading_the_same_inputs_file_twice_changes_nothing(loaded, tmp_path):
    vbp = tmp_path / "vbp.csv"
    vbp.write_text(f"agency_id,year,vbp_adjustment_factor\n{SUPPLIED_AGENCY},2022,1.0125\n")  # as the fixture's
    with Session(loaded) as session:
        before = session.execute(sa.text("SELECT count(*) FROM agency_vbp_factor")).scalar_one()
    assert load_supplied_inputs(loaded, [vbp])[0].already_loaded
    with Session(loaded) as session:
        assert session.execute(sa.text("SELECT count(*) FROM agency_vbp_factor")).scalar_one() == before
        assert SuppliedInputs(session).of(SUPPLIED_AGENCY, "X", 2022).vbp_factor.value == Decimal("1.0125")


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    ("agency_id,year,vbp_adjustment_factor\nA,2022,2.5\n", 2, "vbp_adjustment_factor", "not a VBP adjustment factor"),
    ("agency_id,year,vbp_adjustment_factor\nA,22,1.01\n", 2, "year", "not a calendar year"),
    ("agency_id,year,vbp_adjustment_factor\nA,2022,1.01\nA,2022,1.02\n", 3, "year", "listed twice"),
    ("agency_id,claim_id,noa_received\nA,C1,2022-13-01\n", 2, "noa_received", "not a date"),
    ("agency_id,claim_id,readmitted_in_period\nA,C1,maybe\n", 2, "readmitted_in_period", "not yes or no"),
    ("agency_id,claim_id\nA,C1\n", 1, None, "not a pricing-inputs CSV"),
])
def test_a_bad_inputs_file_names_its_line_and_field(tmp_path, text, line, field, message):
    path = tmp_path / "inputs.csv"
    path.write_text(text)
    with pytest.raises(LoadError, match=message) as raised:
        read_supplied_inputs(path)
    assert (raised.value.line, raised.value.field) == (line, field)


def test_a_bad_inputs_file_leaves_the_database_as_it_was(engine, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("agency_id,year,vbp_adjustment_factor\nA,2022,1.01\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("agency_id,claim_id,noa_received\n" + "A," + "C" * 41 + ",2022-01-01\n")
    with pytest.raises(LoadError, match="more than the 40 kept"):
        load_supplied_inputs(engine, [good, bad])
    with Session(engine) as session:
        supplied = SuppliedInputs(session)
        assert supplied.vbp and not supplied.claims  # the good file stays, the bad one wrote nothing


def test_the_impact_lists_the_refused_claim_and_says_which_inputs_were_supplied(loaded):
    with Session(loaded) as session:
        result = impact(session, CATALOGUE, from_year=2021, to_year=2022)
        alone = impact(session, CATALOGUE, from_year=2021, to_year=2022, pricing_classes=False)
    assert alone.claims == result.claims and alone.unpriced == result.unpriced  # the fast path agrees
    unpriced = {u.claim_id: u.reason for u in result.unpriced}
    assert "return code 31" in unpriced["RURAL-X"]
    priced = {c.claim_id: c for c in result.claims}
    assert priced["LATE-1"].inputs_supplied == ("noa", "vbp", "readmission")
    assert priced["EXTRA-1"].inputs_supplied == ()
    assert priced["CROSS-1"].own_year == 2022 and priced["EXTRA-1"].own_year == 2021
    # the claim is priced under each year's own rural add-on: C in CY2021, C (1.000) in CY2022
    assert priced["EXTRA-1"].rural_add_on
    assert "CBSA 50001 is not in the wage index in force on 2022-01-01" in unpriced["CBSA500-1"]
    assert dict(result.own_years) == {2021: 1, 2022: 4}
    assert ("vbp", 1, 4) in result.inputs_supplied
    report = build_impact_report(result)
    markdown = render_markdown(report)
    assert "CY2021: 1 claim, CY2022: 4 claims" in markdown
    assert "RURAL-X" in markdown and "return code 31" in markdown
    assert "| VBP adjustment factor of the claim's year | 1 | 4 |" in markdown
    rows = render_csv(report).splitlines()
    late = next(row for row in rows if ",LATE-1," in row)
    assert late.endswith(",2022,noa|vbp|readmission,")
