"""The HH PPS parameters in force on a date: pricer tables from the database, constants from the
regulation catalogue, each value with where it came from.

A table's values apply from its release's effective date until the next release of the same kind
takes effect. ``known_on`` limits the answer to releases published by then (knowledge time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session

from kb.models import HhppsCaseMix, HhppsRevenueRate, HhppsRuralAddOn, HhppsWageIndex, Release
from kb.diff import RATE_VARIANTS, HhppsState, Provenance
from kb.pricing import PricingParameters
from regulations.catalogue import CONSTANT_NAMES, Catalogue, RateYear, missing_constants_message

ConflictPolicy = Literal["first", "last", "refuse"]

#: Revenue code in CMS's rate table for each discipline (the claim's 042x ... 057x lines).
DISCIPLINES = {"0420": "PT", "0430": "OT", "0440": "SLP", "0550": "SN", "0560": "MSS", "0570": "aide"}
#: Which catalogue constant holds the LUPA add-on factor of a discipline's revenue code.
LUPA_ADD_ON_CONSTANTS = {"0550": "lupa_addon_sn", "0420": "lupa_addon_pt", "0440": "lupa_addon_slp",
                         "0430": "lupa_addon_ot"}
RURAL_ADD_ON_CONSTANTS = {"A": "rural_addon_a", "B": "rural_addon_b", "C": "rural_addon_c"}
#: The name CMS's pricer gives its second county table (``extra-add-on-table.csv``).
EXTRA_ADD_ON_TABLE = "extra-add-on-table"


class ParameterError(LookupError):
    """A parameter the question needs is not in the knowledge base, or is in conflict."""


@dataclass(frozen=True)
class Source:
    """Where a value came from: the release (file, sha256, row) and the regulation behind it."""

    release_id: int
    label: str
    file_name: str
    sha256: str
    row: int | None
    regulation: str | None

    def cite(self) -> str:
        where = f"{self.file_name}" + (f" row {self.row}" if self.row else "")
        return f"{where} ({self.label}" + (f"; {self.regulation})" if self.regulation else ")")


def release_in_force(session: Session, source: str, on: date, *, known_on: date | None = None) -> Release | None:
    """The release of ``source`` whose values apply on ``on``: the latest effective on or before it."""
    query = (
        sa.select(Release)
        .where(Release.source == source, Release.effective_date <= on)
        .order_by(Release.effective_date.desc(), Release.published_date.desc(), Release.id.desc())
        .limit(1)
    )
    if known_on is not None:
        query = query.where(Release.published_date <= known_on)
    return session.exec(query).scalar_one_or_none()


def _source(release: Release, row: int | None) -> Source:
    return Source(release.id, release.label, release.file_name, release.sha256, row, release.regulation)


@dataclass(frozen=True)
class CaseMix:
    hipps: str
    weight: Decimal
    lupa_threshold: int
    effective_from: date
    source: Source


@dataclass(frozen=True)
class WageIndexValue:
    cbsa: str
    wage_index: Decimal
    name: str
    name_flag: str | None
    effective_from: date
    source: Source
    conflict: str | None = None  # how a CBSA listed twice was resolved


@dataclass(frozen=True)
class YearTables:
    """Every pricer table in force on one date, preloaded for pricing many claims."""

    on: date
    rate_year: RateYear
    case_mix: dict[str, CaseMix]
    visit_rates: dict[str, HhppsRevenueRate]
    wage_index: dict[str, WageIndexValue]
    wage_index_conflicts: dict[str, tuple[WageIndexValue, ...]]
    rural_categories: dict[str, str]
    sources: dict[str, Source] = field(default_factory=dict)  # table kind -> release
    #: The extra add-on table (``extra-add-on-table.csv``): counties of CBSAs that are not rural
    #: areas and keep a rural add-on category; CMS's pricer names the table, so its file name tells it.
    extra_rural_categories: dict[str, str] = field(default_factory=dict)

    def wage_index_of(self, cbsa: str) -> WageIndexValue:
        if cbsa in self.wage_index_conflicts and cbsa not in self.wage_index:
            values = ", ".join(f"{v.wage_index} (row {v.source.row})" for v in self.wage_index_conflicts[cbsa])
            raise ParameterError(
                f"CBSA {cbsa} is listed more than once in {self.sources['wage_index'].file_name} with "
                f"different values ({values}); choose a policy: first, last or refuse"
            )
        try:
            return self.wage_index[cbsa]
        except KeyError:
            raise ParameterError(f"CBSA {cbsa} is not in the wage index in force on {self.on}") from None

    def pricing_parameters(self, hipps: str, *, quality_data_submitted: bool, rural: bool,
                           cbsa: str | None = None) -> PricingParameters:
        """The pricer's parameters for one claim of this date."""
        year = self.rate_year
        try:
            case_mix = self.case_mix[hipps]
        except KeyError:
            raise ParameterError(f"HIPPS {hipps} is not in the case-mix table in force on {self.on}") from None
        suffix = ("" if quality_data_submitted else "_no_quality") + ("_rural" if rural else "")
        visit_rates = {code: getattr(row, f"visit_rate{suffix}") for code, row in self.visit_rates.items()}
        unit_rates = {code: getattr(row, f"unit_rate{suffix}") for code, row in self.visit_rates.items()}
        add_ons = {code: getattr(year, name).value for code, name in LUPA_ADD_ON_CONSTANTS.items()
                   if getattr(year, name).value is not None}
        rural_factors = {category: getattr(year, name).value for category, name in RURAL_ADD_ON_CONSTANTS.items()}
        if all(value is None for value in rural_factors.values()):
            rural_factors = None
        grace = year.late_noa_grace_days.value
        citations = {
            "case_mix_weight": case_mix.source.cite(),
            "lupa_threshold": case_mix.source.cite(),
            "thirty_day_rate": year.rate_30_day.citation,
            "thirty_day_rate_without_quality_data": year.rate_30_day_no_quality.citation,
            "labor_share": year.labor_share.citation,
            "fdl_ratio": year.fdl_ratio.citation,
            "loss_sharing_ratio": year.loss_sharing_ratio.citation,
            "per_visit_rates": self.sources["rev"].cite(),
            "per_unit_rates": self.sources["rev"].cite(),
            "lupa_add_on_factors": "; ".join(sorted({getattr(year, n).citation for n in LUPA_ADD_ON_CONSTANTS.values()})),
            "rural_add_on_factors": year.rural_addon_a.citation,
            "late_noa_grace_days": year.late_noa_grace_days.citation,
            "outlier_cap_ratio": year.outlier_cap_ratio.citation,
        }
        wage_index = None
        if cbsa is not None:
            value = self.wage_index_of(cbsa)
            wage_index = value.wage_index
            citations["wage_index"] = value.source.cite()
        return PricingParameters(
            case_mix_weight=case_mix.weight,
            lupa_threshold=case_mix.lupa_threshold,
            thirty_day_rate=year.rate_30_day.value,
            thirty_day_rate_without_quality_data=year.rate_30_day_no_quality.value,
            labor_share=year.labor_share.value,
            fdl_ratio=year.fdl_ratio.value,
            loss_sharing_ratio=year.loss_sharing_ratio.value,
            per_visit_rates=visit_rates,
            per_unit_rates=unit_rates,
            lupa_add_on_factors=add_ons,
            rural_add_on_factors=rural_factors,
            late_noa_grace_days=int(grace) if grace is not None else None,
            outlier_cap_ratio=year.outlier_cap_ratio.value,
            wage_index=wage_index,
            citations=citations,
        )


