"""The impact of one year's HH PPS rules against another's on an agency's stored claims.

:func:`impact` answers "what do the CY2024 rules change for our claims, compared with CY2023's":

1. The rule changes: :func:`kb.diff.diff_hhpps` over the two years' stored tables and catalogue
   constants (``kb.parameters.hhpps_state``).
2. Each claim priced twice, under the FROM year's and the TO year's parameters. The claim is not
   moved in time: it is priced with the parameters in force on January 1 of each year, and its
   own dates are used only as the pricer uses them, relative to each other (admission date equal
   to the from-date for the LUPA add-on, the earliest visit, the days of a partial period). The
   rural add-on category comes from whichever year has rural add-on tables.
3. Each claim's difference split into components with :func:`kb.pricing.attribute_change`; the
   components sum exactly to the difference of the claim.
4. The 10% outlier cap (:func:`kb.pricing.apply_outlier_cap`) applied per agency and per year, the
   agency's claims in period order (from-date, claim id) with no year-to-date figures: what it
   removes is its own line, never folded into a claim's components.
5. For each change, the claims it touches and the dollars of its component over them: a weight or
   LUPA threshold change touches the claims with that HIPPS; a wage index change the claims in
   that CBSA; the 30-day rate the non-LUPA claims of its quality flag; the labor share every
   claim; the FDL and loss-sharing ratios and the per-unit rates the claims with an outlier in
   either year (per-unit rates: with visits of that discipline); the per-visit rates and LUPA
   add-on factors the LUPA claims with visits of that discipline. Rate changes share one
   component (``per-visit rates`` is the effect of all of them), so their dollars overlap.

A claim the pricer refuses (a notice of admission, no HIPPS, a CBSA missing from a year's wage
index ...) is listed with the reason: every claim is either priced or listed.

Pricing classes (speed)
    Pricing a claim and attributing its difference takes sixteen runs of the pricer (about 2 ms);
    100,000 claims would take minutes. Claims are therefore read without their lines, shaped in
    SQL (visits, units and first and last visit per discipline, one grouped query per batch), and
    put in classes the pricer must price alike but for their visits and units per discipline
    (``_FormulaClass``): LUPA periods under both years' thresholds, and non-LUPA periods under
    both. The class's first claim is priced by the pricer under every parameter set of the
    attribution; for the other claims the few steps that depend on their own visits or units (the
    per-discipline wage-adjusted amounts, the outlier over the pricer's own threshold, a partial
    period's share) are taken with the pricer's rounding functions, and the class is used only if
    those steps give back every one of the pricer's totals for its first claim (and for its first
    partial period). Components are then the differences between consecutive parameter sets,
    exactly as ``attribute_change`` takes them. Any other claim (visits between the two
    thresholds, a day above 32 units, units not whole, a late NOA or a VBP factor) is priced
    from its lines by ``price_period`` and ``attribute_change``. ``pricing_classes=False`` prices
    every claim that way; the tests compare the two.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlmodel import Session

from kb.claims import (
    VOID_FREQUENCY,
    id_in,
    stored_claim_ids,
    stored_claims_by_id,
    TablesCache,
    claim_parameters,
    is_rural_cbsa,
    rural_add_on_category,
    to_period_claim,
)
from kb.diff import HCPCS, Change, Provenance, diff_hhpps
from kb.models import AgencyClaim, AgencyClaimLine
from loaders.claim_record import Claim
from kb.parameters import hhpps_state, provenance
from kb.pricing import (
    ATTRIBUTION_ORDER,
    DISCIPLINE_BY_REVENUE_GROUP,
    ADD_ON_TIE_ORDER,
    CENT,
    MAX_UNITS_PER_DAY,
    PERIOD_DAYS,
    NON_VISIT_HCPCS,
    TRANSFER_CONDITION_CODE,
    TRANSFER_PATIENT_STATUS,
    PeriodClaim,
    PricingError,
    PricingParameters,
    PricingResult,
    apply_outlier_cap,
    attribute_change,
    price_period,
    round_cents,
    wage_adjust,
)
from regulations.catalogue import Catalogue

ZERO = Decimal("0.00")
COMPONENTS: tuple[str, ...] = tuple(label for label, _ in ATTRIBUTION_ORDER)
OUTLIER_CAP_LINE = "10% outlier cap"

#: The component of the pricer's attribution that carries each kind of change.
_COMPONENT_OF_TYPE = {
    "weight_changed": "case-mix weight",
    "lupa_threshold_changed": "LUPA threshold",
    "thirty_day_rate_changed": "30-day rate",
    "labor_share_changed": "labor share",
    "fdl_ratio_changed": "FDL ratio",
    "visit_rate_changed": "per-visit rates",
    "unit_rate_changed": "per-unit rates",
    "wage_index_changed": "wage index",
    "key_changed": "wage index",
    "cbsa_added": "wage index",
    "cbsa_removed": "wage index",
}
_COMPONENT_OF_CONSTANT = {
    "loss_sharing_ratio": "loss-sharing ratio",
    "lupa_addon_sn": "LUPA add-on factors",
    "lupa_addon_pt": "LUPA add-on factors",
    "lupa_addon_ot": "LUPA add-on factors",
    "lupa_addon_slp": "LUPA add-on factors",
    "rural_addon_a": "rural add-on",
    "rural_addon_b": "rural add-on",
    "rural_addon_c": "rural add-on",
    "late_noa_grace_days": "late NOA rule",
    "outlier_cap_ratio": OUTLIER_CAP_LINE,
}
_ADD_ON_DISCIPLINE = {"lupa_addon_sn": "0550", "lupa_addon_pt": "0420", "lupa_addon_ot": "0430", "lupa_addon_slp": "0440"}


@dataclass(frozen=True, slots=True)
class ClaimImpact:
    """One claim priced under both years. ``before``/``after`` are before the outlier cap;
    ``cap_before``/``cap_after`` what the cap took from the claim in each year."""

    pk: int
    agency_id: str
    claim_id: str
    type_of_bill: str
    period_from: date
    hipps: str
    cbsa: str
    quality_data_submitted: bool
    rate_variant: str  # standard, rural, no_quality, no_quality_rural (the rate columns used)
    disciplines: tuple[str, ...]  # revenue codes of the rate table with visits
    rural_add_on: bool
    before: Decimal
    after: Decimal
    components: tuple[Decimal, ...]  # in COMPONENTS order (+ "other" never occurs: checked)
    lupa_before: bool
    lupa_after: bool
    outlier_before: Decimal
    outlier_after: Decimal
    cap_before: Decimal = ZERO
    cap_after: Decimal = ZERO

    @property
    def difference(self) -> Decimal:
        return self.after - self.before

    @property
    def paid_before(self) -> Decimal:
        return self.before - self.cap_before

    @property
    def paid_after(self) -> Decimal:
        return self.after - self.cap_after

    @property
    def has_outlier(self) -> bool:
        return self.outlier_before > 0 or self.outlier_after > 0


@dataclass(frozen=True)
class UnpricedClaim:
    pk: int
    agency_id: str
    claim_id: str
    type_of_bill: str
    reason: str


@dataclass(frozen=True)
class ChangeImpact:
    """A rule change and the claims it touches; ``dollars`` is its component over those claims."""

    change: Change
    component: str | None
    claim_pks: tuple[int, ...]
    dollars: Decimal
    shared: bool  # the component also carries other changes of the same claims


@dataclass(frozen=True)
class Totals:
    """Sums over a set of priced claims (one agency, or all)."""

    agency_id: str | None
    claims: int
    unpriced: int
    before: Decimal
    after: Decimal
    components: tuple[tuple[str, Decimal], ...]
    cap_before: Decimal
    cap_after: Decimal

    @property
    def difference(self) -> Decimal:
        return self.after - self.before

    @property
    def cap_line(self) -> Decimal:
        """The change the outlier cap makes to the difference: what it took before less after."""
        return self.cap_before - self.cap_after

    @property
    def paid_before(self) -> Decimal:
        return self.before - self.cap_before

    @property
    def paid_after(self) -> Decimal:
        return self.after - self.cap_after

    @property
    def paid_difference(self) -> Decimal:
        return self.paid_after - self.paid_before


@dataclass(frozen=True)
class ImpactResult:
    from_year: int
    to_year: int
    rules_from: date
    rules_to: date
    from_provenance: Provenance
    to_provenance: Provenance
    agency: str | None
    changes: tuple[ChangeImpact, ...]
    claims: tuple[ClaimImpact, ...]
    unpriced: tuple[UnpricedClaim, ...]
    agencies: tuple[Totals, ...]
    totals: Totals
    priced_alone: int  # claims priced on their own rather than through a pricing class
    pricing_classes: int


# --------------------------------------------------------------------------------------------
# Parameters of one kind of claim, and their bounds


def _rate_variant(quality: bool, rural: bool) -> str:
    return ("standard" if quality else "no_quality") if not rural else ("rural" if quality else "no_quality_rural")


@dataclass
class _Pair:
    """The two years' parameters of one (HIPPS, CBSA, quality flag), and the parameter sets the
    attribution passes through: ``sequence[0]`` is ``before``, ``sequence[k]`` has the first k
    groups of ``ATTRIBUTION_ORDER`` swapped to ``after`` (as ``attribute_change`` swaps them)."""

    before: PricingParameters
    after: PricingParameters

    def __post_init__(self) -> None:
        self.lupa_low = min(self.before.lupa_threshold, self.after.lupa_threshold)
        self.lupa_high = max(self.before.lupa_threshold, self.after.lupa_threshold)
        current = self.before
        self.sequence = [current]
        for _, names in ATTRIBUTION_ORDER:
            current = dataclasses.replace(current, **{name: getattr(self.after, name) for name in names})
            self.sequence.append(current)


@dataclass(frozen=True)
class _Shape:
    """What the pricer reads from a claim's visit lines."""

    visits: dict[str, int]
    units: dict[str, int]
    earliest: dict[str, date]
    latest: dict[str, date]
    day_over_cap: bool

    @classmethod
    def of(cls, claim: PeriodClaim) -> _Shape:
        visits: dict[str, int] = {}
        units: dict[str, int] = {}
        earliest: dict[str, date] = {}
        latest: dict[str, date] = {}
        units_by_day: dict[date, int] = defaultdict(int)
        for line in claim.lines:
            code = _discipline(line)
            if code is None:
                continue
            visits[code] = visits.get(code, 0) + 1
            count = max(line.units, 0)
            units[code] = units.get(code, 0) + count
            day = line.service_date
            if day is not None:
                units_by_day[day] += count
                if code not in earliest or day < earliest[code]:
                    earliest[code] = day
                if code not in latest or day > latest[code]:
                    latest[code] = day
        over = any(count > MAX_UNITS_PER_DAY for count in units_by_day.values())
        return cls(visits, units, earliest, latest, over)


