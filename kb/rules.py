"""Checking claims against the billing rules (``regulations/rules/*.yaml``): findings with citations.

A claim is held only to the rules in force on its own dates: a rule is dated by the period's
from-date (or through-date, or, for line rules, each line's date; see ``Rule.dated_by``). What a
rule needs to know about codes (HCPCS in effect on a date, HIPPS codes and their LUPA thresholds,
CBSAs of the wage index) it asks a :class:`Knowledge`: :class:`MemoryKnowledge` holds plain tables
(for tests, or built from the CMS files with :meth:`MemoryKnowledge.from_hhpps_tables`), and
:meth:`DatabaseKnowledge.preload` fills the same tables from the knowledge base in three set-based
queries, so checking never queries per claim or per line.

When the knowledge base cannot answer (a code in no loaded release, a date before the first loaded
table) the rule cannot decide: that is reported as an ``info`` finding saying so, never as a pass
or a failure.

A finding's message names codes, dates and counts only: never a beneficiary, a diagnosis or any
other field of the patient.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session

from kb.claims import read_claims
from kb.models import HcpcsCode, HcpcsVersion, HhppsCaseMix, HhppsWageIndex, Release
from loaders.claim_record import Claim, ClaimLine
from loaders.errors import LoadError
from regulations.rules import (
    SEVERITIES,
    AllOf,
    CbsaKnownForPeriod,
    ClaimHas,
    Condition,
    CountLines,
    EachLine,
    HippsValidForPeriod,
    LineFilter,
    LineRequirement,
    Rule,
    RuleSet,
    ValueCodePresent,
    VisitsReachLupaThreshold,
    load_rules,
    severity_rank,
)

#: Release sources of the HH PPS tables the knowledge reads (see ``kb.store.store_hhpps_table``).
CASE_MIX_SOURCE = "hhpps-hrg"
WAGE_INDEX_SOURCE = "hhpps-wage_index"

_CANNOT_CHECK = "info"

_CLAIM_FIELD_LABELS = {
    "admission_date": "admission date",
    "review_tracking_number": "pre-claim review tracking number (REF*G1)",
    "hipps": "HIPPS code",
    "cbsa": "CBSA (value code 61)",
    "fips_county": "FIPS county (value code 85)",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule a claim (or one of its lines) does not satisfy."""

    claim_id: str
    agency_id: str
    line_number: int | None
    rule_id: str
    severity: str
    message: str
    citation: str


# --- what the rules need to know ------------------------------------------------------------------


class Knowledge(Protocol):
    """Answers about codes on a date. ``None``: the knowledge base cannot say (nothing loaded)."""

    def hcpcs_active(self, code: str, on: date) -> bool | None: ...

    def hipps_known(self, hipps: str, on: date) -> bool | None: ...

    def lupa_threshold(self, hipps: str, on: date) -> int | None: ...

    def cbsa_known(self, cbsa: str, on: date) -> bool | None: ...


