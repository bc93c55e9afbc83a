"""Writing parsed releases into the knowledge base: one release, one transaction.

A loader parses a file into frozen records; this module records the file as a ``release`` row with
its provenance and turns the records into versions. Every ``store_*`` function works inside the
session it is handed and never commits: the caller's transaction (``kb.database.transaction``)
commits the whole file or nothing.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from kb.hcpcs_tables import HcpcsTables
from kb.models import (
    CatalogueDocument,
    HcpcsChangeReportRow,
    HhppsCaseMix,
    HhppsRevenueRate,
    HhppsRuralAddOn,
    HhppsWageIndex,
    Release,
)
from loaders.errors import LoadError
from loaders.hcpcs_record import STATE_FIELDS, HcpcsRecord
from regulations.catalogue import Catalogue, load_catalogue, merge, parse_catalogue

LOADER_VERSION = "1"

#: The source of HCPCS release rows.
HCPCS_SOURCE = "hcpcs"

#: How a tuple field is kept in one text column.
LIST_SEPARATOR = "|"

#: The release source of a catalogue file loaded into the knowledge base (rule years as data).
CATALOGUE_SOURCE = "catalogue"
#: The release sources of a file of pending updates and of a what-if scenario loaded into the knowledge base.
PENDING_SOURCE = "pending"
SCENARIO_SOURCE = "scenario"


@dataclass(frozen=True)
class FileIdentity:
    """What identifies a file's content: its name, sha256 and size."""

    name: str
    sha256: str
    size: int

    @classmethod
    def of(cls, path: str | Path) -> FileIdentity:
        path = Path(path)
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        return cls(name=path.name, sha256=digest.hexdigest(), size=size)


@dataclass(frozen=True)
class StoreSummary:
    """What storing one file did."""

    release: Release
    already_loaded: bool
    records: int = 0
    new_codes: int = 0
    new_versions: int = 0
    closed_versions: int = 0
    superseded_versions: int = 0
    #: Files loaded before this one but published after it, applied again after it.
    reapplied: int = 0

    def describe(self) -> str:
        r = self.release
        if self.already_loaded:
            return f"{r.file_name}: already loaded as release {r.id} ({r.source} {r.label}); nothing changed"
        if r.source != "hcpcs":
            return (
                f"{r.file_name}: release {r.id} ({r.source} {r.label}, effective {r.effective_date}, "
                f"published {r.published_date}): {self.records} "
                + {CATALOGUE_SOURCE: "entries", PENDING_SOURCE: "updates",
                   SCENARIO_SOURCE: "constants"}.get(r.source, "rows")
                + (f"; {r.notes}" if r.notes else "")
            )
        return (
            f"{r.file_name}: release {r.id} ({r.source} {r.label}, effective {r.effective_date}, "
            f"published {r.published_date}): {self.records} records, {self.new_codes} new codes, "
            f"{self.new_versions} new versions, {self.closed_versions} versions ended"
            + (f", {self.superseded_versions} superseded" if self.superseded_versions else "")
            + reapplied_note(self.reapplied)
        )


def reapplied_note(count: int) -> str:
    """What a summary line adds when loading a file re-sequenced the files published after it."""
    if not count:
        return ""
    return f"; published before {count} loaded HCPCS file{'s' if count > 1 else ''}, which {'were' if count > 1 else 'was'} applied again after it"


def find_release(session: Session, source: str, sha256: str) -> Release | None:
    return session.exec(
        sa.select(Release).where(Release.source == source, Release.sha256 == sha256)
    ).scalar_one_or_none()


def add_release(
    session: Session,
    *,
    source: str,
    label: str,
    file_format: str,
    identity: FileIdentity,
    member: str | None,
    effective_date: date,
    effective_date_basis: str,
    published_date: date | None,
    published_date_basis: str,
    record_count: int,
) -> Release:
    """Insert the release row for a file (the caller has checked it is not loaded yet)."""
    if published_date is None:
        published_date = date.today()
        published_date_basis = "not stated in the file: the day it was loaded"
    release = Release(
        source=source,
        label=label,
        file_format=file_format,
        file_name=identity.name,
        member=member,
        sha256=identity.sha256,
        size=identity.size,
        effective_date=effective_date,
        effective_date_basis=effective_date_basis,
        published_date=published_date,
        published_date_basis=published_date_basis,
        loader_version=LOADER_VERSION,
        loaded_at=datetime.now(timezone.utc),
        record_count=record_count,
    )
    session.add(release)
    session.flush()
    return release


