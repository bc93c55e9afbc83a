"""HH PPS parameters in force on a date, read from the stored pricer tables and the catalogue."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlmodel import Session

from kb import ingest
from kb.parameters import ParameterError, hipps_history, hipps_meaning, wage_index_history, year_tables
from kb.pricing import ClaimLine, PeriodClaim, price_period
from regulations.catalogue import load_catalogue
from tests.conftest import HHPPS_FILES, HHPPS_YEARS

CATALOGUE = load_catalogue()


@pytest.fixture
def hhpps(engine):
    ingest.load_files(engine, HHPPS_FILES)
    return engine


def tables(engine, on, **kwargs):
    with Session(engine) as session:
        return year_tables(session, CATALOGUE, on, **kwargs)


def test_each_year_has_432_hipps_and_its_own_weights(hhpps):
    for year in range(2020, 2025):
        assert len(tables(hhpps, date(year, 6, 1)).case_mix) == 432
    assert tables(hhpps, date(2023, 12, 31)).case_mix["1FC11"].weight == Decimal("1.1009")
    assert tables(hhpps, date(2024, 1, 1)).case_mix["1FC11"].weight == Decimal("1.0929")


def test_41_hipps_change_lupa_threshold_from_2023_to_2024(hhpps):
    before, after = tables(hhpps, date(2023, 6, 1)).case_mix, tables(hhpps, date(2024, 6, 1)).case_mix
    assert sum(before[h].lupa_threshold != after[h].lupa_threshold for h in before) == 41


def test_a_value_cites_its_file_row_and_rule(hhpps):
    case_mix = tables(hhpps, date(2024, 3, 1)).case_mix["1FC11"]
    assert case_mix.source.file_name == "hrg-2024.csv"
    assert case_mix.source.regulation == "CMS-1780-F"
    assert case_mix.source.row == 2
    assert "hrg-2024.csv row 2" in case_mix.source.cite()


def test_the_worked_figures_price_from_stored_parameters(hhpps):
    claim = PeriodClaim(
        claim_id="W1", type_of_bill="0329", from_date=date(2023, 3, 1), through_date=date(2023, 3, 30),
        admission_date=date(2023, 3, 1), hipps="1FC11", wage_index=Decimal("1.0"), rural_add_on_category=None,
        quality_data_submitted=True, condition_codes=(), patient_status="01",
        lines=tuple(ClaimLine("0551", "G0299", 4, date(2023, 3, d)) for d in (2, 5, 9, 12, 16, 20)),
    )
    for on, expected in ((date(2023, 3, 1), Decimal("2213.57")), (date(2024, 3, 1), Decimal("2227.47"))):
        parameters = tables(hhpps, on).pricing_parameters("1FC11", quality_data_submitted=True, rural=False)
        assert price_period(claim, parameters).period_payment == expected


def test_a_cbsa_listed_twice_is_refused_unless_a_policy_chooses(hhpps):
    refused = tables(hhpps, date(2023, 6, 1))
    assert set(refused.wage_index_conflicts) == {"49700", "49740"}
    with pytest.raises(ParameterError, match="CBSA 49700 is listed more than once"):
        refused.wage_index_of("49700")
    first = tables(hhpps, date(2023, 6, 1), conflict_policy="first").wage_index_of("49700")
    last = tables(hhpps, date(2023, 6, 1), conflict_policy="last").wage_index_of("49700")
    assert (first.wage_index, last.wage_index) == (Decimal("1.4394"), Decimal("1.3095"))
    assert "policy 'first' chose row 462" in first.conflict


def test_knowledge_time_hides_a_table_not_yet_published(hhpps):
    # CY2024's tables were published with CMS-1780-F on 2023-11-13
    assert tables(hhpps, date(2024, 3, 1), known_on=date(2023, 11, 1)).case_mix["1FC11"].weight == Decimal("1.1009")
    assert tables(hhpps, date(2024, 3, 1), known_on=date(2023, 11, 13)).case_mix["1FC11"].weight == Decimal("1.0929")


def test_histories_and_meanings(hhpps):
    with Session(hhpps) as session:
        history = hipps_history(session, "1fc11")
        wage = wage_index_history(session, "35614")
    assert [h.effective_from.year for h in history] == list(HHPPS_YEARS)
    assert [h.weight for h in history][-3:] == [Decimal("1.0929"), Decimal("1.0912"), Decimal("1.0804")]
    assert len(wage) == len(HHPPS_YEARS) and all(w.cbsa == "35614" for w in wage)
    assert [m[2] for m in hipps_meaning("1FC11")] == [
        "early period, community admission", "behavioral health", "high", "none", "always 1 under PDGM"]


def test_no_table_before_2020(hhpps):
    with pytest.raises(ParameterError):
        tables(hhpps, date(2019, 6, 1))


def test_two_years_diff_as_the_compliance_officer_reads_them(hhpps):
    from kb.diff import diff_hhpps
    from kb.parameters import hhpps_state, provenance

    before, after = tables(hhpps, date(2023, 1, 1), conflict_policy="first"), tables(hhpps, date(2024, 1, 1))
    changes = diff_hhpps(hhpps_state(before), hhpps_state(after),
                         old_provenance=provenance(before), new_provenance=provenance(after))
    by_type: dict[str, list] = {}
    for change in changes:
        by_type.setdefault(change.change_type, []).append(change)
    assert len(by_type["weight_changed"]) == 431  # 1 of 432 weights is unchanged
    assert len(by_type["lupa_threshold_changed"]) == 41
    labor = by_type["labor_share_changed"][0]
    assert (labor.old, labor.new) == (Decimal("0.761"), Decimal("0.749"))
    assert [(c.old, c.new) for c in by_type["fdl_ratio_changed"]] == [(Decimal("0.35"), Decimal("0.27"))]
    rate = next(c for c in by_type["thirty_day_rate_changed"] if c.key == "thirty_day_rate")
    assert (rate.old, rate.new) == (Decimal("2010.69"), Decimal("2038.13"))
    assert "CMS-1780-F" in rate.citation


def test_a_release_records_the_optional_columns_its_table_lacked(hhpps):
    from sqlmodel import select

    from kb.models import Release

    with Session(hhpps) as session:
        notes = {release.file_name: release.notes for release in session.exec(select(Release))}
    absent = "columns absent: imputedFloorWageIndex, reclassifiedWageIndex, ruralFloorWageIndex, size"
    assert notes["cbsa-wage-index-2025.csv"] == notes["cbsa-wage-index-2026.csv"] == absent
    assert notes["cbsa-wage-index-2024.csv"] is None and notes["hrg-2025.csv"] is None