def year_tables(
    session: Session,
    catalogue: Catalogue,
    on: date,
    *,
    known_on: date | None = None,
    conflict_policy: ConflictPolicy = "refuse",
) -> YearTables:
    """Load every pricer table in force on ``on`` (a few set-based queries).

    Raises ``ParameterError`` when a table is missing, and when a constant of the year is unknown:
    the rule in force leaves it out, or CMS's tables are of a later year than any rule in the
    catalogue. The message names the constants and how to add them, never a guess."""
    try:
        rate_year = catalogue.rate_year(on)
    except LookupError as error:
        raise ParameterError(str(error)) from None
    releases = {}
    for kind in ("hrg", "rev", "wage_index"):
        release = release_in_force(session, f"hhpps-{kind}", on, known_on=known_on)
        if release is None:
            raise ParameterError(f"no HH PPS {kind} table in force on {on} is loaded (hhkb load ../shared/cms/hhpps)")
        releases[kind] = release
    tables_from = max(release.effective_date for release in releases.values())
    if tables_from.year > rate_year.effective_from.year:
        # CMS's tables for a year whose rule the catalogue does not have: its constants are unknown
        raise ParameterError(missing_constants_message(tables_from.year, CONSTANT_NAMES, None))
    if rate_year.missing:
        raise ParameterError(missing_constants_message(rate_year.effective_from.year, rate_year.missing, rate_year.rule))
    sources = {kind: _source(release, None) for kind, release in releases.items()}

    case_mix = {
        row.hipps: CaseMix(row.hipps, row.weight, row.lupa_threshold, row.effective_from, _source(releases["hrg"], row.source_row))
        for row in session.exec(sa.select(HhppsCaseMix).where(HhppsCaseMix.release_id == releases["hrg"].id)).scalars()
    }
    visit_rates = {
        row.revenue_code: row
        for row in session.exec(
            sa.select(HhppsRevenueRate).where(HhppsRevenueRate.release_id == releases["rev"].id)
        ).scalars()
    }
    listed: dict[str, list[WageIndexValue]] = {}
    for row in session.exec(
        sa.select(HhppsWageIndex).where(HhppsWageIndex.release_id == releases["wage_index"].id)
        .order_by(HhppsWageIndex.source_row)
    ).scalars():
        listed.setdefault(row.cbsa, []).append(
            WageIndexValue(row.cbsa, row.wage_index, row.name, row.name_flag, row.effective_from,
                           _source(releases["wage_index"], row.source_row))
        )
    wage_index: dict[str, WageIndexValue] = {}
    conflicts: dict[str, tuple[WageIndexValue, ...]] = {}
    for cbsa, values in listed.items():
        distinct = {v.wage_index for v in values}
        if len(distinct) == 1:
            wage_index[cbsa] = values[0]
            continue
        conflicts[cbsa] = tuple(values)
        if conflict_policy == "first":
            chosen = values[0]
        elif conflict_policy == "last":
            chosen = values[-1]
        else:
            continue
        rows = ", ".join(str(v.source.row) for v in values)
        wage_index[cbsa] = WageIndexValue(
            chosen.cbsa, chosen.wage_index, chosen.name, chosen.name_flag, chosen.effective_from, chosen.source,
            conflict=f"listed on rows {rows}; policy '{conflict_policy}' chose row {chosen.source.row}",
        )

    rural_categories: dict[str, str] = {}
    extra_rural_categories: dict[str, str] = {}
    addon_releases = session.exec(
        sa.select(Release).where(Release.source == "hhpps-rural_addon", Release.effective_date <= on)
        .order_by(Release.effective_date.desc(), Release.id.desc())
    ).scalars().all()
    for release in addon_releases:  # the latest table of each name wins
        table = extra_rural_categories if release.file_name.startswith(EXTRA_ADD_ON_TABLE) else rural_categories
        for county, category in session.execute(
            sa.select(HhppsRuralAddOn.county_fips, HhppsRuralAddOn.category).where(HhppsRuralAddOn.release_id == release.id)
        ).all():
            table.setdefault(county, category)
    return YearTables(on, rate_year, case_mix, visit_rates, wage_index, conflicts, rural_categories, sources,
                      extra_rural_categories)