def _add_on_discipline(shape: _Shape, factors: Mapping[str, Decimal]) -> str | None:
    """The discipline the LUPA add-on would go to: earliest visit among those with a factor."""
    candidates = [code for code in shape.visits if code in factors and code in shape.earliest]
    if not candidates:
        return None
    rank = {code: position for position, code in enumerate(ADD_ON_TIE_ORDER)}
    return min(candidates, key=lambda code: (shape.earliest[code], rank.get(code, len(rank))))


def _pricing_class(claim: PeriodClaim, shape: _Shape, pair: _Pair) -> tuple | None:
    """The key of the claim's pricing class (see the module doc), or None: price it on its own."""
    if (not shape.visits or shape.day_over_cap or claim.days_until_noa_received
            or claim.vbp_adjustment_factor != 1 or claim.readmitted_in_period):
        return None
    common = (claim.type_of_bill, claim.hipps, claim.rural_add_on_category, claim.quality_data_submitted,
              claim.admission_date > claim.from_date)
    total = sum(shape.visits.values())
    if total < pair.lupa_low:
        eligible = (claim.admission_date == claim.from_date and TRANSFER_CONDITION_CODE not in claim.condition_codes
                    and not claim.is_adjustment)
        add_ons = tuple(_add_on_discipline(shape, p.lupa_add_on_factors) for p in (pair.before, pair.after))
        return ("lupa", common, eligible, add_ons if eligible else None)
    if total < pair.lupa_high:
        return None
    partial_days = None
    if claim.patient_status == TRANSFER_PATIENT_STATUS:
        if not shape.earliest:
            return None
        partial_days = (max(shape.latest.values()) - min(shape.earliest.values())).days + 1
    return ("period", common, partial_days)