class MemoryKnowledge:
    """The knowledge as plain tables.

    ``hcpcs``: code -> the intervals it is in effect (``effective_from`` inclusive, ``effective_to``
    exclusive or None). ``case_mix``: the first day of each case-mix table -> HIPPS -> LUPA
    threshold. ``wage_index``: the first day of each wage index -> its CBSAs. A table applies from
    its first day until the next table's.
    """

    def __init__(
        self,
        *,
        hcpcs: Mapping[str, Iterable[tuple[date, date | None]]] | None = None,
        case_mix: Mapping[date, Mapping[str, int]] | None = None,
        wage_index: Mapping[date, Iterable[str]] | None = None,
    ):
        self._hcpcs = {code: tuple(spans) for code, spans in (hcpcs or {}).items()}
        self._case_mix_starts = sorted(case_mix or {})
        self._case_mix = [dict((case_mix or {})[start]) for start in self._case_mix_starts]
        self._wage_starts = sorted(wage_index or {})
        self._wage_index = [frozenset((wage_index or {})[start]) for start in self._wage_starts]
        self._active: dict[tuple[str, date], bool | None] = {}

    def hcpcs_active(self, code: str, on: date) -> bool | None:
        key = (code, on)
        answer = self._active.get(key, key)
        if answer is key:
            spans = self._hcpcs.get(code)
            answer = None if spans is None else any(
                start <= on and (end is None or on < end) for start, end in spans
            )
            self._active[key] = answer
        return answer  # type: ignore[return-value]

    def _case_mix_on(self, on: date) -> dict[str, int] | None:
        index = bisect.bisect_right(self._case_mix_starts, on) - 1
        return self._case_mix[index] if index >= 0 else None

    def hipps_known(self, hipps: str, on: date) -> bool | None:
        table = self._case_mix_on(on)
        return None if table is None else hipps in table

    def lupa_threshold(self, hipps: str, on: date) -> int | None:
        table = self._case_mix_on(on)
        return None if table is None else table.get(hipps)

    def cbsa_known(self, cbsa: str, on: date) -> bool | None:
        index = bisect.bisect_right(self._wage_starts, on) - 1
        return None if index < 0 else cbsa in self._wage_index[index]

    def case_mix_table_start(self, on: date) -> date | None:
        """The first day of the case-mix table in force on ``on`` (for messages)."""
        index = bisect.bisect_right(self._case_mix_starts, on) - 1
        return self._case_mix_starts[index] if index >= 0 else None

    @classmethod
    def from_hhpps_tables(
        cls, tables: Iterable, *, hcpcs: Mapping[str, Iterable[tuple[date, date | None]]] | None = None
    ) -> MemoryKnowledge:
        """Build from parsed CMS pricer tables (``loaders.hhpps.HhppsTable`` of kind ``hrg`` and
        ``wage_index``; other kinds are ignored), plus HCPCS intervals."""
        case_mix: dict[date, dict[str, int]] = {}
        wage_index: dict[date, set[str]] = {}
        for table in tables:
            if table.kind == "hrg":
                case_mix.setdefault(table.effective_date, {}).update(
                    (row.hipps, row.lupa_threshold) for row in table.rows
                )
            elif table.kind == "wage_index":
                wage_index.setdefault(table.effective_date, set()).update(row.cbsa for row in table.rows)
        return cls(hcpcs=hcpcs, case_mix=case_mix, wage_index=wage_index)


class DatabaseKnowledge(MemoryKnowledge):
    """The knowledge read from the knowledge base once, up front (see :meth:`preload`)."""

    queries: int = 0

    @classmethod
    def preload(cls, session: Session, *, codes: Iterable[str] | None = None) -> DatabaseKnowledge:
        """Read, in three queries, the HCPCS intervals of ``codes`` (None: of every code) as the
        latest loaded releases say, every HH PPS case-mix table and every wage index.

        Of several tables with the same effective date (a re-issue), the latest published wins.
        """
        version = HcpcsVersion.__table__
        hcpcs_query = (
            sa.select(HcpcsCode.code, version.c.effective_from, version.c.effective_to, version.c.added_date,
                      version.c.termination_date)
            .join(version, version.c.code_id == HcpcsCode.id)
            .where(version.c.known_to.is_(None))
        )
        if codes is not None:
            wanted = sorted(set(codes))
            hcpcs_query = hcpcs_query.where(HcpcsCode.code.in_(wanted)) if wanted else None
        versions: dict[str, list[tuple]] = {}
        queries = 0
        if hcpcs_query is not None:
            queries += 1
            for code, *columns in session.execute(hcpcs_query):
                versions.setdefault(code, []).append(tuple(columns))
        hcpcs = {code: _spans(rows) for code, rows in versions.items()}
        case_mix = _tables_by_start(
            session.execute(
                sa.select(Release.effective_date, Release.published_date, Release.id,
                          HhppsCaseMix.hipps, HhppsCaseMix.lupa_threshold)
                .join(Release, Release.id == HhppsCaseMix.release_id)
                .where(Release.source == CASE_MIX_SOURCE)
            )
        )
        wage_rows = session.execute(
            sa.select(Release.effective_date, Release.published_date, Release.id, HhppsWageIndex.cbsa, sa.null())
            .join(Release, Release.id == HhppsWageIndex.release_id)
            .where(Release.source == WAGE_INDEX_SOURCE)
        )
        wage_index = {start: set(table) for start, table in _tables_by_start(wage_rows).items()}
        knowledge = cls(hcpcs=hcpcs, case_mix=case_mix, wage_index=wage_index)
        knowledge.queries = queries + 2
        return knowledge


