"""The PDGM period pricer, the agency outlier cap and the attribution of a change."""

from __future__ import annotations

import csv
import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.pricing import (
    ATTRIBUTION_ORDER,
    ClaimLine,
    PeriodClaim,
    PricingError,
    PricingParameters,
    apply_outlier_cap,
    attribute_change,
    price_period,
    wage_adjust,
)

HHPPS = Path(__file__).resolve().parents[1].parent / "shared" / "cms" / "hhpps"

# The yearly constants of DOMAIN.md section 3 (the rule text; not in CMS's tables).
RULES = {
    2021: dict(rate="1901.12", rate_nq="1863.84", labor="0.761", fdl="0.56", rule="CMS-1730-F",
               ot=None, rural={"A": "1.000", "B": "1.020", "C": "1.010"}, grace=5),
    2022: dict(rate="2031.64", rate_nq="1992.04", labor="0.761", fdl="0.40", rule="CMS-1747-F",
               ot="1.6700", rural={"A": "1.000", "B": "1.010", "C": "1.000"}, grace=5),
    2023: dict(rate="2010.69", rate_nq="1972.02", labor="0.761", fdl="0.35", rule="CMS-1766-F",
               ot="1.6700", rural=None, grace=5),
    2024: dict(rate="2038.13", rate_nq="1998.56", labor="0.749", fdl="0.27", rule="CMS-1780-F",
               ot="1.6700", rural=None, grace=5),
}
SN, PT, OT, SLP, MSS, AIDE = "0550", "0420", "0430", "0440", "0560", "0570"
HCPCS = {SN: "G0299", PT: "G0151", OT: "G0152", SLP: "G0153", MSS: "G0155", AIDE: "G0156"}
FROM = date(2024, 1, 1)


def read_rev(year: int) -> dict[str, dict[str, str]]:
    with open(HHPPS / f"rev-{year}.csv", newline="") as handle:
        return {row["code"]: row for row in csv.DictReader(handle)}


