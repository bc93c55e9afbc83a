"""The impact of one year's HH PPS rules against another's on an agency's stored claims.

:func:`impact` answers "what do the CY2024 rules change for our claims, compared with CY2023's":

1. The rule changes: :func:`kb.diff.diff_hhpps` over the two years' stored tables and catalogue
   constants (``kb.parameters.hhpps_state``).
2. Each claim priced twice, under the FROM year's and the TO year's parameters. The claim is not
   moved in time: it is priced with the parameters in force on January 1 of each year, and its
   own dates are used only as the pricer uses them, relative to each other (admission date equal
   to the from-date for the LUPA add-on, the earliest visit, the days of a partial period). Each
   claim also says which year its own dates would choose (CMS's pricer chooses by the through
   date: ``ClaimImpact.own_year``). The rural add-on category is each year's own, found as that
   year's pricer finds it (``kb.claims.rural_add_on_category``); a rural area's county missing from
   the add-on table is refused (return code 31) and listed as not priced. The inputs a claim does
   not carry (NOA receipt date, VBP factor of the claim's own year, a same-agency readmission) are
   those supplied (``kb.claim_inputs``), the same under both years, else assumed absent; each
   claim says which were supplied.
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
index ...) is listed with the reason: every claim is either priced or listed. So is a claim that a
later adjustment replaced or a void cancelled (``kb.claims.superseded_claims``): only the version
that stands is the agency's claim, and pricing both would count its dollars twice.

Pricing classes (speed)
    Pricing a claim and attributing its difference takes sixteen runs of the pricer (about 2 ms);
    100,000 claims would take minutes. Claims are therefore read without their lines (only the
    columns the impact reads, through the driver), shaped in SQL (visits, units and first and last
    visit per discipline, one grouped query per batch), and put in classes the pricer must price
    alike but for their visits and units per discipline (``_FormulaClass``): LUPA periods under both
    years' thresholds, and non-LUPA periods under both. The class's first claim is priced by the
    pricer under every parameter set of the attribution; for the other claims the few steps that
    depend on their own visits or units (the per-discipline wage-adjusted amounts, the outlier over
    the pricer's own threshold, a partial period's share) are taken with the pricer's rounding
    functions, and the class is used only if those steps give back every one of the pricer's totals
    for its first claim (and for its first partial period). Components are then the differences
    between consecutive parameter sets, exactly as ``attribute_change`` takes them. A non-LUPA claim
    whose imputed cost stays at or below every threshold (most claims) takes its class's outcome as
    it is. Any other claim (visits between the two thresholds, a day above 32 units, units not
    whole, a revenue or HCPCS code SQL might read otherwise than the pricer, a late NOA or a VBP
    factor) is priced from its lines by ``price_period`` and ``attribute_change``.
    ``pricing_classes=False`` prices every claim that way; the tests compare the two, and both with
    the pricer run on each claim.
"""

from __future__ import annotations

import dataclasses
import gc
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session

from kb.claims import (
    LIST_SEPARATOR,
    VOID_FREQUENCY,
    driver_id_condition,
    stored_claim_ids,
    stored_claims_by_id,
    superseded_claims,
    TablesCache,
    claim_parameters,
    is_rural_cbsa,
    lupa_source_admission,
    rural_add_on_category,
    to_period_claim,
)
from kb.claim_inputs import ClaimInputs, SuppliedInputs
from kb.diff import Change, Provenance, diff_hhpps
from loaders.claim_record import Claim
from kb.parameters import hhpps_state, provenance
from kb.pricing import (
    ATTRIBUTION_ORDER,
    DISCIPLINE_BY_REVENUE_GROUP,
    ADD_ON_TIE_ORDER,
    MAX_UNITS_PER_DAY,
    NON_VISIT_HCPCS,
    TRANSFER_PATIENT_STATUS,
    PeriodClaim,
    PricingError,
    PricingParameters,
    PricingResult,
    apply_outlier_cap,
    attribute_change,
    imputed_cost_amount,
    lupa_add_on_amount,
    lupa_add_on_exclusion,
    lupa_add_on_exclusion_of,
    lupa_visit_amount,
    outlier_payment,
    partial_period_payment,
    partial_period_share,
    price_period,
    rural_rate,
    wage_adjust,
)
from regulations.catalogue import Catalogue
from regulations.scenario import Scenario

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
    own_year: int = 0  # the year the claim's own dates choose (its through date's)
    inputs_supplied: tuple[str, ...] = ()  # of "noa", "vbp", "readmission"; the others assumed absent

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
    notes: tuple[tuple[str, int], ...] = ()  # open questions of a year's parameters, and the claims they touch
    scenario: Scenario | None = None  # a what-if on the TO side: not in force

    @property
    def to_label(self) -> str:
        return f"CY{self.to_year}" if self.scenario is None else f"{self.scenario.scenario_id} ({self.scenario.label})"

    @property
    def own_years(self) -> tuple[tuple[int, int], ...]:
        """(year, claims) for each year the priced claims' own through dates choose."""
        counts: dict[int, int] = defaultdict(int)
        for claim in self.claims:
            counts[claim.own_year] += 1
        return tuple(sorted(counts.items()))

    @property
    def inputs_supplied(self) -> tuple[tuple[str, int, int], ...]:
        """(input, claims it was supplied for, claims it was assumed absent for)."""
        return tuple((name, sum(name in c.inputs_supplied for c in self.claims),
                      sum(name not in c.inputs_supplied for c in self.claims))
                     for name in ("noa", "vbp", "readmission"))


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


