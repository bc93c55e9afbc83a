"""The sample-agency generator: determinism, realistic structure, the profile's shares."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.sample_agency import (
    FALLBACK_MINIMUM_VISITS,
    SAMPLE_BENEFICIARY_HASH_KEY,
    TELEHEALTH_REPORTING_FROM,
    AgencyProfile,
    all_hipps_codes,
    generate_claims,
    generate_sample,
    npi_check_digit,
    synthetic_npi,
)
from loaders.claim_record import Claim
from loaders.claims_csv import read_claims_csv, write_claims_csv
from loaders.x12_837i import read_837i, write_837i

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

VISIT_CODES = {
    "042": {"G0151", "G0157", "G0159"},
    "043": {"G0152", "G0158", "G0160"},
    "044": {"G0153", "G0161"},
    "055": {"G0299", "G0300", "G0162", "G0493", "G0494", "G0495", "G0496"},
    "056": {"G0155"},
    "057": {"G0156"},
}
SITES = {"Q5001", "Q5002", "Q5009"}
TELEHEALTH = {"G0320", "G0321", "G0322"}


def lupa_thresholds(year: int) -> dict[str, int]:
    with open(SHARED / "cms" / "hhpps" / f"hrg-{year}.csv", newline="") as stream:
        return {row["code"]: int(row["threshold"]) for row in csv.DictReader(stream)}


def profile(**changes) -> AgencyProfile:
    values = dict(agency_id=synthetic_npi(42), state="OH", cbsa="17140", fips_county="39061", periods=400)
    values.update(changes)
    return AgencyProfile(**values)


def visits(claim: Claim):
    return [line for line in claim.lines if line.hcpcs and line.revenue_code[:3] in VISIT_CODES and line.hcpcs not in SITES | TELEHEALTH]


def test_the_432_hipps_codes_are_cms_codes():
    assert len(all_hipps_codes()) == 432
    assert set(all_hipps_codes()) == set(lupa_thresholds(2023)) == set(lupa_thresholds(2020))


def test_npi_check_digit():
    assert npi_check_digit("123456789") == "3"  # CMS's example NPI 1234567893
    npi = synthetic_npi(42)
    assert len(npi) == 10 and npi.startswith("9") and npi_check_digit(npi[:9]) == npi[-1]


def test_same_seed_same_bytes_other_seed_other_claims():
    outputs = []
    for seed in (1, 1, 2):
        sample = generate_sample(profile(periods=50), year=2023, seed=seed)
        x12_text, csv_text = io.StringIO(), io.StringIO()
        write_837i(sample.claims, x12_text, member_ids=sample.member_ids)
        write_claims_csv(sample.claims, csv_text)
        outputs.append((x12_text.getvalue(), csv_text.getvalue()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] != outputs[2][0] and outputs[0][1] != outputs[2][1]


def test_claims_are_well_formed_home_health_periods():
    claims = generate_claims(profile(), year=2023, seed=3, lupa_thresholds=lupa_thresholds(2023))
    assert len(claims) == 400
    assert claims == sorted(claims, key=lambda claim: (claim.period_from, claim.claim_id))
    assert len({claim.claim_id for claim in claims}) == 400
    for claim in claims:
        assert claim.type_of_bill == "0329" and claim.agency_id == synthetic_npi(42) and claim.state == "OH"
        assert date(2023, 1, 1) <= claim.period_from <= date(2023, 12, 31)
        assert 4 <= (claim.period_through - claim.period_from).days + 1 <= 30
        assert (claim.cbsa, claim.fips_county) == ("17140", "39061")
        assert dict(claim.value_codes) == {"61": 17140, "85": 39061}
        assert [code for code, _ in claim.occurrence_codes][0] == "50"
        assert [line.line_number for line in claim.lines] == list(range(1, len(claim.lines) + 1))
        hipps_lines = [line for line in claim.lines if line.revenue_code == "0023"]
        assert [line.hipps for line in hipps_lines] == [claim.hipps] and hipps_lines[0] is claim.lines[0]
        claim_visits = visits(claim)
        assert claim_visits
        for line in claim_visits:
            assert line.hcpcs in VISIT_CODES[line.revenue_code[:3]]
            assert claim.period_from <= line.service_date <= claim.period_through
            assert line.units == line.units.to_integral_value() and line.units >= 1
        per_day = Counter(line.service_date for line in claim_visits)
        assert max(per_day.values()) <= 2
        (site,) = [line for line in claim.lines if line.hcpcs in SITES]
        first_day = min(line.service_date for line in claim_visits)
        first_visits = {line.revenue_code for line in claim_visits if line.service_date == first_day}
        assert (site.service_date, site.units, str(site.charge)) == (first_day, 1, "0.01")
        assert site.revenue_code in first_visits
        assert claim.diagnoses and all(code.isalnum() for code in claim.diagnoses)


def test_timing_and_admission_source_agree_with_the_hipps_code():
    claims = generate_claims(profile(), year=2023, seed=4)
    timings = Counter(claim.hipps[0] for claim in claims)
    assert set(timings) == set("1234")
    for claim in claims:
        early = claim.hipps[0] in "12"
        assert (claim.admission_date == claim.period_from) is early
        institutional_codes = [day for code, day in claim.occurrence_codes if code in ("61", "62")]
        if claim.hipps[0] in "24":
            (day,) = institutional_codes
            assert claim.period_from - timedelta(days=14) <= day < claim.period_from
        else:
            assert institutional_codes == []
        if claim.hipps[0] == "2":
            assert claim.admission_source in ("4", "5")
        if claim.hipps[0] == "1":
            assert claim.admission_source in ("1", "2")


def test_lupa_periods_follow_the_cms_thresholds():
    thresholds = lupa_thresholds(2023)
    claims = generate_claims(profile(lupa_share=0.2, periods=1000), year=2023, seed=5, lupa_thresholds=thresholds)
    lupa = [claim for claim in claims if len(visits(claim)) < thresholds[claim.hipps]]
    assert 0.15 < len(lupa) / len(claims) < 0.25


def test_lupa_fallback_without_thresholds():
    claims = generate_claims(profile(lupa_share=0.2, outlier_share=0.0), year=2023, seed=6)
    counts = Counter(len(visits(claim)) for claim in claims)
    assert set(counts) - {1} and min(set(counts) - {1}) >= FALLBACK_MINIMUM_VISITS
    assert 0.15 < counts[1] / len(claims) < 0.25


def test_outlier_periods_have_many_long_nursing_visits():
    claims = generate_claims(profile(outlier_share=0.1, lupa_share=0.0, partial_share=0.0), year=2023, seed=7)
    heavy = [claim for claim in claims if sum(line.units for line in visits(claim)) >= 200]
    assert 0.06 < len(heavy) / len(claims) < 0.14


def test_partial_periods_end_with_a_transfer():
    claims = generate_claims(profile(partial_share=0.2), year=2023, seed=8)
    short = [claim for claim in claims if (claim.period_through - claim.period_from).days < 29]
    assert short and all(claim.patient_status == "06" for claim in short)
    assert 0.1 < len(short) / len(claims) < 0.3


def test_telehealth_only_from_july_2023():
    before = generate_claims(profile(telehealth_share=1.0), year=2022, seed=9)
    assert not any(line.hcpcs in TELEHEALTH for claim in before for line in claim.lines)
    claims = generate_claims(profile(telehealth_share=1.0), year=2023, seed=9)
    telehealth = [(claim, line) for claim in claims for line in claim.lines if line.hcpcs in TELEHEALTH]
    assert {line.hcpcs for _, line in telehealth} == TELEHEALTH
    for claim, line in telehealth:
        assert line.service_date >= TELEHEALTH_REPORTING_FROM
        assert claim.period_from <= line.service_date <= claim.period_through
        if line.hcpcs != "G0322":
            assert line.units == 1


def test_review_choice_option_one_carries_tracking_numbers():
    claims = generate_claims(profile(review_choice_option=1), year=2023, seed=10)
    numbered = [claim.review_tracking_number for claim in claims if claim.review_tracking_number]
    assert 0.9 < len(numbered) / len(claims) < 1.0 and len(set(numbered)) == len(numbered)
    assert not any(claim.review_tracking_number for claim in generate_claims(profile(), year=2023, seed=10))


def test_case_mix_is_honoured():
    only_early = generate_claims(profile(case_mix=(("2EC31", 1.0),), periods=30), year=2024, seed=1)
    assert {claim.hipps for claim in only_early} == {"2EC31"}
    assert all(claim.admission_date == claim.period_from for claim in only_early)
    only_late = generate_claims(profile(case_mix=(("3AA11", 1.0), ("4HB21", 3.0)), periods=200), year=2024, seed=1)
    shares = Counter(claim.hipps for claim in only_late)
    assert set(shares) == {"3AA11", "4HB21"} and shares["4HB21"] > 2 * shares["3AA11"]
    assert all(claim.admission_date < claim.period_from for claim in only_late)


def test_quality_flag_and_hash_key():
    sample = generate_sample(profile(periods=5, quality_data_submitted=False), year=2023, seed=1, beneficiary_hash_key=b"other")
    assert all(not claim.quality_data_submitted for claim in sample.claims)
    assert all(member.startswith("SYN") for member in sample.member_ids.values())
    stream = io.StringIO()
    write_837i(sample.claims, stream, member_ids=sample.member_ids)
    back = list(read_837i(io.StringIO(stream.getvalue()), beneficiary_hash_key=b"other", quality_data_submitted=False))
    assert back == list(sample.claims)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"agency_id": "123"}, "ten-digit NPI"),
        ({"state": "Ohio"}, "two-letter"),
        ({"cbsa": "1714"}, "cbsa"),
        ({"periods": -1}, "negative"),
        ({"lupa_share": 1.5}, "lupa_share"),
        ({"lupa_share": 0.6, "outlier_share": 0.6}, "more than 1"),
        ({"review_choice_option": 1, "state": "CA"}, "not a Review Choice state"),
        ({"case_mix": (("1FC12", 1.0),)}, "not a PDGM HIPPS code"),
    ],
)
def test_profile_refuses_nonsense(changes, message):
    with pytest.raises(ValueError, match=message):
        profile(**changes)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10**6),
    year=st.integers(min_value=2020, max_value=2025),
    periods=st.integers(min_value=0, max_value=25),
    shares=st.tuples(*(st.floats(min_value=0, max_value=0.5) for _ in range(4))),
)
def test_any_generated_agency_round_trips(seed, year, periods, shares):
    lupa, outlier, partial, telehealth = shares
    sample = generate_sample(
        profile(periods=periods, lupa_share=lupa, outlier_share=outlier, partial_share=partial, telehealth_share=telehealth),
        year=year,
        seed=seed,
    )
    assert len(sample.claims) == periods
    x12_text, csv_text = io.StringIO(), io.StringIO()
    write_837i(sample.claims, x12_text, member_ids=sample.member_ids)
    write_claims_csv(sample.claims, csv_text)
    assert list(read_837i(io.StringIO(x12_text.getvalue()), beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)) == list(sample.claims)
    assert list(read_claims_csv(io.StringIO(csv_text.getvalue()))) == list(sample.claims)
