"""Change reports: a typed context built from ``kb.diff.Change`` records, then HTML, Markdown,
CSV and JSON renderings of it.

The builder computes everything a reader sees (grouping, order, texts of values, percentages,
chart geometry); the templates only format. The HTML page is self-contained (inline CSS and SVG,
nothing fetched) and prints cleanly.

Order: HCPCS before HH PPS, change types in the engine's order, and inside a group the codes of
the watch list (the agency's home health codes) first, then by key. The watch list also gets its
own section at the top of the page.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


from reports.safety import csv_document
from reports.templating import render
from kb.diff import HCPCS, HCPCS_CORRECTIONS, HHPPS, Change, Provenance, fold_whitespace
from loaders.hcpcs_record import HcpcsRecord


SOURCE_TITLES: dict[str, str] = {
    HCPCS: "HCPCS Level II",
    HCPCS_CORRECTIONS: "HCPCS corrections",
    HHPPS: "Home Health PPS",
}

CHANGE_TYPE_TITLES: dict[str, str] = {
    "added": "Codes added",
    "discontinued": "Codes discontinued",
    "reactivated": "Codes reactivated",
    "key_changed": "Renumbered (key changed)",
    "long_description_changed": "Long description changed",
    "short_description_changed": "Short description changed",
    "pricing_indicator_changed": "Pricing indicator changed",
    "coverage_code_changed": "Coverage code changed",
    "betos_changed": "BETOS changed",
    "type_of_service_changed": "Type of service changed",
    "cross_reference_changed": "Cross-reference changed",
    "administrative_data_changed": "Administrative data changed",
    "hipps_added": "HIPPS codes added",
    "hipps_removed": "HIPPS codes removed",
    "weight_changed": "Case-mix weights changed",
    "lupa_threshold_changed": "LUPA thresholds changed",
    "thirty_day_rate_changed": "30-day payment rates changed",
    "labor_share_changed": "Labor-related share changed",
    "fdl_ratio_changed": "Fixed-dollar loss ratio changed",
    "constant_changed": "Other yearly constants changed",
    "visit_rate_changed": "Per-visit (LUPA) rates changed",
    "unit_rate_changed": "Per-unit (outlier) rates changed",
    "cbsa_added": "CBSAs added",
    "cbsa_removed": "CBSAs removed",
    "wage_index_changed": "Wage index changed",
    "cbsa_name_changed": "CBSA names changed",
}

#: Columns of the CSV rendering, in order (attributes of ``ChangeRow``).
CSV_COLUMNS: tuple[str, ...] = (
    "source", "change_type", "key", "old_key", "related_key", "label", "field", "old", "new",
    "absolute_change", "relative_change", "effective_date", "watched", "citation", "old_citation",
)

_PERCENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One change as the reader sees it: every value already a display text."""

    source: str
    change_type: str
    key: str
    old_key: str
    related_key: str
    label: str
    field: str
    old: str
    new: str
    absolute_change: str
    relative_change: str
    effective_date: str
    watched: bool
    citation: str
    old_citation: str


@dataclass(frozen=True, slots=True)
class ChangeGroup:
    source: str
    source_title: str
    change_type: str
    title: str
    rows: tuple[ChangeRow, ...]