class _ClaimRow(NamedTuple):
    """A stored claim without its lines: the columns the impact reads. The fields carry the names
    of :class:`loaders.claim_record.Claim`'s, so ``claim_parameters`` and ``rural_add_on_category``
    read a row as they read a claim."""

    pk: int
    agency_id: str
    claim_id: str
    type_of_bill: str
    period_from: date
    period_through: date
    admission_date: date | None
    patient_status: str | None
    hipps: str | None
    cbsa: str | None
    fips_county: str | None
    quality_data_submitted: bool
    condition_codes: tuple[str, ...]

    @property
    def frequency_code(self) -> str:
        return self.type_of_bill[3:]

    @classmethod
    def of(cls, pk: int, claim: Claim) -> _ClaimRow:
        return cls(pk, claim.agency_id, claim.claim_id, claim.type_of_bill, claim.period_from, claim.period_through,
                   claim.admission_date,
                   claim.patient_status, claim.hipps, claim.cbsa, claim.fips_county, claim.quality_data_submitted,
                   claim.condition_codes)


def _add_on_discipline(shape: _Shape, factors: Mapping[str, Decimal]) -> str | None:
    """The discipline the LUPA add-on would go to: earliest visit among those with a factor."""
    candidates = [code for code in shape.visits if code in factors and code in shape.earliest]
    if not candidates:
        return None
    rank = {code: position for position, code in enumerate(ADD_ON_TIE_ORDER)}
    return min(candidates, key=lambda code: (shape.earliest[code], rank.get(code, len(rank))))


def _pricing_class(row: _ClaimRow, rural_category: tuple, shape: _Shape, pair: _Pair) -> tuple | None:
    """The key of the claim's pricing class (see the module doc), or None: price it on its own.

    The caller has sent a claim with supplied inputs (a late NOA, a VBP factor, a readmission) to be
    priced on its own, so its visits, its units by day and its dates decide. ``row`` has an
    admission date (a claim without one is priced on its own, which says so).
    """
    if not shape.visits or shape.day_over_cap:
        return None
    common = (row.type_of_bill, row.hipps, rural_category, row.quality_data_submitted,
              row.admission_date > row.period_from)
    total = sum(shape.visits.values())
    if total < pair.lupa_low:
        eligible = lupa_add_on_exclusion_of(row.admission_date, row.period_from,
                                            lupa_source_admission(row.condition_codes), "0") is None
        add_ons = tuple(_add_on_discipline(shape, p.lupa_add_on_factors) for p in (pair.before, pair.after))
        return ("lupa", common, eligible, add_ons if eligible else None)
    if total < pair.lupa_high:
        return None
    partial_days = None
    if row.patient_status == TRANSFER_PATIENT_STATUS:
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


#: (before, after, components) of one claim.
_Outcome = tuple[_Year, _Year, tuple[Decimal, ...]]

_PARAMETER_FIELDS = tuple(f.name for f in dataclasses.fields(PricingParameters) if f.name != "citations")
#: Parameters the pricer does not read for a non-LUPA period, and for a LUPA period.
_IGNORED_BY_KIND = {
    "period": frozenset({"per_visit_rates", "lupa_add_on_factors"}),
    "lupa": frozenset({"case_mix_weight", "thirty_day_rate", "thirty_day_rate_without_quality_data", "per_unit_rates",
                       "fdl_ratio", "loss_sharing_ratio"}),
}


class _PeriodPlan(NamedTuple):
    """A ``period`` class's figures for one partial-period length (None: a full period)."""

    steps: list[tuple[Decimal, Decimal, Decimal, int]]  # per parameter set: payment, threshold, ratio, rates
    limits: list[Decimal]  # per rate input: the lowest threshold of the sets that use it
    lowest: Decimal  # the lowest threshold of all
    without_outlier: _Outcome  # the outcome of every claim with no outlier under any set


