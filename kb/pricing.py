"""The PDGM 30-day period pricer: a pure function from a claim and a year's parameters to a payment.

The steps follow CMS's Home Health pricer (DOMAIN.md section 3), in its order and with its
rounding: every intermediate amount is rounded to cents, half up, exactly where the pricer rounds.

1. Only final period claims (type of bill 032x, not the notice of admission 032A) are priced; a
   claim without a HIPPS code, without visit lines, or admitted after the period start is rejected
   with :class:`PricingError`.
2. The quality flag picks the full or the reduced 30-day rate; the caller has already picked the
   per-visit and per-unit rates of the claim's quality flag and rurality.
3. Visit lines are grouped by discipline (revenue code 042x, 043x, 044x, 055x, 056x, 057x): visits,
   15-minute units and the earliest visit date. Site-of-service (Q5001/Q5002/Q5009) and telehealth
   (G0320-G0322) lines are not visits. Units are capped at 32 a day across disciplines.
4. Rural add-on (when the year has one): rounded(rate x factor) for the 30-day rate, the outlier
   fixed-dollar loss, the per-visit and the per-unit rates.
5. LUPA (fewer visits than the HIPPS's threshold): per discipline the wage-adjusted visits x
   per-visit rate; the LUPA add-on rounded(per-visit rate x (factor - 1)), wage-adjusted, on the
   discipline with the earliest visit among those with a factor (ties SN, PT, OT, SLP), only in the
   first period of an admission (admission date = from-date), and zero when the pricer's "LUPA
   source admission" input is 'B' (a transfer) or its adjustment indicator is '2'
   (:func:`lupa_add_on_exclusion`; how a claim fills those inputs is ``kb.claims``'s).
6. Otherwise the period payment: wage-adjusted rounded(weight x 30-day rate); a partial period
   multiplies it by rounded(days / 30, 2) and rounds again.
7. Outlier: imputed cost = sum of wage-adjusted rounded(units x per-unit rate); threshold = period
   payment + wage-adjusted rounded(30-day rate x FDL ratio); outlier = rounded(loss-sharing ratio x
   (cost - threshold)) when positive. The 10% agency cap is :func:`apply_outlier_cap`.
8. Late notice of admission: when the NOA came more than the grace days after the from-date, the
   period payment and the outlier each lose rounded(amount x days / 30), days at most 30. As in
   CMS's pricer the reduction applies to non-LUPA periods only.
9. Value-based purchasing: the period payment, the outlier and each LUPA line (visits and add-on)
   are multiplied by the agency's factor and rounded.

Wage adjustment of an amount A with wage index W and labor share L is
rounded(W x L x A) + rounded((1 - L) x A).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
PERIOD_DAYS = 30
MAX_UNITS_PER_DAY = 32

HIPPS_REVENUE_CODE = "0023"
TRANSFER_CONDITION_CODE = "47"
#: The pricer's "LUPA source admission" input (HHA-LUPA-SRC-ADM) of a transfer from another agency.
TRANSFER_LUPA_SOURCE_ADMISSION = "B"
#: The pricer's adjustment indicator (HHA-ADJ-IND) value that takes the LUPA add-on away: the
#: claims system's recode "the HIPPS shows an early period, but this is not a first or only one".
NOT_FIRST_PERIOD_ADJUSTMENT_INDICATOR = "2"
#: Where CMS's pricer zeroes the LUPA add-on on those two inputs.
LUPA_ADD_ON_EXCLUSION_CITATION = (
    "CMS HH pricer: HHCAL (IF H-HHA-LUPA-SRC-ADM = 'B' / IF H-HHA-ADJ-IND = '2': MOVE 0 TO "
    "H-HHA-REVENUE-ADD-ON-VISIT-AMT) and its Java rule CalculateAddOnVisit; Medicare Claims "
    "Processing Manual ch. 10 sec. 70.2 (LUPA-SRC-ADM, RECODE-IND)"
)
TRANSFER_PATIENT_STATUS = "06"
NOTICE_OF_ADMISSION_FREQUENCY = "A"
HOME_HEALTH_BILL_TYPE = "32"

# Revenue code group (first three digits) -> the discipline's revenue code in CMS's rate table.
DISCIPLINE_BY_REVENUE_GROUP = {
    "042": "0420",
    "043": "0430",
    "044": "0440",
    "055": "0550",
    "056": "0560",
    "057": "0570",
}
DISCIPLINE_NAMES = {
    "0420": "PT",
    "0430": "OT",
    "0440": "SLP",
    "0550": "SN",
    "0560": "MSS",
    "0570": "aide",
}
# When two disciplines share the earliest visit date, the LUPA add-on goes to the first of these.
ADD_ON_TIE_ORDER = ("0550", "0420", "0430", "0440")
# Lines that carry a discipline's revenue code but are not visits.
NON_VISIT_HCPCS = frozenset({"Q5001", "Q5002", "Q5009", "G0320", "G0321", "G0322"})


def round_cents(amount: Decimal) -> Decimal:
    """Round to cents, half up, as CMS's pricer does at each step."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# The formulas, each written once: the pricer below and the impact's pricing classes
