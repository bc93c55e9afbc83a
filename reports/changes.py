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

import dataclasses
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
    claims_touched: str = ""  # a count, or NO_CLAIM; "" when the review is not joined to claims
    claim_links: tuple[ClaimLink, ...] = ()  # the first LISTED_CLAIM_IDS claims
    claim_ids: tuple[str, ...] = ()  # the first EXPORTED_CLAIM_IDS claims touched, "agency/claim id"
    more_claims: int = 0  # touched claims not listed in claim_links
    dollars: str = ""
    touch: str = ""  # how the claims were chosen


@dataclass(frozen=True, slots=True)
class ClaimLink:
    """A claim named in a report (agency, claim id, type of bill: no beneficiary data) and the id of
    its entry in the report's list of claims touched."""

    text: str
    anchor: str


@dataclass(frozen=True, slots=True)
class TouchedClaim:
    anchor: str
    agency_id: str
    claim_id: str
    type_of_bill: str
    period_from: str
    changes: int  # how many changes and rules touch it


@dataclass(frozen=True, slots=True)
class RuleLine:
    """A billing rule that takes effect or ends in the year, and the claims it flags."""

    rule_id: str
    title: str
    when: str
    date: str
    citation: str
    claims_touched: str
    claim_links: tuple[ClaimLink, ...]
    more_claims: int
    touch: str


@dataclass(frozen=True, slots=True)
class PendingLine:
    """An update that is not final (a code request, a proposed rule) and the claims it would touch."""

    entry_id: str
    kind: str
    subject: str
    would_change: str
    status: str
    citation: str
    claims_touched: str
    claim_links: tuple[ClaimLink, ...]
    more_claims: int
    dollars: str
    touch: str


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
    claims_touched: str = ""  # distinct claims touched by the group's changes ("" when not joined)
    dollars: str = ""


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
    joined: bool = False  # joined to claims: rows carry claims touched and dollars
    rules: tuple[RuleLine, ...] = ()
    pending: tuple[PendingLine, ...] = ()
    claims: tuple[TouchedClaim, ...] = ()  # the claims some row links to
    scope: str = ""  # whose claims
    claims_touched: int = 0  # distinct claims some change or rule touches


#: Claim ids listed with a change in HTML and Markdown, each linked to its entry in the list of
#: claims (which lists the linked claims only).
LISTED_CLAIM_IDS = 20
#: Claim ids the CSV and JSON give with a change: every claim of a code change in practice; a rate
#: change touches every claim, and its count says so (the report stays bounded: 100,000 claims
#: would be megabytes of ids per rate row).
EXPORTED_CLAIM_IDS = 1000
NO_CLAIM = "no claim touched"
#: Columns the CSV adds when the review is joined to claims.
JOINED_CSV_COLUMNS: tuple[str, ...] = ("claims_touched", "dollars", "claim_ids", "touch")


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
    join: Any = None,
    touching_only: bool = False,
    pending: Iterable[PendingLine] = (),
) -> ChangeReport:
    """The typed context of a change report. ``watch_list``: codes (or HIPPS, CBSAs) to put first.

    ``join`` (a ``kb.review_claims.ClaimsJoin``): every row carries the claims it touches and its
    dollars; ``touching_only`` keeps the changes that touch a claim."""
    changes = sorted(changes, key=Change.sort_key)
    watched = frozenset(watch_list)
    touches = join.touches if join is not None else {}
    if touching_only and join is not None:
        changes = [change for change in changes if change in touches and touches[change].count]
    rows = [(change, _joined_row(_row(change, watched), touches.get(change), join is not None)) for change in changes]

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

    group_of = {}
    for change, _row_ in rows:
        group_of.setdefault((change.source, change.change_type), []).append(change)
    summary = tuple(
        SummaryLine(g.source_title, g.title, len(g.rows), sum(1 for row in g.rows if row.watched),
                    *(_group_touch(group_of[(g.source, g.change_type)], join) if join is not None else ()))
        for g in groups
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
        notes=tuple(notes) + (tuple(join.notes) if join is not None else ()),
        links=tuple(links),
        joined=join is not None,
        rules=_rule_lines(join) if join is not None else (),
        pending=tuple(pending),
        claims=_touched_claims(join, rows) if join is not None else (),
        scope=join.scope if join is not None else "",
        claims_touched=len({ref.pk for touch in _all_touches(join) for ref in touch.claims}) if join is not None else 0,
    )


def claim_links(claims: Sequence[Any]) -> tuple[tuple[ClaimLink, ...], int]:
    """The first ``LISTED_CLAIM_IDS`` claims (``kb.review_claims.ClaimRef``) as links, and how many more."""
    listed = tuple(ClaimLink(f"{ref.agency_id}/{ref.claim_id}", ref.anchor) for ref in claims[:LISTED_CLAIM_IDS])
    return listed, max(len(claims) - LISTED_CLAIM_IDS, 0)


def touched_text(count: int) -> str:
    return str(count) if count else NO_CLAIM