class _FormulaClass:
    """Claims the pricer must price alike but for their visits and units per discipline.

    Two kinds, each for claims without a late NOA, a VBP factor or a day above 32 units:

    ``period`` (non-LUPA under both years' thresholds): the pricer pays the period payment plus the
    outlier over the summed wage-adjusted imputed costs of the disciplines; a partial period's
    payment and threshold move with its share. ``lupa`` (LUPA under both thresholds): per discipline
    the wage-adjusted per-visit amount, and on the add-on discipline (the same for every claim of
    the class) the wage-adjusted add-on.

    Every amount comes from the pricer's own formula functions (``kb.pricing.rural_rate``,
    ``lupa_visit_amount``, ``lupa_add_on_amount``, ``imputed_cost_amount``, ``wage_adjust``,
    ``partial_period_share``, ``partial_period_payment``, ``outlier_payment``): a class only decides
    which sums they are applied to, so a pricing rule is written once, in ``kb.pricing``.

    The class's first claim is priced by the pricer under every parameter set of the attribution
    (as a full period for ``period``), which gives each set's period payment and threshold; the
    formula over that claim's own visits and units must give back every one of the pricer's
    totals, and for each partial-period length the first claim is priced again by the pricer and
    must agree, or the class (or that length) is refused and its claims are priced on their own.

    The parameter sets share a few rate inputs (rates, wage index, labor share, rural factor): a
    claim's per-discipline amounts are summed once per input, each amount worked out once for all
    the classes with that input. The add-on of each set is the class's. A ``period`` claim whose imputed cost is at or
    below the threshold of every set that reads it has no outlier anywhere: its outcome is the
    class's own (the period payments), kept once per partial-period length.
    """

    def __init__(self, kind: str, claim: PeriodClaim, shape: _Shape, pair: _Pair,
                 amount_tables: dict[tuple, dict[tuple[str, int], tuple[Decimal, ...]]]):
        """``amount_tables``: the per-discipline amounts by rate inputs, shared by the classes."""
        self.kind = kind
        self.pair = pair
        self.category = claim.rural_add_on_category
        self.add_on_eligible = kind == "lupa" and lupa_add_on_exclusion(claim) is None
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
        rates_field = "per_visit_rates" if kind == "lupa" else "per_unit_rates"
        self.rate_inputs: list[tuple[Mapping[str, Decimal], Decimal, Decimal, Decimal | None]] = []
        self.rate_input_of_set: list[int] = []
        position: dict[tuple, int] = {}
        for parameters in self.parameter_sets:
            rates, factor = getattr(parameters, rates_field), self._factor(parameters)
            key = (id(rates), parameters.wage_index, parameters.labor_share, factor)
            if key not in position:
                position[key] = len(self.rate_inputs)
                self.rate_inputs.append((rates, parameters.wage_index, parameters.labor_share, factor))
            self.rate_input_of_set.append(position[key])
        # a discipline's amount under each rate input, by (discipline, visits or units)
        self.amounts = amount_tables.setdefault(
            (kind, tuple((tuple(sorted(rates.items())), *rest) for rates, *rest in self.rate_inputs)), {})
        self.add_ons = [self._add_on(parameters, shape) for parameters in self.parameter_sets]
        self.plans: dict[int | None, _PeriodPlan] = {}
        first = self._sums(self._entries(shape.visits if kind == "lupa" else shape.units))
        self.usable = [sum(parts) for parts in self._parts(first, None)] == [result.total for result in self.results]

    def _factor(self, parameters: PricingParameters) -> Decimal | None:
        factors = parameters.rural_add_on_factors
        category = parameters.rural_add_on_category or self.category
        return factors.get(category) if factors is not None and category else None

    def _add_on(self, parameters: PricingParameters, shape: _Shape) -> Decimal | None:
        """The wage-adjusted LUPA add-on under one parameter set, the same for every claim of the
        class (the add-on discipline under each year's factors is part of the class key)."""
        code = _add_on_discipline(shape, parameters.lupa_add_on_factors) if self.add_on_eligible else None
        if code is None:
            return None
        rate = rural_rate(parameters.per_visit_rates[code], self._factor(parameters))
        amount = lupa_add_on_amount(rate, parameters.lupa_add_on_factors[code])
        return wage_adjust(amount, parameters.wage_index, parameters.labor_share)

    def _entries(self, counts: Mapping[str, int]) -> list[tuple[Decimal, tuple[Decimal, ...]]]:
        """Per discipline of the claim, its wage-adjusted amount under each rate input, and the
        highest of them: visits x per-visit rate (``lupa``), rounded(units x per-unit rate)
        (``period``, its imputed cost). KeyError: a rate the tables lack."""
        known = self.amounts
        entries = []
        for item in counts.items():
            entry = known.get(item)
            if entry is None:
                code, count = item
                amounts = tuple(self._amount(rate_input, code, count) for rate_input in self.rate_inputs)
                entry = known[item] = (max(amounts), amounts)
            entries.append(entry)
        return entries

    def _sums(self, entries: list[tuple[Decimal, tuple[Decimal, ...]]]) -> list[Decimal]:
        """Per rate input, the sum of the claim's amounts (:meth:`_entries`)."""
        if not entries:
            return [ZERO] * len(self.rate_inputs)
        return [sum(column, ZERO) for column in zip(*(amounts for _, amounts in entries))]

    def _amount(self, rate_input: tuple, code: str, count: int) -> Decimal:
        rates, wage_index, labor_share, factor = rate_input
        rate = rural_rate(rates[code], factor)
        amount = lupa_visit_amount(count, rate) if self.kind == "lupa" else imputed_cost_amount(count, rate)
        return wage_adjust(amount, wage_index, labor_share)

    def _plan(self, partial_days: int | None) -> _PeriodPlan:
        plan = self.plans.get(partial_days)
        if plan is not None:
            return plan
        share = None if partial_days is None else partial_period_share(partial_days)
        steps = []
        for parameters, result, rate_input in zip(self.parameter_sets, self.results, self.rate_input_of_set):
            period_payment, threshold = result.period_payment, result.outlier_threshold
            if share is not None:
                partial_payment = partial_period_payment(period_payment, share)
                threshold += partial_payment - period_payment
                period_payment = partial_payment
            steps.append((period_payment, threshold, parameters.loss_sharing_ratio, rate_input))
        limits = [min(threshold for _, threshold, _, used in steps if used == rate_input)
                  for rate_input in range(len(self.rate_inputs))]
        without_outlier = self._outcome("", [(period_payment, ZERO) for period_payment, *_ in steps])
        plan = self.plans[partial_days] = _PeriodPlan(steps, limits, min(limits), without_outlier)
        return plan

    def _parts(self, sums: list[Decimal], partial_days: int | None) -> list[tuple[Decimal, Decimal]]:
        """(period payment or LUPA payment, outlier) under each parameter set, from the claim's
        sums per rate input (:meth:`_sums`)."""
        if self.kind == "lupa":
            return [(sums[used] if add_on is None else sums[used] + add_on, ZERO)
                    for used, add_on in zip(self.rate_input_of_set, self.add_ons)]
        return [(period_payment, outlier_payment(sums[used], threshold, ratio))
                for period_payment, threshold, ratio, used in self._plan(partial_days).steps]

    def price(self, claim_id: str, load_claim, shape: _Shape, partial_days: int | None) -> _Outcome | None:
        """(before, after, components) of a claim of the class, or None: price it on its own.
        ``load_claim()`` gives the claim with its lines (for the first partial period's check)."""
        if not self.usable:
            return None
        try:
            entries = self._entries(shape.visits if self.kind == "lupa" else shape.units)
        except KeyError:  # a rate the tables lack: the pricer will say which
            return None
        outcome = None
        if self.kind == "period":
            # no outlier under any set: the highest amounts are at or below the lowest threshold,
            # or else each rate input's cost is at or below the thresholds of its sets
            plan = self._plan(partial_days)
            if sum((highest for highest, _ in entries), ZERO) <= plan.lowest:
                outcome = plan.without_outlier
            else:
                sums = self._sums(entries)
                if all(map(operator.le, sums, plan.limits)):
                    outcome = plan.without_outlier
        else:
            sums = self._sums(entries)
        if outcome is None:
            outcome = self._outcome(claim_id, self._parts(sums, partial_days))
        if partial_days is not None and self.partial_checked is None:
            claim = load_claim()
            before, after, _ = outcome
            self.partial_checked = [before.total, after.total] == [price_period(claim, self.pair.before).total,
                                                                   price_period(claim, self.pair.after).total]
        if partial_days is not None and not self.partial_checked:
            return None
        return outcome

    def _outcome(self, claim_id: str, parts: list[tuple[Decimal, Decimal]]) -> _Outcome:
        totals = [sum(pair) for pair in parts]
        components = _cents(totals[k + 1] - totals[k] for k in range(len(COMPONENTS)))
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