_state_of = operator.attrgetter(*STATE_FIELDS)


def version_state(record: HcpcsRecord) -> tuple:
    """The state of a record as the values of the ``hcpcs_version`` columns in STATE_FIELDS order."""
    return tuple(LIST_SEPARATOR.join(v) if type(v) is tuple else v for v in _state_of(record))


def _first_effective_from(record: HcpcsRecord, release_effective: date) -> date:
    """When the state a release shows for a code it has not listed before began to apply.

    An add or a discontinuation does not change what the code means, so the state holds since the
    code was added; for any other last action the state holds since that action took effect.
    """
    discontinued = record.action_code == "D" or (
        record.termination_date is not None
        and record.action_effective_date is not None
        and record.action_effective_date > record.termination_date
    )  # a later release still shows the discontinuation as the last action, with action N
    if (record.action_code == "A" or discontinued) and record.added_date:
        return record.added_date
    return record.action_effective_date or record.added_date or release_effective


def _day_after(day: date | None) -> date | None:
    return day + timedelta(days=1) if day else None


#: A release may drop, without a termination date, at most this share of the codes in effect
#: before it (and always this many): CMS's releases of 2017-2023 drop at most 107 of 6,498 (1.6%).
#: More is a file cut off at a line end, or not a whole release.
MAX_UNLISTED_SHARE = Decimal("0.10")
MAX_UNLISTED_ALWAYS = 50


def _refuse_cut_off_release(path: str, records, unlisted: int, in_effect: int) -> None:
    if unlisted <= max(MAX_UNLISTED_ALWAYS, MAX_UNLISTED_SHARE * in_effect):
        return
    last = records[-1]
    raise LoadError(
        path,
        f"{unlisted:,} of the {in_effect:,} codes in effect before this release are missing from it with no "
        f"termination date (a release drops at most {MAX_UNLISTED_SHARE:.0%}): the file looks cut off after its "
        f"last record, {last.code}, or is not a whole release",
        line=last.source_line,
        field="code",
    )


