"""The review joined to claims, pending updates and what-if scenarios, on SQLite and PostgreSQL.

The expected claims of each HCPCS change are found by reading the claims file itself (the 837I and
CSV readers, no database), not by the join's query."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from kb import ingest
from kb.cli import main
from kb.claims import load_claims_files
from kb.impact import COMPONENTS, impact
from kb.review import annual_review
from kb.review_claims import hcpcs_touch_rule, join_claims
from kb.rules import Checker, DatabaseKnowledge, codes_a_finding_needs, read_claim_files, reads_lines
from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi
from kb.store import catalogue_of
from loaders.errors import LoadError
from loaders.x12_837i import write_837i
from regulations.pending import load_pending, parse_pending
from regulations.rules import AllOf, CodeSet, CountLines, LineFilter, ValueCodePresent, load_rules
from regulations.scenario import find_scenario, parse_scenario
from tests.conftest import FIXTURES, HHPPS_DIR

SHARED_HCPCS = HHPPS_DIR.parent / "hcpcs"
AGENCY = synthetic_npi(15)
R0070_FILE = FIXTURES / "claims" / "r0070-portable-xray.csv"


@pytest.fixture
def loaded(engine, tmp_path):
    """HCPCS 2020 JUL and 2023, CY2022-CY2024 HH PPS tables, a home health agency's 2023 claims
    (with telehealth lines) and the R0070 fixture's claims of another agency."""
    files = [*sorted((SHARED_HCPCS / "2020-07").iterdir()), *sorted((SHARED_HCPCS / "2023-01").iterdir()),
             *(HHPPS_DIR / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index") for year in (2022, 2023, 2024))]
    ingest.load_files(engine, files)
    profile = AgencyProfile(agency_id=AGENCY, state="OH", cbsa="17140", fips_county="39061", periods=120)
    sample = generate_sample(profile, year=2023, seed=5)
    claims_file = tmp_path / "agency.837i"
    with open(claims_file, "w", encoding="ascii", newline="") as stream:
        write_837i(sample.claims, stream, member_ids=sample.member_ids)
    load_claims_files(engine, [claims_file, R0070_FILE], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    return engine, claims_file


def _join(engine, year, agencies):
    with Session(engine) as session:
        catalogue = catalogue_of(session)
        review = annual_review(session, catalogue, year)
        return review, join_claims(session, catalogue, year, review.changes, agencies=agencies)


def _expected(claims, change, window):
    """Claims billing the change's code in its span, read from the file's own claims."""
    code, start, end, _ = hcpcs_touch_rule(change, window)
    return {(c.agency_id, c.claim_id) for c in claims for line in c.lines
            if (line.hcpcs == code or code in line.modifiers)
            and (start is None or (line.service_date or c.period_from) >= start)
            and (end is None or (line.service_date or c.period_from) <= end)}


def test_each_hcpcs_change_touches_the_claims_billing_it(loaded):
    engine, claims_file = loaded
    claims, _ = read_claim_files([claims_file, R0070_FILE], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    review, join = _join(engine, 2023, None)
    hcpcs = [c for c in review.changes if c.source == "hcpcs"]
    assert hcpcs
    for change in hcpcs:
        found = {(ref.agency_id, ref.claim_id) for ref in join.touches[change].claims}
        assert found == _expected(claims, change, join.window), change
    # the telehealth codes the agency bills were added on 2023-01-01: billed after, so untouched,
    # and a line dated before its add date is found
    added = {c.key: c for c in hcpcs if c.change_type == "added"}
    assert "G0320" in added and join.touches[added["G0320"]].count == 0
    billing = {(c.agency_id, c.claim_id) for c in claims if any(line.hcpcs == "G0320" for line in c.lines)}
    assert billing  # the agency bills it, after its add date


def test_a_code_no_claim_bills_says_no_claim_touched(loaded, tmp_path):
    engine, _ = loaded
    result = CliRunner().invoke(main, ["--db", str(engine.url.render_as_string(hide_password=False)), "review", "2023",
                                       "--agency", AGENCY, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "review-2023.json").read_text())
    rows = [row for row in document["changes"] if row["source"] == "hcpcs"]
    assert rows and all(row["claims_touched"] == "no claim touched" for row in rows if not row["claim_ids"])
    assert any(row["claims_touched"] == "no claim touched" for row in rows)
    html = (tmp_path / "review-2023.html").read_text()
    for row in document["changes"]:
        for link in row["claim_links"]:
            assert f'id="{link["anchor"]}"' in html  # every claim link points at the claim's entry
    assert "Claims touched" in html and "Pending and proposed" in html
    filtered = CliRunner().invoke(main, ["--db", str(engine.url.render_as_string(hide_password=False)), "review", "2023",
                                         "--agency", AGENCY, "--touching-claims", "--format", "json"])
    kept = json.loads(filtered.output)["changes"]
    assert kept and all(row["claims_touched"] != "no claim touched" for row in kept)


def test_r0070_shows_its_pending_request_and_the_claims_that_bill_it(loaded):
    engine, _ = loaded
    url = str(engine.url.render_as_string(hide_password=False))
    shown = CliRunner().invoke(main, ["--db", url, "code", "R0070"])
    assert shown.exit_code == 0 and "pending: HCPCS-R0070-portable-imaging" in shown.output
    assert "DispatchHealth Imaging" in shown.output and "deferred 2023-12-31" in shown.output
    home = json.loads(CliRunner().invoke(main, ["--db", url, "review", "2023", "--agency", AGENCY,
                                                "--format", "json"]).output)
    request = next(p for p in home["pending"] if p["entry_id"] == "HCPCS-R0070-portable-imaging")
    assert request["claims_touched"] == "no claim touched"
    xray_agency = synthetic_npi(77)
    other = json.loads(CliRunner().invoke(main, ["--db", url, "review", "2023", "--agency", xray_agency,
                                                 "--format", "json"]).output)
    request = next(p for p in other["pending"] if p["entry_id"] == "HCPCS-R0070-portable-imaging")
    claims, _ = read_claim_files([R0070_FILE], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    billing = {f"{c.agency_id}/{c.claim_id}" for c in claims if any(line.hcpcs == "R0070" for line in c.lines)}
    assert request["claims_touched"] == str(len(billing)) == "2"
    assert {link["text"] for link in request["claim_links"]} == billing


@pytest.mark.parametrize("year", [2023, 2024])
def test_each_changing_rule_touches_the_claims_the_checker_flags(loaded, year, tmp_path):
    """Every claim of the window read from the files and checked against the rule in force: the
    join reads only the claims a rule could flag (2023: line rules on telehealth codes; 2024: the
    county value-code rules, which read claim fields only), and finds the same ones."""
    engine, claims_file = loaded
    no_county = tmp_path / "no-county.csv"  # an agency whose 2024 claims lack value code 85
    no_county.write_text(R0070_FILE.read_text().replace("9000000775,", f"{synthetic_npi(78)},")
                         .replace(";85=39061,", ",").replace("2023-", "2024-"))
    load_claims_files(engine, [no_county], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    claims, _ = read_claim_files([claims_file, R0070_FILE, no_county], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    _, join = _join(engine, year, None)
    assert join.rule_touches
    with Session(engine) as session:
        knowledge = DatabaseKnowledge.preload(session)
    window = join.window
    in_window = [c for c in claims if window.start <= c.period_from <= window.end and c.period_through >= window.start]
    for rule, when, touch in join.rule_touches:
        checker = Checker([dataclasses.replace(rule, effective_from=date.min, effective_to=None)], knowledge)
        expected = {(c.agency_id, c.claim_id, c.type_of_bill) for c in in_window if checker.check(c)}
        assert {(r.agency_id, r.claim_id, r.type_of_bill) for r in touch.claims} == expected, rule.id
        assert touch.count or rule.id.startswith("telehealth-") and when == "takes effect", rule.id


def test_a_rule_needs_the_codes_its_findings_need():
    by_id = {rule.id: rule for rule in load_rules()}
    assert codes_a_finding_needs(by_id["telehealth-units"].condition) == {"G0320", "G0321", "G0322"}
    assert codes_a_finding_needs(by_id["telehealth-period-start"].condition) == {"G0320", "G0321", "G0322"}
    assert codes_a_finding_needs(by_id["fips-county-value-code"].condition) is None
    assert not reads_lines(by_id["fips-county-value-code"].condition)
    at_least = CountLines(LineFilter(hcpcs_in=CodeSet(("G0320",), frozenset({"G0320"}))), at_least=1)
    assert codes_a_finding_needs(at_least) is None  # a claim without the line has too few
    assert codes_a_finding_needs(dataclasses.replace(at_least, at_least=None, at_most=1)) == {"G0320"}
    assert codes_a_finding_needs(AllOf((at_least, ValueCodePresent("85")))) is None and reads_lines(at_least)


def test_review_hhpps_rows_carry_the_impact_dollars(loaded):
    engine, _ = loaded
    review, join = _join(engine, 2024, [AGENCY])
    with Session(engine) as session:
        result = impact(session, catalogue_of(session), from_year=2023, to_year=2024, agency=AGENCY)
    expected = {(i.change.change_type, i.change.key, i.change.field): (i.dollars, len(i.claim_pks))
                for i in result.changes}
    hhpps = [c for c in review.changes if c.source == "hhpps"]
    assert hhpps
    for change in hhpps:
        touch = join.touches[change]
        assert (touch.dollars, touch.count) == expected[(change.change_type, change.key, change.field)]
    # the groups' dollars together are the impact's components, and the totals match
    by_component = dict(result.totals.components)
    assert join.dollars_of(hhpps) == sum(by_component.values())
    assert join.hhpps_totals == (result.totals.claims, result.totals.before, result.totals.after)


def test_what_if_differs_from_the_final_rule_by_the_30_day_rate(loaded, tmp_path):
    engine, _ = loaded
    scenario = find_scenario("CMS-1780-P")
    with Session(engine) as session:
        catalogue = catalogue_of(session)
        final = impact(session, catalogue, from_year=2023, to_year=2024, agency=AGENCY)
        what_if = impact(session, catalogue, from_year=2023, to_year=2024, agency=AGENCY, scenario=scenario)
    final_parts, what_if_parts = dict(final.totals.components), dict(what_if.totals.components)
    assert what_if_parts["30-day rate"] != final_parts["30-day rate"]
    assert what_if_parts["case-mix weight"] == final_parts["case-mix weight"]
    assert what_if.totals.before == final.totals.before
    rate_claims = {c.pk for c in final.claims if not (c.lupa_before and c.lupa_after)}
    changed = {c.pk for c, f in zip(what_if.claims, final.claims) if c.after != f.after}
    assert changed and changed <= rate_claims  # only the claims the 30-day rate reaches
    result = CliRunner().invoke(main, ["--db", str(engine.url.render_as_string(hide_password=False)), "impact",
                                       "--from", "2023", "--to", "CMS-1780-P", "--agency", AGENCY, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "what-if: CMS-1780-P, not in force" in result.output
    for name in ("impact.html", "impact.md", "impact.json", "impact.csv"):
        text = (tmp_path / name).read_text()
        assert "what-if: CMS-1780-P, not in force" in text, name
    document = (tmp_path / "impact.json").read_text()
    assert "From the proposal: rate_30_day 1974.38" in document and "Assumed (taken from the CY2024 final rule" in document


def test_pending_lists_the_updates_as_of_a_date():
    result = CliRunner().invoke(main, ["pending", "--as-of", "2023-08-01"])
    assert result.exit_code == 0, result.output
    assert "HCPCS-R0070-portable-imaging" in result.output and "CMS-1780-P (proposed_rule, pending)" in result.output
    assert "CMS-1803-P" not in result.output  # not yet proposed on that date
    later = CliRunner().invoke(main, ["pending", "--as-of", "2025-01-01"]).output
    assert "CMS-1780-P (proposed_rule, closed)" in later and "finalised 2023-11-13 as CMS-1780-F" in later
    updates = {u.entry_id: u for u in load_pending()}
    assert updates["HCPCS-R0070-portable-imaging"].pending_on(date(2030, 1, 1))


_GOOD_PENDING = """pending:
  - id: X
    kind: hcpcs_code_request
    title: t
    subject: {codes: [R0070]}
    would_change: w
    citation: c
    confirmed: false
    status:
      - {status: requested, date: 2023-01-01}
"""


@pytest.mark.parametrize("text, line, field, message", [
    (_GOOD_PENDING.replace("    title: t\n", "    title: t\n    colour: red\n"), 5, "pending[0].colour", "unknown key"),
    (_GOOD_PENDING.replace("kind: hcpcs_code_request", "kind: rumour"), 3, "pending[0].kind", "unknown kind"),
    (_GOOD_PENDING.replace("{codes: [R0070]}", "{colours: [R0070]}"), 5, "pending[0].subject.colours", "unknown key"),
    (_GOOD_PENDING.replace("status: requested,", "status: hoped,"), 10, "pending[0].status[0].status", "unknown status"),
    (_GOOD_PENDING.replace("date: 2023-01-01}", "date: 2023-01-01, when: soon}"), 10, "pending[0].status[0].when",
     "unknown key"),
    (_GOOD_PENDING.replace("date: 2023-01-01", "date: 01/01/2023"), 10, "pending[0].status[0].date", "not a date"),
    (_GOOD_PENDING.replace("    confirmed: false\n", ""), 2, "pending[0].confirmed", "missing key"),
    (_GOOD_PENDING + "      - {status: deferred, date: 2022-01-01}\n", 11, "pending[0].status[1].date", "back in time"),
])
def test_a_bad_pending_file_names_file_line_and_key(text, line, field, message):
    with pytest.raises(LoadError) as error:
        parse_pending(text, "bad-pending.yaml")
    assert (error.value.line, error.value.field) == (line, field)
    assert message in str(error.value) and "bad-pending.yaml" in str(error.value)


_GOOD_SCENARIO = """scenario:
  id: S
  title: t
  base_year: 2024
  citation: c
  confirmed: false
  constants:
    rate_30_day: {value: "1974.38", citation: c, confirmed: false}
"""


@pytest.mark.parametrize("text, line, field, message", [
    (_GOOD_SCENARIO.replace("  title: t\n", "  title: t\n  colour: red\n"), 4, "scenario.colour", "unknown key"),
    (_GOOD_SCENARIO.replace("base_year: 2024", "base_year: next"), 4, "scenario.base_year", "base_year must be a year"),
    (_GOOD_SCENARIO.replace("rate_30_day:", "rate_31_day:"), 8, "scenario.rate_31_day", "unknown key"),
    (_GOOD_SCENARIO.replace('"1974.38"', '"lots"'), 8, "scenario.rate_30_day.value", "not a decimal"),
    (_GOOD_SCENARIO.replace('"1974.38"', "none"), 8, "scenario.constants.rate_30_day", "needs a value"),
    (_GOOD_SCENARIO.replace("  confirmed: false\n  constants", "  constants"), 2, "scenario.confirmed", "missing key"),
    (_GOOD_SCENARIO.replace("  id: S\n", "  id: S\n  id: T\n"), 3, "id", "duplicate key"),
])
def test_a_bad_scenario_file_names_file_line_and_key(text, line, field, message):
    with pytest.raises(LoadError) as error:
        parse_scenario(text, "bad-scenario.yaml")
    assert (error.value.line, error.value.field) == (line, field)
    assert message in str(error.value) and "bad-scenario.yaml" in str(error.value)


def test_a_scenario_file_on_the_command_line(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(_GOOD_SCENARIO)
    assert find_scenario(str(path)).scenario_id == "S"
    with pytest.raises(LookupError, match="CMS-1780-P"):
        find_scenario("no-such-scenario")


def test_the_report_names_a_bounded_number_of_claims_per_change(loaded, monkeypatch):
    """HTML and Markdown link the first LISTED_CLAIM_IDS claims of a change, CSV and JSON give the
    first EXPORTED_CLAIM_IDS ids; the list of claims holds the linked ones, the total all of them."""
    from reports import changes as change_reports

    monkeypatch.setattr(change_reports, "LISTED_CLAIM_IDS", 3)
    monkeypatch.setattr(change_reports, "EXPORTED_CLAIM_IDS", 5)
    engine, _ = loaded
    review, join = _join(engine, 2024, [AGENCY])
    shown = [c for c in review.changes if c.change_type not in ("weight_changed", "lupa_threshold_changed")]
    report = change_reports.build_change_report(shown, title="t", join=join)
    rows = {(row.source, row.change_type, row.key, row.field): row for group in report.groups for row in group.rows}
    crowded = 0
    for change in shown:
        touch = join.touches[change]
        row = rows[(change.source, change.change_type, change.key, change.field or "")]
        assert row.claim_ids == tuple(f"{ref.agency_id}/{ref.claim_id}" for ref in touch.claims[:5])
        assert len(row.claim_links) == min(touch.count, 3) and row.more_claims == max(touch.count - 3, 0)
        crowded += touch.count > 5
    assert crowded  # some change touches more claims than are exported
    linked = {link.anchor for row in rows.values() for link in row.claim_links}
    linked |= {link.anchor for line in report.rules for link in line.claim_links}
    assert {claim.anchor for claim in report.claims} == linked
    assert report.claims_touched == len(join.claims()) > len(report.claims)
    document = json.loads(change_reports.render_json(report))
    assert document["claims_touched"] == report.claims_touched
    assert f"{len(report.claims)} claims named above" in change_reports.render_html(report)
