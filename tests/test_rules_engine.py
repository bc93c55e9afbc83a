"""Checking claims against the shipped rules: each rule on both sides of its effective date, faults
injected into a generated agency's claims, the knowledge base as the rules' knowledge, reports."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

import lxml.html
import pytest
from sqlmodel import Session

from kb import ingest
from kb.claims import store_claims
from kb.database import transaction
from kb.rules import (
    Checker,
    DatabaseKnowledge,
    Finding,
    MemoryKnowledge,
    check_agency,
    check_claims,
    check_files,
    exit_status,
    findings_at_or_above,
    read_claim_files,
)
from kb.sample_agency import AgencyProfile, generate_sample, synthetic_npi
from kb.store import FileIdentity
from loaders.claim_record import Claim, ClaimLine
from loaders.claims_csv import write_claims_csv
from loaders.errors import LoadError
from loaders.hhpps import read_hhpps_folder, read_hhpps_table
from loaders.x12_837i import write_837i
from regulations.rules import load_rules
from reports import findings as findings_report
from tests.conftest import HCPCS_DIR, HHPPS_DIR

RULES = load_rules()

# Home health codes: (added, first day no longer in effect). The dates of the codes that matter to
# the tests are the real ones (DOMAIN.md; the 2019 HCPCS file for G0154); the others are early enough.
_SINCE_1999 = (date(1999, 7, 1), None)
HCPCS_SPANS = {
    **{code: [_SINCE_1999] for code in (
        "G0151", "G0152", "G0153", "G0155", "G0156", "G0157", "G0158", "G0159", "G0160", "G0161", "G0162",
        "Q5001", "Q5002", "Q5009",
    )},
    "G0154": [(date(1999, 7, 1), date(2016, 3, 1))],
    "G0299": [(date(2015, 11, 2), None)],
    "G0300": [(date(2015, 11, 2), None)],
    **{code: [(date(2017, 1, 1), None)] for code in ("G0493", "G0494", "G0495", "G0496")},
    **{code: [(date(2023, 1, 1), None)] for code in ("G0320", "G0321", "G0322")},
}


def small_knowledge() -> MemoryKnowledge:
    return MemoryKnowledge(
        hcpcs=HCPCS_SPANS,
        case_mix={date(2020, 1, 1): {"1FC11": 4, "3AA11": 2}, date(2023, 1, 1): {"1FC11": 5, "3AA11": 2}},
        wage_index={date(2020, 1, 1): {"35614", "99914"}},
    )


@lru_cache(maxsize=None)
def real_tables():
    return tuple(read_hhpps_folder(HHPPS_DIR))


def real_knowledge() -> MemoryKnowledge:
    return MemoryKnowledge.from_hhpps_tables(real_tables(), hcpcs=HCPCS_SPANS)


def lupa_thresholds(year: int) -> dict[str, int]:
    return {row.hipps: row.lupa_threshold for t in real_tables() if t.kind == "hrg" and t.year == year for row in t.rows}


# --- a hand-made clean period, and faults -------------------------------------------------------


def line(number: int, revenue_code: str, hcpcs: str | None, day: date, units: str = "4", hipps: str | None = None) -> ClaimLine:
    return ClaimLine(number, revenue_code, hcpcs, hipps, (), Decimal(units), Decimal("100.00"), day)


def clean_claim(start: date) -> Claim:
    """A final period claim starting ``start``: HIPPS 1FC11, five SN and PT visits, a site line."""
    lines = [
        line(1, "0023", None, start, "0", hipps="1FC11"),
        line(2, "0421", "G0151", start + timedelta(days=1)),
        line(3, "0421", "G0157", start + timedelta(days=8)),
        line(4, "0551", "G0299", start),
        line(5, "0551", "G0299", start + timedelta(days=5)),
        line(6, "0551", "G0300", start + timedelta(days=12)),
        line(7, "0551", "Q5001", start, "1"),
    ]
    return Claim(
        agency_id="9000000015", claim_id=f"C{start:%Y%m%d}", type_of_bill="0329", period_from=start,
        period_through=start + timedelta(days=29), admission_date=start, admission_source="1",
        patient_status="01", hipps="1FC11", cbsa="35614", fips_county="36061", quality_data_submitted=True,
        review_tracking_number="IL2400001", state="IL", diagnoses=("I110",), condition_codes=(),
        occurrence_codes=(("50", start),), value_codes=(("61", Decimal("35614")), ("85", Decimal("36061"))),
        beneficiary_key="0" * 64, source_segment=0, lines=tuple(lines),
    )


def with_lines(claim: Claim, lines) -> Claim:
    return dataclasses.replace(claim, lines=tuple(dataclasses.replace(l, line_number=n) for n, l in enumerate(lines, 1)))


def add_line(claim: Claim, revenue_code: str, hcpcs: str, units: str = "1", offset: int = 3) -> Claim:
    return with_lines(claim, [*claim.lines, line(0, revenue_code, hcpcs, claim.period_from + timedelta(days=offset), units)])


def replace_line(claim: Claim, number: int, **changes) -> Claim:
    return with_lines(claim, [dataclasses.replace(l, **changes) if l.line_number == number else l for l in claim.lines])


def drop_lines(claim: Claim, predicate) -> Claim:
    return with_lines(claim, [l for l in claim.lines if not predicate(l)])


def drop_value_code(claim: Claim, code: str) -> Claim:
    kept = tuple(item for item in claim.value_codes if item[0] != code)
    return dataclasses.replace(
        claim, value_codes=kept,
        cbsa=None if code == "61" else claim.cbsa, fips_county=None if code == "85" else claim.fips_county,
    )


def first_of(month: str) -> date:
    return date.fromisoformat(month + "-01") if len(month) == 7 else date.fromisoformat(month)


# rule id -> (fault, a period start where the rule is in force, one where it is not)
CASES = {
    "hipps-line": (lambda c: drop_lines(c, lambda l: l.revenue_code == "0023"), "2020-01-01", "2019-12-01"),
    "hcpcs-active-on-line-date": (lambda c: add_line(c, "0551", "G0320"), "2022-06-01", "2003-09-01"),
    "discipline-codes": (lambda c: replace_line(c, 5, hcpcs="G0151"), "2017-01-01", "2016-12-01"),
    "visit-line-date": (lambda c: replace_line(c, 3, service_date=c.period_through + timedelta(days=1)),
                        "2020-01-01", "2019-12-01"),
    "visit-units": (lambda c: replace_line(c, 4, units=Decimal("2.5")), "2020-01-01", "2019-12-01"),
    "telehealth-period-start": (lambda c: add_line(c, "0551", "G0320", offset=20), "2022-12-15", "2023-01-01"),
    "telehealth-units": (lambda c: add_line(c, "0551", "G0321", units="2"), "2023-01-01", "2022-12-01"),
    "telehealth-monitoring-line": (lambda c: add_line(add_line(c, "0551", "G0322", "5"), "0421", "G0322", "3"),
                                   "2023-02-01", "2022-12-01"),
    "site-of-service-line": (lambda c: drop_lines(c, lambda l: l.hcpcs == "Q5001"), "2020-01-01", "2019-12-01"),
    "cbsa-value-code": (lambda c: drop_value_code(c, "61"), "2020-01-01", "2019-12-01"),
    "fips-county-value-code": (lambda c: drop_value_code(c, "85"), "2019-01-01", "2018-12-01"),
    "fips-county-value-code-edit": (lambda c: drop_value_code(c, "85"), "2024-09-05", "2024-09-01"),
    "review-choice-tracking-number": (lambda c: dataclasses.replace(c, review_tracking_number=None),
                                      "2019-06-01", "2019-05-01"),
    "lupa-period": (lambda c: drop_lines(c, lambda l: l.line_number in (3, 5, 6)), "2020-01-01", "2019-12-01"),
}


def rule_ids(claim: Claim, knowledge=None) -> Counter[str]:
    return Counter(f.rule_id for f in Checker(RULES, knowledge or small_knowledge()).check(claim))


def test_every_shipped_rule_has_a_case():
    assert set(CASES) == {rule.id for rule in RULES}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_each_rule_passes_a_clean_claim_and_fails_a_faulty_one_while_in_force(rule_id):
    fault, in_force, _ = CASES[rule_id]
    clean = clean_claim(first_of(in_force))
    assert rule_ids(clean)[rule_id] == 0
    assert rule_ids(fault(clean))[rule_id] >= 1


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_each_rule_is_silent_on_claims_dated_outside_it(rule_id):
    fault, _, not_in_force = CASES[rule_id]
    clean = clean_claim(first_of(not_in_force))
    assert rule_ids(clean)[rule_id] == 0
    assert rule_ids(fault(clean))[rule_id] == 0


def test_the_clean_claim_is_clean_under_every_rule_on_every_case_date():
    for _, in_force, not_in_force in CASES.values():
        for day in (in_force, not_in_force):
            assert Checker(RULES, small_knowledge()).check(clean_claim(first_of(day))) == []


def test_a_finding_names_claim_line_rule_and_citation():
    claim = replace_line(clean_claim(date(2023, 3, 1)), 5, hcpcs="G0151")
    (finding,) = Checker(RULES, small_knowledge()).check(claim)
    rule = RULES.get("discipline-codes")
    assert finding == Finding(
        claim_id="C20230301", agency_id="9000000015", line_number=5, rule_id="discipline-codes",
        severity="error",
        message="revenue code 0551 line carries HCPCS G0151, not one of G0299, G0300, G0162, G0493-G0496",
        citation=rule.full_citation,
    )


def test_g0154_billed_after_its_termination_is_caught_by_line_date():
    claim = clean_claim(date(2016, 2, 15))
    claim = replace_line(claim, 6, hcpcs="G0154", service_date=date(2016, 2, 29))
    assert rule_ids(claim)["hcpcs-active-on-line-date"] == 0
    late = replace_line(claim, 6, service_date=date(2016, 3, 1))
    (finding,) = [f for f in Checker(RULES, small_knowledge()).check(late) if f.rule_id == "hcpcs-active-on-line-date"]
    assert (finding.line_number, finding.severity) == (6, "error")
    assert finding.message == "HCPCS G0154 is not in effect on the line date 2016-03-01"


def test_a_code_the_knowledge_base_does_not_hold_cannot_be_checked():
    claim = add_line(clean_claim(date(2023, 8, 1)), "0551", "G0999")
    found = [f for f in Checker(RULES, small_knowledge()).check(claim) if f.rule_id == "hcpcs-active-on-line-date"]
    assert [(f.severity, f.message) for f in found] == [
        ("info", "cannot check: HCPCS G0999 is in no HCPCS release loaded in the knowledge base")
    ]


def test_a_line_dated_rule_uses_the_line_date_not_the_period():
    # A period from 2022-12-20 with a telehealth line dated 2023-01-05: the unit rule (from 2023-01-01,
    # dated by line) applies, and the period rule flags telehealth on a period that began in 2022.
    claim = add_line(clean_claim(date(2022, 12, 20)), "0551", "G0320", units="3", offset=16)
    found = rule_ids(claim)
    assert found["telehealth-units"] == 1 and found["telehealth-period-start"] == 1


def test_the_fips_rules_hand_over_on_the_through_date():
    # Dated by the period's through-date: a period ending 2024-09-30 gets the warning, one ending
    # 2024-10-01 the error.
    ends_in_september = drop_value_code(clean_claim(date(2024, 9, 1)), "85")
    ends_in_october = drop_value_code(clean_claim(date(2024, 9, 2)), "85")
    september = {f.rule_id: f.severity for f in Checker(RULES, small_knowledge()).check(ends_in_september)}
    october = {f.rule_id: f.severity for f in Checker(RULES, small_knowledge()).check(ends_in_october)}
    assert september == {"fips-county-value-code": "warning"}
    assert october == {"fips-county-value-code-edit": "error"}


def test_an_unknown_hipps_and_an_unknown_cbsa_are_errors():
    claim = replace_line(clean_claim(date(2021, 5, 1)), 1, hipps="1FC19")
    claim = dataclasses.replace(claim, cbsa="12345")
    messages = {f.rule_id: f.message for f in Checker(RULES, small_knowledge()).check(claim)}
    assert messages == {
        "hipps-line": "HIPPS 1FC19 is not in the HH PPS case-mix table in force on the period's from-date 2021-05-01",
        "cbsa-value-code": "CBSA 12345 (value code 61) is not in the wage index in force on the period's from-date 2021-05-01",
    }


def test_the_lupa_finding_counts_visits_but_not_telehealth_or_site_lines():
    claim = clean_claim(date(2023, 3, 1))  # five visits; 1FC11's threshold is 5 in the 2023 table
    claim = add_line(add_line(claim, "0551", "G0320"), "0551", "G0321")
    assert rule_ids(claim)["lupa-period"] == 0
    short = drop_lines(claim, lambda l: l.line_number == 2)
    (finding,) = [f for f in Checker(RULES, small_knowledge()).check(short) if f.rule_id == "lupa-period"]
    assert finding.severity == "info"
    assert finding.message == (
        "LUPA period: 4 visits counted, below the LUPA threshold of 5 for HIPPS 1FC11 "
        "(table in force on 2023-03-01): paid per visit"
    )


def test_rules_apply_only_to_the_bills_they_name():
    noa = dataclasses.replace(clean_claim(date(2023, 3, 1)), type_of_bill="032A", lines=(), value_codes=())
    assert Checker(RULES, small_knowledge()).check(noa) == []
    outside = dataclasses.replace(clean_claim(date(2023, 3, 1)), state="NY", review_tracking_number=None)
    assert rule_ids(outside)["review-choice-tracking-number"] == 0


def test_messages_carry_no_patient_data():
    claim = clean_claim(date(2023, 3, 1))
    claim = dataclasses.replace(claim, diagnoses=("Z9981",), beneficiary_key="f" * 64, review_tracking_number=None)
    for rule_id, (fault, in_force, _) in CASES.items():
        for finding in Checker(RULES, small_knowledge()).check(fault(claim)):
            assert "Z9981" not in finding.message and "f" * 16 not in finding.message


# --- a generated agency, clean and with faults injected ------------------------------------------


def agency_claims(year: int, **profile) -> list[Claim]:
    settings = dict(agency_id=synthetic_npi(42), state="IL", cbsa="99914", fips_county="17001", periods=300,
                    review_choice_option=1, missing_review_share=0.0, lupa_share=0.0, telehealth_share=0.3)
    settings.update(profile)
    return list(generate_sample(AgencyProfile(**settings), year=year, seed=7, lupa_thresholds=lupa_thresholds(year)).claims)


VISIT_REVENUE = ("042", "043", "044", "055", "056", "057")
NOT_VISITS = {"Q5001", "Q5002", "Q5009", "G0320", "G0321", "G0322"}


def visits(claim: Claim) -> int:
    return sum(1 for l in claim.lines if l.revenue_code[:3] in VISIT_REVENUE and l.hcpcs not in NOT_VISITS)


@pytest.mark.parametrize("year", [2020, 2023, 2024])
def test_clean_generated_claims_have_no_findings(year):
    claims = agency_claims(year)
    assert any(l.hcpcs == "G0320" for c in claims for l in c.lines) == (year >= 2023)
    assert list(check_claims(claims, RULES, real_knowledge())) == []


def test_generated_lupa_periods_are_exactly_the_lupa_findings():
    claims = agency_claims(2023, lupa_share=0.2)
    thresholds = lupa_thresholds(2023)
    expected = {c.claim_id for c in claims if visits(c) < thresholds[c.hipps]}
    findings = list(check_claims(claims, RULES, real_knowledge()))
    assert {f.rule_id for f in findings} == {"lupa-period"} and len(expected) > 20
    assert {f.claim_id for f in findings} == expected


def _first_line(claim: Claim, predicate) -> int:
    return next(l.line_number for l in claim.lines if predicate(l))


FAULTS = {
    # name: (fault, the rules that must find it)
    "no 0023 line": (lambda c: drop_lines(c, lambda l: l.revenue_code == "0023"), {"hipps-line"}),
    "unknown HIPPS": (lambda c: replace_line(c, 1, hipps="4LC39"), {"hipps-line"}),
    "G0154 after its end": (lambda c: replace_line(c, _first_line(c, lambda l: l.hcpcs == "G0299"), hcpcs="G0154"),
                            {"hcpcs-active-on-line-date", "discipline-codes"}),
    "PT code on a nursing line": (
        lambda c: replace_line(c, _first_line(c, lambda l: l.hcpcs == "G0299"), hcpcs="G0151"), {"discipline-codes"}),
    "visit after the period": (
        lambda c: replace_line(c, _first_line(c, lambda l: l.hcpcs == "G0299"), service_date=c.period_through + timedelta(days=2)),
        {"visit-line-date"}),
    "half a unit": (lambda c: replace_line(c, _first_line(c, lambda l: l.hcpcs == "G0299"), units=Decimal("3.5")),
                    {"visit-units"}),
    "two site lines": (lambda c: add_line(c, "0551", "Q5002", offset=0), {"site-of-service-line"}),
    "no value code 61": (lambda c: drop_value_code(c, "61"), {"cbsa-value-code"}),
    "no value code 85": (lambda c: drop_value_code(c, "85"), {"fips-county-value-code"}),
    "no tracking number": (lambda c: dataclasses.replace(c, review_tracking_number=None),
                           {"review-choice-tracking-number"}),
    "one visit left": (lambda c: drop_lines(c, lambda l: l.revenue_code[:3] in VISIT_REVENUE
                                            and l.hcpcs not in NOT_VISITS and l.line_number != _first_line(
                                                c, lambda x: x.revenue_code[:3] in VISIT_REVENUE and x.hcpcs not in NOT_VISITS)),
                       {"lupa-period"}),
    "telehealth billed in units": (lambda c: add_line(c, "0551", "G0320", units="4"), {"telehealth-units"}),
    "two monitoring lines": (lambda c: add_line(add_line(c, "0551", "G0322", "4"), "0551", "G0322", "2"),
                             {"telehealth-monitoring-line"}),
}


def test_each_fault_injected_into_generated_claims_is_found():
    claims = agency_claims(2023)
    # Faults go into nursing periods of 2023 (after 2023-07-01, for the telehealth faults) that
    # have no telehealth of their own.
    targets = [c for c in claims if c.period_from >= date(2023, 7, 1) and visits(c) >= 8
               and any(l.hcpcs == "G0299" for l in c.lines) and not any(l.hcpcs in NOT_VISITS - {"Q5001", "Q5002", "Q5009"} for l in c.lines)]
    assert len(targets) >= len(FAULTS)
    faulty = {}
    for (name, (fault, _)), target in zip(FAULTS.items(), targets):
        faulty[target.claim_id] = name
    changed = [FAULTS[faulty[c.claim_id]][0](c) if c.claim_id in faulty else c for c in claims]
    found: dict[str, set[str]] = {}
    for finding in check_claims(changed, RULES, real_knowledge()):
        found.setdefault(finding.claim_id, set()).add(finding.rule_id)
    assert found == {claim_id: FAULTS[name][1] for claim_id, name in faulty.items()}


def test_exit_status_and_severity_threshold():
    claim = dataclasses.replace(clean_claim(date(2023, 3, 1)), review_tracking_number=None)
    findings = Checker(RULES, small_knowledge()).check(claim)
    assert [f.severity for f in findings] == ["warning"]
    assert exit_status(findings, "warning") == 1 and exit_status(findings, "error") == 0
    assert exit_status([], "info") == 0
    assert findings_at_or_above(findings, "info") == tuple(findings)
    with pytest.raises(ValueError, match="unknown severity"):
        findings_at_or_above(findings, "fatal")


# --- the knowledge base as the rules' knowledge -------------------------------------------------


def load_real_files(engine):
    ingest.load_files(engine, [
        HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip",
        HHPPS_DIR / "hrg-2020.csv",
        HHPPS_DIR / "cbsa-wage-index-2020.csv",
    ])


def test_the_database_knowledge_answers_from_the_loaded_releases(engine):
    load_real_files(engine)
    with Session(engine) as session:
        knowledge = DatabaseKnowledge.preload(session, codes=["G0154", "G0151", "G0493", "G0320"])
    assert knowledge.queries == 3
    assert knowledge.hcpcs_active("G0154", date(2016, 2, 29)) is True
    assert knowledge.hcpcs_active("G0154", date(2016, 3, 1)) is False
    assert knowledge.hcpcs_active("G0493", date(2016, 12, 31)) is False
    assert knowledge.hcpcs_active("G0493", date(2020, 6, 1)) is True
    assert knowledge.hcpcs_active("G0320", date(2023, 8, 1)) is None  # in no loaded release
    assert knowledge.hcpcs_active("G0151", date(2020, 6, 1)) is True
    hrg = {row.hipps: row.lupa_threshold for row in read_hhpps_table(HHPPS_DIR / "hrg-2020.csv").rows}
    assert knowledge.hipps_known("1FC11", date(2020, 6, 1)) is True
    assert knowledge.lupa_threshold("1FC11", date(2020, 6, 1)) == hrg["1FC11"]
    assert knowledge.hipps_known("1FC11", date(2019, 12, 31)) is None
    assert knowledge.cbsa_known("99914", date(2020, 6, 1)) is True
    assert knowledge.cbsa_known("12345", date(2020, 6, 1)) is False


def test_generated_claims_check_clean_against_the_knowledge_base_and_faults_are_found(engine):
    load_real_files(engine)
    claims = agency_claims(2020, periods=120)
    target = next(c for c in claims if any(l.hcpcs == "G0299" for l in c.lines))
    faulty = FAULTS["G0154 after its end"][0](target)
    claims = [faulty if c.claim_id == target.claim_id else c for c in claims]
    with Session(engine) as session:
        knowledge = DatabaseKnowledge.preload(session, codes={l.hcpcs for c in claims for l in c.lines if l.hcpcs})
    found = {(f.claim_id, f.rule_id) for f in check_claims(claims, RULES, knowledge)}
    assert found == {(target.claim_id, "hcpcs-active-on-line-date"), (target.claim_id, "discipline-codes")}


def test_check_files_reads_837i_and_claims_csv(engine, tmp_path):
    load_real_files(engine)
    sample = generate_sample(
        AgencyProfile(agency_id=synthetic_npi(7), state="OH", cbsa="99936", fips_county="39001", periods=20,
                      review_choice_option=1, missing_review_share=0.0, lupa_share=0.0),
        year=2020, seed=3, lupa_thresholds=lupa_thresholds(2020),
    )
    claims = list(sample.claims)
    claims[0] = drop_value_code(claims[0], "61")
    csv_path, x12_path = tmp_path / "claims.csv", tmp_path / "claims.837i"
    with csv_path.open("w", newline="", encoding="utf-8") as stream:
        write_claims_csv(claims[:10], stream)
    with x12_path.open("w", encoding="utf-8") as stream:
        write_837i(claims[10:], stream, member_ids=sample.member_ids)
    key = b"hhkb synthetic sample agency"
    read, problems = read_claim_files([csv_path, x12_path], beneficiary_hash_key=key)
    assert len(read) == 20 and problems == []
    with Session(engine) as session:
        run = check_files([csv_path, x12_path], session=session, beneficiary_hash_key=key)
    assert run.claims_checked == 20
    assert [(f.claim_id, f.rule_id) for f in run.findings] == [(claims[0].claim_id, "cbsa-value-code")]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(LoadError, match="the file is empty") as caught:
        read_claim_files([empty], beneficiary_hash_key=key)
    assert caught.value.path == str(empty)


def test_check_agency_reads_the_stored_claims(engine):
    load_real_files(engine)
    claims = agency_claims(2020, periods=15)
    claims[3] = dataclasses.replace(claims[3], review_tracking_number=None)
    with transaction(engine) as session:
        store_claims(session, claims, FileIdentity("claims.csv", "0" * 64, 0), file_format="csv", label="test claims")
    with Session(engine) as session:
        run = check_agency(session, claims[0].agency_id)
    assert run.claims_checked == 15
    assert [(f.claim_id, f.rule_id) for f in run.findings] == [(claims[3].claim_id, "review-choice-tracking-number")]


# --- the findings report ------------------------------------------------------------------------


def sample_report():
    claims = [
        replace_line(clean_claim(date(2023, 3, 1)), 5, hcpcs="G0151"),
        dataclasses.replace(clean_claim(date(2023, 4, 1)), review_tracking_number=None, claim_id="C<&>"),
        clean_claim(date(2023, 5, 1)),
    ]
    findings = list(check_claims(claims, RULES, small_knowledge()))
    return findings, findings_report.build_findings_report(
        findings, rules=RULES, claims_checked=len(claims), sources=["claims.csv"],
        problems=["claims.837i, segment 12 (CLM), element CLM05-3, claim X1: bad frequency"],
        generated_on=date(2024, 1, 2),
    )


def test_the_html_report_lists_rules_and_findings_with_citations():
    findings, report = sample_report()
    page = lxml.html.fromstring(findings_report.render_html(report))
    rows = page.xpath("//table[@id='finding-table']/tbody/tr[@class='finding']")
    assert [(r.get("data-severity"), r.get("data-rule")) for r in rows] == [
        ("error", "discipline-codes"), ("warning", "review-choice-tracking-number")]
    cells = [td.text_content().strip() for td in rows[1].xpath("td")]
    assert cells[3] == "C<&>" and cells[4] == ""
    assert cells[6] == RULES.get("review-choice-tracking-number").full_citation
    rule_rows = page.xpath("//section[@id='rules']//tr[@class='rule']")
    assert len(rule_rows) == len(RULES)
    lupa = page.xpath("//tr[@data-rule='lupa-period']/td")
    assert lupa[3].text_content() == "from 2020-01-01" and lupa[4].text_content() == "0"
    fips = page.xpath("//tr[@data-rule='fips-county-value-code']/td")
    assert fips[3].text_content() == "2019-01-01 to 2024-09-30"
    severities = {r.get("data-severity"): r.xpath("td")[1].text_content() for r in page.xpath("//tr[@class='severity']")}
    assert severities == {"error": "1", "warning": "1", "info": "0"}
    assert "bad frequency" in page.xpath("//section[@id='problems']")[0].text_content()


def test_the_csv_json_and_markdown_reports_hold_every_finding():
    findings, report = sample_report()
    rows = list(csv.reader(io.StringIO(findings_report.render_csv(report))))
    assert rows[0] == list(findings_report.CSV_COLUMNS)
    assert [row[:5] for row in rows[1:]] == [
        ["error", "discipline-codes", "9000000015", "C20230301", "5"],
        ["warning", "review-choice-tracking-number", "9000000015", "C<&>", ""],
    ]
    document = json.loads(findings_report.render_json(report))
    assert document["claims_checked"] == 3 and document["claims_with_findings"] == 2
    assert [f["line_number"] for f in document["findings"]] == [5, None]
    assert {r["rule_id"]: r["findings"] for r in document["rules"]}["discipline-codes"] == 1
    markdown = findings_report.render_markdown(report)
    assert "| error | discipline-codes | 9000000015 | C20230301 | 5 |" in markdown
    assert findings_report.render(report, "md") == markdown
    assert findings_report.render(report, "csv") == findings_report.render_csv(report)
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        findings_report.render(report, "pdf")


def test_a_report_without_findings_still_lists_what_was_checked():
    report = findings_report.build_findings_report([], rules=RULES, claims_checked=4, generated_on=date(2024, 1, 2))
    page = lxml.html.fromstring(findings_report.render_html(report))
    assert "No findings." in page.xpath("//section[@id='findings']")[0].text_content()
    assert len(page.xpath("//tr[@class='rule']")) == len(RULES)
    assert not page.xpath("//section[@id='problems']")


def test_the_html_page_lists_the_first_findings_and_says_how_many_more():
    findings, _ = sample_report()
    report = findings_report.build_findings_report(findings, rules=RULES, claims_checked=3, html_row_limit=1,
                                                   generated_on=date(2024, 1, 2))
    page = lxml.html.fromstring(findings_report.render_html(report))
    assert len(page.xpath("//tr[@class='finding']")) == 1
    assert "The first 1 of 2 findings" in page.xpath("//section[@id='findings']")[0].text_content()
    assert len(list(csv.reader(io.StringIO(findings_report.render_csv(report))))) == 3
