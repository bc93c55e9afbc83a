"""The rule vocabulary: the shipped rule files load, and a bad rule file fails naming file and key."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from loaders.errors import LoadError
from regulations.catalogue import load_catalogue
from regulations.rules import (
    DEFAULT_RULES_DIR,
    AllOf,
    CountLines,
    EachLine,
    Pattern,
    load_rule,
    load_rules,
    parse_rule,
)
from tests.conftest import FIXTURES

RULE_FIXTURES = FIXTURES / "rules"

SHIPPED = {
    "hipps-line", "hcpcs-active-on-line-date", "discipline-codes", "visit-line-date", "visit-units",
    "telehealth-period-start", "telehealth-units", "telehealth-monitoring-line", "site-of-service-line",
    "cbsa-value-code", "fips-county-value-code", "fips-county-value-code-edit",
    "review-choice-tracking-number", "lupa-period",
}


def test_the_shipped_rules_load_each_citing_a_catalogue_entry():
    rules = load_rules()
    catalogue = load_catalogue()
    assert {rule.id for rule in rules} == SHIPPED
    for rule in rules:
        assert catalogue.get(rule.source).document_id == rule.source
        assert rule.citation and rule.title
        assert rule.full_citation.endswith(f"[{rule.source}]")


def test_a_rule_reads_its_dates_and_its_condition():
    rule = load_rules().get("fips-county-value-code")
    assert (rule.effective_from, rule.effective_to) == (date(2019, 1, 1), date(2024, 10, 1))
    assert rule.in_force(date(2024, 9, 30)) and not rule.in_force(date(2024, 10, 1))
    assert not rule.in_force(date(2018, 12, 31))
    assert (rule.severity, rule.dated_by) == ("warning", "period_through")


def test_code_ranges_and_patterns_expand_as_written():
    rule = load_rules().get("discipline-codes")
    assert isinstance(rule.condition, AllOf)
    nursing = rule.condition.conditions[3]
    assert isinstance(nursing, EachLine)
    assert nursing.require.hcpcs_in.codes == {"G0299", "G0300", "G0162", "G0493", "G0494", "G0495", "G0496"}
    assert nursing.require.hcpcs_in.written == ("G0299", "G0300", "G0162", "G0493-G0496")
    assert nursing.where.matches("0551", "G0299") and not nursing.where.matches("0551", "Q5001")
    assert Pattern("032x").matches("032A") and not Pattern("032x").matches("0339")


def test_count_lines_reads_its_bounds():
    rule = load_rules().get("telehealth-monitoring-line")
    assert rule.condition == CountLines(rule.condition.where, at_most=1)


@pytest.mark.parametrize(
    ("name", "line", "field", "message"),
    [
        ("unknown-key", 10, "effective_form", "unknown key 'effective_form'"),
        ("unknown-operator", 11, "condition.all_of[1].python_eval", "unknown operator 'python_eval'"),
        ("bad-date", 3, "effective_from", "not a date YYYY-MM-DD: '2020-02-30'"),
        ("bad-severity", 4, "severity", "'critical' is not one of error, warning, info"),
        ("bad-pattern", 10, "condition.each_line.where.revenue_code", "bad revenue code pattern '42x'"),
        ("duplicate-key", 7, "severity", "duplicate key 'severity' (first on line 4)"),
        ("unknown-source", 5, "source", "'CMS-9999-F' is not a document id of the regulation catalogue"),
        ("bad-range", 10, "condition.count_lines.where.hcpcs_in", "not a HCPCS code or a range"),
        ("unknown-requirement", 11, "condition.each_line.require.units_between", "unknown line requirement"),
    ],
)
def test_a_bad_rule_file_fails_naming_file_line_and_key(name, line, field, message):
    path = RULE_FIXTURES / f"{name}.yaml"
    with pytest.raises(LoadError) as caught:
        load_rule(path)
    error = caught.value
    assert error.path == str(path)
    assert (error.line, error.field) == (line, field)
    assert message in error.message
    assert str(error).startswith(f"{path}, line {line}, field {field}: ")


def test_a_rule_file_named_otherwise_than_its_id_is_refused(tmp_path):
    copy = tmp_path / "some-other-name.yaml"
    shutil.copyfile(DEFAULT_RULES_DIR / "lupa-period.yaml", copy)
    with pytest.raises(LoadError, match="differs from the file name") as caught:
        load_rule(copy)
    assert caught.value.field == "id" and caught.value.path == str(copy)


def test_a_folder_with_one_bad_file_fails_naming_that_file(tmp_path):
    shutil.copyfile(DEFAULT_RULES_DIR / "lupa-period.yaml", tmp_path / "lupa-period.yaml")
    shutil.copyfile(RULE_FIXTURES / "bad-date.yaml", tmp_path / "bad-date.yaml")
    with pytest.raises(LoadError) as caught:
        load_rules(tmp_path)
    assert caught.value.path == str(tmp_path / "bad-date.yaml") and caught.value.field == "effective_from"


_VALID = """\
id: small
title: Small
effective_from: 2020-01-01
severity: error
source: MCPM-CH10
citation: manual
applies_to: {type_of_bill: ["032x"]}
"""


@pytest.mark.parametrize(
    ("condition", "field", "message"),
    [
        ("condition: {}", "condition", "a condition is one operator"),
        ("condition: {value_code_present: '61', claim_has: hipps}", "condition", "a condition is one operator"),
        ("condition: {count_lines: {where: {revenue_code: '0023'}}}", "condition.count_lines",
         "count_lines takes equals"),
        ("condition: {count_lines: {equals: 'one'}}", "condition.count_lines.equals", "not a whole number"),
        ("condition: {claim_has: diagnosis}", "condition.claim_has", "'diagnosis' is not one of"),
        ("condition: {hipps_valid_for_period: false}", "condition.hipps_valid_for_period", "expected true"),
        ("condition: {each_line: {require: {units_at_least: -1}}}", "condition.each_line.require.units_at_least",
         "not a number"),
        ("condition: {value_code_present: '6'}", "condition.value_code_present", "two-character value code"),
    ],
)
def test_a_bad_condition_names_its_key(condition, field, message):
    with pytest.raises(LoadError) as caught:
        parse_rule(_VALID + condition + "\n", "inline.yaml")
    assert caught.value.path == "inline.yaml" and caught.value.field == field
    assert message in caught.value.message


def test_line_dating_needs_line_operators():
    text = _VALID.replace("severity: error", "severity: error\ndated_by: line_date")
    with pytest.raises(LoadError, match="line_date needs") as caught:
        parse_rule(text + "condition: {value_code_present: '61'}\n", "inline.yaml")
    assert caught.value.field == "dated_by"


def test_an_end_before_the_start_is_refused():
    text = _VALID.replace("effective_from: 2020-01-01", "effective_from: 2020-01-01\neffective_to: 2019-12-31")
    with pytest.raises(LoadError, match="not after effective_from") as caught:
        parse_rule(text + "condition: {value_code_present: '61'}\n", "inline.yaml")
    assert (caught.value.line, caught.value.field) == (4, "effective_to")


def test_docs_describe_every_operator_key_and_shipped_rule():
    from regulations import rules as vocabulary
    from tests.conftest import REPO

    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    for operator in vocabulary.OPERATORS:
        assert f"### `{operator}`" in text, operator
    for key in [*vocabulary._FILTER_KEYS, *vocabulary._REQUIRE_KEYS, *vocabulary._APPLIES_TO_KEYS, *vocabulary._RULE_KEYS]:
        assert f"| `{key}` |" in text, key
    for rule in load_rules():
        assert f"| `{rule.id}` |" in text, rule.id
    with pytest.raises(LoadError) as caught:
        load_rule(RULE_FIXTURES / "bad-pattern.yaml")
    assert f"    {str(caught.value).replace(str(REPO) + '/', '')}\n" in text