def read_hrg(year: int, hipps: str) -> tuple[Decimal, int]:
    with open(HHPPS / f"hrg-{year}.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["code"] == hipps:
                return Decimal(row["weight"]), int(row["threshold"])
    raise AssertionError(f"{hipps} not in hrg-{year}.csv")


def params(year: int, hipps: str = "1FC11", *, quality: bool = True) -> PricingParameters:
    rule = RULES[year]
    rev = read_rev(year)
    weight, threshold = read_hrg(year, hipps)
    visit_column = "nonruralDollarRate" if quality else "nonruralUnsubmittedDollarRate"
    unit_column = "nonruralUnitDollarRate" if quality else "nonruralUnsubmittedUnitDollarRate"
    add_on = {SN: Decimal("1.8451"), PT: Decimal("1.6700"), SLP: Decimal("1.6266")}
    if rule["ot"]:
        add_on[OT] = Decimal(rule["ot"])
    rural = rule["rural"]
    return PricingParameters(
        case_mix_weight=weight,
        lupa_threshold=threshold,
        thirty_day_rate=Decimal(rule["rate"]),
        thirty_day_rate_without_quality_data=Decimal(rule["rate_nq"]),
        labor_share=Decimal(rule["labor"]),
        fdl_ratio=Decimal(rule["fdl"]),
        loss_sharing_ratio=Decimal("0.80"),
        per_visit_rates={code: Decimal(row[visit_column]) for code, row in rev.items()},
        per_unit_rates={code: Decimal(row[unit_column]) for code, row in rev.items()},
        lupa_add_on_factors=add_on,
        rural_add_on_factors={k: Decimal(v) for k, v in rural.items()} if rural else None,
        late_noa_grace_days=rule["grace"],
        outlier_cap_ratio=Decimal("0.10"),
        citations={
            "thirty_day_rate": f"{rule['rule']} 30-day rate",
            "case_mix_weight": f"hrg-{year}.csv {hipps}",
            "per_visit_rates": f"rev-{year}.csv",
            "outlier_cap_ratio": "SSA 1895(b)(5)(B)",
        },
    )


def visits(*specs: tuple[str, int, int]) -> tuple[ClaimLine, ...]:
    """(revenue code, day of the period starting at 0, units) -> one visit line each."""
    return tuple(
        ClaimLine(code, HCPCS[code], units, FROM + timedelta(days=day))
        for code, day, units in specs
    )


def claim(lines: tuple[ClaimLine, ...], *, from_date: date = FROM, **changes) -> PeriodClaim:
    """A final period claim with a HIPPS line, a site-of-service line and ``lines``.

    Not the first period of its admission unless ``admission_date`` says so.
    """
    base = PeriodClaim(
        claim_id="C1",
        type_of_bill="0329",
        from_date=from_date,
        through_date=from_date + timedelta(days=29),
        admission_date=from_date - timedelta(days=30),
        hipps="1FC11",
        wage_index=Decimal("1.0000"),
        rural_add_on_category=None,
        quality_data_submitted=True,
        condition_codes=(),
        patient_status="01",
        lines=(
            ClaimLine("0023", "1FC11", 0, from_date),
            ClaimLine("0550", "Q5001", 0, from_date),
        )
        + lines,
    )
    return dataclasses.replace(base, **changes)


FIVE_SN_VISITS = visits(*[(SN, day, 4) for day in (0, 3, 7, 10, 14)])


# ---------------------------------------------------------------------------------------------
# Period payment


def test_1fc11_pays_2213_57_in_cy2023_and_2227_47_in_cy2024():
    result_2023 = price_period(claim(FIVE_SN_VISITS, from_date=date(2023, 1, 1)), params(2023))
    result_2024 = price_period(claim(FIVE_SN_VISITS), params(2024))
    # 1.1009 x 2010.69 = 2213.5686 -> 2213.57 ; 1.0929 x 2038.13 = 2227.4723 -> 2227.47
    assert result_2023.total == Decimal("2213.57")
    assert result_2024.total == Decimal("2227.47")
    assert not result_2024.lupa
    assert result_2024.period_payment == Decimal("2227.47")
    assert result_2024.outlier_amount == 0


def test_wage_adjustment_with_a_non_1_wage_index_and_labor_share_0_749():
    result = price_period(claim(FIVE_SN_VISITS, wage_index=Decimal("0.8500")), params(2024))
    # case-mix amount: rounded(1.0929 x 2038.13 = 2227.472277) = 2227.47
    # labor:     rounded(0.8500 x 0.749 x 2227.47 = 0.63665 x 2227.47 = 1418.1187755) = 1418.12
    # non-labor: rounded(0.251 x 2227.47 = 559.09497) = 559.09
    # period payment: 1418.12 + 559.09 = 1977.21
    assert result.period_payment == Decimal("1977.21")
    assert result.total == Decimal("1977.21")
    # the formula itself, on a round amount: rounded(1.2 x 0.749 x 1000 = 898.8) + rounded(251.0)
    assert wage_adjust(Decimal("1000.00"), Decimal("1.2"), Decimal("0.749")) == Decimal("1149.80")


def test_quality_data_not_submitted_uses_the_reduced_rate():
    result = price_period(
        claim(FIVE_SN_VISITS, quality_data_submitted=False), params(2024, quality=False)
    )
    # rounded(1.0929 x 1998.56 = 2184.226224) = 2184.23, wage index 1.0:
    #   rounded(0.749 x 2184.23 = 1635.98827) = 1635.99
    # + rounded(0.251 x 2184.23 = 548.24173) = 548.24   -> 2184.23
    assert result.total == Decimal("2184.23")


def test_rural_add_on_multiplies_the_30_day_rate():
    cy2021 = params(2021)
    result = price_period(
        claim(FIVE_SN_VISITS, from_date=date(2021, 1, 1), rural_add_on_category="B"), cy2021
    )
    # 30-day rate rounded(1901.12 x 1.020 = 1939.1424) = 1939.14
    # rounded(1.1798 x 1939.14 = 2287.797372) = 2287.80 ; wage index 1.0 keeps it
    assert result.total == Decimal("2287.80")
    assert any(step.name == "rural add-on factor" for step in result.trace)


def test_partial_period_pays_days_over_30():
    status_06 = claim(FIVE_SN_VISITS, patient_status="06")
    result = price_period(status_06, params(2024))
    # first visit day 0, last day 14: 15 days -> rounded(15/30) = 0.50
    # rounded(2227.47 x 0.50 = 1113.735) = 1113.74
    assert result.partial_period_days == 15
    assert result.period_payment == Decimal("1113.74")
    # threshold follows the partial payment: 1113.74 + 550.30
    assert result.outlier_threshold == Decimal("1664.04")

    seventeen_days = visits(*[(SN, day, 4) for day in (0, 3, 7, 10, 16)])
    result = price_period(claim(seventeen_days, readmitted_in_period=True), params(2024))
    # 17/30 = 0.5666.. -> 0.57 ; rounded(2227.47 x 0.57 = 1269.6579) = 1269.66
    assert result.period_payment == Decimal("1269.66")


# ---------------------------------------------------------------------------------------------
# LUPA


def test_lupa_per_visit_payments_at_the_published_rates():
    rev = read_rev(2024)
    result = price_period(claim(visits((SN, 2, 4), (SN, 5, 4), (PT, 3, 4))), params(2024))
    assert result.lupa
    by_code = {line.revenue_code: line for line in result.disciplines}
    assert by_code[SN].lupa_payment == 2 * Decimal(rev[SN]["nonruralDollarRate"])
    assert by_code[PT].lupa_payment == Decimal(rev[PT]["nonruralDollarRate"])
    assert result.lupa_add_on == 0  # not the first period of the admission
    assert result.total == 2 * Decimal("168.37") + Decimal("184.03")


def test_lupa_without_quality_data_uses_the_unsubmitted_rates():
    rev = read_rev(2024)
    result = price_period(
        claim(visits((AIDE, 1, 4), (MSS, 2, 4)), quality_data_submitted=False),
        params(2024, quality=False),
    )
    assert result.total == Decimal(rev[AIDE]["nonruralUnsubmittedDollarRate"]) + Decimal(
        rev[MSS]["nonruralUnsubmittedDollarRate"]
    )


def test_lupa_boundary_threshold_minus_one_is_lupa_threshold_is_not():
    cy2024 = params(2024)  # 1FC11 threshold 4
    assert cy2024.lupa_threshold == 4
    three = price_period(claim(visits(*[(SN, d, 4) for d in (0, 5, 9)])), cy2024)
    four = price_period(claim(visits(*[(SN, d, 4) for d in (0, 5, 9, 13)])), cy2024)
    assert three.lupa and three.total == 3 * Decimal("168.37")
    assert not four.lupa and four.total == Decimal("2227.47")


def test_site_of_service_and_telehealth_lines_are_not_visits():
    telehealth = (
        ClaimLine("0550", "G0320", 1, FROM + timedelta(days=1)),
        ClaimLine("0550", "G0322", 10, FROM + timedelta(days=2)),
    )
    three_visits = visits(*[(SN, d, 4) for d in (0, 5, 9)])
    result = price_period(claim(three_visits + telehealth), params(2024))
    assert result.total_visits == 3 and result.lupa


def test_lupa_add_on_only_in_the_first_period_of_an_admission():
    one_sn_visit = visits((SN, 0, 4))
    first = price_period(claim(one_sn_visit, admission_date=FROM), params(2024))
    # add-on: rounded(168.37 x 0.8451 = 142.289487) = 142.29, wage index 1.0 keeps it
    assert first.lupa_add_on == Decimal("142.29")
    assert first.lupa_add_on_revenue_code == SN
    assert first.total == Decimal("168.37") + Decimal("142.29")

    later = price_period(claim(one_sn_visit), params(2024))
    assert later.lupa_add_on == 0 and later.total == Decimal("168.37")


def test_lupa_add_on_is_zeroed_by_each_input_that_zeroes_it_in_cms_pricer():
    one_sn_visit = visits((SN, 0, 4))
    # rev-2024.csv SN per-visit rate 168.37; add-on rounded(168.37 x (1.8451 - 1) = 142.289487) = 142.29
    transfer = price_period(claim(one_sn_visit, admission_date=FROM, lupa_source_admission="B"), params(2024))
    recoded = price_period(claim(one_sn_visit, admission_date=FROM, adjustment_indicator="2"), params(2024))
    for result in (transfer, recoded):
        assert result.lupa_add_on == 0
        assert result.total == Decimal("168.37")
    assert "LUPA source admission 'B'" in next(s.formula for s in transfer.trace if s.name == "LUPA add-on")
    assert "adjustment indicator '2'" in next(s.formula for s in recoded.trace if s.name == "LUPA add-on")
    assert "H-HHA-LUPA-SRC-ADM" in next(s.citation for s in transfer.trace if s.name == "LUPA add-on")


def test_an_ordinary_replacement_claim_keeps_the_lupa_add_on():
    one_sn_visit = visits((SN, 0, 4))
    # type of bill 0327 (frequency 7), other inputs as CMS's claims system sets them: '1' and '0'
    replacement = price_period(claim(one_sn_visit, admission_date=FROM, type_of_bill="0327"), params(2024))
    assert replacement.lupa_add_on == Decimal("142.29")
    assert replacement.total == Decimal("168.37") + Decimal("142.29")
    # the pricer reads its inputs, not the condition codes: a code 47 alone (not mapped) changes nothing
    assert price_period(claim(one_sn_visit, admission_date=FROM, condition_codes=("47",)),
                        params(2024)).lupa_add_on == Decimal("142.29")


def test_lupa_add_on_goes_to_the_earliest_discipline():
    first_period = dict(admission_date=FROM)
    pt_first = price_period(claim(visits((SN, 2, 4), (PT, 1, 4)), **first_period), params(2024))
    assert pt_first.lupa_add_on_revenue_code == PT
    # rounded(184.03 x 0.67 = 123.3001) = 123.30
    assert pt_first.lupa_add_on == Decimal("123.30")
    aide_first = price_period(
        claim(visits((AIDE, 0, 4), (SLP, 3, 4)), **first_period), params(2024)
    )
    assert aide_first.lupa_add_on_revenue_code == SLP  # the aide gets no add-on


@pytest.mark.parametrize(
    ("same_day", "expected"),
    [((SN, PT, OT, SLP), SN), ((SLP, OT, PT), PT), ((SLP, OT), OT)],
)
def test_lupa_add_on_ties_go_sn_then_pt_then_ot_then_slp(same_day, expected):
    lines = visits(*[(code, 1, 4) for code in same_day])
    result = price_period(claim(lines, admission_date=FROM), params(2024, "2HB31"))
    assert result.lupa and result.lupa_add_on_revenue_code == expected


def test_ot_add_on_only_from_cy2022():
    ot_only = visits((OT, 0, 4))
    cy2021 = price_period(
        claim(ot_only, from_date=date(2021, 1, 1), admission_date=date(2021, 1, 1)), params(2021)
    )
    cy2022 = price_period(
        claim(ot_only, from_date=date(2022, 1, 1), admission_date=date(2022, 1, 1)), params(2022)
    )
    assert cy2021.lupa_add_on == 0 and cy2021.total == Decimal("167.98")
    # CY2022 OT 172.67: rounded(172.67 x 0.67 = 115.6889) = 115.69
    assert cy2022.lupa_add_on_revenue_code == OT
    assert cy2022.lupa_add_on == Decimal("115.69")
    assert cy2022.total == Decimal("172.67") + Decimal("115.69")


# ---------------------------------------------------------------------------------------------
# Outlier

SIXTY_SN_UNITS = visits(*[(SN, day, 4) for day in range(0, 30, 2)])  # 15 visits x 4 units


def test_outlier_paid_when_imputed_cost_exceeds_the_threshold():
    result = price_period(claim(SIXTY_SN_UNITS), params(2024))
    # imputed cost: rounded(60 x 56.37) = 3382.20 (wage index 1.0)
    # threshold: 2227.47 + rounded(2038.13 x 0.27 = 550.2951) = 2227.47 + 550.30 = 2777.77
    # outlier: rounded(0.80 x (3382.20 - 2777.77) = 483.544) = 483.54
    assert result.outlier_imputed_cost == Decimal("3382.20")
    assert result.outlier_threshold == Decimal("2777.77")
    assert result.outlier_amount == Decimal("483.54")
    assert result.total == Decimal("2711.01")


def test_no_outlier_below_the_threshold():
    result = price_period(claim(FIVE_SN_VISITS), params(2024))
    assert result.outlier_imputed_cost == Decimal("1127.40")  # 20 x 56.37
    assert result.outlier_amount == 0


def test_units_are_capped_at_32_a_day_across_disciplines():
    long_days = visits((SN, 0, 60), (SN, 1, 60), (SN, 2, 4), (SN, 3, 4))
    result = price_period(claim(long_days), params(2024))
    sn = next(line for line in result.disciplines if line.revenue_code == SN)
    assert sn.units == 32 + 32 + 4 + 4
    # 72 units, not 128: imputed cost rounded(72 x 56.37) = 4058.64 > threshold 2777.77
    # outlier rounded(0.80 x (4058.64 - 2777.77) = 1024.696) = 1024.70
    assert result.outlier_amount == Decimal("1024.70")

    shared_day = visits((SN, 0, 20), (AIDE, 0, 20), (SN, 3, 4), (SN, 6, 4))
    result = price_period(claim(shared_day), params(2024))
    units = {line.revenue_code: line.units for line in result.disciplines}
    assert units == {SN: 28, AIDE: 12}  # the cheaper aide units give way


# ---------------------------------------------------------------------------------------------
# Late NOA and VBP


def test_late_noa_reduces_period_payment_and_outlier_by_days_over_30():
    on_time = price_period(claim(FIVE_SN_VISITS, days_until_noa_received=5), params(2024))
    assert on_time.late_noa_reduction == 0 and on_time.total == Decimal("2227.47")

    ten_days = price_period(claim(FIVE_SN_VISITS, days_until_noa_received=10), params(2024))
    # rounded(2227.47 x 10 / 30 = 742.49) -> 2227.47 - 742.49 = 1484.98
    assert ten_days.late_noa_reduction == Decimal("742.49")
    assert ten_days.total == Decimal("1484.98")

    with_outlier = price_period(claim(SIXTY_SN_UNITS, days_until_noa_received=10), params(2024))
    # outlier 483.54: rounded(483.54 x 10 / 30 = 161.18) ; 742.49 + 161.18 = 903.67
    assert with_outlier.late_noa_reduction == Decimal("903.67")
    assert with_outlier.total == Decimal("2711.01") - Decimal("903.67")

    forty_days = price_period(claim(FIVE_SN_VISITS, days_until_noa_received=40), params(2024))
    assert forty_days.total == 0  # at most 30/30


def test_late_noa_does_not_apply_before_the_rule_or_to_lupa():
    cy2020_like = dataclasses.replace(params(2024), late_noa_grace_days=None)
    assert price_period(claim(FIVE_SN_VISITS, days_until_noa_received=20), cy2020_like).total == (
        Decimal("2227.47")
    )
    lupa = price_period(claim(visits((SN, 0, 4)), days_until_noa_received=20), params(2024))
    assert lupa.late_noa_reduction == 0 and lupa.total == Decimal("168.37")


def test_vbp_factor_multiplies_each_payment():
    result = price_period(
        claim(SIXTY_SN_UNITS, vbp_adjustment_factor=Decimal("1.0125")), params(2024)
    )
    # period:  rounded(2227.47 x 1.0125 = 2255.313375) = 2255.31
    # outlier: rounded(483.54 x 1.0125 = 489.58425) = 489.58
    assert result.total == Decimal("2255.31") + Decimal("489.58")
    assert result.vbp_adjustment == result.total - Decimal("2711.01")


def test_trace_carries_the_steps_and_their_citations():
    result = price_period(claim(FIVE_SN_VISITS), params(2024))
    steps = {step.name: step for step in result.trace}
    assert "CMS-1780-F 30-day rate" in steps["period payment"].citation
    assert "hrg-2024.csv 1FC11" in steps["period payment"].citation
    assert "1.0929 x 2038.13" in steps["period payment"].formula
    assert steps["total"].amount == result.total


# ---------------------------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (dict(hipps=None), "no HIPPS code"),
        (dict(hipps="  "), "no HIPPS code"),
        (dict(lines=()), "no revenue lines"),
        (dict(admission_date=FROM + timedelta(days=1)), "admission date 2024-01-02 is after"),
        (dict(type_of_bill="032A"), "notice of admission"),
        (dict(type_of_bill="0331"), "is not 032x"),
    ],
)
def test_rejections_name_the_claim_and_the_reason(changes, reason):
    lines = changes.pop("lines", FIVE_SN_VISITS)
    with pytest.raises(PricingError, match=reason) as caught:
        price_period(claim(lines, **changes), params(2024))
    assert caught.value.claim_id == "C1"
    assert str(caught.value).startswith("claim C1: ")


