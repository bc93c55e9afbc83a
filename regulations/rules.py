"""Billing rules as data: the vocabulary of a rule file, and its strict loader.

One YAML file per rule in ``regulations/rules/`` (the file is named after the rule's ``id``). A rule
says what it checks in a few declarative operators that a compliance officer can read; no Python,
no expressions. docs/rules.md documents every key and operator with an example. Shape::

    id: telehealth-units                  # the file's name, without .yaml
    title: Telehealth visits are reported one unit per service
    effective_from: 2023-01-01            # first day the rule applies (inclusive)
    effective_to: 2024-10-01              # optional: first day it no longer applies (exclusive)
    dated_by: line_date                   # optional: period_from (default), period_through, line_date
    severity: error                       # error, warning or info
    source: MCPM-CH10                     # a document id of regulations/hhpps_rules.yaml
    citation: Medicare Claims Processing Manual, chapter 10, section 40.2
    note: ...                             # optional: what was checked, what is doubtful
    applies_to:                           # which claims (every key optional)
      type_of_bill: ["032x"]              # patterns; x matches any character
      frequency: ["7", "9"]               # the fourth character of the type of bill
      exclude_type_of_bill: ["032A"]
      state: [IL, OH]                     # the billing provider's state
    condition:                            # exactly one operator (all_of combines several)
      each_line:
        where: {hcpcs_in: [G0320, G0321]}
        require: {units_equal: 1}

Every scalar is read as text (a strict loader that also refuses a key given twice); an unknown key,
an unknown operator, a bad date, severity, pattern or code raises ``LoadError`` naming the file, the
line and the key path (``condition.all_of[1].each_line.where.revenue_code``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Union


from loaders.errors import LoadError
from regulations.catalogue import Catalogue, load_catalogue
from loaders.strict_yaml import YamlList, YamlMapping, parse_document, read_text

DEFAULT_RULES_DIR = Path(__file__).with_name("rules")

#: Severities, most serious first.
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")

#: Which date of a claim decides whether a rule is in force for it.
DATED_BY: tuple[str, ...] = ("period_from", "period_through", "line_date")

#: Claim fields that ``claim_has`` can require.
CLAIM_FIELDS: tuple[str, ...] = (
    "admission_date",
    "review_tracking_number",
    "hipps",
    "cbsa",
    "fips_county",
)

_RULE_KEYS = {
    "id": True,  # True: required
    "title": True,
    "effective_from": True,
    "effective_to": False,
    "dated_by": False,
    "severity": True,
    "source": True,
    "citation": True,
    "note": False,
    "applies_to": True,
    "condition": True,
}
_APPLIES_TO_KEYS = {"type_of_bill": False, "frequency": False, "exclude_type_of_bill": False, "state": False}
_FILTER_KEYS = {"revenue_code": False, "hcpcs_in": False, "hcpcs_not_in": False, "has_hcpcs": False}
_REQUIRE_KEYS = {
    "revenue_code": False,
    "hcpcs_in": False,
    "has_line_date": False,
    "line_date_within_period": False,
    "hcpcs_active_on_line_date": False,
    "units_multiple_of": False,
    "units_at_least": False,
    "units_at_most": False,
    "units_equal": False,
}
_COUNT_KEYS = {"where": False, "equals": False, "at_least": False, "at_most": False}

_RULE_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_REVENUE_PATTERN = re.compile(r"[0-9x]{4}")
_BILL_PATTERN = re.compile(r"0[0-9x]{2}[0-9A-Zx]")
_FREQUENCY = re.compile(r"[0-9A-Z]")
_STATE = re.compile(r"[A-Z]{2}")
_HCPCS = re.compile(r"[A-Z0-9]{5}")
_HCPCS_RANGE = re.compile(r"([A-Z])(\d{4})-([A-Z])(\d{4})")
_VALUE_CODE = re.compile(r"[0-9A-Z]{2}")
_WHOLE = re.compile(r"\d+")
_DECIMAL = re.compile(r"\d+(\.\d+)?")


# --- the vocabulary ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pattern:
    """A code pattern in UB-04 style: ``042x`` matches 0420-0429 (``x`` is any one character)."""

    text: str

    def matches(self, code: str | None) -> bool:
        if code is None or len(code) != len(self.text):
            return False
        return all(want == "x" or want == have for want, have in zip(self.text, code))


@dataclass(frozen=True, slots=True)
class CodeSet:
    """HCPCS codes written as codes and ranges (``G0493-G0496``), as written in the rule."""

    written: tuple[str, ...]
    codes: frozenset[str]

    def __contains__(self, code: object) -> bool:
        return code in self.codes


@dataclass(frozen=True, slots=True)
class LineFilter:
    """Which lines an operator looks at. Every given key must match; none given: every line."""

    revenue_code: tuple[Pattern, ...] | None = None
    hcpcs_in: CodeSet | None = None
    hcpcs_not_in: CodeSet | None = None
    has_hcpcs: bool | None = None

    def matches(self, revenue_code: str, hcpcs: str | None) -> bool:
        if self.revenue_code is not None and not any(p.matches(revenue_code) for p in self.revenue_code):
            return False
        if self.hcpcs_in is not None and hcpcs not in self.hcpcs_in:
            return False
        if self.hcpcs_not_in is not None and hcpcs in self.hcpcs_not_in:
            return False
        if self.has_hcpcs is not None and (hcpcs is not None) != self.has_hcpcs:
            return False
        return True

    def describe(self) -> str:
        parts = []
        if self.revenue_code is not None:
            parts.append("revenue code " + " or ".join(p.text for p in self.revenue_code))
        if self.hcpcs_in is not None:
            parts.append("HCPCS " + ", ".join(self.hcpcs_in.written))
        if self.hcpcs_not_in is not None:
            parts.append("HCPCS other than " + ", ".join(self.hcpcs_not_in.written))
        if self.has_hcpcs is not None:
            parts.append("with a HCPCS code" if self.has_hcpcs else "without a HCPCS code")
        return ", ".join(parts) or "any line"


@dataclass(frozen=True, slots=True)
class LineRequirement:
    """What each selected line must satisfy (every given key)."""

    revenue_code: tuple[Pattern, ...] | None = None
    hcpcs_in: CodeSet | None = None
    has_line_date: bool = False
    line_date_within_period: bool = False
    hcpcs_active_on_line_date: bool = False
    units_multiple_of: Decimal | None = None
    units_at_least: Decimal | None = None
    units_at_most: Decimal | None = None
    units_equal: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class CountLines:
    where: LineFilter
    equals: int | None = None
    at_least: int | None = None
    at_most: int | None = None


@dataclass(frozen=True, slots=True)
class EachLine:
    where: LineFilter
    require: LineRequirement


@dataclass(frozen=True, slots=True)
class ValueCodePresent:
    code: str


@dataclass(frozen=True, slots=True)
class ClaimHas:
    field: str


@dataclass(frozen=True, slots=True)
class HippsValidForPeriod:
    pass


@dataclass(frozen=True, slots=True)
class CbsaKnownForPeriod:
    pass


@dataclass(frozen=True, slots=True)
class VisitsReachLupaThreshold:
    visits: LineFilter


Condition = Union[
    AllOf, CountLines, EachLine, ValueCodePresent, ClaimHas, HippsValidForPeriod, CbsaKnownForPeriod,
    VisitsReachLupaThreshold,
]

#: The operators of a condition, in the order docs/rules.md documents them.
OPERATORS: tuple[str, ...] = (
    "all_of",
    "each_line",
    "count_lines",
    "value_code_present",
    "claim_has",
    "hipps_valid_for_period",
    "cbsa_known_for_period",
    "visits_reach_lupa_threshold",
)


@dataclass(frozen=True, slots=True)
class AppliesTo:
    type_of_bill: tuple[Pattern, ...] = ()
    frequency: frozenset[str] | None = None
    exclude_type_of_bill: tuple[Pattern, ...] = ()
    state: frozenset[str] | None = None

    def matches(self, type_of_bill: str, state: str | None) -> bool:
        if self.type_of_bill and not any(p.matches(type_of_bill) for p in self.type_of_bill):
            return False
        if self.frequency is not None and type_of_bill[3:] not in self.frequency:
            return False
        if any(p.matches(type_of_bill) for p in self.exclude_type_of_bill):
            return False
        if self.state is not None and state not in self.state:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    effective_from: date
    effective_to: date | None  # exclusive
    dated_by: str
    severity: str
    source: str
    citation: str
    note: str
    applies_to: AppliesTo
    condition: Condition
    path: str

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on < self.effective_to)

    @property
    def full_citation(self) -> str:
        """The rule's citation with its catalogue document id."""
        return f"{self.citation} [{self.source}]"


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def severity_rank(severity: str) -> int:
    """0 for error, 1 warning, 2 info: lower is more serious."""
    return SEVERITIES.index(severity)


