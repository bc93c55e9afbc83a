"""Findings reports: a typed context built from ``kb.rules.Finding`` records, then HTML, Markdown,
CSV and JSON renderings of it.

The builder orders and counts (most serious first, then claim, then line), and lists every rule
that was applied with its citation and how many findings and claims it produced, so that a page
with no findings still says what was checked. The templates only format. Findings carry no
patient data, so neither does the report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from kb.rules import Finding
from regulations.rules import SEVERITIES, Rule, severity_rank
from reports.safety import csv_document
from reports.templating import render as render_template

#: Columns of the CSV rendering, in order (attributes of ``FindingRow``).
CSV_COLUMNS: tuple[str, ...] = (
    "severity", "rule_id", "agency_id", "claim_id", "line_number", "message", "citation",
)

#: The renderings, by the name a command line gives them.
FORMATS: tuple[str, ...] = ("html", "md", "csv", "json")

#: How many findings the HTML page lists; the CSV and JSON always hold them all.
HTML_ROW_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class FindingRow:
    severity: str
    rule_id: str
    agency_id: str
    claim_id: str
    line_number: str  # "" for a finding about the whole claim
    message: str
    citation: str


@dataclass(frozen=True, slots=True)
class RuleLine:
    """One rule that was applied, and what it found."""

    rule_id: str
    title: str
    severity: str
    effective: str  # "from 2020-01-01" or "2019-01-01 to 2024-09-30"
    source: str
    citation: str
    findings: int
    claims: int


@dataclass(frozen=True, slots=True)
class SeverityCount:
    severity: str
    findings: int
    claims: int


@dataclass(frozen=True, slots=True)
class FindingsReport:
    title: str
    generated_on: str
    sources: tuple[str, ...]
    claims_checked: int
    claims_with_findings: int
    total: int
    severities: tuple[SeverityCount, ...]
    rules: tuple[RuleLine, ...]
    rows: tuple[FindingRow, ...]
    html_rows: tuple[FindingRow, ...]
    problems: tuple[str, ...]


def _effective(rule: Rule) -> str:
    if rule.effective_to is None:
        return f"from {rule.effective_from.isoformat()}"
    last = date.fromordinal(rule.effective_to.toordinal() - 1)
    return f"{rule.effective_from.isoformat()} to {last.isoformat()}"


def build_findings_report(
    findings: Iterable[Finding],
    *,
    rules: Iterable[Rule],
    claims_checked: int,
    title: str = "Billing rule findings",
    sources: Iterable[str] = (),
    problems: Iterable[str] = (),
    generated_on: date | None = None,
    html_row_limit: int = HTML_ROW_LIMIT,
) -> FindingsReport:
    """The typed context of a findings report."""
    ordered = sorted(
        findings,
        key=lambda f: (severity_rank(f.severity), f.agency_id, f.claim_id, f.line_number or 0, f.rule_id),
    )
    rows = tuple(
        FindingRow(
            severity=f.severity, rule_id=f.rule_id, agency_id=f.agency_id, claim_id=f.claim_id,
            line_number="" if f.line_number is None else str(f.line_number), message=f.message,
            citation=f.citation,
        )
        for f in ordered
    )
    per_rule = Counter(f.rule_id for f in ordered)
    claims_per_rule: dict[str, set[tuple[str, str]]] = {}
    claims_per_severity: dict[str, set[tuple[str, str]]] = {}
    for f in ordered:
        claims_per_rule.setdefault(f.rule_id, set()).add((f.agency_id, f.claim_id))
        claims_per_severity.setdefault(f.severity, set()).add((f.agency_id, f.claim_id))
    rule_lines = tuple(
        RuleLine(
            rule_id=rule.id, title=rule.title, severity=rule.severity, effective=_effective(rule),
            source=rule.source, citation=rule.citation, findings=per_rule.get(rule.id, 0),
            claims=len(claims_per_rule.get(rule.id, ())),
        )
        for rule in sorted(rules, key=lambda r: (severity_rank(r.severity), r.id))
    )
    severity_counts = Counter(f.severity for f in ordered)
    return FindingsReport(
        title=title,
        generated_on=(generated_on or date.today()).isoformat(),
        sources=tuple(sources),
        claims_checked=claims_checked,
        claims_with_findings=len({(f.agency_id, f.claim_id) for f in ordered}),
        total=len(rows),
        severities=tuple(
            SeverityCount(severity, severity_counts.get(severity, 0), len(claims_per_severity.get(severity, ())))
            for severity in SEVERITIES
        ),
        rules=rule_lines,
        rows=rows,
        html_rows=rows[:html_row_limit],
        problems=tuple(problems),
    )


def render(report: FindingsReport, format: str) -> str:
    """The report in one of ``FORMATS``."""
    renderers = {"html": render_html, "md": render_markdown, "csv": render_csv, "json": render_json}
    if format not in renderers:
        raise ValueError(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")
    return renderers[format](report)


def render_html(report: FindingsReport) -> str:
    """The self-contained HTML page."""
    return render_template("findings.html.j2", report=report)


def render_markdown(report: FindingsReport) -> str:
    return render_template("findings.md.j2", report=report)


def render_csv(report: FindingsReport) -> str:
    """One line per finding, columns ``CSV_COLUMNS``."""
    return csv_document(CSV_COLUMNS, ([getattr(row, column) for column in CSV_COLUMNS] for row in report.rows))


def render_json(report: FindingsReport) -> str:
    """The report as JSON: counts, the rules applied, every finding (line number as a number)."""
    document = {
        "title": report.title,
        "generated_on": report.generated_on,
        "sources": list(report.sources),
        "claims_checked": report.claims_checked,
        "claims_with_findings": report.claims_with_findings,
        "total": report.total,
        "severities": [_as_dict(item) for item in report.severities],
        "rules": [_as_dict(item) for item in report.rules],
        "findings": [
            {**_as_dict(row), "line_number": int(row.line_number) if row.line_number else None}
            for row in report.rows
        ],
        "problems": list(report.problems),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _as_dict(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}
