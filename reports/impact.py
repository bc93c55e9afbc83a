"""Impact reports: a typed context built from ``kb.impact.ImpactResult``, then HTML, Markdown, CSV
and JSON renderings of it.

The builder computes every text a reader sees (money with thousands separators, the chart's
geometry); the templates only format. The HTML page is self-contained (inline CSS and one inline
SVG chart of dollars by component) and prints cleanly. The CSV has one row per claim with its
payment before and after, the difference and the components; the HTML and Markdown list the
claims with the largest differences and say how many the CSV holds.

No report carries beneficiary data: a claim appears by agency, claim id, type of bill, period
start, HIPPS and CBSA only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path


from kb.impact import COMPONENTS, OUTLIER_CAP_LINE, ImpactResult, Totals
from reports.changes import CHANGE_TYPE_TITLES, display_value
from reports.output import write_reports
from reports.safety import csv_document
from reports.templating import render


#: Claims listed in the HTML and Markdown (largest differences first); the CSV has them all.
LISTED_CLAIMS = 100

CSV_COLUMNS: tuple[str, ...] = (
    "agency_id", "claim_id", "type_of_bill", "period_from", "hipps", "cbsa", "before", "after", "difference",
    *COMPONENTS, "cap_before", "cap_after", "paid_before", "paid_after", "lupa_before", "lupa_after",
    "outlier_before", "outlier_after", "own_year", "inputs_supplied", "inputs_assumed_absent",
)
#: The inputs a claim does not carry, as the report names them.
INPUT_TITLES = {"noa": "NOA receipt date (late-NOA reduction)", "vbp": "VBP adjustment factor of the claim's year",
                "readmission": "same-agency readmission in the period"}


def money(amount: Decimal) -> str:
    """``Decimal("-1234.5")`` -> ``"-1,234.50"``."""
    return f"{amount.quantize(Decimal('0.01')):,}"


def signed_money(amount: Decimal) -> str:
    return ("+" if amount > 0 else "") + money(amount)


@dataclass(frozen=True)
class TotalsRow:
    label: str
    claims: int
    unpriced: int
    before: str
    after: str
    difference: str
    cap_before: str
    cap_after: str
    cap_line: str
    paid_before: str
    paid_after: str
    paid_difference: str


@dataclass(frozen=True)
class ComponentRow:
    name: str
    amount: str
    value: str  # exact decimal text


@dataclass(frozen=True)
class ChangeRow:
    title: str
    change_type: str
    key: str
    label: str
    field: str
    old: str
    new: str
    component: str
    claims: int
    dollars: str
    shared: bool
    citation: str


@dataclass(frozen=True)
class ClaimRow:
    agency_id: str
    claim_id: str
    type_of_bill: str
    period_from: str
    hipps: str
    cbsa: str
    before: str
    after: str
    difference: str
    cap_before: str
    cap_after: str


@dataclass(frozen=True)
class UnpricedRow:
    agency_id: str
    claim_id: str
    type_of_bill: str
    reason: str


@dataclass(frozen=True)
class InputRow:
    name: str
    supplied: int
    assumed: int


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    x: str
    y: str
    width: str
    height: str
    label_y: str
    value_x: str
    negative: bool


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    width: int
    height: int
    axis_x: str
    label_x: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class ImpactReport:
    title: str
    generated_on: str
    from_label: str
    to_label: str
    from_citation: str
    to_citation: str
    scope: str
    method: tuple[str, ...]
    totals: TotalsRow
    components: tuple[ComponentRow, ...]
    agencies: tuple[TotalsRow, ...]
    chart: Chart
    changes: tuple[ChangeRow, ...]
    changes_touching_none: int
    claims: tuple[ClaimRow, ...]
    claim_count: int
    unpriced: tuple[UnpricedRow, ...]
    own_years: tuple[str, ...]  # "CY2023: 380 claims" for each year the claims' through dates choose
    inputs: tuple[InputRow, ...]
    notes: tuple[str, ...]  # open questions of a year's parameters, with the claims they touch
    result: ImpactResult


def _totals_row(label: str, totals: Totals) -> TotalsRow:
    return TotalsRow(
        label=label, claims=totals.claims, unpriced=totals.unpriced, before=money(totals.before),
        after=money(totals.after), difference=signed_money(totals.difference), cap_before=money(totals.cap_before),
        cap_after=money(totals.cap_after), cap_line=signed_money(totals.cap_line),
        paid_before=money(totals.paid_before), paid_after=money(totals.paid_after),
        paid_difference=signed_money(totals.paid_difference),
    )


def component_chart(lines: Sequence[tuple[str, Decimal]]) -> Chart:
    """Horizontal bars from a zero axis: dollars of each component (negative bars to the left)."""
    row_height, label_width, half, top = 22, 190, 220, 10
    largest = max((abs(amount) for _, amount in lines), default=Decimal(0)) or Decimal(1)
    axis = label_width + half
    bars = []
    for index, (name, amount) in enumerate(lines):
        y = top + index * row_height
        width = (Decimal(half) * abs(amount) / largest).quantize(Decimal("0.1"))
        x = axis - width if amount < 0 else Decimal(axis)
        bars.append(Bar(
            label=name, value=signed_money(amount), x=str(x), y=str(y), width=str(width), height=str(row_height - 6),
            # a negative bar's value stands right of the axis, where its row is empty, so that the
            # longest bar's value cannot run into the component names
            label_y=str(y + 12), value_x=str(axis + 4 if amount < 0 else x + width + 4), negative=amount < 0,
        ))
    return Chart(
        title="Dollars by component", description="Change in payment from each component, and the outlier cap line.",
        width=label_width + 2 * half + 90, height=top * 2 + max(len(bars), 1) * row_height,
        axis_x=str(axis), label_x=str(label_width - 6), bars=tuple(bars),
    )


def build_impact_report(result: ImpactResult, *, generated_on: date | None = None) -> ImpactReport:
    totals = result.totals
    lines = [(name, amount) for name, amount in totals.components if amount] + [(OUTLIER_CAP_LINE, totals.cap_line)]
    changes = []
    untouched = 0
    for item in result.changes:
        if not item.claim_pks:
            untouched += 1
            continue
        change = item.change
        changes.append(ChangeRow(
            title=CHANGE_TYPE_TITLES.get(change.change_type, change.change_type), change_type=change.change_type,
            key=(f"{change.old_key} -> " if change.old_key else "") + change.key, label=change.label or "",
            field=change.field or "", old=display_value(change.old), new=display_value(change.new),
            component=item.component or "none", claims=len(item.claim_pks), dollars=signed_money(item.dollars),
            shared=item.shared, citation=change.citation,
        ))
    largest = sorted(result.claims, key=lambda c: (-abs(c.difference), c.agency_id, c.claim_id))[:LISTED_CLAIMS]
    scope = f"agency {result.agency}" if result.agency else f"all agencies ({len(result.agencies)})"
    return ImpactReport(
        title=(f"Impact of the CY{result.to_year} HH PPS rules against CY{result.from_year} on {scope}"
               if result.scenario is None else
               f"{result.scenario.label}: impact of {result.scenario.title} against CY{result.from_year} on {scope}"),
        generated_on=(generated_on or date.today()).isoformat(),
        from_label=result.from_provenance.label, to_label=result.to_provenance.label,
        from_citation=result.from_provenance.citation, to_citation=result.to_provenance.citation,
        scope=scope,
        method=(
            f"Each claim is priced with the parameters in force on {result.rules_from} and on {result.rules_to}; "
            "its own dates count only relative to each other (admission, earliest visits, partial-period days). "
            "CMS's pricer would price each claim under the year of its through date (counted below).",
            "Inputs a claim does not carry (NOA receipt date, VBP factor, same-agency readmission) are those "
            "supplied with hhkb claims inputs load, the same under both years; the others are assumed absent "
            "(timely NOA, factor 1, no readmission), counted below and listed per claim in impact.csv.",
            "The difference of each claim is split into components by sequential substitution in the pricer's "
            "order; the components of a claim sum exactly to its difference.",
            "The 10% outlier cap is applied per agency and year, claims in period order, and shown as its own line.",
            "A change touches: a weight or LUPA threshold, the claims with its HIPPS; a wage index, the claims in "
            "its CBSA; the 30-day rate, non-LUPA claims of its quality flag; the labor share, every claim; the FDL "
            "ratio and per-unit rates, claims with an outlier; per-visit rates and LUPA add-ons, LUPA claims. "
            "Rate changes share one component, so their dollars overlap (marked shared).",
        ),
        totals=_totals_row("All claims", totals),
        components=tuple(ComponentRow(name, signed_money(amount), str(amount)) for name, amount in totals.components)
        + (ComponentRow(OUTLIER_CAP_LINE, signed_money(totals.cap_line), str(totals.cap_line)),),
        agencies=tuple(_totals_row(t.agency_id or "", t) for t in result.agencies),
        chart=component_chart(lines),
        changes=tuple(changes), changes_touching_none=untouched,
        claims=tuple(
            ClaimRow(c.agency_id, c.claim_id, c.type_of_bill, c.period_from.isoformat(), c.hipps, c.cbsa,
                     money(c.before), money(c.after), signed_money(c.difference), money(c.cap_before), money(c.cap_after))
            for c in largest
        ),
        claim_count=len(result.claims),
        unpriced=tuple(UnpricedRow(u.agency_id, u.claim_id, u.type_of_bill, u.reason) for u in result.unpriced),
        own_years=tuple(f"CY{year}: {count} claim{'s' if count != 1 else ''}" for year, count in result.own_years),
        inputs=tuple(InputRow(INPUT_TITLES[name], supplied, assumed) for name, supplied, assumed in result.inputs_supplied),
        notes=_scenario_notes(result) + tuple(f"{note} ({count} claims)" for note, count in result.notes),
        result=result,
    )


def _scenario_notes(result: ImpactResult) -> tuple[str, ...]:
    """What a what-if took from its proposal and what it assumed from the final rule."""
    scenario = result.scenario
    if scenario is None:
        return ()
    stated = "; ".join(f"{name} {value.value} ({value.citation})" for name, value in scenario.constants.items())
    return (
        f"{scenario.label}. {scenario.citation}.",
        f"From the proposal: {stated}.",
        f"Assumed (taken from the CY{scenario.base_year} final rule, {result.to_provenance.label}): the constants "
        f"{', '.join(scenario.assumed())}, and every table (case-mix weights, LUPA thresholds, wage index, "
        f"per-visit and per-unit rates).",
    ) + ((f"Scenario note: {scenario.note}",) if scenario.note else ())


def render_html(report: ImpactReport) -> str:
    return render("impact.html.j2", report=report)


def render_markdown(report: ImpactReport) -> str:
    return render("impact.md.j2", report=report)


def render_csv(report: ImpactReport) -> str:
    """One row per priced claim, exact decimals (columns ``CSV_COLUMNS``)."""
    scenario = report.result.scenario
    return csv_document(CSV_COLUMNS + (("what_if",) if scenario else ()), (
        (claim.agency_id, claim.claim_id, claim.type_of_bill, claim.period_from.isoformat(), claim.hipps, claim.cbsa,
         claim.before, claim.after, claim.difference, *claim.components, claim.cap_before, claim.cap_after,
         claim.paid_before, claim.paid_after, "Y" if claim.lupa_before else "N", "Y" if claim.lupa_after else "N",
         claim.outlier_before, claim.outlier_after, claim.own_year, "|".join(claim.inputs_supplied),
         "|".join(name for name in INPUT_TITLES if name not in claim.inputs_supplied),
         *((scenario.label,) if scenario else ()))
        for claim in report.result.claims
    ))


def _totals_json(totals: Totals) -> dict:
    return {
        "agency_id": totals.agency_id, "claims": totals.claims, "unpriced": totals.unpriced,
        "before": str(totals.before), "after": str(totals.after), "difference": str(totals.difference),
        "components": {name: str(amount) for name, amount in totals.components},
        "cap_before": str(totals.cap_before), "cap_after": str(totals.cap_after), "cap_line": str(totals.cap_line),
        "paid_before": str(totals.paid_before), "paid_after": str(totals.paid_after),
        "paid_difference": str(totals.paid_difference),
    }


def render_json(report: ImpactReport) -> str:
    """Totals, per agency, every change with its claim count and dollars, and the unpriced claims
    (money as exact decimal strings). Claims themselves are in the CSV."""
    result = report.result
    document = {
        "title": report.title,
        "generated_on": report.generated_on,
        "from": {"label": report.from_label, "citation": report.from_citation, "rules_on": result.rules_from.isoformat()},
        "to": {"label": report.to_label, "citation": report.to_citation, "rules_on": result.rules_to.isoformat()},
        "method": list(report.method),
        "totals": _totals_json(result.totals),
        "agencies": [_totals_json(t) for t in result.agencies],
        "changes": [
            {"change_type": item.change.change_type, "key": item.change.key, "old_key": item.change.old_key,
             "field": item.change.field, "old": display_value(item.change.old), "new": display_value(item.change.new),
             "component": item.component, "claims": len(item.claim_pks), "dollars": str(item.dollars),
             "shared": item.shared}
            for item in result.changes
        ],
        "unpriced": [asdict(row) for row in report.unpriced],
        "own_years": {f"CY{year}": count for year, count in result.own_years},
        "inputs": [asdict(row) for row in report.inputs],
        "notes": list(report.notes),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_impact_report(report: ImpactReport, folder: Path) -> list[Path]:
    """Write impact.html, impact.md, impact.csv and impact.json into ``folder``."""
    renderers = {"html": render_html, "md": render_markdown, "csv": render_csv, "json": render_json}
    return write_reports(folder, "impact", ((extension, partial(render, report)) for extension, render in renderers.items()))