class _Year(NamedTuple):
    """A claim's payment under one year's parameters (the pricer's result when the cap needs it)."""

    total: Decimal
    outlier: Decimal
    lupa: bool
    result: PricingResult | None

    @classmethod
    def of(cls, result: PricingResult) -> _Year:
        return cls(result.total, result.outlier_amount, result.lupa, result)


_PARAMETER_FIELDS = tuple(f.name for f in dataclasses.fields(PricingParameters) if f.name != "citations")
#: Parameters the pricer does not read for a non-LUPA period, and for a LUPA period.
_IGNORED_BY_KIND = {
    "period": frozenset({"per_visit_rates", "lupa_add_on_factors"}),
    "lupa": frozenset({"case_mix_weight", "thirty_day_rate", "thirty_day_rate_without_quality_data", "per_unit_rates",
                       "fdl_ratio", "loss_sharing_ratio"}),
}


class _FormulaClass:
    """Claims the pricer must price alike but for their visits and units per discipline.

    Two kinds, each for claims without a late NOA, a VBP factor or a day above 32 units:

    ``period`` (non-LUPA under both years' thresholds): the pricer pays the period payment plus the
    outlier. The imputed cost is, per discipline, the wage-adjusted rounded(units x per-unit rate)
    (``kb.pricing.wage_adjust`` and ``round_cents``), the outlier rounded(loss-sharing ratio x
    (cost - threshold)) when the cost is above the threshold. A partial period pays
    rounded(period payment x rounded(days / 30, 2)), and its threshold moves with it.

    ``lupa`` (LUPA under both thresholds): per discipline the wage-adjusted visits x per-visit
    rate, and on the add-on discipline (the same for every claim of the class) the wage-adjusted
    rounded(per-visit rate x (factor - 1)).

    The class's first claim is priced by the pricer under every parameter set of the attribution
    (as a full period for ``period``), which gives each set's period payment and threshold; the
    formula over that claim's own visits and units must give back every one of the pricer's
    totals, and for each partial-period length the first claim is priced again by the pricer and
    must agree, or the class (or that length) is refused and its claims are priced on their own.
    """

    def __init__(self, kind: str, claim: PeriodClaim, shape: _Shape, pair: _Pair):
        self.kind = kind
        self.pair = pair
        self.category = claim.rural_add_on_category
        self.add_on_eligible = kind == "lupa" and (
            claim.admission_date == claim.from_date and TRANSFER_CONDITION_CODE not in claim.condition_codes
            and not claim.is_adjustment)
        full = dataclasses.replace(claim, patient_status="01") if kind == "period" else claim
        self.parameter_sets = [*pair.sequence, pair.after]
        ignored = _IGNORED_BY_KIND[kind]
        self.results = []
        previous = None
        for parameters in self.parameter_sets:
            inputs = tuple(getattr(parameters, name) for name in _PARAMETER_FIELDS if name not in ignored)
            if inputs != previous:  # otherwise the pricer reads nothing different: same result
                result = price_period(full, parameters)
            self.results.append(result)
            previous = inputs
        self.partial_checked: bool | None = None
        self.known_costs: dict[tuple, Decimal] = {}  # a discipline's wage-adjusted amount by rates and count
        inputs = [
            (id(p.per_visit_rates), id(p.lupa_add_on_factors)) if kind == "lupa" else
            (r.period_payment, r.outlier_threshold, p.loss_sharing_ratio, id(p.per_unit_rates))
            for p, r in zip(self.parameter_sets, self.results)
        ]
        inputs = [i + (p.wage_index, p.labor_share, self._factor(p)) for i, p in zip(inputs, self.parameter_sets)]
        self.repeats = [k > 0 and inputs[k] == inputs[k - 1] for k in range(len(inputs))]
        self.usable = [sum(parts) for parts in self._totals(shape, None)] == [result.total for result in self.results]

    def _factor(self, parameters: PricingParameters) -> Decimal | None:
        factors = parameters.rural_add_on_factors
        return factors.get(self.category) if factors is not None and self.category else None

    def _totals(self, shape: _Shape, partial_days: int | None) -> list[tuple[Decimal, Decimal]]:
        """(period payment or LUPA payment, outlier) under each parameter set."""
        share = None
        if partial_days is not None:
            share = (Decimal(partial_days) / PERIOD_DAYS).quantize(CENT, rounding=ROUND_HALF_UP)
        totals: list[tuple[Decimal, Decimal]] = []
        costs: dict[tuple, Decimal] = {}  # imputed cost by (per-unit rates, wage index, labor share, factor)
        for parameters, result, repeat in zip(self.parameter_sets, self.results, self.repeats):
            if repeat:  # nothing this claim's payment reads changed from the previous set
                totals.append(totals[-1])
                continue
            factor = self._factor(parameters)
            wage_index, labor_share = parameters.wage_index, parameters.labor_share
            if self.kind == "lupa":
                total = ZERO
                known = self.known_costs
                visit_key = (id(parameters.per_visit_rates), wage_index, labor_share, factor)
                for code, visits in shape.visits.items():
                    amount = known.get((visit_key, code, visits))
                    if amount is None:
                        rate = parameters.per_visit_rates[code]
                        rate = rate if factor is None else round_cents(rate * factor)
                        amount = known[(visit_key, code, visits)] = wage_adjust(visits * rate, wage_index, labor_share)
                    total += amount
                add_on = _add_on_discipline(shape, parameters.lupa_add_on_factors) if self.add_on_eligible else None
                if add_on is not None:
                    rate = parameters.per_visit_rates[add_on]
                    rate = rate if factor is None else round_cents(rate * factor)
                    amount = round_cents(rate * (parameters.lupa_add_on_factors[add_on] - 1))
                    total += wage_adjust(amount, wage_index, labor_share)
                totals.append((total, ZERO))
                continue
            period_payment, threshold = result.period_payment, result.outlier_threshold
            if share is not None:
                partial_payment = round_cents(period_payment * share)
                threshold += partial_payment - period_payment
                period_payment = partial_payment
            cost_key = (id(parameters.per_unit_rates), wage_index, labor_share, factor)
            cost = costs.get(cost_key)
            if cost is None:
                cost = ZERO
                known = self.known_costs
                for code, units in shape.units.items():
                    amount = known.get((cost_key, code, units))
                    if amount is None:
                        rate = parameters.per_unit_rates[code]
                        rate = rate if factor is None else round_cents(rate * factor)
                        amount = known[(cost_key, code, units)] = wage_adjust(round_cents(rate * units), wage_index,
                                                                               labor_share)
                    cost += amount
                costs[cost_key] = cost
            outlier = round_cents(parameters.loss_sharing_ratio * (cost - threshold)) if cost > threshold else ZERO
            totals.append((period_payment, outlier))
        return totals

    def price(self, claim_id: str, load_claim, shape: _Shape, partial_days: int | None):
        """(before, after, components) of a claim of the class, or None: price it on its own.
        ``load_claim()`` gives the claim with its lines (for the first partial period's check)."""
        if not self.usable:
            return None
        try:
            parts = self._totals(shape, partial_days)
        except KeyError:  # a rate the tables lack: the pricer will say which
            return None
        totals = [sum(pair) for pair in parts]
        if partial_days is not None and self.partial_checked is None:
            claim = load_claim()
            self.partial_checked = [totals[0], totals[-1]] == [price_period(claim, self.pair.before).total,
                                                               price_period(claim, self.pair.after).total]
        if partial_days is not None and not self.partial_checked:
            return None
        components = tuple(totals[k + 1] - totals[k] for k in range(len(COMPONENTS)))
        return (self._year(self.results[0], claim_id, parts[0]), self._year(self.results[-1], claim_id, parts[-1]),
                components)

    def _year(self, result: PricingResult, claim_id: str, parts: tuple[Decimal, Decimal]) -> _Year:
        period_payment, outlier = parts
        total = period_payment + outlier
        if outlier > 0:  # the outlier cap needs the pricer's result: the first claim's, with this one's figures
            return _Year(total, outlier, result.lupa, self._result(result, claim_id, parts))
        return _Year(total, outlier, result.lupa, None)

    def _result(self, result: PricingResult, claim_id: str, parts: tuple[Decimal, Decimal]) -> PricingResult:
        """The pricer's result of the class's first claim with this claim's payment and outlier
        (what the outlier cap reads); its trace is the first claim's, so it is dropped."""
        period_payment, outlier = parts
        total = period_payment + outlier
        if (result.claim_id, result.total, result.period_payment) == (claim_id, total, period_payment):
            return result
        if self.kind == "lupa":
            return dataclasses.replace(result, claim_id=claim_id, total=total, trace=(), disciplines=(),
                                       lupa_payment=total, lupa_add_on=ZERO)
        return dataclasses.replace(result, claim_id=claim_id, total=total, trace=(), period_payment=period_payment,
                                   outlier_amount=outlier, outlier_imputed_cost=ZERO)