@dataclass(frozen=True)
class HippsYear:
    """One year's case-mix weight and LUPA threshold of a HIPPS code."""

    effective_from: date
    weight: Decimal
    lupa_threshold: int
    source: Source


def hipps_history(session: Session, hipps: str) -> list[HippsYear]:
    rows = session.execute(
        sa.select(HhppsCaseMix, Release)
        .join(Release, Release.id == HhppsCaseMix.release_id)
        .where(HhppsCaseMix.hipps == hipps.upper())
        .order_by(Release.effective_date, Release.id)
    ).all()
    return [HippsYear(row.effective_from, row.weight, row.lupa_threshold, _source(release, row.source_row))
            for row, release in rows]


def wage_index_history(session: Session, cbsa: str) -> list[WageIndexValue]:
    rows = session.execute(
        sa.select(HhppsWageIndex, Release)
        .join(Release, Release.id == HhppsWageIndex.release_id)
        .where(HhppsWageIndex.cbsa == cbsa)
        .order_by(Release.effective_date, HhppsWageIndex.source_row)
    ).all()
    return [WageIndexValue(row.cbsa, row.wage_index, row.name, row.name_flag, row.effective_from,
                           _source(release, row.source_row)) for row, release in rows]


#: Meaning of each HIPPS position under PDGM (CMS, "Overview of the PDGM", HIPPS structure).
HIPPS_POSITIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("timing and admission source", {
        "1": "early period, community admission", "2": "early period, institutional admission",
        "3": "late period, community admission", "4": "late period, institutional admission"}),
    ("clinical group", {
        "A": "MMTA - other", "B": "neuro rehabilitation", "C": "wounds", "D": "complex nursing interventions",
        "E": "musculoskeletal rehabilitation", "F": "behavioral health", "G": "MMTA - surgical aftercare",
        "H": "MMTA - cardiac and circulatory", "I": "MMTA - endocrine", "J": "MMTA - gastrointestinal tract and genitourinary system",
        "K": "MMTA - infectious disease, neoplasms and blood-forming diseases", "L": "MMTA - respiratory"}),
    ("functional impairment level", {"A": "low", "B": "medium", "C": "high"}),
    ("comorbidity adjustment", {"1": "none", "2": "low", "3": "high"}),
    ("fifth position", {"1": "always 1 under PDGM"}),
)