def test_a_missing_rate_is_a_pricing_error():
    no_sn_rate = dataclasses.replace(params(2024), per_visit_rates={PT: Decimal("184.03")})
    with pytest.raises(PricingError, match="no per-visit rate for revenue code 0550"):
        price_period(claim(visits((SN, 0, 4))), no_sn_rate)


# ---------------------------------------------------------------------------------------------
# The agency outlier cap


def test_outlier_cap_zeroes_an_outlier_beyond_10_percent_of_payments():
    with_outlier = price_period(claim(SIXTY_SN_UNITS, claim_id="B"), params(2024))
    # pool rounded(0.10 x 10000.00) = 1000.00 ; room 1000.00 - 900.00 = 100.00 < 483.54
    outcome = apply_outlier_cap(
        [with_outlier],
        year_to_date_payments=Decimal("10000.00"),
        year_to_date_outliers=Decimal("900.00"),
    )
    (capped,) = outcome.results
    assert capped.outlier_amount == 0 and capped.outlier_capped
    assert capped.total == Decimal("2227.47")
    assert outcome.removed == Decimal("483.54")
    assert outcome.capped_claim_ids == ("B",)
    assert [step.citation for step in capped.trace if step.name == "outlier cap"] == ["SSA 1895(b)(5)(B)"]