_CLAIM_ROW_SQL = (
    "SELECT id, agency_id, claim_id, type_of_bill, period_from, period_through, admission_date, patient_status, "
    "hipps, cbsa, "
    "fips_county, quality_data_submitted, condition_codes FROM claim WHERE {ids}"
)
#: Lines the grouped queries might read otherwise than the pricer: units that are not a whole
#: number of at least zero, a revenue code that is not four digits, a HCPCS code of other
#: characters than digits and capital letters (units are text in SQLite, numeric in PostgreSQL;
#: other databases get the portable test). The claims with one are priced from their lines, so the
#: queries below compare revenue and HCPCS codes as they are stored.
_UNUSUAL_LINE = {
    "sqlite": ("units GLOB '*[^0-9]*' OR revenue_code NOT GLOB '[0-9][0-9][0-9][0-9]' "
               "OR hcpcs GLOB '*[^0-9A-Z]*'"),
    "postgresql": ("units < 0 OR units <> trunc(units) OR revenue_code !~ '^[0-9][0-9][0-9][0-9]$' "
                   "OR hcpcs ~ '[^0-9A-Z]'"),
}
_UNUSUAL_LINE_PORTABLE = ("CAST(units AS FLOAT) < 0 OR CAST(units AS FLOAT) <> CAST(CAST(units AS INTEGER) AS FLOAT) "
                          "OR length(revenue_code) <> 4 OR trim(revenue_code) <> revenue_code "
                          "OR hcpcs <> upper(trim(hcpcs))")