def hipps_meaning(hipps: str) -> list[tuple[str, str, str]]:
    """(position name, character, meaning) for each of the five positions."""
    hipps = hipps.upper()
    return [(name, char, meanings.get(char, "not a valid value"))
            for (name, meanings), char in zip(HIPPS_POSITIONS, hipps.ljust(5))]


def diff_constant_names(values: dict[str, Decimal | None]) -> dict[str, Decimal | None]:
    """Catalogue constants under the diff engine's names (``rate_30_day`` -> ``thirty_day_rate``)."""
    return {name.replace("rate_30_day", "thirty_day_rate"): value for name, value in values.items()}


def hhpps_state(tables: YearTables) -> HhppsState:
    """One year's parameters as the diff engine's ``HhppsState`` (constants named for the diff:
    ``thirty_day_rate``, ``thirty_day_rate_no_quality``, ``labor_share`` ...).

    A CBSA in conflict that no policy resolved is left out of the wage index (and said so by
    ``tables.wage_index_conflicts``).
    """
    year = tables.rate_year
    constants = diff_constant_names({name: getattr(year, name).value for name in CONSTANT_NAMES})
    return HhppsState(
        weights={h: c.weight for h, c in tables.case_mix.items()},
        lupa_thresholds={h: c.lupa_threshold for h, c in tables.case_mix.items()},
        visit_rates={(code, variant): getattr(row, "visit_rate" + suffix)
                     for code, row in tables.visit_rates.items() for variant, suffix in RATE_VARIANTS.items()},
        unit_rates={(code, variant): getattr(row, "unit_rate" + suffix)
                    for code, row in tables.visit_rates.items() for variant, suffix in RATE_VARIANTS.items()},
        wage_index={cbsa: v.wage_index for cbsa, v in tables.wage_index.items()},
        constants=constants,
        cbsa_names={cbsa: v.name for cbsa, v in tables.wage_index.items()},
    )


def provenance(tables: YearTables) -> Provenance:
    """The diff engine's provenance of one year's parameters: the rule and the tables' files."""
    files = ", ".join(tables.sources[kind].file_name for kind in ("hrg", "rev", "wage_index"))
    return Provenance(label=f"CY{tables.on.year}", effective_date=tables.rate_year.effective_from,
                      citation=f"{tables.rate_year.rule}; {files}")