# --------------------------------------------------------------------------------------------
# The impact


#: Claims read and priced per batch.
CLAIM_BATCH = 5000


def _shapes(session: Session, pks: list[int]) -> dict[int, _Shape]:
    """Each claim's visits, units and first and last visit dates per discipline, in one query
    (set-based: no claim line reaches Python). Claims listed by :func:`_irregular` are priced
    from their lines instead."""
    lines = AgencyClaimLine.__table__
    group = sa.func.substr(lines.c.revenue_code, 1, 3)
    units = sa.func.sum(sa.cast(lines.c.units, sa.Integer))
    rows = session.execute(
        sa.select(lines.c.claim_pk, group, sa.func.count(), units, sa.func.min(lines.c.service_date),
                  sa.func.max(lines.c.service_date))
        .where(id_in(session, lines.c.claim_pk, pks), _visit_line(lines))
        .group_by(lines.c.claim_pk, group)
    ).all()
    shapes: dict[int, _Shape] = {}
    for pk, revenue_group, visits, unit_count, first, last in rows:
        shape = shapes.get(pk)
        if shape is None:
            shape = shapes[pk] = _Shape({}, {}, {}, {}, False)
        code = DISCIPLINE_BY_REVENUE_GROUP[revenue_group]
        shape.visits[code] = visits
        shape.units[code] = int(unit_count)
        if first is not None:
            shape.earliest[code] = first if isinstance(first, date) else date.fromisoformat(first)
            shape.latest[code] = last if isinstance(last, date) else date.fromisoformat(last)
    return shapes