@dataclass(frozen=True, slots=True)
class SummaryLine:
    source_title: str
    title: str
    count: int
    watched: int


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart, in SVG user units (geometry computed here, drawn by the template)."""

    label: str
    value: int
    x: str
    y: str
    width: str
    height: str
    label_x: str
    label_y: str
    value_x: str
    value_y: str


@dataclass(frozen=True, slots=True)
class Chart:
    chart_id: str
    title: str
    description: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    horizontal: bool


@dataclass(frozen=True, slots=True)
class SourcePair:
    """One comparison in the report: the old and the new side with their citations."""

    source_title: str
    old_label: str
    old_effective_date: str
    old_citation: str
    new_label: str
    new_effective_date: str
    new_citation: str


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """A regulation or CMS document that takes effect in the period a report covers."""

    document_id: str
    title: str
    citation: str
    published: str
    effective: str


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    href: str


@dataclass(frozen=True, slots=True)
class ChangeReport:
    title: str
    generated_on: str
    total: int
    comparisons: tuple[SourcePair, ...]
    summary: tuple[SummaryLine, ...]
    watch_list: tuple[str, ...]
    watched_rows: tuple[ChangeRow, ...]
    groups: tuple[ChangeGroup, ...]
    charts: tuple[Chart, ...]
    documents: tuple[DocumentLine, ...] = ()
    notes: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()


# --- value texts ---------------------------------------------------------------------------------


def display_value(value: Any) -> str:
    """The text of a change's old or new side ("" when absent)."""
    if value is None:
        return ""
    if isinstance(value, HcpcsRecord):
        return fold_whitespace(value.long_description)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return ", ".join(display_value(item) for item in value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def display_percent(ratio: Decimal | None) -> str:
    """A relative change as a signed percentage with two decimals ("-0.73%")."""
    if ratio is None:
        return ""
    percent = (ratio * 100).quantize(_PERCENT, rounding=ROUND_HALF_UP)
    return f"{'+' if percent > 0 else ''}{percent}%"


def _row(change: Change, watched: frozenset[str]) -> ChangeRow:
    return ChangeRow(
        source=change.source,
        change_type=change.change_type,
        key=change.key,
        old_key=change.old_key or "",
        related_key=change.related_key or "",
        label=change.label or "",
        field=change.field or "",
        old=display_value(change.old),
        new=display_value(change.new),
        absolute_change="" if change.absolute_change is None else format(change.absolute_change, "f"),
        relative_change=display_percent(change.relative_change),
        effective_date=change.effective_date.isoformat(),
        watched=_is_watched(change, watched),
        citation=change.citation,
        old_citation=change.old_citation,
    )


def _is_watched(change: Change, watched: frozenset[str]) -> bool:
    return change.key in watched or (change.old_key or "") in watched or (change.related_key or "") in watched


# --- charts ---------------------------------------------------------------------------------------


def _fmt(number: float | Decimal) -> str:
    return format(Decimal(str(number)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP), "f")


def type_count_chart(summary: Sequence[SummaryLine]) -> Chart:
    """Horizontal bars: how many changes of each type."""
    row_height, label_width, bar_space, top = 22, 320, 300, 10
    largest = max((line.count for line in summary), default=0) or 1
    bars = []
    for index, line in enumerate(summary):
        y = top + index * row_height
        width = Decimal(bar_space * line.count) / largest
        bars.append(Bar(
            label=f"{line.source_title}: {line.title}", value=line.count,
            x=str(label_width), y=str(y), width=_fmt(width), height=str(row_height - 6),
            label_x=str(label_width - 6), label_y=str(y + 12),
            value_x=_fmt(label_width + width + 4), value_y=str(y + 12),
        ))
    return Chart(
        chart_id="chart-types", title="Changes by type",
        description="Number of changes of each type, one bar per type.",
        width=label_width + bar_space + 60, height=top * 2 + max(len(bars), 1) * row_height,
        bars=tuple(bars), horizontal=True,
    )


def relative_change_histogram(changes: Sequence[Change], change_type: str, *, bins: int = 10) -> Chart | None:
    """Vertical bars: how the relative changes of one change type spread (None if there are none)."""
    ratios = [
        c.relative_change * 100
        for c in changes
        if c.change_type == change_type and c.relative_change is not None
    ]
    if not ratios:
        return None
    low, high = min(ratios), max(ratios)
    step = (high - low) / bins if high > low else Decimal(1)
    counts = [0] * bins
    for ratio in ratios:
        counts[min(int((ratio - low) / step), bins - 1)] += 1
    plot_height, bar_width, left, top, bottom = 160, 44, 10, 16, 40
    largest = max(counts)
    bars = []
    for index, count in enumerate(counts):
        height = Decimal(plot_height * count) / largest
        x = left + index * bar_width
        start = (low + step * index).quantize(_PERCENT, rounding=ROUND_HALF_UP)
        bars.append(Bar(
            label=f"{start}%", value=count,
            x=str(x + 2), y=_fmt(top + plot_height - height), width=str(bar_width - 4), height=_fmt(height),
            label_x=str(x + bar_width // 2), label_y=str(top + plot_height + 14),
            value_x=str(x + bar_width // 2), value_y=_fmt(top + plot_height - height - 3),
        ))
    title = CHANGE_TYPE_TITLES.get(change_type, change_type)
    return Chart(
        chart_id=f"chart-{change_type}", title=f"{title}: relative change (%)",
        description=f"Histogram of the relative change of {len(ratios)} values in {bins} bins from "
                    f"{low.quantize(_PERCENT)}% to {high.quantize(_PERCENT)}%; "
                    "each bar is labelled with its lower bound.",
        width=left * 2 + bins * bar_width, height=top + plot_height + bottom,
        bars=tuple(bars), horizontal=False,
    )


# --- builder ------------------------------------------------------------------------------------


def build_change_report(
    changes: Iterable[Change],
    *,
    title: str,
    watch_list: Iterable[str] = (),
    generated_on: date | None = None,
    documents: Iterable[DocumentLine] = (),
    notes: Iterable[str] = (),
    links: Iterable[Link] = (),
) -> ChangeReport:
    """The typed context of a change report. ``watch_list``: codes (or HIPPS, CBSAs) to put first."""
    changes = sorted(changes, key=Change.sort_key)
    watched = frozenset(watch_list)
    rows = [(change, _row(change, watched)) for change in changes]

    groups: list[ChangeGroup] = []
    for change, row in rows:
        if not groups or (groups[-1].source, groups[-1].change_type) != (change.source, change.change_type):
            groups.append(ChangeGroup(change.source, SOURCE_TITLES[change.source], change.change_type,
                                      CHANGE_TYPE_TITLES.get(change.change_type, change.change_type), ()))
        last = groups[-1]
        groups[-1] = ChangeGroup(last.source, last.source_title, last.change_type, last.title, last.rows + (row,))
    groups = [
        ChangeGroup(g.source, g.source_title, g.change_type, g.title,
                    tuple(sorted(g.rows, key=lambda row: not row.watched)))  # stable: key order kept
        for g in groups
    ]

    summary = tuple(
        SummaryLine(g.source_title, g.title, len(g.rows), sum(1 for row in g.rows if row.watched)) for g in groups
    )
    pairs: list[SourcePair] = []
    for change in changes:
        pair = _pair(change.source, change.old_provenance, change.new_provenance)
        if pair not in pairs:
            pairs.append(pair)

    charts = [type_count_chart(summary)]
    for change_type in ("weight_changed", "wage_index_changed"):
        histogram = relative_change_histogram(changes, change_type)
        if histogram is not None:
            charts.append(histogram)

    return ChangeReport(
        title=title,
        generated_on=(generated_on or date.today()).isoformat(),
        total=len(changes),
        comparisons=tuple(pairs),
        summary=summary,
        watch_list=tuple(sorted(watched)),
        watched_rows=tuple(row for _, row in rows if row.watched),
        groups=tuple(groups),
        charts=tuple(charts),
        documents=tuple(documents),
        notes=tuple(notes),
        links=tuple(links),
    )


def _pair(source: str, old: Provenance, new: Provenance) -> SourcePair:
    return SourcePair(
        source_title=SOURCE_TITLES[source],
        old_label=old.label, old_effective_date=old.effective_date.isoformat(), old_citation=old.citation,
        new_label=new.label, new_effective_date=new.effective_date.isoformat(), new_citation=new.citation,
    )


# --- renderers ------------------------------------------------------------------------------------


def render_html(report: ChangeReport) -> str:
    """The self-contained HTML page."""
    return render("changes.html.j2", report=report)


def render_markdown(report: ChangeReport) -> str:
    """The report as Markdown (watch list, summary, one table per group)."""
    return render("changes.md.j2", report=report)


def render_csv(report: ChangeReport) -> str:
    """One line per change, columns ``CSV_COLUMNS``, watched rows marked ``yes``."""
    return csv_document(CSV_COLUMNS, (
        [("yes" if row.watched else "") if column == "watched" else getattr(row, column) for column in CSV_COLUMNS]
        for group in report.groups for row in group.rows
    ))


def render_json(report: ChangeReport) -> str:
    """The report's summary and rows as JSON (numbers as exact decimal strings)."""
    document = {
        "title": report.title,
        "generated_on": report.generated_on,
        "total": report.total,
        "comparisons": [_as_dict(pair) for pair in report.comparisons],
        "watch_list": list(report.watch_list),
        "summary": [_as_dict(line) for line in report.summary],
        "changes": [_as_dict(row) for group in report.groups for row in group.rows],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _as_dict(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}


def count_by_type(changes: Iterable[Change]) -> Counter[tuple[str, str]]:
    """(source, change type) -> number of changes."""
    return Counter((change.source, change.change_type) for change in changes)