def store_hcpcs_release(session: Session, parsed, identity: FileIdentity) -> StoreSummary:
    """Record an HCPCS release (``loaders.hcpcs.HcpcsRelease``) and the versions it implies.

    Releases and corrections are applied in publication order (``kb.hcpcs_sequence``), whatever
    order they are loaded in: a release published before files already loaded is slotted in, and
    the versions are recomputed from the stored files in the same transaction. A file without a
    publication date of its own is taken as known from its effective date, which its basis says.
    """
    existing = find_release(session, HCPCS_SOURCE, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    seen: dict[str, int] = {}
    for record in parsed.records:
        if record.code in seen:
            raise LoadError(
                parsed.path,
                f"code {record.code} is listed twice (first at line {seen[record.code]})",
                line=record.source_line,
                field="code",
            )
        seen[record.code] = record.source_line

    published, published_basis = parsed.published_date, parsed.published_date_basis
    if published is None:
        published = parsed.effective_date
        published_basis = f"{published_basis or 'no publication date in the file'}; taken as known from its effective date"
    release = add_release(
        session,
        source=HCPCS_SOURCE,
        label=parsed.label,
        file_format=parsed.file_format,
        identity=identity,
        member=parsed.member,
        effective_date=parsed.effective_date,
        effective_date_basis=parsed.effective_date_basis,
        published_date=published,
        published_date_basis=published_basis,
        record_count=len(parsed.records),
    )
    from kb import hcpcs_sequence  # it applies every HCPCS file through this module

    return hcpcs_sequence.place(session, release, parsed.records, where=parsed.path)


def apply_hcpcs_records(
    tables: HcpcsTables, release: Release, records, previous: Release | None, states: list[tuple] | None = None,
    *, checked_as: str | None = None,
) -> StoreSummary:
    """Turn the records of a stored release into versions, after the files applied before it, in
    ``tables`` (``kb.hcpcs_tables``: the caller writes them).

    ``previous`` is the latest HCPCS release applied before this one (None for the first). A
    state that differs from a code's current version starts a new version on the record's action
    effective date (or the release's effective date) and ends the current one there; the end is
    known from the release's publication date. A file with the same effective date as the
    version's release (a re-issue) supersedes the differing versions in knowledge time instead.
    ``states`` are the records' states (``version_state``) when the caller has them already
    (records read back from the knowledge base). ``checked_as`` names the file when the records
    are a newly loaded file's: a release that would end far more codes than any release drops is
    refused as cut off.
    """
    known = release.published_date
    code_ids = tables.code_ids
    new_codes = 0
    for record in records:
        if record.code not in code_ids:
            tables.add_code(record.code, record.kind)
            new_codes += 1

    current = tables.current()
    if states is None:
        states = [version_state(record) for record in records]
    new_versions: list[dict] = []
    listing: list[list] = []
    endings: list[tuple[dict, date]] = []
    supersessions: list[dict] = []
    for record, state in zip(records, states):
        code_id = code_ids[record.code]
        now = current.get(code_id)
        unchanged = now is not None and _state_of_row(now) == state
        listing.append(
            [release.id, code_id, now["id"] if unchanged else None,
             record.action_code, record.action_effective_date, record.sequence_number, record.source_line]
        )
        if unchanged:
            continue
        if now is None:
            effective_from = _first_effective_from(record, release.effective_date)
        else:
            effective_from = release.effective_date
            if record.action_effective_date and record.action_effective_date > now["effective_from"]:
                effective_from = min(record.action_effective_date, release.effective_date)
            if (tables.release_effective[now["first_release_id"]] == release.effective_date
                    or effective_from <= now["effective_from"]):
                supersessions.append(now)
                effective_from = now["effective_from"]
            else:
                end = min(d for d in (effective_from, _day_after(record.termination_date)) if d)
                if now["effective_to"] is None or now["effective_to"] > end:
                    endings.append((now, end))
        effective_to = _day_after(record.termination_date)
        if effective_to is not None and effective_to < effective_from:
            effective_to = effective_from
        new_versions.append(dict(
            code_id=code_id, effective_from=effective_from, effective_to=effective_to, effective_to_known_from=None,
            known_from=known, known_to=None, first_release_id=release.id, action_code=record.action_code,
            action_effective_date=record.action_effective_date, **dict(zip(STATE_FIELDS, state)),
        ))

    if previous is not None and release.effective_date > previous.effective_date:
        # a code the new release no longer lists, and that had no end, ends where the release begins
        listed = {code_ids[r.code] for r in records}
        unlisted = [
            (now, release.effective_date)
            for code_id, now in current.items()
            if code_id not in listed and now["effective_to"] is None and now["effective_from"] < release.effective_date
        ]
        if checked_as is not None:
            _refuse_cut_off_release(checked_as, records, len(unlisted),
                                    sum(1 for now in current.values() if now["effective_to"] is None))
        endings.extend(unlisted)

    for version, end in endings:
        tables.end_version(version["id"], effective_to=end, effective_to_known_from=known)
    for version in supersessions:
        tables.end_version(version["id"], known_to=known)
    new_version_ids = {columns["code_id"]: tables.add_version(**columns) for columns in new_versions}
    for row in listing:
        if row[2] is None:
            row[2] = new_version_ids[row[1]]
    tables.add_listings(release.id, [tuple(row) for row in listing])
    return StoreSummary(
        release=release,
        already_loaded=False,
        records=len(records),
        new_codes=new_codes,
        new_versions=len(new_versions),
        closed_versions=len(endings),
        superseded_versions=len(supersessions),
    )


_state_of_row = operator.itemgetter(*STATE_FIELDS)


_HHPPS_LABELS = {
    "hrg": "case-mix weights and LUPA thresholds",
    "rev": "per-visit and per-unit rates",
    "wage_index": "wage index",
    "rural_addon": "rural add-on counties",
}


def store_hhpps_table(
    session: Session,
    table,
    identity: FileIdentity,
    *,
    effective_date: date,
    effective_date_basis: str,
    published_date: date | None,
    published_date_basis: str,
    regulation: str | None,
) -> StoreSummary:
    """Record one HH PPS pricer table (``loaders.hhpps.HhppsTable``), every row as published.

    Rows are kept by release: the values in force on a date are those of the latest release of
    the table's kind effective on or before it (see ``kb.parameters``). A CBSA listed twice in one
    wage index file keeps both rows; which one applies is the reader's policy, never silent.
    """
    source = f"hhpps-{table.kind}"
    existing = find_release(session, source, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    year = effective_date.year
    release = add_release(
        session,
        source=source,
        label=f"CY{year} {_HHPPS_LABELS[table.kind]}" if table.kind != "rural_addon" else f"{_HHPPS_LABELS[table.kind]} ({identity.name})",
        file_format="csv",
        identity=identity,
        member=None,
        effective_date=effective_date,
        effective_date_basis=effective_date_basis,
        published_date=published_date,
        published_date_basis=published_date_basis,
        record_count=len(table.rows),
    )
    release.regulation = regulation
    release.notes = "; ".join(
        f"{what}: {', '.join(columns)}"
        for what, columns in (("columns absent", table.absent_columns), ("columns not read", table.unread_columns))
        if columns
    ) or None
    rows = [_hhpps_row(table.kind, row, release.id, table) for row in table.rows]
    model = {"hrg": HhppsCaseMix, "rev": HhppsRevenueRate, "wage_index": HhppsWageIndex,
             "rural_addon": HhppsRuralAddOn}[table.kind]
    session.execute(sa.insert(model), rows)
    return StoreSummary(release=release, already_loaded=False, records=len(rows), new_versions=len(rows))


def store_hcpcs_change_report(session: Session, report, identity: FileIdentity, *, describes: Release) -> StoreSummary:
    """Record CMS's own change report (``loaders.hcpcs_changes.HcpcsChangeReport``) for the HCPCS
    release ``describes``: its effective and knowledge dates are that release's, every row is kept
    as CMS wrote it."""
    existing = find_release(session, "hcpcs-change-report", identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    release = add_release(
        session,
        source="hcpcs-change-report",
        label=f"CMS change report, {describes.label}",
        file_format="xlsx",
        identity=identity,
        member=None,
        effective_date=describes.effective_date,
        effective_date_basis=f"the release it reports on ({describes.file_name}, release {describes.id})",
        published_date=describes.published_date,
        published_date_basis=f"published with the release it reports on ({describes.file_name})",
        record_count=len(report.rows),
    )
    conflicts = report.conflicts
    release.notes = f"codes listed twice with different actions: {', '.join(conflicts)}" if conflicts else None
    session.execute(sa.insert(HcpcsChangeReportRow), [
        {"release_id": release.id, "code": row.code, "action_code": row.action_code,
         "change_description": row.change_description, "short_description": row.short_description,
         "long_description": row.long_description, "source_line": row.source_line}
        for row in report.rows
    ])
    return StoreSummary(release=release, already_loaded=False, records=len(report.rows))


def _hhpps_row(kind: str, row, release_id: int, table) -> dict:
    if kind == "hrg":
        return {"release_id": release_id, "hipps": row.hipps, "effective_from": row.effective_date,
                "weight": row.weight, "lupa_threshold": row.lupa_threshold, "source_row": row.row}
    if kind == "rev":
        return {
            "release_id": release_id, "revenue_code": row.revenue_code, "effective_from": row.effective_date,
            "visit_rate": row.visit_rate, "visit_rate_rural": row.visit_rate_rural,
            "visit_rate_no_quality": row.visit_rate_no_quality,
            "visit_rate_no_quality_rural": row.visit_rate_no_quality_rural,
            "unit_rate": row.unit_rate, "unit_rate_rural": row.unit_rate_rural,
            "unit_rate_no_quality": row.unit_rate_no_quality,
            "unit_rate_no_quality_rural": row.unit_rate_no_quality_rural, "source_row": row.row,
        }
    if kind == "wage_index":
        flags = {flag.row: flag.reason for flag in table.name_flags}
        return {
            "release_id": release_id, "cbsa": row.cbsa, "effective_from": row.effective_date,
            "wage_index": row.wage_index, "name": row.name, "name_flag": flags.get(row.row),
            "imputed_floor_wage_index": row.imputed_floor_wage_index,
            "reclassified_wage_index": row.reclassified_wage_index,
            "rural_floor_wage_index": row.rural_floor_wage_index, "size": row.size, "source_row": row.row,
        }
    return {"release_id": release_id, "county_fips": row.county_fips, "category": row.category, "source_row": row.row}


# --- catalogue files (rule years as data) ------------------------------------------------------


def catalogue_of(session: Session) -> Catalogue:
    """The regulation catalogue of a knowledge base: the package's entries, then the entries of
    every catalogue file loaded into it, in load order (``regulations.catalogue.merge``). Every
    question about rules and constants (params, price, impact, diff, review) reads this one."""
    catalogue = load_catalogue()
    rows = session.execute(
        sa.select(Release.file_name, CatalogueDocument.text)
        .join(CatalogueDocument, CatalogueDocument.release_id == Release.id)
        .where(Release.source == CATALOGUE_SOURCE)
        .order_by(Release.id)
    ).all()
    for file_name, text in rows:
        catalogue = merge(catalogue, parse_catalogue(text, file_name, check_references=False))
    return catalogue


def store_catalogue_release(session: Session, path: str | Path, text: str, identity: FileIdentity) -> StoreSummary:
    """Record a catalogue file: a release (dates from its entries, each with how it was chosen)
    and its text as read. Its entries must fit the knowledge base's catalogue (``merge``: an entry
    that repeats a known one with other values, and does not say it supersedes it, is a
    ``LoadError`` naming the file, line and key)."""
    existing = find_release(session, CATALOGUE_SOURCE, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    added = parse_catalogue(text, path, check_references=False)
    merge(catalogue_of(session), added)
    first = added.rules[0]
    dated = [rule for rule in added.rules if rule.effective is not None]
    if not dated:
        raise LoadError(path, "a catalogue file loaded into the knowledge base needs an entry with an effective date",
                        line=first.line, field=f"{first.where}.effective")
    effective_rule = min(dated, key=lambda rule: rule.effective)
    published = [rule for rule in added.rules if rule.published is not None]
    if not published:
        raise LoadError(path, "a catalogue file loaded into the knowledge base needs an entry with a published date "
                              "(when its content could be known)", line=first.line, field=f"{first.where}.published")
    published_rule = max(published, key=lambda rule: rule.published)
    release = add_release(
        session,
        source=CATALOGUE_SOURCE,
        label=", ".join(rule.document_id for rule in added.rules)[:80],
        file_format="yaml",
        identity=identity,
        member=None,
        effective_date=effective_rule.effective,
        effective_date_basis=f"the earliest effective date of its entries: {effective_rule.document_id} "
                             f"(line {effective_rule.key_line('effective')})",
        published_date=published_rule.published,
        published_date_basis=f"the latest published date of its entries: {published_rule.document_id} "
                             f"(line {published_rule.key_line('published')})",
        record_count=len(added.rules),
    )
    release.regulation = first.document_id[:40]
    session.add(CatalogueDocument(release_id=release.id, text=text))
    session.flush()
    return StoreSummary(release=release, already_loaded=False, records=len(added.rules))


# --- pending updates and what-if scenarios as data files ----------------------------------------
# Stored as catalogue files are: a release with its provenance and the text as read
# (``CatalogueDocument``), read back in load order after the package's own.


def _loaded_texts(session: Session, source: str) -> list[tuple[str, str]]:
    """(file name, text) of every file of ``source`` loaded, in load order."""
    return [tuple(row) for row in session.execute(
        sa.select(Release.file_name, CatalogueDocument.text)
        .join(CatalogueDocument, CatalogueDocument.release_id == Release.id)
        .where(Release.source == source)
        .order_by(Release.id)
    )]


def pending_of(session: Session) -> tuple:
    """The pending and proposed updates of a knowledge base: the package's (``regulations/pending.yaml``),
    then those of every pending file loaded into it, in load order (``regulations.pending.merge_pending``)."""
    from regulations.pending import load_pending, merge_pending, parse_pending

    updates = load_pending()
    for file_name, text in _loaded_texts(session, PENDING_SOURCE):
        updates = merge_pending(updates, parse_pending(text, file_name), file_name)
    return updates


def store_pending_release(session: Session, path: str | Path, text: str, identity: FileIdentity) -> StoreSummary:
    """Record a file of pending updates: a release dated by its entries and its text as read. Its
    entries must fit the knowledge base's (``merge_pending``), or a ``LoadError`` names the file,
    line and key."""
    from regulations.pending import merge_pending, parse_pending

    existing = find_release(session, PENDING_SOURCE, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    added = parse_pending(text, path)
    merge_pending(pending_of(session), added, path)
    first_status = min((update for update in added), key=lambda update: update.history[0].on)
    latest = max(added, key=lambda update: update.history[-1].on)
    dated = [update for update in added if update.effective is not None]
    if dated:
        effective_update = min(dated, key=lambda update: update.effective)
        effective, effective_basis = (effective_update.effective, f"the earliest date its entries would take effect: "
                                      f"{effective_update.entry_id} (line {effective_update.line})")
    else:
        effective, effective_basis = (first_status.history[0].on, "none of its entries says when it would take "
                                      f"effect: the first status date, {first_status.entry_id} "
                                      f"(line {first_status.line})")
    return _store_text(session, PENDING_SOURCE, identity, text, label=", ".join(u.entry_id for u in added),
                       effective_date=effective, effective_date_basis=effective_basis,
                       published_date=latest.history[-1].on,
                       published_date_basis=f"the latest status date of its entries: {latest.entry_id} "
                                            f"(line {latest.line})",
                       records=len(added))


def scenario_texts(session: Session) -> dict[str, str]:
    """The text of every scenario file loaded, by scenario id (``regulations.scenario.find_scenario``)."""
    from regulations.scenario import parse_scenario

    return {parse_scenario(text, file_name).scenario_id: text
            for file_name, text in _loaded_texts(session, SCENARIO_SOURCE)}


def store_scenario_release(session: Session, path: str | Path, text: str, identity: FileIdentity) -> StoreSummary:
    """Record a what-if scenario file: a release over its base year, known from its published date,
    and its text as read. Its id must be new: the package's scenarios and those loaded keep theirs."""
    from regulations.scenario import FOLDER, load_scenario, parse_scenario

    existing = find_release(session, SCENARIO_SOURCE, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    scenario = parse_scenario(text, path)
    package = {load_scenario(candidate).scenario_id: candidate.name for candidate in FOLDER.glob("*.yaml")}
    if scenario.scenario_id in package or scenario.scenario_id in scenario_texts(session):
        where = f"by the package's {package[scenario.scenario_id]}" if scenario.scenario_id in package \
            else "by a scenario file loaded before"
        raise LoadError(path, f"scenario id {scenario.scenario_id!r} is taken {where}: give this one another id",
                        line=scenario.line, field="scenario.id")
    if scenario.published is None:
        raise LoadError(path, "a scenario file loaded into the knowledge base needs 'published' (when its content "
                              "could be known)", line=scenario.line, field="scenario.published")
    return _store_text(session, SCENARIO_SOURCE, identity, text, label=scenario.scenario_id,
                       effective_date=date(scenario.base_year, 1, 1),
                       effective_date_basis=f"its base year CY{scenario.base_year} (a what-if, never in force)",
                       published_date=scenario.published, published_date_basis="its 'published' date",
                       records=len(scenario.constants))


def _store_text(session: Session, source: str, identity: FileIdentity, text: str, *, label: str,
                effective_date: date, effective_date_basis: str, published_date: date, published_date_basis: str,
                records: int) -> StoreSummary:
    release = add_release(session, source=source, label=label[:80], file_format="yaml", identity=identity,
                          member=None, effective_date=effective_date, effective_date_basis=effective_date_basis,
                          published_date=published_date, published_date_basis=published_date_basis,
                          record_count=records)
    session.add(CatalogueDocument(release_id=release.id, text=text))
    session.flush()
    return StoreSummary(release=release, already_loaded=False, records=records)