# --- loading ---------------------------------------------------------------------------------


def load_rules(folder: str | Path | None = None, *, catalogue: Catalogue | None = None) -> RuleSet:
    """Read every ``*.yaml`` rule file of ``folder`` (default: the package's ``rules/``), by name."""
    folder = Path(folder) if folder is not None else DEFAULT_RULES_DIR
    if not folder.is_dir():
        raise LoadError(folder, "no such folder of rule files")
    catalogue = catalogue or load_catalogue()
    rules = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        rule = load_rule(path, catalogue=catalogue)
        if rule.id in seen:
            raise LoadError(path, f"rule id {rule.id!r} is also used by {seen[rule.id]}", field="id")
        seen[rule.id] = path.name
        rules.append(rule)
    if not rules:
        raise LoadError(folder, "the folder holds no rule files (*.yaml)")
    return RuleSet(tuple(rules))


def load_rule(path: str | Path, *, catalogue: Catalogue | None = None) -> Rule:
    """Read and validate one rule file; its ``id`` must be the file's name without ``.yaml``."""
    path = Path(path)
    text = read_text(path)
    rule = parse_rule(text, path, catalogue=catalogue)
    if rule.id != path.stem:
        raise LoadError(path, f"the rule id {rule.id!r} differs from the file name {path.stem!r}", line=1, field="id")
    return rule


