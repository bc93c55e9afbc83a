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
    Pricing a claim and attributing its difference takes sixteen runs of the pricer. Claims that
    the pricer must price alike under every parameter set of the attribution are priced once per
    class: (a) LUPA claims under both years' thresholds, alike in type of bill, admission, flags
    and, per discipline, visits and the order of the earliest visits; (b) non-LUPA claims under
    both years' thresholds that cannot reach an outlier under any mix of the two years' parameters
    (an upper bound of the imputed cost, with a margin, below a lower bound of the threshold),
    alike in flags, disciplines and partial-period days. The key of a class holds everything the
    pricer reads for such a claim, so a member's result is its class's. Any other claim (an
    outlier, a visit count between the two thresholds, a day above 32 units) is priced on its
    own. ``pricing_classes=False`` prices every claim on its own (tests compare the two).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlmodel import Session

from kb.claims import (
    VOID_FREQUENCY,
    TablesCache,
    claim_parameters,
    is_rural_cbsa,
    iter_stored_claims,
    to_period_claim,
)
from kb.diff import HCPCS, Change, Provenance, diff_hhpps
from kb.models import AgencyClaim, AgencyClaimLine
from kb.parameters import hhpps_state, provenance
from kb.pricing import (
    ATTRIBUTION_ORDER,
    DISCIPLINE_BY_REVENUE_GROUP,
    MAX_UNITS_PER_DAY,
    NON_VISIT_HCPCS,
    PERIOD_DAYS,
    TRANSFER_CONDITION_CODE,
    TRANSFER_PATIENT_STATUS,
    PeriodClaim,
    PricingError,
    PricingParameters,
    PricingResult,
    apply_outlier_cap,
    attribute_change,
    price_period,
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


@dataclass(frozen=True)
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
    """The two years' parameters of one (HIPPS, CBSA, quality flag, rurality), and bounds over
    every mix of them (the parameter sets the attribution passes through)."""

    before: PricingParameters
    after: PricingParameters

    def __post_init__(self) -> None:
        before, after = self.before, self.after
        self.lupa_low = min(before.lupa_threshold, after.lupa_threshold)
        self.lupa_high = max(before.lupa_threshold, after.lupa_threshold)
        self.unit_rate_max = {
            code: max(before.per_unit_rates[code], after.per_unit_rates[code])
            for code in set(before.per_unit_rates) & set(after.per_unit_rates)
        }
        factors = [Decimal(1)]
        for parameters in (before, after):
            factors.extend((parameters.rural_add_on_factors or {}).values())
        self.rural_max, self.rural_min = max(factors), min(factors)
        wage_factors = [
            wage * share + 1 - share
            for wage in (before.wage_index, after.wage_index)
            for share in (before.labor_share, after.labor_share)
        ]
        self.wage_max, self.wage_min = max(wage_factors), min(wage_factors)
        self.weight_min = min(before.case_mix_weight, after.case_mix_weight)
        self.rate_min = {
            True: min(before.thirty_day_rate, after.thirty_day_rate),
            False: min(before.thirty_day_rate_without_quality_data, after.thirty_day_rate_without_quality_data),
        }
        self.fdl_min = min(before.fdl_ratio, after.fdl_ratio)

    def outlier_possible(self, units: Mapping[str, int], partial_days: int | None, quality: bool) -> bool:
        """Whether any mix of the two years' parameters could give these units an outlier.

        Upper bound of the imputed cost against a lower bound of the threshold, with a margin of
        1% and a dollar for the pricer's roundings.
        """
        cost = Decimal(0)
        for code, count in units.items():
            rate = self.unit_rate_max.get(code)
            if rate is None:
                return True  # the pricer will say what is missing
            cost += count * rate
        cost = cost * self.rural_max * self.wage_max
        share = Decimal(1)
        if partial_days is not None:
            share = (Decimal(partial_days) / PERIOD_DAYS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        rate = self.rate_min[quality] * self.rural_min
        threshold = (self.weight_min * rate * share + rate * self.fdl_min) * self.wage_min
        return cost * Decimal("1.01") + 1 >= threshold


def _pricing_class(claim: PeriodClaim, pair: _Pair) -> tuple | None:
    """The key of the claim's pricing class (see the module doc), or None: price it on its own."""
    visits: dict[str, int] = {}
    units: dict[str, int] = {}
    earliest: dict[str, date] = {}
    latest: dict[str, date] = {}
    units_by_day: dict[date, int] = defaultdict(int)
    for line in claim.lines:
        code = DISCIPLINE_BY_REVENUE_GROUP.get(line.revenue_code.strip().zfill(4)[:3])
        if code is None or line.hcpcs.strip().upper() in NON_VISIT_HCPCS:
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
    if not visits or any(count > MAX_UNITS_PER_DAY for count in units_by_day.values()):
        return None
    total = sum(visits.values())
    flags = (
        claim.type_of_bill, claim.hipps, claim.rural_add_on_category, claim.quality_data_submitted,
        (claim.admission_date > claim.from_date) - (claim.admission_date < claim.from_date),
        TRANSFER_CONDITION_CODE in claim.condition_codes, claim.is_adjustment, claim.patient_status,
        claim.readmitted_in_period, claim.days_until_noa_received, claim.vbp_adjustment_factor,
    )
    if total < pair.lupa_low:
        days = sorted(set(earliest.values()))
        shape = tuple(sorted((code, visits[code], days.index(earliest[code]) if code in earliest else -1)
                             for code in visits))
        return ("lupa", flags, shape)
    if total < pair.lupa_high:
        return None
    partial_days = None
    if claim.patient_status == TRANSFER_PATIENT_STATUS or claim.readmitted_in_period:
        if not earliest:
            return None
        partial_days = (max(latest.values()) - min(earliest.values())).days + 1
    if pair.outlier_possible(units, partial_days, claim.quality_data_submitted):
        return None
    return ("period", flags, partial_days, tuple(sorted(visits)))


# --------------------------------------------------------------------------------------------
# The impact


@dataclass
class _Priced:
    impact: ClaimImpact
    result_before: PricingResult
    result_after: PricingResult


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

    pairs: dict[tuple, _Pair | PricingError] = {}
    memo: dict[tuple, tuple[PricingResult, PricingResult, tuple[Decimal, ...]]] = {}
    priced: list[_Priced] = []
    unpriced: list[UnpricedClaim] = []
    alone = 0
    for stored in iter_stored_claims(session, agency=agency):
        claim = stored.claim
        try:
            if claim.frequency_code == VOID_FREQUENCY:
                raise PricingError(claim.claim_id, "a void (frequency 8) cancels an earlier claim; not priced")
            pair_key = (claim.hipps, claim.cbsa, claim.quality_data_submitted)
            pair = pairs.get(pair_key)
            if pair is None:
                try:
                    pair = _Pair(claim_parameters(claim, tables_from), claim_parameters(claim, tables_to))
                except PricingError as error:
                    pair = error
                pairs[pair_key] = pair
            if isinstance(pair, PricingError):
                raise PricingError(claim.claim_id, pair.reason)
            period_claim = to_period_claim(claim, tables_from)
            to_claim = to_period_claim(claim, tables_to)
            if period_claim.rural_add_on_category is None and to_claim.rural_add_on_category is not None:
                period_claim = to_claim
            key = _pricing_class(period_claim, pair) if pricing_classes else None
            outcome = memo.get((pair_key, key)) if key is not None else None
            if outcome is None:
                before = price_period(period_claim, pair.before)
                after = price_period(period_claim, pair.after)
                components = _components(period_claim, pair, before, after)
                outcome = (before, after, components)
                if key is not None:
                    memo[(pair_key, key)] = outcome
                else:
                    alone += 1
        except PricingError as error:
            unpriced.append(UnpricedClaim(stored.pk, claim.agency_id, claim.claim_id, claim.type_of_bill, error.reason))
            continue
        before, after, components = outcome
        rural = is_rural_cbsa(claim.cbsa)
        priced.append(_Priced(
            ClaimImpact(
                pk=stored.pk, agency_id=claim.agency_id, claim_id=claim.claim_id, type_of_bill=claim.type_of_bill,
                period_from=claim.period_from, hipps=claim.hipps, cbsa=claim.cbsa,
                quality_data_submitted=claim.quality_data_submitted,
                rate_variant=_rate_variant(claim.quality_data_submitted, rural),
                disciplines=tuple(sorted({d for d in (_discipline(line) for line in period_claim.lines) if d})),
                rural_add_on=period_claim.rural_add_on_category is not None,
                before=before.total, after=after.total, components=components,
                lupa_before=before.lupa, lupa_after=after.lupa,
                outlier_before=before.outlier_amount, outlier_after=after.outlier_amount,
            ),
            before, after,
        ))

    claims = _apply_caps(priced)
    totals_by_agency = _totals(claims, unpriced)
    return ImpactResult(
        from_year=from_year, to_year=to_year, rules_from=rules_from, rules_to=rules_to,
        from_provenance=old_provenance, to_provenance=new_provenance, agency=agency,
        changes=tuple(_change_impacts(changes, claims)),
        claims=tuple(claims), unpriced=tuple(unpriced),
        agencies=tuple(t for t in totals_by_agency if t.agency_id is not None),
        totals=next(t for t in totals_by_agency if t.agency_id is None),
        priced_alone=alone, pricing_classes=len(memo),
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


def _apply_caps(priced: list[_Priced]) -> list[ClaimImpact]:
    """The 10% outlier cap per agency and year, claims in period order."""
    by_agency: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(priced):
        by_agency[item.impact.agency_id].append(index)
    caps: dict[int, tuple[Decimal, Decimal]] = {}
    for indexes in by_agency.values():
        indexes.sort(key=lambda i: (priced[i].impact.period_from, priced[i].impact.claim_id, priced[i].impact.type_of_bill))
        capped_before = apply_outlier_cap([priced[i].result_before for i in indexes]).results
        capped_after = apply_outlier_cap([priced[i].result_after for i in indexes]).results
        for position, i in enumerate(indexes):
            caps[i] = (priced[i].result_before.total - capped_before[position].total,
                       priced[i].result_after.total - capped_after[position].total)
    return [
        dataclasses.replace(item.impact, cap_before=caps[i][0], cap_after=caps[i][1]) if any(caps[i]) else item.impact
        for i, item in enumerate(priced)
    ]


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