#: The pricer's visit lines: a discipline's revenue code, not a site-of-service or telehealth code.
_VISIT_LINE = (
    f"substr(revenue_code, 1, 3) IN ({', '.join(repr(group) for group in sorted(DISCIPLINE_BY_REVENUE_GROUP))}) "
    f"AND (hcpcs IS NULL OR hcpcs NOT IN ({', '.join(repr(code) for code in sorted(NON_VISIT_HCPCS))}))"
)
#: Per revenue code (several may share a discipline: 0550, 0551 ...), grouped by the code itself.
_SHAPE_SQL = (
    "SELECT claim_pk, revenue_code, count(*), sum(CAST(units AS INTEGER)), min(service_date), max(service_date) "
    f"FROM claim_line WHERE {{ids}} AND {_VISIT_LINE} GROUP BY claim_pk, revenue_code"
)
_BUSY_DAY_SQL = (
    f"SELECT DISTINCT claim_pk FROM claim_line WHERE {{ids}} AND {_VISIT_LINE} AND service_date IS NOT NULL "
    f"GROUP BY claim_pk, service_date HAVING sum(CAST(units AS INTEGER)) > {MAX_UNITS_PER_DAY}"
)
_UNUSUAL_SQL = "SELECT DISTINCT claim_pk FROM claim_line WHERE {{ids}} AND ({unusual})"


def _driver_rows(session: Session, sql: str, column: str, ids: Sequence[int]) -> list[tuple]:
    """The rows of ``sql``, whose ``{ids}`` becomes "``column`` is one of ``ids``", as the driver's
    own tuples: no SQLAlchemy compilation of thousands of parameters, no per-value processing
    (SQLite gives dates as text)."""
    connection = session.connection()
    condition, parameters = driver_id_condition(connection, column, ids)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql.format(ids=condition), parameters)
        return cursor.fetchall()
    finally:
        cursor.close()


class _Dates(dict):
    """Dates by the driver's value (text in SQLite), each converted once."""

    def __missing__(self, value) -> date | None:
        day = self[value] = value if value is None or isinstance(value, date) else date.fromisoformat(value)
        return day


def _claim_rows(session: Session, pks: list[int]) -> list[_ClaimRow]:
    """The claims with these ids, in this order, without their lines."""
    by_pk = {}
    dates = _Dates()
    for (pk, agency_id, claim_id, type_of_bill, period_from, period_through, admission_date, patient_status, hipps,
         cbsa, fips_county, quality_data_submitted, condition_codes) in _driver_rows(session, _CLAIM_ROW_SQL, "id", pks):
        by_pk[pk] = _ClaimRow(
            pk, agency_id, claim_id, type_of_bill, dates[period_from], dates[period_through], dates[admission_date],
            patient_status,
            hipps, cbsa, fips_county, bool(quality_data_submitted),
            tuple(condition_codes.split(LIST_SEPARATOR)) if condition_codes else (),
        )
    return [by_pk[pk] for pk in pks]


def _shapes(session: Session, pks: list[int]) -> dict[int, _Shape]:
    """Each claim's visits, units and first and last visit dates per discipline, from one grouped
    query (no claim line reaches Python). Left out, to be priced from their lines: claims with a
    line the query might read otherwise than the pricer (``_UNUSUAL_LINE``) and claims with a day
    above the pricer's 32 units (looked for only where the claim has more than 32 in all)."""
    unusual = _UNUSUAL_SQL.format(unusual=_UNUSUAL_LINE.get(session.get_bind().dialect.name, _UNUSUAL_LINE_PORTABLE))
    priced_from_lines = {pk for (pk,) in _driver_rows(session, unusual, "claim_pk", pks)}
    shapes: dict[int, _Shape] = {}
    dates = _Dates()
    for pk, revenue_code, visits, unit_count, first, last in _driver_rows(session, _SHAPE_SQL, "claim_pk", pks):
        if pk in priced_from_lines:
            continue
        shape = shapes.get(pk)
        if shape is None:
            shape = shapes[pk] = _Shape({}, {}, {}, {}, False)
        code = DISCIPLINE_BY_REVENUE_GROUP[revenue_code[:3]]
        first, last = dates[first], dates[last]
        if code in shape.visits:  # another revenue code of the discipline
            visits += shape.visits[code]
            unit_count += shape.units[code]
            first = min(filter(None, (first, shape.earliest.get(code))), default=None)
            last = max(filter(None, (last, shape.latest.get(code))), default=None)
        shape.visits[code] = visits
        shape.units[code] = int(unit_count)
        if first is not None:
            shape.earliest[code] = first
            shape.latest[code] = last
    crowded = [pk for pk, shape in shapes.items() if sum(shape.units.values()) > MAX_UNITS_PER_DAY]
    if crowded:
        for (pk,) in _driver_rows(session, _BUSY_DAY_SQL, "claim_pk", crowded):
            del shapes[pk]
    return shapes