def test_outlier_cap_keeps_an_outlier_that_fits_exactly():
    with_outlier = price_period(claim(SIXTY_SN_UNITS), params(2024))
    # pool rounded(0.10 x 14835.40) = 1483.54 ; room 1483.54 - 1000.00 = 483.54 = the outlier
    outcome = apply_outlier_cap(
        [with_outlier],
        year_to_date_payments=Decimal("14835.40"),
        year_to_date_outliers=Decimal("1000.00"),
    )
    assert outcome.results == (with_outlier,) and outcome.removed == 0


def test_outlier_cap_runs_in_claim_order_from_zero():
    first = price_period(claim(SIXTY_SN_UNITS, claim_id="A"), params(2024))
    second = dataclasses.replace(first, claim_id="B")
    outcome = apply_outlier_cap([first, second])
    # A: no outliers so far, no cap (as in CMS's pricer) -> payments 2711.01, outliers 483.54
    # B: pool rounded(0.10 x 2711.01) = 271.10 ; 271.10 - 483.54 < 483.54 -> capped
    assert [r.outlier_amount for r in outcome.results] == [Decimal("483.54"), Decimal("0")]
    assert outcome.capped_claim_ids == ("B",)
    assert outcome.removed == Decimal("483.54")


def test_outlier_cap_redoes_late_noa_and_vbp():
    late = price_period(
        claim(SIXTY_SN_UNITS, days_until_noa_received=10, vbp_adjustment_factor=Decimal("0.99")),
        params(2024),
    )
    outcome = apply_outlier_cap(
        [late], year_to_date_payments=Decimal("1000"), year_to_date_outliers=Decimal("500")
    )
    (capped,) = outcome.results
    # period 2227.47 - 742.49 = 1484.98 ; rounded(1484.98 x 0.99 = 1470.1302) = 1470.13
    assert capped.total == Decimal("1470.13")
    assert outcome.removed == late.total - Decimal("1470.13")