def parse_rule(text: str, path: str | Path = "<text>", *, catalogue: Catalogue | None = None) -> Rule:
    """Validate the text of one rule file."""
    document = parse_document(text, path)
    reader = _Reader(path)
    if not isinstance(document, YamlMapping):
        raise LoadError(path, "a rule file is a mapping with the keys " + ", ".join(_RULE_KEYS), line=1)
    reader.keys(document, _RULE_KEYS, "")
    rule_id = reader.text(document, "id", "")
    if not _RULE_ID.fullmatch(rule_id):
        reader.fail(document, "id", "", f"not a rule id (lower-case words joined by '-'): {rule_id!r}")
    effective_from = reader.date(document, "effective_from", "")
    effective_to = reader.date(document, "effective_to", "") if "effective_to" in document else None
    if effective_to is not None and effective_to <= effective_from:
        reader.fail(document, "effective_to", "", f"{effective_to} is not after effective_from {effective_from}")
    severity = reader.choice(document, "severity", "", SEVERITIES)
    dated_by = reader.choice(document, "dated_by", "", DATED_BY) if "dated_by" in document else "period_from"
    source = reader.text(document, "source", "")
    catalogue = catalogue or load_catalogue()
    try:
        catalogue.get(source)
    except KeyError:
        reader.fail(document, "source", "", f"{source!r} is not a document id of the regulation catalogue")
    condition = reader.condition(document, "condition", "")
    if dated_by == "line_date" and not _line_level(condition):
        reader.fail(document, "dated_by", "", "line_date needs a condition made of each_line operators only")
    return Rule(
        id=rule_id,
        title=reader.text(document, "title", ""),
        effective_from=effective_from,
        effective_to=effective_to,
        dated_by=dated_by,
        severity=severity,
        source=source,
        citation=reader.text(document, "citation", ""),
        note=reader.text(document, "note", "") if "note" in document else "",
        applies_to=reader.applies_to(document, "applies_to", ""),
        condition=condition,
        path=str(path),
    )


def _line_level(condition: Condition) -> bool:
    if isinstance(condition, AllOf):
        return all(_line_level(part) for part in condition.conditions)
    return isinstance(condition, EachLine)