class _Pricing:
    """The pass over the claims: pricing classes, claims priced alone, the running outlier cap."""

    def __init__(self, session: Session, tables_from, tables_to, pricing_classes: bool,
                 supplied: SuppliedInputs):
        self.session = session
        self.tables_from, self.tables_to = tables_from, tables_to
        self.use_classes = pricing_classes
        self.supplied = supplied
        self.no_inputs: dict[int, ClaimInputs] = {}
        self.notes: dict[str, int] = defaultdict(int)
        self.pairs: dict[tuple, _Pair | PricingError] = {}
        self.categories: dict[tuple, tuple | PricingError] = {}
        self.variants: dict[tuple, str] = {}
        self.formulas: dict[tuple, _FormulaClass] = {}
        self.amount_tables: dict[tuple, dict[tuple[str, int], tuple[Decimal, ...]]] = {}
        self.claims: list[ClaimImpact] = []
        self.unpriced: list[UnpricedClaim] = []
        self.caps: dict[str, list[Decimal]] = {}  # per agency: payments and outliers so far, before and after
        self.alone = 0

    def inputs(self, row: _ClaimRow | Claim) -> ClaimInputs:
        """What was supplied for the claim (the VBP factor of its own year)."""
        year = row.period_through.year
        if not self.supplied:  # nothing supplied at all: one answer per year
            inputs = self.no_inputs.get(year)
            if inputs is None:
                inputs = self.no_inputs[year] = ClaimInputs(year)
            return inputs
        return self.supplied.of(row.agency_id, row.claim_id, year)

    def period_claim(self, claim: Claim) -> PeriodClaim:
        """The pricer's claim; its rural add-on category is each year's parameters' own."""
        return to_period_claim(claim, self.tables_from, self.inputs(claim))

    def rural_category(self, row: _ClaimRow) -> tuple[str | None, str | None]:
        """The rural add-on category of the claim's county under each year (by CBSA and county);
        PricingError when a year's pricer refuses the county (return code 31)."""
        key = (row.cbsa, row.fips_county)
        found = self.categories.get(key)
        if found is None:
            try:
                found = (rural_add_on_category(row, self.tables_from), rural_add_on_category(row, self.tables_to))
            except PricingError as error:
                found = error
            self.categories[key] = found
        if isinstance(found, PricingError):
            raise PricingError(row.claim_id, found.reason)
        return found

    def rate_variant(self, quality_data_submitted: bool, cbsa: str) -> str:
        key = (quality_data_submitted, cbsa)
        variant = self.variants.get(key)
        if variant is None:
            variant = self.variants[key] = _rate_variant(quality_data_submitted, is_rural_cbsa(cbsa))
        return variant

    def pair(self, row: _ClaimRow) -> tuple[tuple, _Pair]:
        pair_key = (row.hipps, row.cbsa, row.quality_data_submitted, self.rural_category(row))
        pair = self.pairs.get(pair_key)
        if pair is None:
            try:
                pair = _Pair(claim_parameters(row, self.tables_from), claim_parameters(row, self.tables_to))
            except PricingError as error:
                pair = error
            self.pairs[pair_key] = pair
        if isinstance(pair, PricingError):
            raise PricingError(row.claim_id, pair.reason)
        return pair_key, pair

    def batch(self, pks: list[int]) -> None:
        """Price a batch of claims: read without lines, shaped in SQL; the lines are read only for
        the claims the pricer itself must see (a class's first claim, claims priced alone)."""
        session = self.session
        full: dict[int, Claim] = {}
        if self.use_classes:
            rows, shapes = _claim_rows(session, pks), _shapes(session, pks)
        else:
            stored = stored_claims_by_id(session, pks)
            rows, shapes = [_ClaimRow.of(s.pk, s.claim) for s in stored], {}
            full = {s.pk: s.claim for s in stored}
        prepared = []
        wanted: set[int] = set()
        scheduled: set[tuple] = set()
        for row in rows:
            try:
                if row.frequency_code == VOID_FREQUENCY:
                    raise PricingError(row.claim_id, "a void (frequency 8) cancels an earlier claim; not priced")
                pair_key, pair = self.pair(row)
            except PricingError as error:
                prepared.append((row, error))
                continue
            shape = shapes.get(row.pk)
            key = class_key = None
            if shape is not None and row.admission_date is not None and not self.inputs(row).supplied:
                key = _pricing_class(row, self.rural_category(row), shape, pair)
            if key is None:
                wanted.add(row.pk)
            else:
                kind, common, *rest = key
                class_key = (pair_key, kind, common) + (tuple(rest) if kind == "lupa" else ())
                formula = self.formulas.get(class_key)
                partial = kind == "period" and rest[0] is not None
                if formula is None and class_key not in scheduled:
                    scheduled.add(class_key)
                    wanted.add(row.pk)
                elif partial and (formula is None or formula.partial_checked is None) and (class_key, "partial") not in scheduled:
                    scheduled.add((class_key, "partial"))
                    wanted.add(row.pk)
            prepared.append((row, (pair, shape, key, class_key)))
        wanted.difference_update(full)
        full.update((s.pk, s.claim) for s in stored_claims_by_id(session, sorted(wanted)))

        def lines_of(pk: int) -> PeriodClaim:
            if pk not in full:
                full[pk] = stored_claims_by_id(session, [pk])[0].claim
            return self.period_claim(full[pk])

        for row, item in prepared:
            if isinstance(item, PricingError):
                self.unpriced.append(UnpricedClaim(row.pk, row.agency_id, row.claim_id, row.type_of_bill, item.reason))
                continue
            pair, shape, key, class_key = item
            try:
                outcome = None
                if key is not None:
                    formula = self.formulas.get(class_key)
                    if formula is None:
                        formula = _FormulaClass(key[0], lines_of(row.pk), shape, pair, self.amount_tables)
                        self.formulas[class_key] = formula
                    outcome = formula.price(row.claim_id, lambda: lines_of(row.pk), shape,
                                            key[2] if key[0] == "period" else None)
                if outcome is None:
                    full_claim = lines_of(row.pk)
                    before = price_period(full_claim, pair.before)
                    after = price_period(full_claim, pair.after)
                    outcome = (_Year.of(before), _Year.of(after), _components(full_claim, pair, before, after))
                    if key is None:
                        shape = _Shape.of(full_claim)
                    self.alone += 1
            except PricingError as error:
                self.unpriced.append(UnpricedClaim(row.pk, row.agency_id, row.claim_id, row.type_of_bill,
                                                   error.reason))
                continue
            self.record(row, shape, outcome, pair)

    def record(self, row: _ClaimRow, shape: _Shape, outcome: _Outcome, pair: _Pair) -> None:
        before, after, components = outcome
        for note in dict.fromkeys(pair.before.notes + pair.after.notes):
            self.notes[note] += 1
        running = self.caps.setdefault(row.agency_id, [ZERO, ZERO, ZERO, ZERO])
        self.claims.append(ClaimImpact(
            pk=row.pk, agency_id=row.agency_id, claim_id=row.claim_id, type_of_bill=row.type_of_bill,
            period_from=row.period_from, hipps=row.hipps, cbsa=row.cbsa,
            quality_data_submitted=row.quality_data_submitted,
            rate_variant=self.rate_variant(row.quality_data_submitted, row.cbsa),
            disciplines=tuple(sorted(shape.visits)),
            rural_add_on=any(category is not None for category in self.rural_category(row)),
            before=before.total, after=after.total,
            components=components,
            lupa_before=before.lupa, lupa_after=after.lupa,
            outlier_before=before.outlier, outlier_after=after.outlier,
            cap_before=_cap(before, running, 0), cap_after=_cap(after, running, 2),
            own_year=row.period_through.year, inputs_supplied=self.inputs(row).supplied,
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
    scenario: Scenario | None = None,
) -> ImpactResult:
    """The changes from ``from_year``'s rules to ``to_year``'s and what they do to the stored
    claims (all, or one agency's). See the module doc for the method.

    ``scenario`` (``regulations.scenario``): the TO side is the scenario over its base year's
    tables (``to_year`` must be that year), priced exactly as a final year; the result is labelled.

    ``conflict_policy`` resolves a CBSA listed twice in a wage index file; the default, ``first``,
    is what CMS's pricer does (its table search stops at the first row of the CBSA).
    Raises ``kb.parameters.ParameterError`` when a year's tables are not loaded.
    """
    rules_from, rules_to = date(from_year, 1, 1), date(to_year, 1, 1)
    cache = TablesCache(session, catalogue, conflict_policy=conflict_policy)
    tables_from, tables_to = cache.on(rules_from), cache.on(rules_to)
    if scenario is not None:
        if scenario.base_year != to_year:
            raise ValueError(f"scenario {scenario.scenario_id} is over CY{scenario.base_year}, not CY{to_year}")
        tables_to = scenario.apply(tables_to)
    old_provenance, new_provenance = provenance(tables_from), provenance(tables_to)
    changes = diff_hhpps(hhpps_state(tables_from), hhpps_state(tables_to),
                         old_provenance=old_provenance, new_provenance=new_provenance)

    pricing = _Pricing(session, tables_from, tables_to, pricing_classes, SuppliedInputs(session, agency=agency))
    superseded = superseded_claims(session, agency=agency)
    pricing.unpriced.extend(UnpricedClaim(*claim) for claim in superseded)
    left_out = {claim.pk for claim in superseded}
    ids = [pk for pk in stored_claim_ids(session, agency=agency) if pk not in left_out]
    with _cycle_collection_paused():
        for start in range(0, len(ids), CLAIM_BATCH):
            pricing.batch(ids[start : start + CLAIM_BATCH])
        claims, unpriced = pricing.claims, pricing.unpriced
        totals_by_agency = _totals(claims, unpriced)
        changes_touched = _change_impacts(changes, claims)
    return ImpactResult(
        from_year=from_year, to_year=to_year, rules_from=rules_from, rules_to=rules_to,
        from_provenance=old_provenance, to_provenance=new_provenance, agency=agency,
        changes=tuple(changes_touched),
        claims=tuple(claims), unpriced=tuple(unpriced),
        agencies=tuple(t for t in totals_by_agency if t.agency_id is not None),
        totals=next(t for t in totals_by_agency if t.agency_id is None),
        priced_alone=pricing.alone, pricing_classes=sum(formula.usable for formula in pricing.formulas.values()),
        notes=tuple(pricing.notes.items()),
        scenario=scenario,
    )


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector held off while the claims are priced. The pass keeps nearly all it
    allocates (a result per claim) and makes no reference cycles of note, so a collection mid-way
    frees nothing but walks every live object again: a fifth of the time over 100,000 claims.
    Collection resumes as it was afterwards; results do not depend on it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _discipline(line) -> str | None:
    code = DISCIPLINE_BY_REVENUE_GROUP.get(line.revenue_code.strip().zfill(4)[:3])
    if code is None or line.hcpcs.strip().upper() in NON_VISIT_HCPCS:
        return None
    return code


def _components(claim: PeriodClaim, pair: _Pair, before: PricingResult, after: PricingResult) -> tuple[Decimal, ...]:
    attributed = dict(attribute_change(claim, pair.before, pair.after))
    if set(attributed) - set(COMPONENTS):  # the pricer found a change outside its groups
        raise PricingError(claim.claim_id, "the attribution left an unexplained part ('other')")
    components = _cents(attributed.get(name, ZERO) for name in COMPONENTS)
    if sum(components, ZERO) != after.total - before.total:
        raise PricingError(claim.claim_id, "the components do not sum to the difference")
    return components


def _cents(amounts: Iterable[Decimal]) -> tuple[Decimal, ...]:
    """The amounts with a zero written 0.00, whatever exponent a subtraction gave it."""
    return tuple(amount if amount else ZERO for amount in amounts)


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
    """Totals per agency, then for all claims as the sums of the agencies' (cents add exactly)."""
    groups: dict[str, list[ClaimImpact]] = defaultdict(list)
    for claim in claims:
        groups[claim.agency_id].append(claim)
    unpriced_count: dict[str | None, int] = defaultdict(int)
    for item in unpriced:
        unpriced_count[item.agency_id] += 1
        unpriced_count[None] += 1
        groups.setdefault(item.agency_id, [])
    agencies = []
    for agency_id in sorted(groups):
        members = groups[agency_id]
        columns = list(zip(*(claim.components for claim in members))) or [()] * len(COMPONENTS)
        agencies.append(Totals(
            agency_id=agency_id, claims=len(members), unpriced=unpriced_count[agency_id],
            before=sum(map(operator.attrgetter("before"), members), ZERO), after=sum(map(operator.attrgetter("after"), members), ZERO),
            components=tuple(zip(COMPONENTS, (sum(column, ZERO) for column in columns))),
            cap_before=sum(map(operator.attrgetter("cap_before"), members), ZERO),
            cap_after=sum(map(operator.attrgetter("cap_after"), members), ZERO),
        ))
    components = [sum((dict(a.components)[name] for a in agencies), ZERO) for name in COMPONENTS]
    return agencies + [Totals(
        agency_id=None, claims=len(claims), unpriced=unpriced_count[None],
        before=sum((a.before for a in agencies), ZERO), after=sum((a.after for a in agencies), ZERO),
        components=tuple(zip(COMPONENTS, components)),
        cap_before=sum((a.cap_before for a in agencies), ZERO), cap_after=sum((a.cap_after for a in agencies), ZERO),
    )]


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