def _visit_line(lines):
    """The pricer's visit lines: a discipline's revenue code, not a site-of-service or telehealth code."""
    group = sa.func.substr(lines.c.revenue_code, 1, 3)
    return sa.and_(group.in_(sorted(DISCIPLINE_BY_REVENUE_GROUP)),
                   sa.or_(lines.c.hcpcs.is_(None), sa.func.upper(lines.c.hcpcs).not_in(sorted(NON_VISIT_HCPCS))))


def _irregular(session: Session, pks: list[int]) -> set[int]:
    """Claims whose units the per-discipline sums do not describe: units that are negative or not
    whole, or a day above the pricer's 32 units."""
    lines = AgencyClaimLine.__table__
    as_float = sa.cast(lines.c.units, sa.Float)
    odd = session.execute(
        sa.select(lines.c.claim_pk).distinct().where(
            id_in(session, lines.c.claim_pk, pks),
            sa.or_(as_float < 0, as_float != sa.cast(sa.cast(lines.c.units, sa.Integer), sa.Float)))
    ).scalars().all()
    busy = session.execute(
        sa.select(lines.c.claim_pk).distinct()
        .where(id_in(session, lines.c.claim_pk, pks), _visit_line(lines), lines.c.service_date.is_not(None))
        .group_by(lines.c.claim_pk, lines.c.service_date)
        .having(sa.func.sum(sa.cast(lines.c.units, sa.Integer)) > MAX_UNITS_PER_DAY)
    ).scalars().all()
    return set(odd) | set(busy)


_NO_VISITS = _Shape({}, {}, {}, {}, False)