# ---------------------------------------------------------------------------------------------
# Attribution


def test_attribution_2023_to_2024_for_1fc11():
    base = claim(FIVE_SN_VISITS)
    components = dict(attribute_change(base, params(2023), params(2024)))
    assert sum(components.values()) == Decimal("2227.47") - Decimal("2213.57")
    # weight first: rounded(1.0929 x 2010.69 = 2197.483101) = 2197.48 - 2213.57 = -16.09
    assert components["case-mix weight"] == Decimal("-16.09")
    # then the rate: 2227.47 - 2197.48 = 29.99 (wage index 1.0, so labor share moves nothing)
    assert components["30-day rate"] == Decimal("29.99")
    assert components["labor share"] == 0
    assert [label for label, _ in attribute_change(base, params(2023), params(2024))] == [
        label for label, _ in ATTRIBUTION_ORDER
    ]


money = st.decimals(min_value=Decimal("10"), max_value=Decimal("400"), places=2)
ratio = st.decimals(min_value=Decimal("0.10"), max_value=Decimal("0.95"), places=3)
weight = st.decimals(min_value=Decimal("0.4"), max_value=Decimal("2.0"), places=4)
base_rate = st.decimals(min_value=Decimal("1500"), max_value=Decimal("2500"), places=2)
wage_index = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("2"), places=4)
factor = st.decimals(min_value=Decimal("1.0000"), max_value=Decimal("2.0000"), places=4)


