"""The annual review joined to the claims: for every change, the stored claims it touches.

A compliance officer reads the review to know what to do about each change; the first question is
"does it touch our claims?". This module answers it per source, the way each change reaches a claim:

HCPCS (codes and modifiers; releases and corrections alike)
    A line bills a code when its HCPCS is the code, or, for a modifier, when the modifier is among
    the line's modifiers. The day of a line is its service date, else its claim's period start.

    - ``discontinued``: the claims with a line billing the code on or after the first day it no
      longer applies (the day after its termination date; a code dropped from the file, from the
      change's effective date). ``key_changed`` alike for the old code.
    - ``added``: the claims billing the code before its add date (the file's added date, else the
      change's effective date): lines that billed a code before it existed.
    - Any other change (description, coverage, pricing indicator, BETOS, cross-reference, type of
      service, reactivation ...): the claims billing the code inside the *window* of the review.

    The window is the calendar year under review. For a year after the last stored line (a review
    of an upcoming year), it is the last 12 months of stored claims, which is what the office will
    bill next; the review says which window it used.

HH PPS
    The impact's join, unchanged: :func:`kb.impact.impact` from the year before to the year, and
    for each change its claims and the dollars of its component exactly as ``hhkb impact`` gives
    them (one run per agency asked, or one run over every stored claim).

Billing rules (``regulations/rules``) that take effect or end in the year
    The claims of the window that the rule flags when it is in force (``kb.rules`` checker, the
    rule's dates set aside): for a rule that takes effect, the claims it will flag; for a rule that
    ends, the claims it stops flagging.

Nothing here prices or checks a claim itself: the pricer (through ``kb.impact``) and the rules
checker do.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session

from kb.claims import LIST_SEPARATOR, StoredClaim, id_in, stored_claims_by_id
from kb.diff import HCPCS, HCPCS_CORRECTIONS, HHPPS, Change
from kb.impact import CLAIM_BATCH, COMPONENTS, ZERO, ImpactResult, impact
from kb.models import AgencyClaim, AgencyClaimLine
from kb.parameters import ParameterError
from kb.rules import Checker, DatabaseKnowledge, codes_a_finding_needs, codes_of, reads_lines
from regulations.catalogue import Catalogue
from regulations.rules import Rule, RuleSet, load_rules

HCPCS_SOURCES = (HCPCS, HCPCS_CORRECTIONS)


@dataclass(frozen=True)
class ClaimRef:
    """A claim as a report may name it: no beneficiary data."""

    pk: int
    agency_id: str
    claim_id: str
    type_of_bill: str
    period_from: date

    @property
    def anchor(self) -> str:
        """The id of the claim's entry in the review's list of claims touched."""
        return f"claim-{self.pk}"


@dataclass(frozen=True)
class Touch:
    """The claims one change touches, and its dollars where dollars apply (HH PPS)."""

    claims: tuple[ClaimRef, ...]
    dollars: Decimal | None = None
    how: str = ""  # how the claims were chosen, in words
    component: str | None = None  # the impact's component carrying the dollars (HH PPS)

    @property
    def count(self) -> int:
        return len(self.claims)


@dataclass(frozen=True)
class Window:
    start: date
    end: date  # inclusive
    text: str


@dataclass(frozen=True)
class ClaimsJoin:
    """A review's join with the claims: the touches by change, the rules' touches, and the HH PPS
    impact runs whose dollars the touches carry."""

    scope: str  # "agency 9000000015", "all stored claims"
    window: Window
    touches: dict[Change, Touch]
    rule_touches: tuple[tuple[Rule, str, Touch], ...]  # (rule, "takes effect"/"ends", touch)
    impacts: tuple[ImpactResult, ...]
    notes: tuple[str, ...]

    @property
    def hhpps_totals(self) -> tuple[int, Decimal, Decimal] | None:
        """(claims priced, before, after) over the impact runs (None when HH PPS was not compared)."""
        if not self.impacts:
            return None
        return (sum(r.totals.claims for r in self.impacts), sum((r.totals.before for r in self.impacts), ZERO),
                sum((r.totals.after for r in self.impacts), ZERO))

    def dollars_of(self, changes: Iterable[Change]) -> Decimal | None:
        """The dollars of a set of HH PPS changes together: for each component they carry, the
        component over the distinct claims they touch (rate changes share one component: summing
        their rows would count it again). None when no change of the set carries dollars."""
        pks_by_component: dict[str, set[int]] = defaultdict(set)
        for change in changes:
            touch = self.touches.get(change)
            if touch is not None and touch.component is not None:
                pks_by_component[touch.component].update(ref.pk for ref in touch.claims)
        if not pks_by_component:
            return None
        total = ZERO
        for component, pks in pks_by_component.items():
            if component in COMPONENTS:
                position = COMPONENTS.index(component)
                total += sum((claim.components[position] for run in self.impacts for claim in run.claims
                              if claim.pk in pks), ZERO)
        return total

    def claims(self) -> list[ClaimRef]:
        """Every claim some change or rule touches, in (agency, claim id) order."""
        found = {ref.pk: ref for touch in self.touches.values() for ref in touch.claims}
        found.update({ref.pk: ref for _, _, touch in self.rule_touches for ref in touch.claims})
        return sorted(found.values(), key=lambda ref: (ref.agency_id, ref.claim_id, ref.type_of_bill, ref.pk))


def _claims_table_filter(agencies: Sequence[str] | None):
    table = AgencyClaim.__table__
    return table.c.agency_id.in_(list(agencies)) if agencies else sa.true()


def claim_window(session: Session, year: int, agencies: Sequence[str] | None) -> Window:
    """The calendar year, or for a year after the last stored claim the last 12 months of claims."""
    claims = AgencyClaim.__table__
    latest = session.execute(
        sa.select(sa.func.max(claims.c.period_through)).where(_claims_table_filter(agencies))).scalar()
    if isinstance(latest, str):
        latest = date.fromisoformat(latest)
    if latest is not None and latest.year < year:
        start = latest - timedelta(days=364)
        return Window(start, latest, f"the last 12 months of stored claims ({start} to {latest}): "
                                     f"CY{year} is after the last stored claim")
    return Window(date(year, 1, 1), date(year, 12, 31), f"CY{year}")


# --- HCPCS ----------------------------------------------------------------------------------------


def _billing_lines(session: Session, codes: set[str], modifiers: set[str],
                   agencies: Sequence[str] | None) -> dict[str, list[tuple[ClaimRef, date]]]:
    """For each code and modifier, the (claim, day) of every line billing it. One query."""
    lines, claims = AgencyClaimLine.__table__, AgencyClaim.__table__
    conditions = []
    if codes:
        conditions.append(id_in(session, lines.c.hcpcs, sorted(codes)))
    if modifiers:
        conditions.append(sa.and_(lines.c.modifiers.is_not(None), lines.c.modifiers != ""))
    found: dict[str, list[tuple[ClaimRef, date]]] = defaultdict(list)
    if not conditions:
        return found
    rows = session.execute(
        sa.select(claims.c.id, claims.c.agency_id, claims.c.claim_id, claims.c.type_of_bill, claims.c.period_from,
                  lines.c.hcpcs, lines.c.modifiers, lines.c.service_date)
        .join(claims, claims.c.id == lines.c.claim_pk)
        .where(_claims_table_filter(agencies), sa.or_(*conditions))
    ).all()
    refs: dict[int, ClaimRef] = {}
    for pk, agency_id, claim_id, type_of_bill, period_from, hcpcs, line_modifiers, service_date in rows:
        period_from = date.fromisoformat(period_from) if isinstance(period_from, str) else period_from
        day = service_date or period_from
        day = date.fromisoformat(day) if isinstance(day, str) else day
        ref = refs.get(pk)
        if ref is None:
            ref = refs[pk] = ClaimRef(pk, agency_id, claim_id, type_of_bill, period_from)
        if hcpcs in codes:
            found[hcpcs].append((ref, day))
        for modifier in (line_modifiers.split(LIST_SEPARATOR) if line_modifiers else ()):
            if modifier in modifiers:
                found[modifier].append((ref, day))
    return found


def _is_modifier(key: str) -> bool:
    return len(key) == 2


def hcpcs_touch_rule(change: Change, window: Window) -> tuple[str, date | None, date | None, str]:
    """(code, first day, last day, how) of the lines a HCPCS change touches (module doc)."""
    kind = change.change_type
    if kind == "discontinued":
        ended = change.new if isinstance(change.new, date) else None
        start = ended + timedelta(days=1) if ended else change.effective_date
        return change.key, start, None, f"billed on or after {start} (no longer valid)"
    if kind == "key_changed":
        return change.old_key or change.key, change.effective_date, None, \
            f"billed {change.old_key} on or after {change.effective_date}"
    if kind == "added":
        added = getattr(change.new, "added_date", None) or change.effective_date
        return change.key, None, added - timedelta(days=1), f"billed before its add date {added}"
    return change.key, window.start, window.end, f"billed in {window.text}"


def hcpcs_touches(session: Session, changes: Iterable[Change], *, agencies: Sequence[str] | None,
                  window: Window) -> dict[Change, Touch]:
    """For each HCPCS change (releases and corrections), the claims it touches (module doc)."""
    wanted = [change for change in changes if change.source in HCPCS_SOURCES]
    plans = {change: hcpcs_touch_rule(change, window) for change in wanted}
    keys = {plan[0] for plan in plans.values()}
    lines = _billing_lines(session, {k for k in keys if not _is_modifier(k)}, {k for k in keys if _is_modifier(k)},
                           agencies)
    touches = {}
    for change, (key, start, end, how) in plans.items():
        refs = {ref.pk: ref for ref, day in lines.get(key, ())
                if (start is None or day >= start) and (end is None or day <= end)}
        touches[change] = Touch(tuple(sorted(refs.values(), key=lambda r: (r.agency_id, r.claim_id, r.pk))), None, how)
    return touches


# --- HH PPS ---------------------------------------------------------------------------------------


def change_identity(change: Change) -> tuple:
    """What names a change independently of its citations and labels."""
    return (change.source, change.change_type, change.key, change.old_key, change.field)


def hhpps_touches(session: Session, catalogue: Catalogue, changes: Iterable[Change], *, year: int,
                  agencies: Sequence[str] | None, conflict_policy: str = "first",
                  runs: Sequence[ImpactResult] | None = None) -> tuple[dict[Change, Touch], tuple[ImpactResult, ...]]:
    """The HH PPS changes of the review with the impact's claims and dollars (``kb.impact``); the
    runs (one per agency, or one for every stored claim) are returned for their totals."""
    if runs is None:
        runs = tuple(impact(session, catalogue, from_year=year - 1, to_year=year, agency=agency,
                            conflict_policy=conflict_policy) for agency in (agencies or [None]))
    by_identity: dict[tuple, tuple[list[ClaimRef], Decimal, str | None]] = {}
    for run in runs:
        refs = {c.pk: ClaimRef(c.pk, c.agency_id, c.claim_id, c.type_of_bill, c.period_from) for c in run.claims}
        for item in run.changes:
            claims, dollars, _ = by_identity.get(change_identity(item.change), ([], ZERO, None))
            by_identity[change_identity(item.change)] = (claims + [refs[pk] for pk in item.claim_pks],
                                                         dollars + item.dollars, item.component)
    touches = {}
    for change in changes:
        if change.source != HHPPS:
            continue
        claims, dollars, component = by_identity.get(change_identity(change), ([], ZERO, None))
        touches[change] = Touch(tuple(claims), dollars, "priced under both years (hhkb impact)", component)
    return touches, tuple(runs)


# --- billing rules --------------------------------------------------------------------------------


def rules_changing_in(rules: RuleSet, year: int) -> list[tuple[Rule, str]]:
    found = []
    for rule in rules:
        if rule.effective_from.year == year:
            found.append((rule, "takes effect"))
        if rule.effective_to is not None and rule.effective_to.year == year:
            found.append((rule, "ends"))
    return found


def _window_claim_ids(session: Session, window: Window, agencies: Sequence[str] | None,
                      codes: Iterable[str] | None = None) -> list[int]:
    """Ids of the claims whose period starts in the window (and does not end before it), in id
    order; with ``codes``, only those with a line billing one of them. One query."""
    claims, lines = AgencyClaim.__table__, AgencyClaimLine.__table__
    query = (sa.select(claims.c.id)
             .where(_claims_table_filter(agencies), claims.c.period_from >= window.start,
                    claims.c.period_from <= window.end, claims.c.period_through >= window.start)
             .order_by(claims.c.id))
    if codes is not None:
        query = query.where(sa.exists().where(lines.c.claim_pk == claims.c.id,
                                              id_in(session, lines.c.hcpcs, sorted(codes))))
    return [pk for (pk,) in session.execute(query)]


def _stored_claims(session: Session, ids: list[int], *, lines: bool) -> list[StoredClaim]:
    return [stored for start in range(0, len(ids), CLAIM_BATCH)
            for stored in stored_claims_by_id(session, ids[start:start + CLAIM_BATCH], lines=lines)]


def rule_touches(session: Session, year: int, *, agencies: Sequence[str] | None, window: Window,
                 rules: RuleSet | None = None) -> tuple[tuple[Rule, str, Touch], ...]:
    """For each billing rule that takes effect or ends in ``year``: the claims of the window it
    flags when in force (its dates set aside, so it is asked about every claim of the window).

    Only the claims a rule could flag are read: for a rule whose findings need a line of some
    HCPCS codes (``kb.rules.codes_a_finding_needs``), the claims billing one of them; for a rule
    reading claim fields only, the claims without their lines; otherwise every claim of the window
    with its lines. The rules checker decides, claim by claim, as ``hhkb check`` does."""
    changing = rules_changing_in(rules or load_rules(), year)
    if not changing:
        return ()
    needs = {rule.id: codes_a_finding_needs(rule.condition) for rule, _ in changing}
    with_lines = [rule for rule, _ in changing if reads_lines(rule.condition)]
    if any(needs[rule.id] is None for rule in with_lines):
        coded = None  # some rule reads any claim's lines: read them all
        read = _stored_claims(session, _window_claim_ids(session, window, agencies), lines=True)
    else:
        coded = frozenset().union(*(needs[rule.id] for rule in with_lines))
        read = _stored_claims(session, _window_claim_ids(session, window, agencies, coded), lines=True) \
            if coded else []
    fields_only = read if coded is None else (
        _stored_claims(session, _window_claim_ids(session, window, agencies), lines=False)
        if len(with_lines) < len(changing) else [])
    knowledge = DatabaseKnowledge.preload(session, codes=codes_of(stored.claim for stored in read))
    found = []
    for rule, when in changing:
        timeless = dataclasses.replace(rule, effective_from=date.min, effective_to=None)
        checker = Checker([timeless], knowledge)
        flagged = {}
        for stored in (read if reads_lines(rule.condition) else fields_only):
            if checker.check(stored.claim):
                claim = stored.claim
                flagged[stored.pk] = ClaimRef(stored.pk, claim.agency_id, claim.claim_id, claim.type_of_bill,
                                              claim.period_from)
        how = (f"flagged in {window.text} by the rule in force" if when == "takes effect"
               else f"flagged in {window.text} by the rule, which no longer applies after {rule.effective_to}")
        refs = sorted(flagged.values(), key=lambda r: (r.agency_id, r.claim_id, r.pk))
        found.append((rule, when, Touch(tuple(refs), None, how)))
    return tuple(found)


# --- the whole join -------------------------------------------------------------------------------


def join_claims(session: Session, catalogue: Catalogue, year: int, changes: Sequence[Change], *,
                agencies: Sequence[str] | None, conflict_policy: str = "first",
                rules: RuleSet | None = None) -> ClaimsJoin:
    """Every change of a review with the claims it touches (``agencies``: None for every stored claim)."""
    scope = f"agenc{'y' if agencies and len(agencies) == 1 else 'ies'} {', '.join(agencies)}" if agencies \
        else "all stored claims"
    window = claim_window(session, year, agencies)
    touches = hcpcs_touches(session, changes, agencies=agencies, window=window)
    notes = [f"Claims: {scope}; HCPCS changes of description, coverage, pricing, BETOS and the like touch the "
             f"claims billing the code in {window.text}"]
    runs: tuple[ImpactResult, ...] = ()
    if any(change.source == HHPPS for change in changes):
        try:
            found, runs = hhpps_touches(session, catalogue, changes, year=year, agencies=agencies,
                                        conflict_policy=conflict_policy)
            touches.update(found)
            claims, before, after = (sum(r.totals.claims for r in runs), sum((r.totals.before for r in runs), ZERO),
                                     sum((r.totals.after for r in runs), ZERO))
            notes.append(f"HH PPS: {claims} claims priced under CY{year - 1} and CY{year} as hhkb impact does: "
                         f"{before} -> {after}, difference {after - before:+} (before the outlier cap)")
        except ParameterError as error:
            notes.append(f"HH PPS: claims not priced: {error}")
    found_rules = rule_touches(session, year, agencies=agencies, window=window, rules=rules)
    return ClaimsJoin(scope, window, touches, found_rules, runs, tuple(notes))


# --- pending and proposed -------------------------------------------------------------------------


def pending_for_year(updates: Iterable, year: int) -> list:
    """The not-final updates a review of ``year`` shows: those that would take effect in the year,
    and the code requests still pending at its end."""
    end = date(year, 12, 31)
    return [u for u in updates
            if (u.effective is not None and u.effective.year == year)
            or (u.effective is None and u.pending_on(end))]


def pending_touches(session: Session, catalogue: Catalogue, updates: Sequence, *, year: int,
                    join: ClaimsJoin, conflict_policy: str = "first") -> dict[str, Touch]:
    """For each pending update, the claims it would touch: its codes billed in the review's window;
    for a proposed rule with a scenario over the year, the claims the proposal would pay otherwise
    than the final rule, and by how much (the same impact run under the scenario)."""
    from kb.store import scenario_texts
    from regulations.scenario import find_scenario

    window = join.window
    agencies = None if join.scope == "all stored claims" else join.scope.split(" ", 1)[1].split(", ")
    codes = {code for update in updates for code in update.codes}
    lines = _billing_lines(session, {c for c in codes if not _is_modifier(c)}, {c for c in codes if _is_modifier(c)},
                           agencies)
    found = {}
    for update in updates:
        if update.codes:
            refs = {ref.pk: ref for code in update.codes for ref, day in lines.get(code, ())
                    if window.start <= day <= window.end}
            found[update.entry_id] = Touch(tuple(sorted(refs.values(), key=lambda r: (r.agency_id, r.claim_id))),
                                           None, f"billing {', '.join(update.codes)} in {window.text}")
        elif update.scenario and join.impacts:
            scenario = find_scenario(update.scenario, scenario_texts(session))
            if scenario.base_year != year:
                continue
            final = {c.pk: c for run in join.impacts for c in run.claims}
            refs, dollars = [], ZERO
            for agency in agencies or [None]:
                run = impact(session, catalogue, from_year=year - 1, to_year=year, agency=agency,
                             conflict_policy=conflict_policy, scenario=scenario)
                for claim in run.claims:
                    if claim.pk in final and claim.after != final[claim.pk].after:
                        refs.append(ClaimRef(claim.pk, claim.agency_id, claim.claim_id, claim.type_of_bill,
                                             claim.period_from))
                        dollars += claim.after - final[claim.pk].after
            found[update.entry_id] = Touch(tuple(refs), dollars,
                                           f"priced under {scenario.label} against the final CY{year} rule")
    return found