class _Pricing:
    """The pass over the claims: pricing classes, claims priced alone, the running outlier cap."""

    def __init__(self, session: Session, tables_from, tables_to, pricing_classes: bool):
        self.session = session
        self.tables_from, self.tables_to = tables_from, tables_to
        self.use_classes = pricing_classes
        self.to_year_rural_add_on = any(getattr(tables_to.rate_year, f"rural_addon_{c}").value is not None
                                        for c in "abc")
        self.pairs: dict[tuple, _Pair | PricingError] = {}
        self.formulas: dict[tuple, _FormulaClass] = {}
        self.claims: list[ClaimImpact] = []
        self.unpriced: list[UnpricedClaim] = []
        self.caps: dict[str, list[Decimal]] = {}  # per agency: payments and outliers so far, before and after
        self.alone = 0

    def period_claim(self, claim: Claim) -> PeriodClaim:
        period_claim = to_period_claim(claim, self.tables_from)
        if period_claim.rural_add_on_category is None and self.to_year_rural_add_on:
            category = rural_add_on_category(claim, self.tables_to)
            if category is not None:
                period_claim = dataclasses.replace(period_claim, rural_add_on_category=category)
        return period_claim

    def pair(self, claim: Claim) -> tuple[tuple, _Pair]:
        pair_key = (claim.hipps, claim.cbsa, claim.quality_data_submitted)
        pair = self.pairs.get(pair_key)
        if pair is None:
            try:
                pair = _Pair(claim_parameters(claim, self.tables_from), claim_parameters(claim, self.tables_to))
            except PricingError as error:
                pair = error
            self.pairs[pair_key] = pair
        if isinstance(pair, PricingError):
            raise PricingError(claim.claim_id, pair.reason)
        return pair_key, pair

    def batch(self, pks: list[int]) -> None:
        """Price a batch of claims: read without lines, shaped in SQL; the lines are read only for
        the claims the pricer itself must see (a class's first claim, claims priced alone)."""
        session = self.session
        light = stored_claims_by_id(session, pks, lines=not self.use_classes)
        shapes = _shapes(session, pks) if self.use_classes else {}
        irregular = _irregular(session, pks) if self.use_classes else set()
        prepared = []
        wanted: set[int] = set()
        scheduled: set[tuple] = set()
        for stored in light:
            claim = stored.claim
            try:
                if claim.frequency_code == VOID_FREQUENCY:
                    raise PricingError(claim.claim_id, "a void (frequency 8) cancels an earlier claim; not priced")
                pair_key, pair = self.pair(claim)
                period_claim = self.period_claim(claim)
            except PricingError as error:
                prepared.append((stored, error))
                continue
            shape = shapes.get(stored.pk, _NO_VISITS) if self.use_classes else _Shape.of(period_claim)
            key = None
            if self.use_classes and stored.pk not in irregular:
                key = _pricing_class(period_claim, shape, pair)
            class_key = None
            if key is None:
                wanted.add(stored.pk)
            else:
                kind, common, *rest = key
                class_key = (pair_key, kind, common) + (tuple(rest) if kind == "lupa" else ())
                formula = self.formulas.get(class_key)
                partial = kind == "period" and rest[0] is not None
                if formula is None and class_key not in scheduled:
                    scheduled.add(class_key)
                    wanted.add(stored.pk)
                elif partial and (formula is None or formula.partial_checked is None) and (class_key, "partial") not in scheduled:
                    scheduled.add((class_key, "partial"))
                    wanted.add(stored.pk)
            prepared.append((stored, (pair_key, pair, period_claim, shape, key, class_key)))
        full = {s.pk: s.claim for s in stored_claims_by_id(session, sorted(wanted))} if self.use_classes else {
            s.pk: s.claim for s in light}

        def lines_of(pk: int) -> PeriodClaim:
            if pk not in full:
                full[pk] = stored_claims_by_id(session, [pk])[0].claim
            return self.period_claim(full[pk])

        for stored, item in prepared:
            claim = stored.claim
            if isinstance(item, PricingError):
                self.unpriced.append(UnpricedClaim(stored.pk, claim.agency_id, claim.claim_id, claim.type_of_bill,
                                                   item.reason))
                continue
            pair_key, pair, period_claim, shape, key, class_key = item
            try:
                outcome = None
                if key is not None:
                    formula = self.formulas.get(class_key)
                    if formula is None:
                        formula = _FormulaClass(key[0], lines_of(stored.pk), shape, pair)
                        self.formulas[class_key] = formula
                    outcome = formula.price(claim.claim_id, lambda: lines_of(stored.pk), shape, key[2] if key[0] == "period" else None)
                if outcome is None:
                    full_claim = lines_of(stored.pk)
                    before = price_period(full_claim, pair.before)
                    after = price_period(full_claim, pair.after)
                    outcome = (_Year.of(before), _Year.of(after), _components(full_claim, pair, before, after))
                    if not self.use_classes or key is None or shape is _NO_VISITS:
                        shape = _Shape.of(full_claim)
                    self.alone += 1
            except PricingError as error:
                self.unpriced.append(UnpricedClaim(stored.pk, claim.agency_id, claim.claim_id, claim.type_of_bill,
                                                   error.reason))
                continue
            self.record(stored.pk, claim, period_claim, shape, outcome)

    def record(self, pk: int, claim: Claim, period_claim: PeriodClaim, shape: _Shape, outcome) -> None:
        before, after, components = outcome
        running = self.caps.setdefault(claim.agency_id, [ZERO, ZERO, ZERO, ZERO])
        self.claims.append(ClaimImpact(
            pk=pk, agency_id=claim.agency_id, claim_id=claim.claim_id, type_of_bill=claim.type_of_bill,
            period_from=claim.period_from, hipps=claim.hipps, cbsa=claim.cbsa,
            quality_data_submitted=claim.quality_data_submitted,
            rate_variant=_rate_variant(claim.quality_data_submitted, is_rural_cbsa(claim.cbsa)),
            disciplines=tuple(sorted(shape.visits)),
            rural_add_on=period_claim.rural_add_on_category is not None,
            before=before.total, after=after.total,
            components=tuple(amount if amount else ZERO for amount in components),
            lupa_before=before.lupa, lupa_after=after.lupa,
            outlier_before=before.outlier, outlier_after=after.outlier,
            cap_before=_cap(before, running, 0), cap_after=_cap(after, running, 2),
        ))