@st.composite
def changed_parameters(draw):
    before = params(2023)
    rates = {code: draw(money) for code in before.per_visit_rates}
    unit_rates = {code: draw(money) / 3 for code in before.per_unit_rates}
    rural = {"A": draw(factor)} if draw(st.booleans()) else None
    after = dataclasses.replace(
        before,
        case_mix_weight=draw(weight),
        lupa_threshold=draw(st.integers(min_value=2, max_value=6)),
        thirty_day_rate=draw(base_rate),
        labor_share=draw(ratio),
        wage_index=draw(st.none() | wage_index),
        per_visit_rates=draw(st.just(before.per_visit_rates) | st.just(rates)),
        per_unit_rates=draw(st.just(before.per_unit_rates) | st.just(unit_rates)),
        fdl_ratio=draw(ratio),
        loss_sharing_ratio=draw(ratio),
        lupa_add_on_factors={SN: draw(factor), PT: draw(factor)},
        rural_add_on_factors=rural,
        late_noa_grace_days=draw(st.none() | st.integers(min_value=0, max_value=10)),
    )
    return before, after


claims = st.sampled_from(
    [
        claim(FIVE_SN_VISITS),
        claim(SIXTY_SN_UNITS, days_until_noa_received=8, rural_add_on_category="A"),
        claim(visits((PT, 0, 4), (SN, 1, 5), (AIDE, 2, 8)), admission_date=FROM),
        claim(SIXTY_SN_UNITS, patient_status="06", wage_index=Decimal("1.3172")),
    ]
)


@settings(max_examples=60, deadline=None)
@given(claims, changed_parameters(), st.booleans())
def test_attribution_components_sum_exactly_to_the_difference(period, change, reverse):
    before, after = reversed(change) if reverse else change
    components = attribute_change(period, before, after)
    difference = price_period(period, after).total - price_period(period, before).total
    assert sum(amount for _, amount in components) == difference
    assert all(label != "other" for label, _ in components)


def test_attribution_of_no_change_is_all_zero():
    components = attribute_change(claim(SIXTY_SN_UNITS), params(2024), params(2024))
    assert all(amount == 0 for _, amount in components)