# (``kb.impact``) both call these, so a pricing rule changes in one place.


def rural_rate(amount: Decimal, factor: Decimal | None) -> Decimal:
    """An amount with the rural add-on (step 8): rounded(amount x factor); unchanged without one."""
    return amount if factor is None else round_cents(amount * factor)


def lupa_visit_amount(visits: int, per_visit: Decimal) -> Decimal:
    """A discipline's LUPA amount before wage adjustment (step 5): visits x per-visit rate."""
    return visits * per_visit


def lupa_add_on_amount(per_visit: Decimal, factor: Decimal) -> Decimal:
    """The LUPA add-on before wage adjustment (step 5): rounded(per-visit rate x (factor - 1))."""
    return round_cents(per_visit * (factor - 1))


def imputed_cost_amount(units: int, per_unit: Decimal) -> Decimal:
    """A discipline's imputed cost before wage adjustment (step 7): rounded(units x per-unit rate)."""
    return round_cents(per_unit * units)


def partial_period_share(days: int) -> Decimal:
    """A partial period's share of the full payment (step 6): rounded(days / 30, 2)."""
    return (Decimal(days) / PERIOD_DAYS).quantize(CENT, rounding=ROUND_HALF_UP)


def partial_period_payment(period_payment: Decimal, share: Decimal) -> Decimal:
    """A partial period's payment (step 6): rounded(full period payment x share)."""
    return round_cents(period_payment * share)


def fixed_dollar_loss_amount(base_rate: Decimal, fdl_ratio: Decimal) -> Decimal:
    """The outlier fixed-dollar loss amount before wage adjustment: rounded(30-day rate x FDL)."""
    return round_cents(base_rate * fdl_ratio)


def outlier_payment(imputed_cost: Decimal, threshold: Decimal, loss_sharing_ratio: Decimal) -> Decimal:
    """The outlier (step 7): rounded(loss-sharing ratio x (imputed cost - threshold)) above the
    threshold, nothing at or below it."""
    if imputed_cost <= threshold:
        return Decimal("0.00")
    return round_cents(loss_sharing_ratio * (imputed_cost - threshold))


class PricingError(ValueError):
    """A claim the pricer will not price, with the reason."""

    def __init__(self, claim_id: str, reason: str):
        self.claim_id = claim_id
        self.reason = reason
        super().__init__(f"claim {claim_id}: {reason}")


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class ClaimLine:
    """One revenue line of a period claim."""

    revenue_code: str
    hcpcs: str
    units: int
    service_date: date | None


@dataclass(frozen=True)
class PeriodClaim:
    """A home health 30-day period claim, as much of it as pricing needs.

    ``days_until_noa_received`` is the number of days from ``from_date`` to the day the notice of
    admission was received (the claims system's count); 0 when it was timely or does not apply.
    ``patient_status`` "06" (transfer to another home health agency) or ``readmitted_in_period``
    (discharged and readmitted to the same agency within the period, as the claims system finds it)
    make the period a partial period (PEP). ``lupa_source_admission`` and ``adjustment_indicator``
    are the pricer's inputs of those names ('1' and '0' when nothing applies). ``input_notes`` say
    where the inputs a claim does not carry came from (supplied, or assumed absent); the trace
    opens with them.
    """

    claim_id: str
    type_of_bill: str
    from_date: date
    through_date: date
    admission_date: date
    hipps: str | None
    wage_index: Decimal
    rural_add_on_category: str | None
    quality_data_submitted: bool
    condition_codes: tuple[str, ...]
    patient_status: str
    lines: tuple[ClaimLine, ...]
    days_until_noa_received: int = 0
    vbp_adjustment_factor: Decimal = Decimal("1")
    readmitted_in_period: bool = False
    lupa_source_admission: str = "1"
    adjustment_indicator: str = "0"
    input_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PricingParameters:
    """Everything one year's rules supply to price one claim; the caller fills it from the tables.

    Rates per revenue code are keyed by the discipline's code in CMS's rate table ("0420", "0430",
    "0440", "0550", "0560", "0570") and are those of the claim's quality flag and rurality.
    ``lupa_add_on_factors`` are the published factors (SN 1.8451 means the first visit is paid at
    1.8451 times the per-visit rate); a discipline absent gets no add-on.
    ``rural_add_on_factors`` maps a rural category (A, B, C) to its factor, None when the year has
    no rural add-on. ``rural_add_on_category``, when given, is the category this year's tables give
    the claim's county, and replaces the claim's. ``notes`` are said in the trace (an open
    question about this year's parameters). ``late_noa_grace_days`` is None before the late-NOA reduction existed.
    ``wage_index``, when given, replaces the claim's wage index (the year's value of the claim's
    CBSA). ``citations`` maps a field name, or ``field.revenue_code``, to its source.
    """

    case_mix_weight: Decimal
    lupa_threshold: int
    thirty_day_rate: Decimal
    thirty_day_rate_without_quality_data: Decimal
    labor_share: Decimal
    fdl_ratio: Decimal
    loss_sharing_ratio: Decimal
    per_visit_rates: Mapping[str, Decimal]
    per_unit_rates: Mapping[str, Decimal]
    lupa_add_on_factors: Mapping[str, Decimal]
    rural_add_on_factors: Mapping[str, Decimal] | None
    late_noa_grace_days: int | None
    outlier_cap_ratio: Decimal
    wage_index: Decimal | None = None
    rural_add_on_category: str | None = None
    notes: tuple[str, ...] = ()
    citations: Mapping[str, str] = field(default_factory=dict)

    def cite(self, *names: str) -> str:
        """The citations of the named parameters, joined; a specific key wins over its field."""
        found: list[str] = []
        for name in names:
            text = self.citations.get(name)
            if text is None and "." in name:
                text = self.citations.get(name.split(".", 1)[0])
            if text and text not in found:
                found.append(text)
        return "; ".join(found)


