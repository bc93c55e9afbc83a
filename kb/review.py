"""What changed: stored releases and rule years turned into the diff engine's states, compared,
and gathered into the compliance officer's annual review."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from kb.corrections import SOURCE as CORRECTIONS_SOURCE
from kb.corrections import knowledge_changes
from kb.diff import HCPCS_CORRECTIONS, Change, HcpcsState, HhppsState, Provenance, diff_hcpcs, diff_hhpps
from kb.models import HcpcsCode, HcpcsListing, HcpcsVersion, Release
from kb.parameters import (
    ConflictPolicy,
    ParameterError,
    YearTables,
    diff_constant_names,
    hhpps_state,
    hipps_meaning,
    provenance,
    year_tables,
)
from kb.store import LIST_SEPARATOR
from loaders.hcpcs_record import STATE_FIELDS, HcpcsRecord
from regulations.catalogue import DEFAULT_PATH, Catalogue, Regulation

#: The home health codes a compliance officer watches first (DOMAIN.md section 2); configurable.
HOME_HEALTH_WATCH_LIST: tuple[str, ...] = (
    "G0151", "G0152", "G0153", "G0154", "G0155", "G0156", "G0157", "G0158", "G0159", "G0160", "G0161",
    "G0162", "G0299", "G0300", "G0320", "G0321", "G0322", "G0493", "G0494", "G0495", "G0496",
    "Q5001", "Q5002", "Q5009", "R0070", "R0075",
)

_LIST_FIELDS = {"pricing_indicators", "coverage_issues_refs", "carriers_manual_refs", "lab_certifications",
                "cross_references", "type_of_service"}


class ReviewError(LookupError):
    """The releases or years asked for are not in the knowledge base."""


def find_hcpcs_release(session: Session, reference: str) -> Release:
    """An HCPCS release by label ("2019 annual", "2020 APR"), year ("2018": its annual release),
    month ("2020-04": the release effective that month) or date (the release in force that day)."""
    releases = session.exec(
        sa.select(Release).where(Release.source == "hcpcs").order_by(Release.effective_date, Release.published_date)
    ).scalars().all()
    if not releases:
        raise ReviewError("no HCPCS release is loaded (hhkb load ../shared/cms/hcpcs)")
    text = reference.strip()
    by_label = [r for r in releases if r.label.lower() == text.lower()]
    if re.fullmatch(r"\d{4}", text):
        by_label = [r for r in releases if r.label == f"{text} annual"] or [
            r for r in releases if r.effective_date == date(int(text), 1, 1)]
    elif re.fullmatch(r"\d{4}-\d{2}", text):
        year, month = map(int, text.split("-"))
        by_label = [r for r in releases if (r.effective_date.year, r.effective_date.month) == (year, month)]
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        on = date.fromisoformat(text)
        by_label = [r for r in releases if r.effective_date <= on][-1:]
    if not by_label:
        labels = ", ".join(r.label for r in releases)
        raise ReviewError(f"no HCPCS release matches {reference!r}; loaded: {labels}")
    return by_label[-1]  # the latest knowledge of that release


def hcpcs_state(session: Session, release: Release) -> HcpcsState:
    """Every code as the release listed it, rebuilt from the stored versions."""
    version = HcpcsVersion.__table__
    listing = HcpcsListing.__table__
    rows = session.execute(
        sa.select(HcpcsCode.code, HcpcsCode.kind, listing.c.sequence_number, listing.c.action_code,
                  listing.c.action_effective_date, listing.c.source_line,
                  *(version.c[name] for name in STATE_FIELDS))
        .join(listing, listing.c.code_id == HcpcsCode.id)
        .join(version, version.c.id == listing.c.version_id)
        .where(listing.c.release_id == release.id)
    ).all()
    state: dict[str, HcpcsRecord] = {}
    for code, kind, sequence, action, action_date, line, *values in rows:
        fields = {name: (tuple(v.split(LIST_SEPARATOR)) if v else ()) if name in _LIST_FIELDS else v
                  for name, v in zip(STATE_FIELDS, values)}
        state[code] = HcpcsRecord(code=code, kind=kind, sequence_number=sequence, action_code=action,
                                  action_effective_date=action_date, source_line=line, **fields)
    return state


def release_provenance(release: Release) -> Provenance:
    citation = f"CMS {release.file_name}" + (f"!{release.member}" if release.member else "")
    citation += f", published {release.published_date}"
    return Provenance(label=f"HCPCS {release.label}", effective_date=release.effective_date, citation=citation)


def diff_hcpcs_releases(session: Session, old: str | Release, new: str | Release) -> list[Change]:
    old = old if isinstance(old, Release) else find_hcpcs_release(session, old)
    new = new if isinstance(new, Release) else find_hcpcs_release(session, new)
    return diff_hcpcs(hcpcs_state(session, old), hcpcs_state(session, new),
                      old_provenance=release_provenance(old), new_provenance=release_provenance(new))


def diff_hhpps_years(session: Session, catalogue: Catalogue, old_year: int, new_year: int, *,
                     conflict_policy: ConflictPolicy = "first") -> list[Change]:
    """The HH PPS changes from one calendar year's parameters to another's (January 1 of each).

    A CBSA listed twice in a year's wage index is resolved by ``conflict_policy`` (the review
    says so in its notes)."""
    old = year_tables(session, catalogue, date(old_year, 1, 1), conflict_policy=conflict_policy)
    new = year_tables(session, catalogue, date(new_year, 1, 1), conflict_policy=conflict_policy)
    changes = diff_hhpps(hhpps_state(old), hhpps_state(new), old_provenance=provenance(old),
                         new_provenance=provenance(new))
    return [_cited(change, old, new) for change in changes]


def _cited(change: Change, old: YearTables, new: YearTables) -> Change:
    """The change with where each side's value stands (file and row, or the rule's text) and a label."""

    def reference(tables: YearTables) -> str | None:
        key = change.old_key if tables is old and change.old_key else change.key
        if change.change_type in ("weight_changed", "lupa_threshold_changed", "hipps_added", "hipps_removed"):
            found = tables.case_mix.get(key)
            return found.source.cite() if found else None
        if change.change_type.startswith("wage_index") or change.change_type.startswith("cbsa"):
            found = tables.wage_index.get(key)
            return found.source.cite() if found else None
        if change.change_type in ("visit_rate_changed", "unit_rate_changed"):
            return tables.sources["rev"].cite()
        value = getattr(tables.rate_year, key.replace("thirty_day_rate", "rate_30_day"), None)
        return value.citation if value is not None else None

    label = change.label
    if label is None and change.change_type in ("weight_changed", "lupa_threshold_changed"):
        label = "; ".join(meaning for _name, _char, meaning in hipps_meaning(change.key)[:4])
    return dataclasses.replace(change, old_reference=reference(old), new_reference=reference(new), label=label)


def superseded_constants(catalogue: Catalogue, year: int) -> list[tuple[Regulation, Regulation, list[Change]]]:
    """For each rule effective in ``year`` that a loaded catalogue entry superseded: the replaced
    entry, the entry that replaced it, and the constants they state differently, each side cited
    to its rule and to the file and line it was read from."""
    found = []
    for old, new in catalogue.superseded:
        if new.effective is None or new.effective.year != year:
            continue

        def side(rule: Regulation) -> tuple[HhppsState, Provenance]:
            constants = diff_constant_names({name: value.value for name, value in rule.constants.items()})
            state = HhppsState(weights={}, lupa_thresholds={}, visit_rates={}, unit_rates={}, wage_index={},
                               constants=constants)
            return state, Provenance(f"{rule.document_id} ({_read_from(rule)})", rule.effective or new.effective,
                                     f"{rule.citation or rule.document_id}; {_read_from(rule)}")

        (old_state, old_provenance), (new_state, new_provenance) = side(old), side(new)
        changes = diff_hhpps(old_state, new_state, old_provenance=old_provenance, new_provenance=new_provenance)

        def reference(rule: Regulation, key: str) -> str | None:
            name = key.replace("thirty_day_rate", "rate_30_day")
            value = rule.constants.get(name)
            if value is None:
                return None
            return f"{value.citation}; {_read_from(rule)}, line {rule.key_line('constants.' + name)}"

        found.append((old, new, [dataclasses.replace(change, old_reference=reference(old, change.key),
                                                     new_reference=reference(new, change.key))
                                 for change in changes]))
    return found


def _read_from(rule: Regulation) -> str:
    if rule.origin == str(DEFAULT_PATH):
        return "hhkb's catalogue"
    return f"loaded from {rule.origin}"


def corrections_of(session: Session, document: Release) -> list[Change]:
    """What one corrections document changed: the codes in force on the corrected release's
    effective date as known the day before the document and on its day, compared."""
    day_before = date.fromordinal(document.published_date.toordinal() - 1)
    found = knowledge_changes(session, effective=document.effective_date, known_before=day_before,
                              known_after=document.published_date)
    citation = f"CMS {document.file_name}!{document.member}, {document.label}, dated {document.published_date}"
    return [
        dataclasses.replace(
            change,
            source=HCPCS_CORRECTIONS,
            new_provenance=Provenance(document.label, change.new_provenance.effective_date, citation),
        )
        for change in found
    ]


@dataclass(frozen=True)
class AnnualReview:
    """Everything that takes effect in one calendar year across the loaded sources."""

    year: int
    changes: tuple[Change, ...]
    regulations: tuple[Regulation, ...]  # documents effective in the year
    notes: tuple[str, ...]  # what was compared, what could not be, policies applied


def annual_review(session: Session, catalogue: Catalogue, year: int, *,
                  conflict_policy: ConflictPolicy = "first") -> AnnualReview:
    """HCPCS releases effective in ``year`` (each against the release before it) and the HH PPS
    rule year ``year`` against ``year - 1``."""
    changes: list[Change] = []
    notes: list[str] = []
    releases = session.exec(
        sa.select(Release).where(Release.source == "hcpcs").order_by(Release.effective_date, Release.published_date)
    ).scalars().all()
    latest_by_date: dict[date, Release] = {}
    for release in releases:
        latest_by_date[release.effective_date] = release  # a re-issue replaces the earlier file
    ordered = sorted(latest_by_date.values(), key=lambda r: r.effective_date)
    for previous, current in zip(ordered, ordered[1:]):
        if current.effective_date.year == year:
            found = diff_hcpcs_releases(session, previous, current)
            changes.extend(found)
            notes.append(f"HCPCS: {previous.label} -> {current.label}: {len(found)} changes")
    if not any(r.effective_date.year == year for r in ordered[1:]):
        notes.append(f"HCPCS: no pair of loaded releases with the newer one effective in {year}")
    for document in session.exec(
        sa.select(Release).where(Release.source == CORRECTIONS_SOURCE)
        .order_by(Release.effective_date, Release.published_date)
    ).scalars():
        if document.effective_date.year != year:
            continue
        found = corrections_of(session, document)
        changes.extend(found)
        notes.append(f"HCPCS corrections: {document.label} (known from {document.published_date}): "
                     f"{len(found)} changes to what the release said for {document.effective_date}")
    try:
        found = diff_hhpps_years(session, catalogue, year - 1, year, conflict_policy=conflict_policy)
        changes.extend(found)
        notes.append(f"HH PPS: CY{year - 1} -> CY{year}: {len(found)} changes "
                     f"(a CBSA listed twice in one wage index file: policy '{conflict_policy}')")
    except ParameterError as error:
        notes.append(f"HH PPS: CY{year - 1} -> CY{year} not compared: {error}")
    for old, new, found in superseded_constants(catalogue, year):
        changes.extend(found)
        notes.append(f"HH PPS constants of CY{year}: {old.document_id} ({_read_from(old)}) superseded by "
                     f"{new.document_id} ({_read_from(new)}, line {new.line}): {len(found)} changes; "
                     f"its note: {new.note}")
    regulations = tuple(r for r in catalogue.rules if r.effective and r.effective.year == year)
    return AnnualReview(year, tuple(changes), regulations, tuple(notes))
