"""A deterministic generator of realistic, synthetic home health claims for one agency and year.

Everything comes from a ``random.Random`` seeded by the caller (mixed with the agency and year), so
the same profile, year and seed always give the same claims, and no global state is touched. The
identifiers are synthetic and say so: member ids read ``SYN...``, the agency's NPI is built by
:func:`synthetic_npi`. Pure: no database, no files.

What a generated period looks like (after CMS, Medicare Claims Processing Manual chapter 10):

- type of bill 0329 (final claim), statement period of 30 days (fewer for a partial period, which
  ends the admission with patient status 06), admission date = start of care;
- one 0023 line carrying the HIPPS code; the first position of the code agrees with the claim: an
  early period (1, 2) is the first period of an admission, a late period (3, 4) a later one, and an
  institutional period (2, 4) carries occurrence code 61 or 62 within 14 days before it;
- one line per visit (revenue code 042x PT, 043x OT, 044x SLP, 055x SN, 056x MSS, 057x aide with
  the discipline's G-code), dated inside the period, units in 15-minute increments, at most two
  visits a day; a LUPA period has fewer visits than the HIPPS code's LUPA threshold, an outlier
  period many long nursing visits;
- one site-of-service line (Q5001/Q5002/Q5009) with the revenue code and date of the first visit,
  one unit and a penny;
- telehealth lines (G0320/G0321 one unit each, G0322 once with units = days) only on dates from
  2023-07-01, when reporting them began;
- value codes 61 (CBSA) and 85 (FIPS county), occurrence code 50 (OASIS assessment), a pre-claim
  review tracking number (REF*G1) for an agency in Review Choice option 1.

The diagnosis codes are plausible for each clinical group but are examples, not the output of
CMS's grouper.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from itertools import accumulate, product

from loaders.claim_record import Claim, ClaimLine, beneficiary_key_of

#: The key the generator hashes its synthetic member ids with, unless told otherwise.
SAMPLE_BENEFICIARY_HASH_KEY = b"hhkb synthetic sample agency"

#: States of the Review Choice Demonstration for home health.
REVIEW_CHOICE_STATES = frozenset({"IL", "OH", "NC", "FL", "TX", "OK"})

#: Telehealth G0320-G0322 are reported on claims with dates of service from this day.
TELEHEALTH_REPORTING_FROM = date(2023, 7, 1)

#: With no LUPA thresholds given: a LUPA period gets one visit (below every PDGM threshold, the
#: lowest being 2) and any other period at least six (the highest threshold in CY2020-2024).
FALLBACK_LUPA_VISITS = 1
FALLBACK_MINIMUM_VISITS = 6

_TIMING = "1234"  # early community, early institutional, late community, late institutional
_CLINICAL_GROUPS = "ABCDEFGHIJKL"
_FUNCTIONAL_LEVELS = "ABC"
_COMORBIDITY_LEVELS = "123"

_DEFAULT_TIMING_WEIGHTS = {"1": 0.22, "2": 0.13, "3": 0.55, "4": 0.10}
_DEFAULT_GROUP_WEIGHTS = {
    "A": 0.09, "B": 0.10, "C": 0.11, "D": 0.03, "E": 0.15, "F": 0.02,
    "G": 0.07, "H": 0.16, "I": 0.06, "J": 0.06, "K": 0.05, "L": 0.10,
}
_DEFAULT_FUNCTIONAL_WEIGHTS = {"A": 0.33, "B": 0.34, "C": 0.33}
_DEFAULT_COMORBIDITY_WEIGHTS = {"1": 0.45, "2": 0.40, "3": 0.15}

_PRINCIPAL_DIAGNOSES = {
    "A": ("E860", "D509", "R627"),
    "B": ("I69351", "G35", "I69354"),
    "C": ("L89154", "L97419", "T8131XA"),
    "D": ("Z452", "E43", "K5090"),
    "E": ("M1711", "S72001D", "Z96651"),
    "F": ("F200", "F331", "F250"),
    "G": ("Z48812", "Z4889", "Z48815"),
    "H": ("I110", "I5022", "I130"),
    "I": ("E1165", "E1122", "E1142"),
    "J": ("N390", "K5730", "N179"),
    "K": ("A419", "L03115", "B9620"),
    "L": ("J441", "J9611", "J189"),
}
_SECONDARY_DIAGNOSES = ("I10", "E119", "Z7901", "N183", "E785", "I480", "M1990", "Z9181", "E039", "F329", "G4733", "K219")

# Disciplines: revenue code, G-codes with weights, visit units (15-minute increments), charge.
_DISCIPLINES = {
    "PT": ("0421", (("G0151", 60), ("G0157", 35), ("G0159", 5)), (2, 4), Decimal("195.00")),
    "OT": ("0431", (("G0152", 60), ("G0158", 35), ("G0160", 5)), (2, 4), Decimal("195.00")),
    "SLP": ("0441", (("G0153", 90), ("G0161", 10)), (2, 4), Decimal("210.00")),
    "SN": (
        "0551",
        (("G0299", 55), ("G0300", 20), ("G0162", 5), ("G0493", 10), ("G0494", 4), ("G0495", 4), ("G0496", 2)),
        (2, 4),
        Decimal("165.00"),
    ),
    "MSS": ("0561", (("G0155", 1),), (3, 5), Decimal("250.00")),
    "AIDE": ("0571", (("G0156", 1),), (2, 4), Decimal("85.00")),
}
_REHAB_MIX = (("PT", 45), ("OT", 20), ("SLP", 6), ("SN", 20), ("AIDE", 5), ("MSS", 4))
_NURSING_MIX = (("SN", 60), ("PT", 20), ("OT", 8), ("SLP", 2), ("AIDE", 7), ("MSS", 3))
_OUTLIER_MIX = (("SN", 80), ("AIDE", 15), ("PT", 5))
_OUTLIER_SN_UNITS = (6, 10)
_SITES_OF_SERVICE = (("Q5001", 88), ("Q5002", 10), ("Q5009", 2))
_PENNY = Decimal("0.01")
_ZERO = Decimal("0.00")
_UNITS = {count: Decimal(count) for count in range(0, 40)}


def all_hipps_codes() -> tuple[str, ...]:
    """The 432 PDGM HIPPS codes: timing, clinical group, functional level, comorbidity, "1"."""
    return tuple(
        timing + group + functional + comorbidity + "1"
        for timing, group, functional, comorbidity in product(
            _TIMING, _CLINICAL_GROUPS, _FUNCTIONAL_LEVELS, _COMORBIDITY_LEVELS
        )
    )


def default_case_mix() -> tuple[tuple[str, float], ...]:
    """A case mix over all 432 codes: the product of plausible shares of each position."""
    return tuple(
        (
            code,
            _DEFAULT_TIMING_WEIGHTS[code[0]]
            * _DEFAULT_GROUP_WEIGHTS[code[1]]
            * _DEFAULT_FUNCTIONAL_WEIGHTS[code[2]]
            * _DEFAULT_COMORBIDITY_WEIGHTS[code[3]],
        )
        for code in all_hipps_codes()
    )


def synthetic_npi(serial: int) -> str:
    """A well-formed NPI that starts with 9, from a serial number (0 to 99999999).

    Real NPIs start with 1 or 2, so these never name a real provider.
    """
    if not 0 <= serial < 10**8:
        raise ValueError(f"serial {serial} is not between 0 and 99999999")
    first_nine = f"9{serial:08d}"
    return first_nine + npi_check_digit(first_nine)


def npi_check_digit(first_nine: str) -> str:
    """The NPI check digit: Luhn over the card-issuer prefix 80840 and the first nine digits."""
    total = 0
    for position, digit in enumerate(reversed("80840" + first_nine)):
        value = int(digit)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class AgencyProfile:
    """What makes one agency's claims: where it is, how many periods, what kind of patients.

    ``case_mix`` pairs HIPPS codes with relative weights (empty: :func:`default_case_mix`). The
    shares are of periods: ``lupa_share`` with fewer visits than the LUPA threshold,
    ``outlier_share`` with enough long visits to earn an outlier, ``partial_share`` ending early
    with a transfer, ``telehealth_share`` carrying telehealth lines (on dates from 2023-07-01).
    ``review_choice_option`` is the agency's Review Choice Demonstration option (1 pre-claim
    review ... ) and needs a Review Choice state; with option 1, all but
    ``missing_review_share`` of the claims carry a tracking number.
    """

    agency_id: str
    state: str
    cbsa: str
    fips_county: str
    periods: int
    case_mix: tuple[tuple[str, float], ...] = ()
    lupa_share: float = 0.08
    outlier_share: float = 0.02
    partial_share: float = 0.04
    telehealth_share: float = 0.10
    review_choice_option: int | None = None
    missing_review_share: float = 0.03
    quality_data_submitted: bool = True

    def __post_init__(self) -> None:
        if len(self.agency_id) != 10 or not self.agency_id.isdigit():
            raise ValueError(f"agency_id {self.agency_id!r} is not a ten-digit NPI")
        if len(self.state) != 2 or not self.state.isalpha() or not self.state.isupper():
            raise ValueError(f"state {self.state!r} is not a two-letter code")
        for name in ("cbsa", "fips_county"):
            value = getattr(self, name)
            if len(value) != 5 or not value.isdigit():
                raise ValueError(f"{name} {value!r} is not five digits")
        if self.periods < 0:
            raise ValueError(f"periods {self.periods} is negative")
        for name in ("lupa_share", "outlier_share", "partial_share", "telehealth_share", "missing_review_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} {getattr(self, name)} is not between 0 and 1")
        if self.lupa_share + self.outlier_share > 1.0:
            raise ValueError("lupa_share + outlier_share is more than 1")
        if self.review_choice_option is not None:
            if self.state not in REVIEW_CHOICE_STATES:
                raise ValueError(f"review_choice_option given for {self.state}, not a Review Choice state")
            if self.review_choice_option not in (1, 2, 3, 4):
                raise ValueError(f"review_choice_option {self.review_choice_option} is not 1-4")
        known = set(all_hipps_codes())
        for code, weight in self.case_mix:
            if code not in known:
                raise ValueError(f"case_mix code {code!r} is not a PDGM HIPPS code")
            if weight < 0:
                raise ValueError(f"case_mix weight of {code} is negative")
        if self.case_mix and sum(weight for _, weight in self.case_mix) <= 0:
            raise ValueError("case_mix weights sum to zero")


@dataclass(frozen=True)
class SampleClaims:
    """Generated claims with the synthetic member id behind each beneficiary key (for writing)."""

    claims: tuple[Claim, ...]
    member_ids: Mapping[str, str] = field(default_factory=dict)


def generate_claims(
    profile: AgencyProfile,
    *,
    year: int,
    seed: int,
    lupa_thresholds: Mapping[str, int] | None = None,
    beneficiary_hash_key: bytes = SAMPLE_BENEFICIARY_HASH_KEY,
) -> list[Claim]:
    """``profile.periods`` final period claims starting in ``year``; see :func:`generate_sample`."""
    return list(
        generate_sample(
            profile, year=year, seed=seed, lupa_thresholds=lupa_thresholds, beneficiary_hash_key=beneficiary_hash_key
        ).claims
    )


def generate_sample(
    profile: AgencyProfile,
    *,
    year: int,
    seed: int,
    lupa_thresholds: Mapping[str, int] | None = None,
    beneficiary_hash_key: bytes = SAMPLE_BENEFICIARY_HASH_KEY,
) -> SampleClaims:
    """Generate ``profile.periods`` final claims whose periods start in ``year``.

    ``lupa_thresholds`` maps HIPPS codes to the year's LUPA visit thresholds (CMS's hrg table); a
    code missing from it, or no mapping at all, falls back to :data:`FALLBACK_LUPA_VISITS` and
    :data:`FALLBACK_MINIMUM_VISITS`. Claims come sorted by period start, then claim id.
    """
    generator = _Generator(profile, year, random.Random(f"{seed}/{profile.agency_id}/{year}"), lupa_thresholds or {}, beneficiary_hash_key)
    return generator.run()


class _Generator:
    def __init__(
        self,
        profile: AgencyProfile,
        year: int,
        rng: random.Random,
        lupa_thresholds: Mapping[str, int],
        hash_key: bytes,
    ):
        self.profile = profile
        self.year = year
        self.rng = rng
        self.lupa_thresholds = lupa_thresholds
        self.hash_key = hash_key
        case_mix = profile.case_mix or default_case_mix()
        self.early = _Choice([(code, weight) for code, weight in case_mix if code[0] in "12" and weight > 0])
        self.late = _Choice([(code, weight) for code, weight in case_mix if code[0] in "34" and weight > 0])
        total = self.early.total + self.late.total
        self.early_share = self.early.total / total
        self.first_day = date(year, 1, 1)
        self.last_day = date(year, 12, 31)
        self.claims: list[Claim] = []
        self.member_ids: dict[str, str] = {}
        self.review_numbers = 0

    def run(self) -> SampleClaims:
        admission = 0
        while len(self.claims) < self.profile.periods:
            admission += 1
            self._admission(admission)
        self.claims.sort(key=lambda claim: (claim.period_from, claim.claim_id))
        return SampleClaims(tuple(self.claims), dict(self.member_ids))

    def _admission(self, serial: int) -> None:
        rng = self.rng
        profile = self.profile
        start = self.first_day + timedelta(days=rng.randrange(-90, 365))
        # Admissions run a geometric number of periods so that early periods make up the case
        # mix's share of early codes. Without early codes, only later periods are kept.
        continue_share = 1.0 - max(self.early_share, 0.05) if self.late.total else 0.0
        member_id = f"SYN{profile.agency_id[-4:]}{serial:07d}"
        beneficiary_key = beneficiary_key_of(member_id, self.hash_key)
        first_hipps = self.early.pick(rng) if self.early.total else self.late.pick(rng)
        admission_source = rng.choice("45") if first_hipps[0] in "24" else rng.choice("12")
        transfer_in = rng.random() < 0.03
        site = _weighted(rng, _SITES_OF_SERVICE)
        period = 0
        while True:
            period_from = start + timedelta(days=30 * period)
            if period_from > self.last_day or len(self.claims) >= profile.periods:
                return
            hipps = first_hipps if period == 0 else self.late.pick(rng)
            partial = rng.random() < profile.partial_share
            last = partial or rng.random() >= continue_share
            if period_from >= self.first_day and (period > 0 or self.early.total):
                self.member_ids[beneficiary_key] = member_id
                self.claims.append(
                    self._period(
                        claim_id=f"P{serial:07d}-{period + 1:02d}",
                        hipps=hipps,
                        admission_date=start,
                        period_from=period_from,
                        first=period == 0,
                        last=last,
                        partial=partial,
                        admission_source=admission_source,
                        transfer_in=transfer_in,
                        site=site,
                        beneficiary_key=beneficiary_key,
                    )
                )
            if last:
                return
            period += 1

    def _period(
        self,
        *,
        claim_id: str,
        hipps: str,
        admission_date: date,
        period_from: date,
        first: bool,
        last: bool,
        partial: bool,
        admission_source: str,
        transfer_in: bool,
        site: str,
        beneficiary_key: str,
    ) -> Claim:
        rng = self.rng
        profile = self.profile
        days = rng.randint(4, 27) if partial else 30
        period_through = period_from + timedelta(days=days - 1)
        roll = rng.random()
        kind = "lupa" if roll < profile.lupa_share else "outlier" if roll < profile.lupa_share + profile.outlier_share else "normal"

        occurrence_codes: list[tuple[str, date]] = []
        if first:
            oasis = admission_date + timedelta(days=rng.randint(0, min(4, days - 1)))
        else:
            oasis = period_from - timedelta(days=rng.randint(1, 5))
        occurrence_codes.append(("50", oasis))
        if hipps[0] in "24":
            occurrence_codes.append((rng.choice(("61", "62")), period_from - timedelta(days=rng.randint(1, 14))))

        visit_lines = self._visits(hipps, kind, period_from, days)
        first_visit = visit_lines[0]
        lines = [
            ClaimLine(0, "0023", None, hipps, (), _UNITS[0], _ZERO, first_visit.service_date),
            *visit_lines,
            ClaimLine(0, first_visit.revenue_code, site, None, (), _UNITS[1], _PENNY, first_visit.service_date),
            *self._telehealth(period_from, period_through),
        ]
        body = sorted(lines[1:], key=lambda line: (line.revenue_code, line.service_date, line.hcpcs))
        numbered = tuple(
            ClaimLine(number, line.revenue_code, line.hcpcs, line.hipps, line.modifiers, line.units, line.charge, line.service_date)
            for number, line in enumerate([lines[0], *body], start=1)
        )

        group = hipps[1]
        comorbidity = int(hipps[3])
        secondary = rng.sample(_SECONDARY_DIAGNOSES, rng.randint(comorbidity, comorbidity + 3))
        review_tracking_number = None
        if profile.review_choice_option == 1 and rng.random() >= profile.missing_review_share:
            self.review_numbers += 1
            review_tracking_number = f"{profile.state}{self.year % 100:02d}{profile.agency_id[-4:]}{self.review_numbers:06d}"
        return Claim(
            agency_id=profile.agency_id,
            claim_id=claim_id,
            type_of_bill="0329",
            period_from=period_from,
            period_through=period_through,
            admission_date=admission_date,
            admission_source=admission_source,
            patient_status="06" if partial else "01" if last else "30",
            hipps=hipps,
            cbsa=profile.cbsa,
            fips_county=profile.fips_county,
            quality_data_submitted=profile.quality_data_submitted,
            review_tracking_number=review_tracking_number,
            state=profile.state,
            diagnoses=(rng.choice(_PRINCIPAL_DIAGNOSES[group]), *secondary),
            condition_codes=("47",) if first and transfer_in else (),
            occurrence_codes=tuple(occurrence_codes),
            value_codes=(("61", Decimal(int(profile.cbsa))), ("85", Decimal(int(profile.fips_county)))),
            beneficiary_key=beneficiary_key,
            source_segment=0,
            lines=numbered,
        )

    def _visits(self, hipps: str, kind: str, period_from: date, days: int) -> list[ClaimLine]:
        rng = self.rng
        threshold = self.lupa_thresholds.get(hipps)
        slots = 2 * days  # at most two visits a day
        if kind == "lupa":
            count = rng.randint(1, threshold - 1) if threshold and threshold > 1 else FALLBACK_LUPA_VISITS
        elif kind == "outlier":
            count = min(slots, rng.randint(35, 55))
        else:
            # about 9 visits of 30 to 60 minutes in an average 30-day period, more with impairment:
            # imputed cost stays under the outlier threshold unless the period is meant to be one
            functional = "ABC".index(hipps[2])
            low = 5 + functional
            count = rng.randint(low, low + 4 + 2 * functional)
            if days < 30:
                count = max(1, count * days // 30)
            count = max(count, threshold if threshold else FALLBACK_MINIMUM_VISITS)
            count = min(count, slots)
        mix = _OUTLIER_MIX if kind == "outlier" else _REHAB_MIX if hipps[1] in "BE" else _NURSING_MIX
        day_offsets = sorted(offset // 2 for offset in rng.sample(range(slots), count))
        visits = []
        for offset in day_offsets:
            discipline = _weighted(rng, mix)
            revenue_code, codes, (low_units, high_units), charge = _DISCIPLINES[discipline]
            if kind == "outlier" and discipline == "SN":
                low_units, high_units = _OUTLIER_SN_UNITS
            visits.append(
                ClaimLine(
                    0,
                    revenue_code,
                    _weighted(rng, codes),
                    None,
                    (),
                    _UNITS[rng.randint(low_units, high_units)],
                    charge,
                    period_from + timedelta(days=offset),
                )
            )
        return visits

    def _telehealth(self, period_from: date, period_through: date) -> list[ClaimLine]:
        rng = self.rng
        start = max(period_from, TELEHEALTH_REPORTING_FROM)
        if start > period_through or rng.random() >= self.profile.telehealth_share:
            return []
        span = (period_through - start).days + 1
        lines = [
            ClaimLine(
                0,
                rng.choice(("0551", "0551", "0421")),
                rng.choice(("G0320", "G0321")),
                None,
                (),
                _UNITS[1],
                _PENNY,
                start + timedelta(days=rng.randrange(span)),
            )
            for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < 0.3:
            monitored = rng.randint(1, span)
            lines.append(ClaimLine(0, "0551", "G0322", None, (), _UNITS[min(monitored, 30)], _PENNY, start))
        return lines


class _Choice:
    """A weighted choice among codes, drawn with one random number."""

    def __init__(self, weighted: list[tuple[str, float]]):
        self.codes = [code for code, _ in weighted]
        self.cumulative = list(accumulate(weight for _, weight in weighted))
        self.total = self.cumulative[-1] if self.cumulative else 0.0

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.codes, cum_weights=self.cumulative)[0]


def _weighted(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    codes, cumulative = _cumulative(weighted)
    return rng.choices(codes, cum_weights=cumulative)[0]


@cache
def _cumulative(weighted: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [code for code, _ in weighted], list(accumulate(weight for _, weight in weighted))