def impact(
    session: Session,
    catalogue: Catalogue,
    *,
    from_year: int,
    to_year: int,
    agency: str | None = None,
    conflict_policy: str = "first",
    pricing_classes: bool = True,
) -> ImpactResult:
    """The changes from ``from_year``'s rules to ``to_year``'s and what they do to the stored
    claims (all, or one agency's). See the module doc for the method.

    ``conflict_policy`` resolves a CBSA listed twice in a wage index file; the default, ``first``,
    is what CMS's pricer does (its table search stops at the first row of the CBSA).
    Raises ``kb.parameters.ParameterError`` when a year's tables are not loaded.
    """
    rules_from, rules_to = date(from_year, 1, 1), date(to_year, 1, 1)
    cache = TablesCache(session, catalogue, conflict_policy=conflict_policy)
    tables_from, tables_to = cache.on(rules_from), cache.on(rules_to)
    old_provenance, new_provenance = provenance(tables_from), provenance(tables_to)
    changes = diff_hhpps(hhpps_state(tables_from), hhpps_state(tables_to),
                         old_provenance=old_provenance, new_provenance=new_provenance)

    pricing = _Pricing(session, tables_from, tables_to, pricing_classes)
    ids = stored_claim_ids(session, agency=agency)
    for start in range(0, len(ids), CLAIM_BATCH):
        pricing.batch(ids[start : start + CLAIM_BATCH])
    claims, unpriced = pricing.claims, pricing.unpriced
    totals_by_agency = _totals(claims, unpriced)
    return ImpactResult(
        from_year=from_year, to_year=to_year, rules_from=rules_from, rules_to=rules_to,
        from_provenance=old_provenance, to_provenance=new_provenance, agency=agency,
        changes=tuple(_change_impacts(changes, claims)),
        claims=tuple(claims), unpriced=tuple(unpriced),
        agencies=tuple(t for t in totals_by_agency if t.agency_id is not None),
        totals=next(t for t in totals_by_agency if t.agency_id is None),
        priced_alone=pricing.alone, pricing_classes=sum(formula.usable for formula in pricing.formulas.values()),
    )


def _discipline(line) -> str | None:
    code = DISCIPLINE_BY_REVENUE_GROUP.get(line.revenue_code.strip().zfill(4)[:3])
    if code is None or line.hcpcs.strip().upper() in NON_VISIT_HCPCS:
        return None
    return code


def _components(claim: PeriodClaim, pair: _Pair, before: PricingResult, after: PricingResult) -> tuple[Decimal, ...]:
    attributed = dict(attribute_change(claim, pair.before, pair.after))
    if set(attributed) - set(COMPONENTS):  # the pricer found a change outside its groups
        raise PricingError(claim.claim_id, "the attribution left an unexplained part ('other')")
    components = tuple(attributed.get(name, ZERO) for name in COMPONENTS)
    if sum(components, ZERO) != after.total - before.total:
        raise PricingError(claim.claim_id, "the components do not sum to the difference")
    return components


def _cap(year: _Year, running: list[Decimal], offset: int) -> Decimal:
    """The agency's 10% outlier cap on one claim, claims taken in period order: what it removes.

    ``running[offset]`` and ``running[offset + 1]`` are the agency's payments and outliers so far
    in that year; ``apply_outlier_cap`` gets them as its year-to-date figures, which is what it
    does itself from claim to claim.
    """
    if year.outlier > 0:
        capped = apply_outlier_cap([year.result], year_to_date_payments=running[offset],
                                   year_to_date_outliers=running[offset + 1]).results[0]
        running[offset] += capped.total
        running[offset + 1] += capped.outlier_paid
        return year.total - capped.total
    running[offset] += year.total
    return ZERO


def _totals(claims: Sequence[ClaimImpact], unpriced: Sequence[UnpricedClaim]) -> list[Totals]:
    groups: dict[str | None, list[ClaimImpact]] = defaultdict(list)
    for claim in claims:
        groups[claim.agency_id].append(claim)
        groups[None].append(claim)
    groups.setdefault(None, [])
    unpriced_count: dict[str | None, int] = defaultdict(int)
    for item in unpriced:
        unpriced_count[item.agency_id] += 1
        unpriced_count[None] += 1
        groups.setdefault(item.agency_id, [])
    totals = []
    for agency_id in sorted(groups, key=lambda a: (a is None, a or "")):
        members = groups[agency_id]
        components = [ZERO] * len(COMPONENTS)
        for claim in members:
            for index, amount in enumerate(claim.components):
                components[index] += amount
        totals.append(Totals(
            agency_id=agency_id, claims=len(members), unpriced=unpriced_count[agency_id],
            before=sum((c.before for c in members), ZERO), after=sum((c.after for c in members), ZERO),
            components=tuple(zip(COMPONENTS, components)),
            cap_before=sum((c.cap_before for c in members), ZERO), cap_after=sum((c.cap_after for c in members), ZERO),
        ))
    return totals