# --------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True)
class TraceStep:
    """One step of the calculation, for a report to show."""

    name: str
    amount: Decimal
    formula: str
    citation: str = ""


@dataclass(frozen=True)
class DisciplineLine:
    """What the pricer saw and paid for one discipline."""

    revenue_code: str
    visits: int
    units: int
    earliest_visit: date | None
    lupa_payment: Decimal
    lupa_add_on: Decimal
    imputed_cost: Decimal


@dataclass(frozen=True)
class PricingResult:
    """The payment of one period claim, before the agency outlier cap.

    ``period_payment`` is after the partial-period adjustment and before the late-NOA reduction
    and VBP; ``outlier_amount`` likewise. ``lupa_payment`` and ``lupa_add_on`` are before VBP.
    ``total`` is what is paid: period payment + outlier (or the LUPA lines), less the late-NOA
    reduction, with VBP.
    """

    claim_id: str
    lupa: bool
    total_visits: int
    disciplines: tuple[DisciplineLine, ...]
    lupa_payment: Decimal
    lupa_add_on: Decimal
    lupa_add_on_revenue_code: str | None
    period_payment: Decimal
    partial_period_days: int | None
    outlier_imputed_cost: Decimal
    outlier_threshold: Decimal
    outlier_amount: Decimal
    late_noa_reduction: Decimal
    vbp_adjustment: Decimal
    total: Decimal
    trace: tuple[TraceStep, ...]
    late_noa_days: int
    vbp_adjustment_factor: Decimal
    outlier_cap_ratio: Decimal
    outlier_capped: bool = False
    outlier_cap_citation: str = ""

    @property
    def outlier_paid(self) -> Decimal:
        """The outlier as paid: after the cap, the late-NOA reduction and VBP."""
        return _finish(self, self.outlier_amount)[1]


@dataclass(frozen=True)
class OutlierCapOutcome:
    """Results after the 10% agency outlier cap, and what the cap took away."""

    results: tuple[PricingResult, ...]
    removed: Decimal
    capped_claim_ids: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Steps


def wage_adjust(amount: Decimal, wage_index: Decimal, labor_share: Decimal) -> Decimal:
    """rounded(W x L x A) + rounded((1 - L) x A)."""
    return round_cents(wage_index * labor_share * amount) + round_cents((1 - labor_share) * amount)


@dataclass(frozen=True)
class _Discipline:
    revenue_code: str
    visits: int
    units: int
    earliest_visit: date | None
    last_visit: date | None


def _validate(claim: PeriodClaim) -> None:
    bill_type = claim.type_of_bill.strip().upper().zfill(4)
    if len(bill_type) != 4 or bill_type[1:3] != HOME_HEALTH_BILL_TYPE:
        raise PricingError(claim.claim_id, f"type of bill {claim.type_of_bill!r} is not 032x")
    if bill_type[3] == NOTICE_OF_ADMISSION_FREQUENCY:
        raise PricingError(claim.claim_id, "type of bill 032A is a notice of admission, not priced")
    if not claim.hipps or not claim.hipps.strip():
        raise PricingError(claim.claim_id, "no HIPPS code")
    if not any(_discipline_of(line) for line in claim.lines):
        raise PricingError(
            claim.claim_id, "no revenue lines for a visit (042x, 043x, 044x, 055x, 056x, 057x)"
        )
    if claim.admission_date > claim.from_date:
        raise PricingError(
            claim.claim_id,
            f"admission date {claim.admission_date} is after the period start {claim.from_date}",
        )