def _spans(versions: list[tuple]) -> list[tuple[date, date | None]]:
    """The intervals a code is in effect, from its versions (effective from, effective to, added
    date, termination date).

    A release shows a code's state only from its last action (G0151 from 2011-01-01 in the 2019
    file, though added in 1999): before its first version, the code was in effect from its added
    date, up to its termination when that came first.
    """
    spans = [(effective_from, effective_to) for effective_from, effective_to, _, _ in versions]
    first_from, _, added, terminated = min(versions, key=lambda row: row[0])
    if added is not None and added < first_from:
        end = first_from if terminated is None else min(first_from, date.fromordinal(terminated.toordinal() + 1))
        if added < end:
            spans.append((added, end))
    return spans


def _tables_by_start(rows) -> dict[date, dict[str, int | None]]:
    """Rows (effective date, published date, release id, key, value) -> one table per effective
    date, from the latest published release of that date."""
    chosen: dict[date, tuple[date, int]] = {}
    tables: dict[tuple[date, int], dict[str, int | None]] = {}
    for effective, published, release_id, key, value in rows:
        tables.setdefault((effective, release_id), {})[key] = value
        if effective not in chosen or (published, release_id) > chosen[effective]:
            chosen[effective] = (published, release_id)
    return {effective: tables[(effective, release_id)] for effective, (_, release_id) in chosen.items()}


# --- the checker -----------------------------------------------------------------------------------

# A compiled check takes a claim and the rule's date window for line-dated rules (None otherwise)
# and yields (line number or None, message, severity or None for the rule's own).
_Result = tuple[int | None, str, str | None]
_Check = Callable[[Claim, Rule | None], Iterator[_Result]]


class Checker:
    """The rules compiled once against one knowledge; :meth:`check` one claim at a time."""

    def __init__(self, rules: RuleSet | Iterable[Rule], knowledge: Knowledge):
        self.rules = tuple(rules)
        self.knowledge = knowledge
        self._compiled = [(rule, _Compiler(knowledge).condition(rule.condition), rule.full_citation) for rule in self.rules]
        self._applicable: dict[tuple[str, str | None], list] = {}

    def check(self, claim: Claim) -> list[Finding]:
        key = (claim.type_of_bill, claim.state)
        applicable = self._applicable.get(key)
        if applicable is None:
            applicable = [entry for entry in self._compiled if entry[0].applies_to.matches(*key)]
            self._applicable[key] = applicable
        findings: list[Finding] = []
        for rule, check, citation in applicable:
            if rule.dated_by == "line_date":
                window = rule
            else:
                window = None
                if not rule.in_force(claim.period_from if rule.dated_by == "period_from" else claim.period_through):
                    continue
            for line_number, message, severity in check(claim, window):
                findings.append(Finding(claim.claim_id, claim.agency_id, line_number, rule.id,
                                        severity or rule.severity, message, citation))
        return findings


def check_claims(claims: Iterable[Claim], rules: RuleSet | Iterable[Rule], knowledge: Knowledge) -> Iterator[Finding]:
    """Every finding of every claim, claim by claim in the claims' order."""
    checker = Checker(rules, knowledge)
    for claim in claims:
        yield from checker.check(claim)