def component_of(change: Change) -> str | None:
    """The attribution component that carries a change (None: a change that moves no money)."""
    if change.change_type in ("hipps_added", "hipps_removed"):
        return "case-mix weight" if change.field == "weight" else "LUPA threshold"
    if change.change_type == "constant_changed":
        return _COMPONENT_OF_CONSTANT.get(change.key)
    return _COMPONENT_OF_TYPE.get(change.change_type)


def _change_impacts(changes: Iterable[Change], claims: Sequence[ClaimImpact]) -> list[ChangeImpact]:
    """The claims each change touches (indexes built once, each change a lookup) and its dollars."""
    by_hipps: dict[str, list[ClaimImpact]] = defaultdict(list)
    by_cbsa: dict[str, list[ClaimImpact]] = defaultdict(list)
    for claim in claims:
        by_hipps[claim.hipps].append(claim)
        by_cbsa[claim.cbsa].append(claim)
    non_lupa = {True: [], False: []}
    for claim in claims:
        if not (claim.lupa_before and claim.lupa_after):
            non_lupa[claim.quality_data_submitted].append(claim)
    lupa = [c for c in claims if c.lupa_before or c.lupa_after]
    outliers = [c for c in claims if c.has_outlier]
    index = {name: position for position, name in enumerate(COMPONENTS)}

    def touched(change: Change) -> list[ClaimImpact]:
        kind, key = change.change_type, change.key
        if kind in ("weight_changed", "lupa_threshold_changed", "hipps_added", "hipps_removed"):
            return by_hipps.get(key, [])
        if kind in ("wage_index_changed", "cbsa_added", "cbsa_removed", "cbsa_name_changed"):
            return by_cbsa.get(key, [])
        if kind == "key_changed":
            return by_cbsa.get(key, []) + by_cbsa.get(change.old_key or "", [])
        if kind == "thirty_day_rate_changed":
            return non_lupa[not key.endswith("no_quality")]
        if kind == "visit_rate_changed":
            return [c for c in lupa if key in c.disciplines and c.rate_variant == change.field]
        if kind == "unit_rate_changed":
            return [c for c in outliers if key in c.disciplines and c.rate_variant == change.field]
        if kind == "fdl_ratio_changed" or key == "loss_sharing_ratio":
            return outliers
        if key in _ADD_ON_DISCIPLINE:
            return [c for c in lupa if _ADD_ON_DISCIPLINE[key] in c.disciplines]
        if key.startswith("rural_addon"):
            return [c for c in claims if c.rural_add_on]
        return list(claims)  # labor share, late NOA rule, outlier cap ratio

    result = []
    component_users: dict[str, int] = defaultdict(int)
    for change in changes:
        component_users[component_of(change) or ""] += 1
    for change in changes:
        component = component_of(change)
        members = touched(change)
        if component in index:
            dollars = sum((c.components[index[component]] for c in members), ZERO)
        elif component == OUTLIER_CAP_LINE:
            dollars = sum((c.cap_before - c.cap_after for c in members), ZERO)
        else:
            dollars = ZERO
        shared = component is not None and component_users[component] > 1 and component not in (
            "case-mix weight", "LUPA threshold", "wage index")
        result.append(ChangeImpact(change, component, tuple(c.pk for c in members), dollars, shared))
    return result


# --------------------------------------------------------------------------------------------
# HCPCS changes


def hcpcs_change_date(change: Change) -> date:
    """The first day a HCPCS change applies to a line: the day after a termination date, else the
    change's effective date."""
    if change.change_type == "discontinued" and isinstance(change.new, date):
        return change.new + timedelta(days=1)
    return change.effective_date


def hcpcs_impact(session: Session, changes: Iterable[Change]) -> dict[Change, tuple[int, ...]]:
    """For each HCPCS change, the stored claims (ids) with a line carrying the code on or after the
    change's date (a line without a date counts from its claim's period start). One query for all
    the codes."""
    hcpcs_changes = [change for change in changes if change.source == HCPCS]
    codes = sorted({code for change in hcpcs_changes for code in (change.key, change.old_key) if code})
    if not codes:
        return {change: () for change in hcpcs_changes}
    lines, claims = AgencyClaimLine.__table__, AgencyClaim.__table__
    served = sa.func.coalesce(lines.c.service_date, claims.c.period_from)
    rows = session.execute(
        sa.select(lines.c.hcpcs, claims.c.id, sa.func.max(served))
        .join(claims, claims.c.id == lines.c.claim_pk)
        .where(lines.c.hcpcs.in_(codes))
        .group_by(lines.c.hcpcs, claims.c.id)
    ).all()
    latest_by_code: dict[str, list[tuple[int, date]]] = defaultdict(list)
    for code, claim_pk, latest in rows:
        if isinstance(latest, str):  # SQLite returns an aggregate of dates as text
            latest = date.fromisoformat(latest)
        latest_by_code[code].append((claim_pk, latest))
    result: dict[Change, tuple[int, ...]] = {}
    for change in hcpcs_changes:
        start = hcpcs_change_date(change)
        pks = {pk for code in (change.key, change.old_key) if code
               for pk, latest in latest_by_code.get(code, []) if latest >= start}
        result[change] = tuple(sorted(pks))
    return result