class _Reader:
    """Reads the parts of one rule file, raising LoadError with the file, line and key path."""

    def __init__(self, path: str | Path):
        self.path = path

    @staticmethod
    def _where(where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def fail(self, mapping: YamlMapping, key: str, where: str, message: str):
        raise LoadError(self.path, message, line=mapping.lines.get(key, mapping.line), field=self._where(where, key))

    def keys(self, mapping: YamlMapping, allowed: dict[str, bool], where: str, what: str = "key") -> None:
        for key in mapping:
            if key not in allowed:
                self.fail(mapping, key, where, f"unknown {what} {key!r} (allowed: {', '.join(allowed)})")
        for key, required in allowed.items():
            if required and key not in mapping:
                raise LoadError(self.path, f"missing key {key!r}", line=mapping.line, field=self._where(where, key))

    def mapping(self, mapping: YamlMapping, key: str, where: str) -> YamlMapping:
        value = mapping[key]
        if not isinstance(value, YamlMapping):
            self.fail(mapping, key, where, "expected a mapping of keys")
        return value

    def text(self, mapping: YamlMapping, key: str, where: str) -> str:
        value = mapping[key]
        if not isinstance(value, str):
            self.fail(mapping, key, where, "expected a single value")
        value = value.strip()
        if not value:
            self.fail(mapping, key, where, "empty value")
        return value

    def texts(self, mapping: YamlMapping, key: str, where: str) -> list[str]:
        """A list of values; a single value stands for a list of one."""
        value = mapping[key]
        if isinstance(value, str):
            return [self.text(mapping, key, where)]
        if not isinstance(value, YamlList) or not value:
            self.fail(mapping, key, where, "expected a value or a non-empty list of values")
        if not all(isinstance(item, str) and item.strip() for item in value):
            self.fail(mapping, key, where, "expected a list of single values")
        return [item.strip() for item in value]

    def date(self, mapping: YamlMapping, key: str, where: str) -> date:
        text = self.text(mapping, key, where)
        try:
            if not _DATE.fullmatch(text):
                raise ValueError
            return date.fromisoformat(text)
        except ValueError:
            self.fail(mapping, key, where, f"not a date YYYY-MM-DD: {text!r}")

    def choice(self, mapping: YamlMapping, key: str, where: str, allowed: tuple[str, ...]) -> str:
        text = self.text(mapping, key, where)
        if text not in allowed:
            self.fail(mapping, key, where, f"{text!r} is not one of {', '.join(allowed)}")
        return text

    def true(self, mapping: YamlMapping, key: str, where: str) -> bool:
        text = self.text(mapping, key, where)
        if text != "true":
            self.fail(mapping, key, where, f"expected true, not {text!r} (leave the key out instead)")
        return True

    def boolean(self, mapping: YamlMapping, key: str, where: str) -> bool:
        text = self.text(mapping, key, where)
        if text not in ("true", "false"):
            self.fail(mapping, key, where, f"expected true or false, not {text!r}")
        return text == "true"

    def whole(self, mapping: YamlMapping, key: str, where: str) -> int:
        text = self.text(mapping, key, where)
        if not _WHOLE.fullmatch(text):
            self.fail(mapping, key, where, f"not a whole number: {text!r}")
        return int(text)

    def decimal(self, mapping: YamlMapping, key: str, where: str) -> Decimal:
        text = self.text(mapping, key, where)
        if not _DECIMAL.fullmatch(text):
            self.fail(mapping, key, where, f"not a number: {text!r}")
        return Decimal(text)

    def patterns(self, mapping: YamlMapping, key: str, where: str, shape: re.Pattern[str], what: str) -> tuple[Pattern, ...]:
        patterns = []
        for text in self.texts(mapping, key, where):
            if not shape.fullmatch(text):
                self.fail(mapping, key, where, f"bad {what} pattern {text!r}")
            patterns.append(Pattern(text))
        return tuple(patterns)

    def codes(self, mapping: YamlMapping, key: str, where: str) -> CodeSet:
        written = self.texts(mapping, key, where)
        codes: set[str] = set()
        for text in written:
            if _HCPCS.fullmatch(text):
                codes.add(text)
                continue
            matched = _HCPCS_RANGE.fullmatch(text)
            if not matched or matched[1] != matched[3] or int(matched[2]) > int(matched[4]):
                self.fail(mapping, key, where, f"not a HCPCS code or a range like G0493-G0496: {text!r}")
            codes.update(f"{matched[1]}{number:04d}" for number in range(int(matched[2]), int(matched[4]) + 1))
        return CodeSet(tuple(written), frozenset(codes))

    def applies_to(self, mapping: YamlMapping, key: str, where: str) -> AppliesTo:
        block = self.mapping(mapping, key, where)
        here = self._where(where, key)
        self.keys(block, _APPLIES_TO_KEYS, here)
        return AppliesTo(
            type_of_bill=self.patterns(block, "type_of_bill", here, _BILL_PATTERN, "type of bill")
            if "type_of_bill" in block else (),
            frequency=frozenset(self._each(block, "frequency", here, _FREQUENCY, "frequency code"))
            if "frequency" in block else None,
            exclude_type_of_bill=self.patterns(block, "exclude_type_of_bill", here, _BILL_PATTERN, "type of bill")
            if "exclude_type_of_bill" in block else (),
            state=frozenset(self._each(block, "state", here, _STATE, "state code")) if "state" in block else None,
        )

    def _each(self, mapping: YamlMapping, key: str, where: str, shape: re.Pattern[str], what: str) -> list[str]:
        values = self.texts(mapping, key, where)
        for value in values:
            if not shape.fullmatch(value):
                self.fail(mapping, key, where, f"bad {what} {value!r}")
        return values

    def line_filter(self, mapping: YamlMapping, key: str, where: str) -> LineFilter:
        if key not in mapping:
            return LineFilter()
        block = self.mapping(mapping, key, where)
        here = self._where(where, key)
        self.keys(block, _FILTER_KEYS, here, "line filter")
        return LineFilter(
            revenue_code=self.patterns(block, "revenue_code", here, _REVENUE_PATTERN, "revenue code")
            if "revenue_code" in block else None,
            hcpcs_in=self.codes(block, "hcpcs_in", here) if "hcpcs_in" in block else None,
            hcpcs_not_in=self.codes(block, "hcpcs_not_in", here) if "hcpcs_not_in" in block else None,
            has_hcpcs=self.boolean(block, "has_hcpcs", here) if "has_hcpcs" in block else None,
        )

    def requirement(self, mapping: YamlMapping, key: str, where: str) -> LineRequirement:
        block = self.mapping(mapping, key, where)
        here = self._where(where, key)
        self.keys(block, _REQUIRE_KEYS, here, "line requirement")
        if not block:
            self.fail(mapping, key, where, "require needs at least one line requirement")
        found = {}
        for name in block:
            if name == "revenue_code":
                found[name] = self.patterns(block, name, here, _REVENUE_PATTERN, "revenue code")
            elif name == "hcpcs_in":
                found[name] = self.codes(block, name, here)
            elif name.startswith("units_"):
                found[name] = self.decimal(block, name, here)
            else:
                found[name] = self.true(block, name, here)
        if found.get("units_multiple_of") == 0:
            self.fail(block, "units_multiple_of", here, "units_multiple_of must be more than 0")
        return LineRequirement(**found)

    def condition(self, mapping: YamlMapping, key: str, where: str) -> Condition:
        block = self.mapping(mapping, key, where)
        here = self._where(where, key)
        if len(block) != 1:
            self.fail(mapping, key, where, f"a condition is one operator ({', '.join(OPERATORS)}); use all_of for several")
        (operator,) = block
        if operator not in OPERATORS:
            self.fail(block, operator, here, f"unknown operator {operator!r} (allowed: {', '.join(OPERATORS)})")
        inner = self._where(here, operator)
        if operator == "all_of":
            items = block[operator]
            if not isinstance(items, YamlList) or not items:
                self.fail(block, operator, here, "all_of takes a non-empty list of conditions")
            parts = []
            for index, item in enumerate(items):
                if not isinstance(item, YamlMapping):
                    raise LoadError(self.path, "expected a condition (a mapping)", line=items.line,
                                    field=f"{inner}[{index}]")
                holder = YamlMapping({"item": item})
                holder.lines, holder.line = {"item": item.line}, item.line
                parts.append(self._condition_at(holder, f"{inner}[{index}]"))
            return AllOf(tuple(parts))
        if operator == "each_line":
            body = self.mapping(block, operator, here)
            self.keys(body, {"where": False, "require": True}, inner)
            return EachLine(self.line_filter(body, "where", inner), self.requirement(body, "require", inner))
        if operator == "count_lines":
            body = self.mapping(block, operator, here)
            self.keys(body, _COUNT_KEYS, inner)
            bounds = {name: self.whole(body, name, inner) for name in ("equals", "at_least", "at_most") if name in body}
            if not bounds or ("equals" in bounds and len(bounds) > 1):
                self.fail(block, operator, here, "count_lines takes equals, or at_least and/or at_most")
            return CountLines(self.line_filter(body, "where", inner), **bounds)
        if operator == "value_code_present":
            code = self.text(block, operator, here)
            if not _VALUE_CODE.fullmatch(code):
                self.fail(block, operator, here, f"not a two-character value code: {code!r}")
            return ValueCodePresent(code)
        if operator == "claim_has":
            return ClaimHas(self.choice(block, operator, here, CLAIM_FIELDS))
        if operator == "hipps_valid_for_period":
            self.true(block, operator, here)
            return HippsValidForPeriod()
        if operator == "cbsa_known_for_period":
            self.true(block, operator, here)
            return CbsaKnownForPeriod()
        body = self.mapping(block, operator, here)  # visits_reach_lupa_threshold
        self.keys(body, {"visits": True}, inner)
        return VisitsReachLupaThreshold(self.line_filter(body, "visits", inner))

    def _condition_at(self, holder: YamlMapping, where: str) -> Condition:
        # An all_of item is read as if it were the value of a key named after its position.
        try:
            return self.condition(holder, "item", "")
        except LoadError as error:
            field = error.field or ""
            field = where + field[len("item"):] if field.startswith("item") else field
            raise LoadError(self.path, error.message, line=error.line, field=field) from None