def codes_a_finding_needs(condition: Condition) -> frozenset[str] | None:
    """The HCPCS codes of which a claim must bill one for ``condition`` to find anything on it, or
    None when a claim billing none of them may be flagged too.

    A claim can then be left unread when it bills none of the codes (``kb.review_claims`` asks the
    database for the claims billing them): ``each_line`` tests only the lines its ``where`` selects,
    so a ``where`` limited to ``hcpcs_in`` needs one of those codes; ``count_lines`` over such a
    ``where`` needs one when no line at all passes its bounds (an upper bound only, or exactly 0);
    ``all_of``, one of any of its parts' codes. Every other operator reads claim fields or lines of
    any code: None.
    """
    if isinstance(condition, AllOf):
        parts = [codes_a_finding_needs(part) for part in condition.conditions]
        return None if any(part is None for part in parts) else frozenset().union(*parts)
    if isinstance(condition, (EachLine, CountLines)) and condition.where.hcpcs_in is not None:
        if isinstance(condition, CountLines):
            low = condition.equals if condition.equals is not None else condition.at_least
            if low is not None and low > 0:
                return None  # a claim without the lines has too few
        return condition.where.hcpcs_in.codes
    return None


def reads_lines(condition: Condition) -> bool:
    """Whether ``condition`` looks at a claim's lines (False: its fields and codes only, so claims
    read without their lines give the same findings)."""
    if isinstance(condition, AllOf):
        return any(reads_lines(part) for part in condition.conditions)
    return not isinstance(condition, (ValueCodePresent, ClaimHas, CbsaKnownForPeriod))


