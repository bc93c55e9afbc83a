"""The typed contexts of the web pages that the reports do not already have: the timeline of a
code's versions, a chart of a HIPPS code's weight by year, and one page of a change report.

Builders compute everything a reader sees (geometry included); the templates only format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from reports.changes import Bar, Chart, ChangeReport, ChangeRow

#: The fields a code page compares between versions (the others are identifiers and dates of the row).
COMPARED_FIELDS = ("long_description", "short_description", "pricing_indicators", "coverage_code", "betos",
                   "type_of_service", "cross_references", "added_date", "termination_date")


def _fmt(number: Decimal | float | int) -> str:
    return format(Decimal(str(number)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP), "f")


@dataclass(frozen=True, slots=True)
class TimelineBar:
    number: int
    label: str
    x: str
    y: str
    width: str
    height: str
    open_ended: bool
    in_force: bool
    known_x: str  # where the knowledge date (known_from) falls on the time axis
    known_label: str
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    x: str
    label: str


@dataclass(frozen=True, slots=True)
class Timeline:
    width: int
    height: int
    axis_y: str
    left: int
    right: int
    bars: tuple[TimelineBar, ...]
    ticks: tuple[Tick, ...]
    as_of_x: str | None
    as_of_label: str
    description: str


def changed_fields(versions: list[dict]) -> dict[int, tuple[str, ...]]:
    """Version number -> the compared fields that differ from the version before it."""
    changed: dict[int, tuple[str, ...]] = {}
    previous = None
    for version in versions:
        if previous is not None:
            changed[version["number"]] = tuple(name for name in COMPARED_FIELDS
                                               if version["fields"].get(name) != previous["fields"].get(name))
        else:
            changed[version["number"]] = ()
        previous = version
    return changed


def timeline(answer: dict, *, today: date) -> Timeline:
    """Effective time along the x axis, one bar per version (row by row), its knowledge date marked
    with a diamond, the date asked about as a vertical line."""
    versions = answer["versions"]
    changed = changed_fields(versions)
    starts = [v["effective_from"] for v in versions]
    ends = [v["effective_to"] for v in versions if v["effective_to"]]
    knowns = [v["known_from"] for v in versions]
    first = min(starts + knowns)
    last = max(ends + knowns + starts + ([answer["as_of"]] if answer["as_of"] else []))
    last = max(last, min(today, last + timedelta(days=365)), first + timedelta(days=365))
    first = date(first.year, 1, 1)
    last = date(last.year + 1, 1, 1)
    left, right, top, row_height = 20, 760, 10, 30
    span = (last - first).days

    def x_of(day: date) -> Decimal:
        return Decimal(left) + Decimal(right - left) * Decimal((day - first).days) / Decimal(span)

    bars = []
    for index, version in enumerate(versions):
        start = x_of(version["effective_from"])
        end = x_of(version["effective_to"]) if version["effective_to"] else Decimal(right)
        known = version["known_from"]
        bars.append(TimelineBar(
            number=version["number"],
            label=(f"version {version['number']}: effective {version['effective_from']}"
                   + (f" until {version['effective_to']}" if version["effective_to"] else ", open")
                   + f"; known from {known}"),
            x=_fmt(start), y=str(top + index * row_height), width=_fmt(max(end - start, Decimal(2))),
            height=str(row_height - 12), open_ended=version["effective_to"] is None,
            in_force=answer["version_in_force"] == version["number"],
            known_x=_fmt(x_of(known)), known_label=f"known from {known}",
            changed=changed[version["number"]],
        ))
    axis_y = top + len(versions) * row_height
    years = range(first.year, last.year + 1)
    step = max(1, len(years) // 10)
    ticks = tuple(Tick(_fmt(x_of(date(year, 1, 1))), str(year)) for year in years[::step])
    as_of = answer["as_of"]
    return Timeline(
        width=right + 40, height=axis_y + 30, axis_y=str(axis_y), left=left, right=right,
        bars=tuple(bars), ticks=ticks,
        as_of_x=_fmt(x_of(as_of)) if as_of and first <= as_of <= last else None,
        as_of_label=f"as of {as_of}" if as_of else "",
        description=(f"{len(versions)} versions of {answer['code']} on a time axis from {first} to {last}; "
                     "each bar is a version's effective interval, the diamond the day CMS's files first said it"),
    )


def weight_chart(years: list[dict], code: str) -> Chart:
    """Vertical bars: a HIPPS code's case-mix weight in each year loaded."""
    plot_height, bar_width, left, top, bottom = 160, 64, 10, 18, 24
    largest = max((Decimal(str(year["weight"])) for year in years), default=Decimal(1)) or Decimal(1)
    bars = []
    for index, year in enumerate(years):
        weight = Decimal(str(year["weight"]))
        height = Decimal(plot_height) * weight / largest
        x = left + index * bar_width
        bars.append(Bar(
            label=str(year["effective_from"])[:4], value=weight,
            x=str(x + 4), y=_fmt(top + plot_height - height), width=str(bar_width - 8), height=_fmt(height),
            label_x=str(x + bar_width // 2), label_y=str(top + plot_height + 14),
            value_x=str(x + bar_width // 2), value_y=_fmt(top + plot_height - height - 4),
        ))
    return Chart(chart_id="chart-weights", title=f"{code}: case-mix weight by year",
                 description=f"One bar per loaded case-mix table, {len(bars)} years; the value above each bar.",
                 width=left * 2 + max(len(bars), 1) * bar_width, height=top + plot_height + bottom,
                 bars=tuple(bars), horizontal=False)


@dataclass(frozen=True, slots=True)
class PageGroup:
    title: str
    source_title: str
    rows: tuple[ChangeRow, ...]


@dataclass(frozen=True, slots=True)
class ReportPage:
    """One page of a change report's rows, still grouped by source and change type."""

    number: int
    count: int
    per_page: int
    first_row: int
    last_row: int
    groups: tuple[PageGroup, ...]


def report_page(report: ChangeReport, number: int, per_page: int) -> ReportPage:
    total = sum(len(group.rows) for group in report.groups)
    count = max(1, -(-total // per_page))
    number = min(max(number, 1), count)
    start, stop = (number - 1) * per_page, number * per_page
    groups, seen = [], 0
    for group in report.groups:
        rows = group.rows[max(start - seen, 0):max(stop - seen, 0)]
        if rows:
            groups.append(PageGroup(group.title, group.source_title, rows))
        seen += len(group.rows)
    return ReportPage(number, count, per_page, min(start + 1, total), min(stop, total), tuple(groups))