def _joined_row(row: ChangeRow, touch: Any, joined: bool) -> ChangeRow:
    if not joined:
        return row
    if touch is None:
        return dataclasses.replace(row, claims_touched=NO_CLAIM, touch="not joined to claims")
    links, more = claim_links(touch.claims)
    return dataclasses.replace(row, claims_touched=touched_text(touch.count), claim_links=links, more_claims=more,
                               claim_ids=tuple(f"{ref.agency_id}/{ref.claim_id}"
                                               for ref in touch.claims[:EXPORTED_CLAIM_IDS]),
                               dollars="" if touch.dollars is None else signed_money(touch.dollars), touch=touch.how)


def _group_touch(changes: Sequence[Change], join: Any) -> tuple[str, str]:
    """Distinct claims a group's changes touch, and their dollars together (``ClaimsJoin.dollars_of``)."""
    distinct = {ref.pk for change in changes if change in join.touches for ref in join.touches[change].claims}
    dollars = join.dollars_of(changes)
    return touched_text(len(distinct)), "" if dollars is None else signed_money(dollars)


def _rule_lines(join: Any) -> tuple[RuleLine, ...]:
    lines = []
    for rule, when, touch in join.rule_touches:
        links, more = claim_links(touch.claims)
        day = rule.effective_from if when == "takes effect" else rule.effective_to
        lines.append(RuleLine(rule.id, rule.title, when, day.isoformat(), rule.full_citation,
                              touched_text(touch.count), links, more, touch.how))
    return tuple(lines)


def _touched_claims(join: Any, rows: Sequence[tuple[Change, ChangeRow]]) -> tuple[TouchedClaim, ...]:
    """The claims a row (a change of ``rows``, a rule) links to, each with how many changes and
    rules touch it."""
    shown = [join.touches[change] for change, _ in rows if change in join.touches]
    listed = {ref.pk: ref for touch in (*shown, *(touch for _, _, touch in join.rule_touches))
              for ref in touch.claims[:LISTED_CLAIM_IDS]}  # what claim_links links to
    counts: Counter[int] = Counter()
    for touch in _all_touches(join):
        counts.update(ref.pk for ref in touch.claims if ref.pk in listed)
    return tuple(TouchedClaim(ref.anchor, ref.agency_id, ref.claim_id, ref.type_of_bill, ref.period_from.isoformat(),
                              counts[ref.pk])
                 for ref in sorted(listed.values(), key=lambda ref: (ref.agency_id, ref.claim_id, ref.type_of_bill,
                                                                      ref.pk)))


def _all_touches(join: Any) -> list[Any]:
    """The touches of every change and rule of the join."""
    return [*join.touches.values(), *(touch for _, _, touch in join.rule_touches)]


def signed_money(amount: Decimal) -> str:
    """Dollars with a sign and thousands separators ("+2,819.00")."""
    return f"{amount:+,.2f}"


def _pair(source: str, old: Provenance, new: Provenance) -> SourcePair:
    return SourcePair(
        source_title=SOURCE_TITLES[source],
        old_label=old.label, old_effective_date=old.effective_date.isoformat(), old_citation=old.citation,
        new_label=new.label, new_effective_date=new.effective_date.isoformat(), new_citation=new.citation,
    )


# --- renderers ------------------------------------------------------------------------------------


def render_html(report: ChangeReport) -> str:
    """The self-contained HTML page."""
    return render("changes.html.j2", report=report, exported_claim_ids=EXPORTED_CLAIM_IDS)


def render_markdown(report: ChangeReport) -> str:
    """The report as Markdown (watch list, summary, one table per group)."""
    return render("changes.md.j2", report=report)


def render_csv(report: ChangeReport) -> str:
    """One line per change, columns ``CSV_COLUMNS``, watched rows marked ``yes``."""
    columns = CSV_COLUMNS + (JOINED_CSV_COLUMNS if report.joined else ())

    def values(row) -> list:
        cells = {column: getattr(row, column) for column in CSV_COLUMNS}
        cells["watched"] = "yes" if row.watched else ""
        if report.joined:
            cells.update(claims_touched=row.claims_touched, dollars=row.dollars, touch=row.touch,
                         claim_ids=" ".join(row.claim_ids))
        return [cells[column] for column in columns]

    return csv_document(columns, (values(row) for group in report.groups for row in group.rows))


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
    if report.joined:
        document["claims_of"] = report.scope
        document["rules"] = [_as_dict(line) for line in report.rules]
        document["claims_touched"] = report.claims_touched
        document["claims"] = [_as_dict(claim) for claim in report.claims]
    if report.pending:
        document["pending"] = [_as_dict(line) for line in report.pending]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _as_dict(item: Any) -> Any:
    if isinstance(item, tuple):
        return [_as_dict(member) for member in item]
    if hasattr(item, "__slots__") and dataclasses.is_dataclass(item):
        return {name: _as_dict(getattr(item, name)) for name in item.__slots__}
    return item


def count_by_type(changes: Iterable[Change]) -> Counter[tuple[str, str]]:
    """(source, change type) -> number of changes."""
    return Counter((change.source, change.change_type) for change in changes)