class _Compiler:
    """Turns a rule's condition into a function; answers that depend only on a line's codes or
    units are remembered, so a large batch of claims costs little more than its lines."""

    def __init__(self, knowledge: Knowledge):
        self.knowledge = knowledge

    def condition(self, condition: Condition) -> _Check:
        if isinstance(condition, AllOf):
            if all(isinstance(part, EachLine) for part in condition.conditions):
                return self.each_line(*condition.conditions)
            parts = [self.condition(part) for part in condition.conditions]

            def all_of(claim: Claim, window: Rule | None) -> Iterator[_Result]:
                for part in parts:
                    yield from part(claim, window)

            return all_of
        if isinstance(condition, EachLine):
            return self.each_line(condition)
        if isinstance(condition, CountLines):
            return self.count_lines(condition)
        if isinstance(condition, ValueCodePresent):
            return self.value_code_present(condition)
        if isinstance(condition, ClaimHas):
            return self.claim_has(condition)
        if isinstance(condition, HippsValidForPeriod):
            return self.hipps_valid_for_period()
        if isinstance(condition, CbsaKnownForPeriod):
            return self.cbsa_known_for_period()
        if isinstance(condition, VisitsReachLupaThreshold):
            return self.visits_reach_lupa_threshold(condition)
        raise TypeError(f"unknown condition {condition!r}")

    @staticmethod
    def selector(where: LineFilter) -> Callable[[ClaimLine], bool]:
        cache: dict[tuple[str, str | None], bool] = {}

        def selected(line: ClaimLine) -> bool:
            key = (line.revenue_code, line.hcpcs)
            answer = cache.get(key)
            if answer is None:
                answer = cache[key] = where.matches(line.revenue_code, line.hcpcs)
            return answer

        return selected

    def each_line(self, *conditions: EachLine) -> _Check:
        """One pass over the lines for one or several each_line operators: which tests apply to a
        line depends only on its revenue code and HCPCS code, so it is worked out once per pair."""
        parts = [(condition.where, self.line_tests(condition.require, condition.where)) for condition in conditions]
        tests_for: dict[tuple[str, str | None], tuple] = {}

        def each_line(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            for line in claim.lines:
                key = (line.revenue_code, line.hcpcs)
                tests = tests_for.get(key)
                if tests is None:
                    tests = tests_for[key] = tuple(
                        test for where, line_tests in parts if where.matches(*key) for test in line_tests
                    )
                if not tests:
                    continue
                if window is not None and not window.in_force(line.service_date or claim.period_from):
                    continue
                for test in tests:
                    result = test(claim, line)
                    if result is not None:
                        yield line.line_number, result[0], result[1]

        return each_line

    def line_tests(self, require: LineRequirement, where: LineFilter) -> list[Callable]:
        """One function per requirement: (claim, line) -> None, or (message, severity or None)."""
        tests: list[Callable] = []
        if require.revenue_code is not None:
            patterns = require.revenue_code
            wanted = " or ".join(p.text for p in patterns)
            by_code: dict[tuple[str, str | None], tuple | None] = {}

            def revenue_code(claim: Claim, line: ClaimLine):
                key = (line.revenue_code, line.hcpcs)
                if key not in by_code:
                    by_code[key] = None if any(p.matches(line.revenue_code) for p in patterns) else (
                        f"{line.hcpcs or 'the line'} is billed under revenue code {line.revenue_code}, "
                        f"not {wanted}", None)
                return by_code[key]

            tests.append(revenue_code)
        if require.hcpcs_in is not None:
            codes = require.hcpcs_in
            allowed = ", ".join(codes.written)
            by_hcpcs: dict[tuple[str, str | None], tuple | None] = {}

            def hcpcs_in(claim: Claim, line: ClaimLine):
                key = (line.revenue_code, line.hcpcs)
                if key not in by_hcpcs:
                    by_hcpcs[key] = None if line.hcpcs in codes else (
                        f"revenue code {line.revenue_code} line carries "
                        f"{'HCPCS ' + line.hcpcs if line.hcpcs else 'no HCPCS code'}, not one of {allowed}", None)
                return by_hcpcs[key]

            tests.append(hcpcs_in)
        if require.has_line_date:
            def has_line_date(claim: Claim, line: ClaimLine):
                if line.service_date is None:
                    return f"revenue code {line.revenue_code} line has no line date", None
                return None

            tests.append(has_line_date)
        if require.line_date_within_period:
            def line_date_within_period(claim: Claim, line: ClaimLine):
                day = line.service_date
                if day is not None and not claim.period_from <= day <= claim.period_through:
                    return (f"line date {day.isoformat()} is outside the period "
                            f"{claim.period_from.isoformat()} to {claim.period_through.isoformat()}", None)
                return None

            tests.append(line_date_within_period)
        if require.hcpcs_active_on_line_date:
            knowledge = self.knowledge

            def hcpcs_active_on_line_date(claim: Claim, line: ClaimLine):
                if line.hcpcs is None:
                    return None
                day = line.service_date or claim.period_from
                active = knowledge.hcpcs_active(line.hcpcs, day)
                if active:
                    return None
                if active is None:
                    return (f"cannot check: HCPCS {line.hcpcs} is in no HCPCS release loaded in the "
                            f"knowledge base", _CANNOT_CHECK)
                return f"HCPCS {line.hcpcs} is not in effect on the line date {day.isoformat()}", None

            tests.append(hcpcs_active_on_line_date)
        units_tests = self.units_tests(require)
        if units_tests:
            by_units: dict[Decimal, tuple | None] = {}

            def units(claim: Claim, line: ClaimLine):
                value = line.units
                if value not in by_units:
                    by_units[value] = next((problem for problem in (test(value) for test in units_tests) if problem), None)
                problem = by_units[value]
                if problem is None:
                    return None
                return f"{line.hcpcs or 'revenue code ' + line.revenue_code} line reports {value} units: {problem}", None

            tests.append(units)
        return tests

    @staticmethod
    def units_tests(require: LineRequirement) -> list[Callable[[Decimal], str | None]]:
        tests: list[Callable[[Decimal], str | None]] = []
        if require.units_multiple_of is not None:
            step = require.units_multiple_of
            tests.append(lambda units: None if units % step == 0 else f"not a multiple of {step}")
        if require.units_at_least is not None:
            low = require.units_at_least
            tests.append(lambda units: None if units >= low else f"fewer than {low}")
        if require.units_at_most is not None:
            high = require.units_at_most
            tests.append(lambda units: None if units <= high else f"more than {high}")
        if require.units_equal is not None:
            exact = require.units_equal
            tests.append(lambda units: None if units == exact else f"expected exactly {exact}")
        return tests

    def count_lines(self, condition: CountLines) -> _Check:
        selected = self.selector(condition.where)
        what = condition.where.describe()
        if condition.equals is not None:
            expected = f"exactly {condition.equals}"
        elif condition.at_least is not None and condition.at_most is not None:
            expected = f"{condition.at_least} to {condition.at_most}"
        elif condition.at_least is not None:
            expected = f"at least {condition.at_least}"
        else:
            expected = f"at most {condition.at_most}"
        low = condition.equals if condition.equals is not None else condition.at_least
        high = condition.equals if condition.equals is not None else condition.at_most

        def count_lines(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            count = sum(1 for line in claim.lines if selected(line))
            if (low is not None and count < low) or (high is not None and count > high):
                yield None, f"{count} line{'s' if count != 1 else ''} with {what} (expected {expected})", None

        return count_lines

    @staticmethod
    def value_code_present(condition: ValueCodePresent) -> _Check:
        code = condition.code

        def value_code_present(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            if not any(value_code == code for value_code, _ in claim.value_codes):
                yield None, f"value code {code} is missing", None

        return value_code_present

    @staticmethod
    def claim_has(condition: ClaimHas) -> _Check:
        name = condition.field
        label = _CLAIM_FIELD_LABELS[name]

        def claim_has(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            if not getattr(claim, name):
                yield None, f"the claim has no {label}", None

        return claim_has

    def hipps_valid_for_period(self) -> _Check:
        knowledge = self.knowledge

        def hipps_valid_for_period(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            on = claim.period_from
            for line in claim.lines:
                if line.revenue_code != "0023":
                    continue
                if not line.hipps:
                    yield line.line_number, "the 0023 line carries no HIPPS code", None
                    continue
                known = knowledge.hipps_known(line.hipps, on)
                if known is None:
                    yield (line.line_number, f"cannot check: no HH PPS case-mix table in the knowledge base is in "
                           f"force on {on.isoformat()}", _CANNOT_CHECK)
                elif not known:
                    yield (line.line_number, f"HIPPS {line.hipps} is not in the HH PPS case-mix table in force "
                           f"on the period's from-date {on.isoformat()}", None)

        return hipps_valid_for_period

    def cbsa_known_for_period(self) -> _Check:
        knowledge = self.knowledge

        def cbsa_known_for_period(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            if claim.cbsa is None:
                return
            on = claim.period_from
            known = knowledge.cbsa_known(claim.cbsa, on)
            if known is None:
                yield None, f"cannot check: no HH PPS wage index in the knowledge base is in force on {on.isoformat()}", _CANNOT_CHECK
            elif not known:
                yield (None, f"CBSA {claim.cbsa} (value code 61) is not in the wage index in force on the period's "
                       f"from-date {on.isoformat()}", None)

        return cbsa_known_for_period

    def visits_reach_lupa_threshold(self, condition: VisitsReachLupaThreshold) -> _Check:
        knowledge = self.knowledge
        counted = self.selector(condition.visits)

        def visits_reach_lupa_threshold(claim: Claim, window: Rule | None) -> Iterator[_Result]:
            hipps = next((line.hipps for line in claim.lines if line.revenue_code == "0023" and line.hipps), claim.hipps)
            if not hipps:
                return
            on = claim.period_from
            threshold = knowledge.lupa_threshold(hipps, on)
            if threshold is None:
                if knowledge.hipps_known(hipps, on) is None:
                    yield (None, f"cannot check: no HH PPS case-mix table in the knowledge base is in force on "
                           f"{on.isoformat()}", _CANNOT_CHECK)
                return  # an unknown HIPPS code is hipps-line's finding
            visits = sum(1 for line in claim.lines if counted(line))
            if visits < threshold:
                yield (None, f"LUPA period: {visits} visit{'s' if visits != 1 else ''} counted, below the LUPA "
                       f"threshold of {threshold} for HIPPS {hipps} (table in force on {on.isoformat()}): "
                       "paid per visit", None)

        return visits_reach_lupa_threshold


# --- results, and the two ways of running a check -------------------------------------------------


@dataclass(frozen=True)
class CheckRun:
    """What a check found: the findings, how many claims were checked, and what could not be read
    (claims an 837I reader skipped, as one-line texts without patient data)."""

    findings: tuple[Finding, ...]
    claims_checked: int
    rules: tuple[Rule, ...]
    problems: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default_factory=tuple)

    def at_or_above(self, severity: str) -> tuple[Finding, ...]:
        return findings_at_or_above(self.findings, severity)


def findings_at_or_above(findings: Iterable[Finding], severity: str) -> tuple[Finding, ...]:
    """The findings at ``severity`` or more serious (error > warning > info)."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}: use one of {', '.join(SEVERITIES)}")
    limit = severity_rank(severity)
    return tuple(finding for finding in findings if severity_rank(finding.severity) <= limit)


def exit_status(findings: Iterable[Finding], fail_at: str = "warning") -> int:
    """For CI pipelines: 0 when no finding is at ``fail_at`` or above, 1 otherwise (2, bad input,
    is the CLI's answer to a LoadError)."""
    return 1 if findings_at_or_above(findings, fail_at) else 0


def read_claim_files(paths: Iterable[str | os.PathLike[str]], *, beneficiary_hash_key: bytes) -> tuple[list[Claim], list[str]]:
    """The claims of each file, by content: an 837I (starts with ``ISA``) or a claims CSV.

    Returns the claims and the 837I reader's problems (skipped claims) as one-line texts.
    """
    from loaders.claims_csv import read_claims_csv
    from loaders.x12_837i import ClaimProblem, read_837i

    claims: list[Claim] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        try:
            with path.open("rb") as stream:
                head = stream.read(512)
        except OSError as exc:
            raise LoadError(path, f"cannot read the file: {exc.strerror}") from exc
        if not head.strip():
            raise LoadError(path, "the file is empty")
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"ISA"):
            for item in read_837i(path, beneficiary_hash_key=beneficiary_hash_key):
                if isinstance(item, ClaimProblem):
                    problems.append(str(item))
                else:
                    claims.append(item)
        else:
            claims.extend(read_claims_csv(path))
    return claims, problems


def codes_of(claims: Iterable[Claim]) -> set[str]:
    """Every HCPCS code on the claims' lines (what :meth:`DatabaseKnowledge.preload` needs)."""
    return {line.hcpcs for claim in claims for line in claim.lines if line.hcpcs}


def check_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    session: Session,
    beneficiary_hash_key: bytes,
    rules: RuleSet | None = None,
) -> CheckRun:
    """``hhkb check FILE...``: read the claims of 837I files or claims CSVs, check them against the
    rules with the knowledge base's tables. Raises LoadError for a bad file or rule."""
    rules = rules or load_rules()
    claims, problems = read_claim_files(paths, beneficiary_hash_key=beneficiary_hash_key)
    knowledge = DatabaseKnowledge.preload(session, codes=codes_of(claims))
    findings = tuple(check_claims(claims, rules, knowledge))
    return CheckRun(findings, len(claims), tuple(rules), tuple(problems), tuple(str(p) for p in paths))


def check_agency(session: Session, agency_id: str, *, rules: RuleSet | None = None) -> CheckRun:
    """``hhkb check --agency ID``: check the agency's claims stored in the knowledge base."""
    rules = rules or load_rules()
    claims = read_claims(session, agency=agency_id)
    knowledge = DatabaseKnowledge.preload(session, codes=codes_of(claims))
    findings = tuple(check_claims(claims, rules, knowledge))
    return CheckRun(findings, len(claims), tuple(rules), (), (f"agency {agency_id}",))