def _discipline_of(line: ClaimLine) -> str | None:
    revenue_code = line.revenue_code.strip().zfill(4)
    discipline = DISCIPLINE_BY_REVENUE_GROUP.get(revenue_code[:3])
    if discipline is None or line.hcpcs.strip().upper() in NON_VISIT_HCPCS:
        return None
    return discipline


def _summarize_disciplines(
    claim: PeriodClaim, per_unit_rates: Mapping[str, Decimal]
) -> dict[str, _Discipline]:
    """Visits, capped units and visit dates per discipline.

    Units are capped at 32 a day across disciplines; on a day above the cap the units of the
    disciplines with the lowest per-unit rate are reduced first, so the imputed cost keeps the
    costliest 8 hours of the day.
    """
    visits: dict[str, int] = defaultdict(int)
    dates: dict[str, list[date]] = defaultdict(list)
    units_by_day: dict[date | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in claim.lines:
        discipline = _discipline_of(line)
        if discipline is None:
            continue
        visits[discipline] += 1
        if line.service_date is not None:
            dates[discipline].append(line.service_date)
        units_by_day[line.service_date][discipline] += max(line.units, 0)

    capped_units: dict[str, int] = defaultdict(int)
    for day, units in units_by_day.items():
        allowed = MAX_UNITS_PER_DAY if day is not None else sum(units.values())
        costliest_first = sorted(
            units, key=lambda code: (-per_unit_rates.get(code, Decimal(0)), code)
        )
        for code in costliest_first:
            kept = min(units[code], allowed)
            capped_units[code] += kept
            allowed -= kept

    return {
        code: _Discipline(
            revenue_code=code,
            visits=count,
            units=capped_units[code],
            earliest_visit=min(dates[code]) if dates[code] else None,
            last_visit=max(dates[code]) if dates[code] else None,
        )
        for code, count in sorted(visits.items())
    }


@dataclass
class _Pricing:
    """What every step of one claim's pricing shares, and the trace it writes."""

    claim: PeriodClaim
    parameters: PricingParameters
    wage_index: Decimal
    rural_factor: Decimal | None
    trace: list[TraceStep] = field(default_factory=list)

    def rural(self, amount: Decimal) -> Decimal:
        """The amount with the rural add-on, rounded; unchanged when none applies."""
        return rural_rate(amount, self.rural_factor)

    def wage_adjust(self, amount: Decimal) -> Decimal:
        return wage_adjust(amount, self.wage_index, self.parameters.labor_share)

    def wage_formula(self, amount: Decimal) -> str:
        labor_share = self.parameters.labor_share
        return (
            f"rounded({self.wage_index} x {labor_share} x {amount}) + "
            f"rounded({1 - labor_share} x {amount})"
        )

    def rate(self, table_name: str, code: str) -> Decimal:
        table: Mapping[str, Decimal] = getattr(self.parameters, table_name)
        if code not in table:
            what = {"per_visit_rates": "per-visit rate", "per_unit_rates": "per-unit rate"}
            raise PricingError(
                self.claim.claim_id, f"no {what[table_name]} for revenue code {code}"
            )
        return self.rural(table[code])

    def step(self, name: str, amount: Decimal, formula: str, *cited: str) -> None:
        self.trace.append(TraceStep(name, amount, formula, self.parameters.cite(*cited)))


def price_period(claim: PeriodClaim, parameters: PricingParameters) -> PricingResult:
    """Price one 30-day period claim under one year's parameters (before the agency outlier cap)."""
    _validate(claim)
    category = parameters.rural_add_on_category or claim.rural_add_on_category
    rural_factor = None
    if parameters.rural_add_on_factors is not None and category:
        rural_factor = parameters.rural_add_on_factors.get(category)
    pricing = _Pricing(
        claim,
        parameters,
        wage_index=parameters.wage_index if parameters.wage_index is not None else claim.wage_index,
        rural_factor=rural_factor,
    )
    for note in claim.input_notes:
        pricing.trace.append(TraceStep("input", Decimal("0.00"), note))
    for note in parameters.notes:
        pricing.trace.append(TraceStep("note", Decimal("0.00"), note))
    if rural_factor is not None:
        pricing.step(
            "rural add-on factor",
            rural_factor,
            f"category {category}: rates x {rural_factor}, rounded",
            "rural_add_on_factors",
        )

    disciplines = _summarize_disciplines(claim, parameters.per_unit_rates)
    total_visits = sum(discipline.visits for discipline in disciplines.values())
    lupa = total_visits < parameters.lupa_threshold
    pricing.step(
        "LUPA test",
        Decimal(total_visits),
        f"{total_visits} visits {'<' if lupa else '>='} LUPA threshold "
        f"{parameters.lupa_threshold}: {'LUPA' if lupa else 'period payment'}",
        "lupa_threshold",
    )
    if lupa:
        draft = _price_lupa(pricing, disciplines)
    else:
        draft = _price_full_period(pricing, disciplines)

    late_days = 0
    grace_days = parameters.late_noa_grace_days
    if grace_days is not None and claim.days_until_noa_received > grace_days:
        late_days = min(claim.days_until_noa_received, PERIOD_DAYS)
    draft = dataclasses.replace(
        draft,
        total_visits=total_visits,
        trace=tuple(pricing.trace),
        late_noa_days=late_days,
        vbp_adjustment_factor=claim.vbp_adjustment_factor,
        outlier_cap_ratio=parameters.outlier_cap_ratio,
        outlier_cap_citation=parameters.cite("outlier_cap_ratio"),
    )
    return _with_final_steps(draft, draft.outlier_amount, parameters.cite("late_noa_grace_days"))


def _empty_result(claim_id: str, lupa: bool) -> PricingResult:
    zero = Decimal("0.00")
    return PricingResult(
        claim_id=claim_id, lupa=lupa, total_visits=0, disciplines=(),
        lupa_payment=zero, lupa_add_on=zero, lupa_add_on_revenue_code=None,
        period_payment=zero, partial_period_days=None,
        outlier_imputed_cost=zero, outlier_threshold=zero, outlier_amount=zero,
        late_noa_reduction=zero, vbp_adjustment=zero, total=zero, trace=(),
        late_noa_days=0, vbp_adjustment_factor=Decimal(1), outlier_cap_ratio=zero,
    )  # fmt: skip


def _price_lupa(pricing: _Pricing, disciplines: Mapping[str, _Discipline]) -> PricingResult:
    """Per-visit payments, and the add-on on one discipline (step 5)."""
    add_on_code = _add_on_discipline(pricing.claim, disciplines, pricing.parameters)
    excluded = lupa_add_on_exclusion(pricing.claim)
    if excluded is not None:
        pricing.trace.append(TraceStep(
            "LUPA add-on", Decimal("0.00"), f"none: {excluded}",
            LUPA_ADD_ON_EXCLUSION_CITATION if "admission date" not in excluded else "",
        ))
    lines = []
    for code, discipline in disciplines.items():
        per_visit = pricing.rate("per_visit_rates", code)
        amount = lupa_visit_amount(discipline.visits, per_visit)
        payment = pricing.wage_adjust(amount)
        pricing.step(
            f"LUPA {DISCIPLINE_NAMES[code]} ({code})",
            payment,
            f"{discipline.visits} x {per_visit} = {amount}; {pricing.wage_formula(amount)}",
            f"per_visit_rates.{code}", "wage_index", "labor_share",
        )  # fmt: skip
        add_on = Decimal("0.00")
        if code == add_on_code:
            factor = pricing.parameters.lupa_add_on_factors[code]
            add_on_amount = lupa_add_on_amount(per_visit, factor)
            add_on = pricing.wage_adjust(add_on_amount)
            pricing.step(
                f"LUPA add-on {DISCIPLINE_NAMES[code]} ({code})",
                add_on,
                f"rounded({per_visit} x ({factor} - 1)) = {add_on_amount}; "
                + pricing.wage_formula(add_on_amount),
                f"lupa_add_on_factors.{code}", f"per_visit_rates.{code}",
            )  # fmt: skip
        lines.append(
            DisciplineLine(
                code, discipline.visits, discipline.units, discipline.earliest_visit,
                lupa_payment=payment, lupa_add_on=add_on, imputed_cost=Decimal("0.00"),
            )
        )  # fmt: skip
    lupa_add_on = sum((line.lupa_add_on for line in lines), Decimal("0.00"))
    return dataclasses.replace(
        _empty_result(pricing.claim.claim_id, lupa=True),
        disciplines=tuple(lines),
        lupa_payment=sum((line.lupa_payment for line in lines), Decimal("0.00")),
        lupa_add_on=lupa_add_on,
        lupa_add_on_revenue_code=add_on_code if lupa_add_on else None,
    )


def _price_full_period(pricing: _Pricing, disciplines: Mapping[str, _Discipline]) -> PricingResult:
    """The case-mix period payment, the partial period, and the outlier (steps 6 and 7)."""
    claim, parameters = pricing.claim, pricing.parameters
    rate_field = "thirty_day_rate"
    if not claim.quality_data_submitted:
        rate_field = "thirty_day_rate_without_quality_data"
    base_rate: Decimal = getattr(parameters, rate_field)
    thirty_day_rate = pricing.rural(base_rate)
    pricing.step(
        "30-day rate",
        thirty_day_rate,
        f"{base_rate} (quality data {'' if claim.quality_data_submitted else 'not '}submitted)"
        + (f" x {pricing.rural_factor}" if pricing.rural_factor is not None else ""),
        rate_field,
    )
    case_mix_amount = round_cents(parameters.case_mix_weight * thirty_day_rate)
    period_payment = pricing.wage_adjust(case_mix_amount)
    pricing.step(
        "period payment",
        period_payment,
        f"rounded({parameters.case_mix_weight} x {thirty_day_rate}) = {case_mix_amount}; "
        + pricing.wage_formula(case_mix_amount),
        "case_mix_weight", rate_field, "wage_index", "labor_share",
    )  # fmt: skip

    partial_days = None
    if claim.patient_status == TRANSFER_PATIENT_STATUS or claim.readmitted_in_period:
        partial_days = _partial_period_days(claim, disciplines)
        share = partial_period_share(partial_days)
        full_payment, period_payment = period_payment, partial_period_payment(period_payment, share)
        pricing.step(
            "partial period",
            period_payment,
            f"{full_payment} x rounded({partial_days} / {PERIOD_DAYS}) = {full_payment} x {share}",
        )

    lines = []
    for code, discipline in disciplines.items():
        per_unit = pricing.rate("per_unit_rates", code)
        amount = imputed_cost_amount(discipline.units, per_unit)
        cost = pricing.wage_adjust(amount)
        pricing.step(
            f"imputed cost {DISCIPLINE_NAMES[code]} ({code})",
            cost,
            f"rounded({discipline.units} units x {per_unit}) = {amount}; "
            + pricing.wage_formula(amount),
            f"per_unit_rates.{code}", "wage_index", "labor_share",
        )  # fmt: skip
        lines.append(
            DisciplineLine(
                code, discipline.visits, discipline.units, discipline.earliest_visit,
                lupa_payment=Decimal("0.00"), lupa_add_on=Decimal("0.00"), imputed_cost=cost,
            )
        )  # fmt: skip
    imputed_cost = sum((line.imputed_cost for line in lines), Decimal("0.00"))

    fixed_dollar_loss = pricing.rural(fixed_dollar_loss_amount(base_rate, parameters.fdl_ratio))
    threshold = period_payment + pricing.wage_adjust(fixed_dollar_loss)
    pricing.step(
        "outlier threshold",
        threshold,
        f"{period_payment} + wage-adjusted rounded({base_rate} x {parameters.fdl_ratio})"
        + (f" x {pricing.rural_factor}" if pricing.rural_factor is not None else "")
        + f" = {period_payment} + {pricing.wage_formula(fixed_dollar_loss)}",
        "fdl_ratio", rate_field,
    )  # fmt: skip
    outlier = outlier_payment(imputed_cost, threshold, parameters.loss_sharing_ratio)
    if imputed_cost > threshold:
        ratio = parameters.loss_sharing_ratio
        explanation = f"> threshold {threshold}: rounded({ratio} x ({imputed_cost} - {threshold}))"
    else:
        explanation = f"<= threshold {threshold}: no outlier"
    pricing.step(
        "outlier", outlier, f"imputed cost {imputed_cost} {explanation}", "loss_sharing_ratio"
    )

    return dataclasses.replace(
        _empty_result(claim.claim_id, lupa=False),
        disciplines=tuple(lines),
        period_payment=period_payment,
        partial_period_days=partial_days,
        outlier_imputed_cost=imputed_cost,
        outlier_threshold=threshold,
        outlier_amount=outlier,
    )


def _add_on_discipline(
    claim: PeriodClaim, disciplines: Mapping[str, _Discipline], parameters: PricingParameters
) -> str | None:
    """The discipline that gets the LUPA add-on, or None when no add-on is due."""
    if lupa_add_on_exclusion(claim) is not None:
        return None
    candidates = [
        d
        for code, d in disciplines.items()
        if code in parameters.lupa_add_on_factors and d.visits > 0 and d.earliest_visit is not None
    ]
    if not candidates:
        return None

    def tie_rank(code: str) -> int:
        return ADD_ON_TIE_ORDER.index(code) if code in ADD_ON_TIE_ORDER else len(ADD_ON_TIE_ORDER)

    earliest = min(candidates, key=lambda d: (d.earliest_visit, tie_rank(d.revenue_code)))
    return earliest.revenue_code


def lupa_add_on_exclusion(claim: PeriodClaim) -> str | None:
    """Why CMS's pricer pays no LUPA add-on on this period whatever its visits, or None
    (:func:`lupa_add_on_exclusion_of` on the claim's fields)."""
    return lupa_add_on_exclusion_of(claim.admission_date, claim.from_date, claim.lupa_source_admission,
                                     claim.adjustment_indicator)


def lupa_add_on_exclusion_of(admission_date: date | None, from_date: date, lupa_source_admission: str,
                             adjustment_indicator: str) -> str | None:
    """Why CMS's pricer pays no LUPA add-on on this period whatever its visits, or None.

    As CMS's pricer zeroes it: not the first period of an admission (admission date other than the
    from-date), a "LUPA source admission" of 'B' (a transfer from another agency), an adjustment
    indicator of '2' (not a first or only period, as the claims system recodes it). A replacement
    claim (frequency 7) is none of these by itself.
    """
    if admission_date != from_date:
        return f"admission date {admission_date} is not the period's from-date {from_date}"
    if lupa_source_admission == TRANSFER_LUPA_SOURCE_ADMISSION:
        return "LUPA source admission 'B' (a transfer from another agency)"
    if adjustment_indicator == NOT_FIRST_PERIOD_ADJUSTMENT_INDICATOR:
        return "adjustment indicator '2' (not a first or only period)"
    return None


def _partial_period_days(claim: PeriodClaim, disciplines: Mapping[str, _Discipline]) -> int:
    """Days from the first through the last billable visit, inclusive (42 CFR 484.235)."""
    first = [d.earliest_visit for d in disciplines.values() if d.earliest_visit is not None]
    last = [d.last_visit for d in disciplines.values() if d.last_visit is not None]
    if not first:
        raise PricingError(claim.claim_id, "partial period without dated visits")
    days = (max(last) - min(first)).days + 1
    if days > PERIOD_DAYS:
        raise PricingError(
            claim.claim_id, f"partial period of {days} days exceeds {PERIOD_DAYS} days"
        )
    return days


def _finish(result: PricingResult, outlier: Decimal) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Late-NOA reduction then VBP: (period payment, outlier, LUPA lines, late-NOA reduction)."""
    period_payment = result.period_payment
    reduction = Decimal("0.00")
    if result.late_noa_days and period_payment > 0:
        period_cut = round_cents(period_payment * result.late_noa_days / PERIOD_DAYS)
        outlier_cut = round_cents(outlier * result.late_noa_days / PERIOD_DAYS)
        period_payment -= period_cut
        outlier -= outlier_cut
        reduction = period_cut + outlier_cut
    factor = result.vbp_adjustment_factor
    period_payment = round_cents(period_payment * factor)
    outlier = round_cents(outlier * factor)
    lupa_lines = sum(
        (
            round_cents(line.lupa_payment * factor) + round_cents(line.lupa_add_on * factor)
            for line in result.disciplines
        ),
        Decimal("0.00"),
    )
    return period_payment, outlier, lupa_lines, reduction


def _with_final_steps(
    result: PricingResult, outlier: Decimal, late_noa_citation: str
) -> PricingResult:
    """Apply the late-NOA reduction and VBP to a result whose outlier is ``outlier``."""
    before_vbp = result.period_payment + outlier + result.lupa_payment + result.lupa_add_on
    period_payment, outlier_paid, lupa_lines, reduction = _finish(result, outlier)
    total = period_payment + outlier_paid + lupa_lines
    vbp_adjustment = total - (before_vbp - reduction)
    trace = list(result.trace)
    if reduction:
        trace.append(
            TraceStep(
                "late NOA reduction",
                -reduction,
                f"NOA {result.late_noa_days} days after the from-date: "
                f"(period payment + outlier) x {result.late_noa_days}/{PERIOD_DAYS}, "
                "each rounded",
                late_noa_citation,
            )
        )
    if vbp_adjustment or result.vbp_adjustment_factor != 1:
        trace.append(
            TraceStep(
                "VBP adjustment",
                vbp_adjustment,
                f"each payment x {result.vbp_adjustment_factor}, rounded",
            )
        )
    trace.append(TraceStep("total", total, "sum of the payments above"))
    return dataclasses.replace(
        result,
        outlier_amount=outlier,
        late_noa_reduction=reduction,
        vbp_adjustment=vbp_adjustment,
        total=total,
        trace=tuple(trace),
    )


# --------------------------------------------------------------------------------------------
# The agency outlier cap


def apply_outlier_cap(
    results: Iterable[PricingResult],
    *,
    year_to_date_payments: Decimal | None = None,
    year_to_date_outliers: Decimal | None = None,
) -> OutlierCapOutcome:
    """Apply the agency's outlier cap across its claims of one year, in the order given.

    As CMS's pricer does for each claim: the pool is rounded(cap ratio x payments so far); an
    outlier that would exceed what is left of the pool (pool - outliers so far) is set to zero,
    then the late-NOA reduction and VBP are taken again. As in the pricer, no cap is applied while
    the payments or the outliers so far are zero. Totals start from the year-to-date figures
    (zero when not given) and grow with each claim's paid total and paid outlier.
    """
    payments_so_far = year_to_date_payments or Decimal("0.00")
    outliers_so_far = year_to_date_outliers or Decimal("0.00")
    adjusted: list[PricingResult] = []
    capped: list[str] = []
    removed = Decimal("0.00")
    for result in results:
        if result.outlier_amount > 0 and payments_so_far != 0 and outliers_so_far != 0:
            pool = round_cents(payments_so_far * result.outlier_cap_ratio)
            room = pool - outliers_so_far
            if room - result.outlier_amount < 0:
                uncapped = result
                result = _without_outlier(result, pool, outliers_so_far)
                removed += uncapped.total - result.total
                capped.append(result.claim_id)
        payments_so_far += result.total
        outliers_so_far += result.outlier_paid
        adjusted.append(result)
    return OutlierCapOutcome(tuple(adjusted), removed, tuple(capped))


def _without_outlier(
    result: PricingResult, pool: Decimal, outliers_so_far: Decimal
) -> PricingResult:
    # Drop the steps after the outlier; they are taken again on the capped outlier.
    kept = []
    for step in result.trace:
        if step.name in ("late NOA reduction", "VBP adjustment", "total"):
            continue
        kept.append(step)
    kept.append(
        TraceStep(
            "outlier cap",
            -result.outlier_amount,
            f"outliers so far {outliers_so_far} + {result.outlier_amount} exceed the pool "
            f"rounded({result.outlier_cap_ratio} x payments so far) = {pool}: outlier set to 0",
            result.outlier_cap_citation,
        )
    )
    base = dataclasses.replace(result, trace=tuple(kept), outlier_capped=True)
    citation = next((s.citation for s in result.trace if s.name == "late NOA reduction"), "")
    return _with_final_steps(base, Decimal("0.00"), citation)


# --------------------------------------------------------------------------------------------
# Attribution of a change between two years' parameters

# The fixed order in which parameter groups are swapped from "before" to "after".
ATTRIBUTION_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("case-mix weight", ("case_mix_weight",)),
    ("LUPA threshold", ("lupa_threshold",)),
    ("30-day rate", ("thirty_day_rate", "thirty_day_rate_without_quality_data")),
    ("labor share", ("labor_share",)),
    ("wage index", ("wage_index",)),
    ("per-visit rates", ("per_visit_rates",)),
    ("per-unit rates", ("per_unit_rates",)),
    ("FDL ratio", ("fdl_ratio",)),
    ("loss-sharing ratio", ("loss_sharing_ratio",)),
    ("LUPA add-on factors", ("lupa_add_on_factors",)),
    ("rural add-on", ("rural_add_on_factors", "rural_add_on_category")),
    ("late NOA rule", ("late_noa_grace_days",)),
)


def attribute_change(
    claim: PeriodClaim, before: PricingParameters, after: PricingParameters
) -> list[tuple[str, Decimal]]:
    """Split total(after) - total(before) into components by sequential substitution.

    Starting from ``before``, the groups of :data:`ATTRIBUTION_ORDER` are swapped to their
    ``after`` values one at a time; each component is the change in total that its swap causes.
    The components sum exactly to the total difference. Groups that do not change give zero.
    """
    components: list[tuple[str, Decimal]] = []
    current = before
    current_total = price_period(claim, current).total
    for label, names in ATTRIBUTION_ORDER:
        current = dataclasses.replace(current, **{name: getattr(after, name) for name in names})
        new_total = price_period(claim, current).total
        components.append((label, new_total - current_total))
        current_total = new_total
    final_total = price_period(claim, after).total
    if final_total != current_total:  # only a field outside the groups could do this
        components.append(("other", final_total - current_total))
    return components


__all__: Sequence[str] = (
    "ATTRIBUTION_ORDER",
    "ClaimLine",
    "DisciplineLine",
    "OutlierCapOutcome",
    "PeriodClaim",
    "PricingError",
    "PricingParameters",
    "PricingResult",
    "TraceStep",
    "apply_outlier_cap",
    "attribute_change",
    "lupa_add_on_exclusion",
    "lupa_add_on_exclusion_of",
    "price_period",
    "round_cents",
    "wage_adjust",
)
