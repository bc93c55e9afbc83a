"""CMS's corrections to an annual HCPCS release, applied to the knowledge base bitemporally.

A corrections document (one version of ``loaders.hcpcs_corrections.read_corrections``) says what
the annual release of its year should have listed. It does not change when things apply in the
world so much as what is known about them: CMS's corrected record has the release's effective
date and a later knowledge date. So nothing is overwritten here. Applying an event

* adds the new state as new ``hcpcs_version`` rows, known from the document's knowledge date
  (``known_from``), first shown by the corrections release (``first_release_id``);
* ends the knowledge of the versions it supersedes (``known_to`` = the knowledge date): asked "as
  known on" an earlier day, the knowledge base still answers what the annual release said;
* records the row in ``hcpcs_correction`` with its outcome: ``applied`` (and the new version),
  ``no change`` (the value already was so, e.g. version 2 restating version 1) or ``not applied``
  with the reason. No row is passed over in silence.

The document becomes a ``release`` row: source ``hcpcs-corrections``, label ``2018 corrections V2``,
effective date January 1 of the corrected release's year, published date the document's knowledge
date with its basis (a document read from a file of its own has none: it is taken as known from
its effective date, as an HCPCS release without a publication date is, and the basis says so). One zip holds several versions, so a version's identity is
``sha256(zip sha256 + "!" + member)`` (``correction_identity``); a document read from a file of its
own keeps the file's sha256. Storing a document a second time finds that identity and changes
nothing.

Order. Documents are applied in publication order with the releases (``kb.hcpcs_sequence``),
whatever order the files are loaded in: a document loaded before a release published after it
is slotted in, and the files after it are applied again. A document applies once the annual
release it corrects and the earlier versions of its year's corrections are applied before it
(version 3 needs version 2); until then it is stored with every row ``not applied`` and what it
waits for, and applied when they are loaded. A revert to a release not loaded waits the same way.
Each row keeps its field changes (``encode_changes``) so that the document can be applied again.

Effective dates. An event applies from its own effective date: the row's ``EFF DATE`` when it
has one, else January 1 of the release year (the corrected release's effective date). A row's
date says when the corrected values take effect, and may precede the release: C9488's ASC group
is effective 2017-04-01, as the 2018 file's own record of C9488 holds since 2017-04-01. The
versions of the code still known and in force on or after that date (or starting on it, which
includes a discontinued code's empty interval) are the targets; a target that began earlier is
split: its earlier part is restated unchanged (a new version with the same state, ending on the
event's date) so that answers for dates the correction does not touch stay the same. When no
version of a code is in force on or after the date, because the release lists the code as
discontinued (E0628 in 2017, terminated 2016-12-31), the record the release listed is corrected
as a whole: there is no later date to correct, and the record is what the release said. A record
that a correction deleted is not a discontinued record: a later row about it finds nothing.

What each kind of event does (``loaders.hcpcs_corrections.CORRECTION_KINDS``):

``revise``, ``terminate``
    the fields change on the targets: ``set`` takes the value, ``include``/``exclude`` add or
    remove one item of a repeated field (kept joined by ``kb.store.LIST_SEPARATOR``). A terminated
    state ends the day after its termination date, as the store ends a discontinued code; an
    empty interval (terminated the day before it starts) keeps the record, as for the annual files.
    ``action_code`` and ``action_effective_date`` are version columns too: changing them (A5513
    in 2019: "Change Action code to F") makes a new version with the same state.
``add``
    a code the release does not list gets a ``hcpcs_code`` row if needed and one version from the
    event's date, with the values the row gives and every other field blank. A code the release
    already lists is revised with the values given (``no change`` when they are already so).
``revert``, ``reinstate``
    the fields named take their values from the version that the annual release of
    ``revert_to_year`` listed (``hcpcs_listing``); that release must be loaded. A reinstated code
    (DA, "removed in error" from 2019) whose version from the earlier release is still in force
    is ``no change``: a code missing from a release is not ended by it.
``delete``
    the release should not have listed the code: what it said about the code from the event's
    date on stops being known from the knowledge date (``known_to``), with no new state. The code
    keeps its identity, its history before that date, and everything known before the knowledge
    date (G9890/G9891 were listed as added in the 2018 file: asked as known in November 2017 they
    are there, as known after 2018-01-03 they never were in the 2018 release). A later release
    that lists the code again (G9890 in 2019, another meaning) starts a new version as usual.
``withdraw``
    an earlier version of the corrections is taken back. When that earlier version added the code
    (the release does not list it: G9978/G9979 added by 2018 V2, withdrawn by V3), the versions
    the corrections created stop being known. Withdrawing a correction of a code the release
    lists would need the state before that correction and is ``not applied`` with that reason.

An event that finds nothing to work on is ``not applied`` with the reason (a code neither the
release nor an earlier correction lists, a release that does not list the code to revert).
The rows of a document that are not corrections (title, header, notes: ``unapplied`` of the
loader) are counted in the summary, not stored.

``known_states`` and ``knowledge_changes`` answer "what did the corrections change?": the whole
HCPCS state in force on one date as known on two dates, compared by ``kb.diff.diff_hcpcs``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import PurePosixPath

import sqlalchemy as sa
from sqlmodel import Session

from kb.diff import Change, Provenance, diff_hcpcs
from kb.hcpcs_tables import HcpcsTables
from kb.models import HcpcsCode, HcpcsCorrection, HcpcsVersion, Release
from kb.store import LIST_SEPARATOR, FileIdentity, add_release, find_release, reapplied_note
from loaders.errors import LoadError
from loaders.hcpcs_corrections import CorrectionDocument, CorrectionEvent, FieldChange
from loaders.hcpcs_record import STATE_FIELDS, HcpcsRecord

SOURCE = "hcpcs-corrections"
ANNUAL_SOURCE = "hcpcs"

APPLIED = "applied"
NO_CHANGE = "no change"
NOT_APPLIED = "not applied"
OUTCOMES: tuple[str, ...] = (APPLIED, NO_CHANGE, NOT_APPLIED)

#: The columns of a version that a correction may change: its state and what the release did.
VERSION_FIELDS: tuple[str, ...] = STATE_FIELDS + ("action_code", "action_effective_date")

_VERSION = HcpcsVersion.__table__
_DATE_FIELDS = frozenset(name for name in VERSION_FIELDS if isinstance(_VERSION.c[name].type, sa.Date))
_LIST_FIELDS = frozenset(f.name for f in dataclasses.fields(HcpcsRecord) if str(f.type).startswith("tuple"))
_ACTION_TEXT_LENGTH = HcpcsCorrection.__table__.c.action_text.type.length
_LABEL_VERSION = re.compile(r"^(?P<year>\d{4}) corrections V(?P<version>\d+)$")


@dataclass(frozen=True)
class CorrectionOutcome:
    """What applying one row of a corrections document did."""

    code: str
    kind: str
    source_row: int
    effective_date: date | None
    outcome: str
    reason: str
    version_id: int | None


@dataclass(frozen=True)
class CorrectionSummary:
    """What storing one corrections document did (``describe`` gives one line)."""

    release: Release
    already_loaded: bool
    corrected_release: str = ""
    outcomes: tuple[CorrectionOutcome, ...] = ()
    other_rows: int = 0
    new_codes: int = 0
    new_versions: int = 0
    superseded_versions: int = 0
    #: Files loaded before this one but published after it, applied again after it.
    reapplied: int = 0

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    @property
    def records(self) -> int:
        return len(self.outcomes)

    def describe(self) -> str:
        r = self.release
        name = f"{r.file_name}!{r.member}" if r.member else r.file_name
        if self.already_loaded:
            return f"{name}: already loaded as release {r.id} ({r.source} {r.label}); nothing changed"
        return (
            f"{name}: release {r.id} ({r.label}, corrects {self.corrected_release}, known from "
            f"{r.published_date}): {self.records} corrections, {self.count(APPLIED)} applied, "
            f"{self.count(NO_CHANGE)} no change, {self.count(NOT_APPLIED)} not applied; "
            f"{self.new_codes} new codes, {self.new_versions} new versions, "
            f"{self.superseded_versions} superseded; {self.other_rows} rows not corrections"
            + reapplied_note(self.reapplied)
        )


def correction_identity(document: CorrectionDocument, identity: FileIdentity) -> FileIdentity:
    """The identity of one version: a member of a zip is ``sha256(zip sha256 + "!" + member)``."""
    if document.member is None:
        return identity
    digest = hashlib.sha256(f"{identity.sha256}!{document.member}".encode()).hexdigest()
    return FileIdentity(name=identity.name, sha256=digest, size=identity.size)


def correction_label(document: CorrectionDocument) -> str:
    return f"{document.release_year} corrections V{document.version}"


def store_hcpcs_corrections(
    session: Session, document: CorrectionDocument, identity: FileIdentity
) -> CorrectionSummary:
    """Store one corrections document in the caller's transaction and apply it in publication
    order (``kb.hcpcs_sequence``; see the module docstring).

    ``identity`` is the file the document was read from (the zip). A document whose release or
    earlier versions are not loaded yet is kept, each row ``not applied`` with what it waits for,
    and applied when they are. Bad input raises ``LoadError`` naming the document, the row and the
    field, and the caller's transaction then leaves the database as it was.
    """
    version_identity = correction_identity(document, identity)
    existing = find_release(session, SOURCE, version_identity.sha256)
    if existing is not None:
        return CorrectionSummary(release=existing, already_loaded=True)
    if document.knowledge_date is None:  # as kb.store does for an HCPCS release without a date
        document = dataclasses.replace(
            document, knowledge_date=date(document.release_year, 1, 1),
            knowledge_date_basis=f"{document.knowledge_date_basis}; taken as known from its effective date, "
                                 "the corrected release's",
        )

    where = _where(document)
    title_row = _title_row(document)
    _check_order(session, document, where, title_row)
    too_long = next((e for e in document.events if len(e.action_text) > _ACTION_TEXT_LENGTH), None)
    if too_long is not None:
        raise LoadError(where, f"action text of {too_long.code} is longer than {_ACTION_TEXT_LENGTH} characters",
                        line=too_long.source_row, field="ACTION")

    release = add_release(
        session,
        source=SOURCE,
        label=correction_label(document),
        file_format=_file_format(document),
        identity=version_identity,
        member=document.member,
        effective_date=date(document.release_year, 1, 1),
        effective_date_basis=(
            f"the effective date of the corrected release, {_annual_label(document.release_year)} (a correction "
            "has the release's effective date and a later knowledge date)"
        ),
        published_date=document.knowledge_date,
        published_date_basis=document.knowledge_date_basis,
        record_count=len(document.events),
    )
    from kb import hcpcs_sequence  # it applies every HCPCS file through this module

    return hcpcs_sequence.place(session, release, document, where=where)


def apply_corrections(
    tables: HcpcsTables, release: Release, document: CorrectionDocument, before: list[Release]
) -> CorrectionSummary:
    """Apply a stored corrections document after the HCPCS files ``before`` it (publication order),
    in ``tables`` (``kb.hcpcs_tables``: the caller writes them).

    The corrected release and the earlier versions of the corrections must be among them; when
    one is not, every row is recorded ``not applied`` with what it waits for.
    """
    year, version = document.release_year, document.version
    corrected = _annual_release(before, year)
    applied_versions = {correction_version(r) for r in before if r.source == SOURCE and r.effective_date == release.effective_date}
    missing = next((v for v in range(1, version) if v not in applied_versions), None)
    if corrected is None:
        waiting = f"waiting for the {_annual_label(year)} release, which this document corrects: it is not loaded"
    elif missing is not None:
        waiting = f"waiting for version {missing} of the {year} corrections: versions are applied in order"
    else:
        waiting = None
    if waiting is None:
        applier = _Applier(tables, document, release, corrected, _where(document), before)
        outcomes = tuple(applier.apply(event) for event in document.events)
    else:
        applier = None
        outcomes = tuple(CorrectionOutcome(e.code, e.kind, e.source_row, e.effective_date, NOT_APPLIED, waiting, None)
                         for e in document.events)
    tables.add_corrections(release.id, [
        {
            "release_id": release.id,
            "code": outcome.code,
            "kind": outcome.kind,
            "action_text": event.action_text,
            "source_row": outcome.source_row,
            "effective_date": outcome.effective_date,
            "outcome": outcome.outcome,
            "reason": outcome.reason[:400],
            "version_id": outcome.version_id,
            "changes": encode_changes(event.changes),
            "revert_to_year": event.revert_to_year,
        }
        for event, outcome in zip(document.events, outcomes)
    ])
    return CorrectionSummary(
        release=release,
        already_loaded=False,
        corrected_release=corrected.label if corrected is not None else _annual_label(year),
        outcomes=outcomes,
        other_rows=len(document.unapplied),
        new_codes=applier.new_codes if applier else 0,
        new_versions=applier.new_versions if applier else 0,
        superseded_versions=applier.superseded_versions if applier else 0,
    )


def stored_document(release: Release, rows: list) -> CorrectionDocument:
    """A stored corrections document as ``read_corrections`` gave it, from its stored rows (in
    the order they were stored: ``hcpcs_correction`` rows or their mappings)."""
    name = f"{release.file_name}!{release.member}" if release.member else release.file_name
    if any(row["changes"] is None for row in rows):
        raise LoadError(name, "this corrections document was stored by an earlier hhkb that did not keep its "
                              "changes, so it cannot be applied again in publication order: load the HCPCS files "
                              "into a fresh database", field="changes")
    events = tuple(
        CorrectionEvent(code=row["code"], action_text=row["action_text"], kind=row["kind"],
                        changes=decode_changes(row["changes"]), effective_date=row["effective_date"],
                        source_row=row["source_row"], revert_to_year=row["revert_to_year"])
        for row in rows
    )
    return CorrectionDocument(path=release.file_name, member=release.member, release_year=release.effective_date.year,
                              version=correction_version(release), knowledge_date=release.published_date,
                              knowledge_date_basis=release.published_date_basis, events=events, unapplied=())


def correction_version(release: Release) -> int:
    """The version number of a stored corrections document (from its label)."""
    match = _LABEL_VERSION.match(release.label)
    return int(match["version"]) if match else 0


def encode_changes(changes: tuple[FieldChange, ...]) -> str:
    """An event's field changes as JSON: ``[[field, value, operation], ...]``, dates as ISO text."""
    def plain(value):
        if isinstance(value, date):
            return value.isoformat()
        return list(value) if isinstance(value, tuple) else value

    return json.dumps([[change.field, plain(change.value), change.operation] for change in changes])


def decode_changes(text: str) -> tuple[FieldChange, ...]:
    """The field changes ``encode_changes`` wrote, typed again as the loader gives them."""
    def typed(field, value):
        if field in _DATE_FIELDS and isinstance(value, str):
            return date.fromisoformat(value)
        return tuple(value) if isinstance(value, list) else value

    return tuple(FieldChange(field, typed(field, value), operation) for field, value, operation in json.loads(text))


def _where(document: CorrectionDocument) -> str:
    return f"{document.path}!{document.member}" if document.member else str(document.path)


def _title_row(document: CorrectionDocument) -> int | None:
    return next((row for row, _, reason in document.unapplied if reason.startswith("document title")), None)


def _annual_label(year: int) -> str:
    return f"{year} annual"


# --- order -----------------------------------------------------------------------------------


def _annual_release(before: list[Release], year: int) -> Release | None:
    """The release effective January 1 of ``year`` among ``before`` (the latest published one)."""
    annual = [r for r in before if r.source == ANNUAL_SOURCE and r.effective_date == date(year, 1, 1)]
    return annual[-1] if annual else None


def _check_order(session: Session, document: CorrectionDocument, where: str, title_row: int | None) -> None:
    """A version of one year's corrections is loaded from one file only."""
    year, version = document.release_year, document.version
    loaded = session.execute(
        sa.select(Release).where(Release.source == SOURCE, Release.effective_date == date(year, 1, 1))
    ).scalars()
    other = next((r for r in loaded if correction_version(r) == version), None)
    if other is not None:
        name = f"{other.file_name}!{other.member}" if other.member else other.file_name
        raise LoadError(
            where,
            f"version {version} of the {year} corrections is already loaded from another file ({name})",
            line=title_row,
            field="version",
        )


def _file_format(document: CorrectionDocument) -> str:
    suffix = PurePosixPath(document.member or document.path).suffix.lower()
    return {".xlsx": "xlsx", ".txt": "text"}.get(suffix, suffix.lstrip(".") or "unknown")


# --- applying events -------------------------------------------------------------------------


def _day_after(day: date | None) -> date | None:
    return day + timedelta(days=1) if day else None


def _blank_state() -> dict:
    return {name: (None if name in _DATE_FIELDS else "") for name in VERSION_FIELDS}


def _row_values(row) -> dict:
    return {name: row[name] for name in VERSION_FIELDS}


def _column(value):
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(value)
    return value


class _Applier:
    """Applies the events of one document, one at a time, to the tables in memory."""

    def __init__(self, tables: HcpcsTables, document: CorrectionDocument, release: Release, corrected: Release,
                 where: str, before: list[Release]):
        self.tables = tables
        self.document = document
        self.release = release
        self.corrected = corrected
        self.where = where
        self.before = before
        self.known = document.knowledge_date
        self.new_codes = 0
        self.new_versions = 0
        self.superseded_versions = 0
        self.correction_release_ids = {
            r.id for r in before if r.source == SOURCE and r.effective_date == release.effective_date
        } | {release.id}
        #: Codes whose record an applied delete of this year's corrections took out of the release.
        self.deleted = {
            row["code"] for row in tables.corrections(self.correction_release_ids - {release.id})
            if row["kind"] == "delete" and row["outcome"] == APPLIED
        }

    # -- lookups

    def code_id(self, code: str) -> int | None:
        return self.tables.code_ids.get(code)

    def current(self, code_id: int) -> list:
        """The code's versions still known, in effective order."""
        return self.tables.known_versions(code_id)

    def listed(self, release_id: int, code_id: int):
        listing = self.tables.listing(release_id, code_id)
        return None if listing is None else self.tables.versions[listing[2]]

    def made_by_corrections(self, versions) -> list:
        return [v for v in versions if v["first_release_id"] in self.correction_release_ids]

    def ever_made_by_corrections(self, code_id: int) -> bool:
        return any(v["first_release_id"] in self.correction_release_ids
                   for v in self.tables.versions_of.get(code_id, ()))

    # -- writing

    def supersede(self, version) -> None:
        self.tables.end_version(version["id"], known_to=self.known)
        self.superseded_versions += 1

    def insert(self, code_id: int, values: dict, effective_from: date, effective_to: date | None,
               effective_to_known_from: date | None) -> int:
        version_id = self.tables.add_version(
            code_id=code_id,
            effective_from=effective_from,
            effective_to=effective_to,
            effective_to_known_from=effective_to_known_from,
            known_from=self.known,
            known_to=None,
            first_release_id=self.release.id,
            **values,
        )
        self.new_versions += 1
        return version_id

    # -- events

    def outcome(self, event: CorrectionEvent, outcome: str, reason: str,
                version_id: int | None = None) -> CorrectionOutcome:
        return CorrectionOutcome(event.code, event.kind, event.source_row, event.effective_date, outcome, reason,
                                 version_id)

    def apply(self, event: CorrectionEvent) -> CorrectionOutcome:
        code_id = self.code_id(event.code)
        if event.kind == "delete":
            return self.delete(event, code_id)
        if event.kind == "withdraw":
            return self.withdraw(event, code_id)
        return self.change(event, code_id)

    @staticmethod
    def in_force_from(versions: list, starts: date) -> list:
        """The versions in force on or after ``starts`` (or starting on it)."""
        return [
            v for v in versions
            if v["effective_from"] >= starts or v["effective_to"] is None or v["effective_to"] > starts
        ]

    def targets(self, event: CorrectionEvent, code_id: int, record_known: bool) -> tuple[list, bool]:
        """The versions an event works on, and whether they are corrected as a whole (the record
        of a code discontinued before the event's date, when the corrected release lists it and
        no correction deleted it)."""
        current = self.current(code_id)
        in_force = self.in_force_from(current, event.effective_date)
        if in_force or not current or not record_known or event.code in self.deleted:
            return in_force, False
        return [current[-1]], True

    def change(self, event: CorrectionEvent, code_id: int | None) -> CorrectionOutcome:
        restored = self.restored_values(event, code_id)
        if restored is None:
            return self.outcome(event, NOT_APPLIED,
                                f"{event.code} goes back to the {event.revert_to_year} release, which is not loaded: "
                                "applied when it is")
        record_known = code_id is not None and (
            self.listed(self.corrected.id, code_id) is not None or self.ever_made_by_corrections(code_id)
        )
        if code_id is not None and not record_known and event.kind not in ("add", "reinstate"):
            return self.outcome(event, NOT_APPLIED,
                                f"{self.corrected.label} does not list {event.code} and no earlier "
                                "correction added it")
        targets, whole = self.targets(event, code_id, record_known) if code_id is not None else ([], False)
        if not targets:
            if event.kind in ("add", "reinstate"):
                return self.add(event, code_id, restored)
            if code_id is None:
                return self.outcome(event, NOT_APPLIED, f"{event.code} is not in any loaded release: "
                                                        f"{self.corrected.label} does not list it")
            return self.outcome(event, NOT_APPLIED,
                                f"no version of {event.code} is known to be in force from {event.effective_date}")

        first_new = None
        for version in targets:
            before = _row_values(version)
            after = self.changed_values(event, before, restored)
            # a code put back into the release: the end its absence gave it is taken back
            reopen = event.kind == "reinstate" and version["effective_to"] is not None and after["termination_date"] is None
            if after == before and not reopen:
                continue
            split = version["effective_from"] if whole else max(version["effective_from"], event.effective_date)
            self.supersede(version)
            if version["effective_from"] < split:
                self.insert(code_id, before, version["effective_from"], split, None)
            end = None if reopen else version["effective_to"]
            end_known_from = None if reopen else version["effective_to_known_from"]
            terminated = after["termination_date"]
            if terminated is not None and terminated != before["termination_date"]:
                ends = _day_after(terminated)
                if end is None or ends < end:
                    end, end_known_from = max(ends, split), None
            new_id = self.insert(code_id, after, split, end, end_known_from)
            first_new = first_new or new_id
        if first_new is None:
            return self.outcome(event, NO_CHANGE, self.no_change_reason(event))
        return self.outcome(event, APPLIED, f"new state from {event.effective_date}"
                            + (" (the record of a discontinued code, as a whole)" if whole else ""), first_new)

    def no_change_reason(self, event: CorrectionEvent) -> str:
        if event.kind == "reinstate":
            return f"{event.code} is still as the {event.revert_to_year} release had it, and not ended"
        return f"{event.code} already has these values from {event.effective_date} (an earlier version restates it)"

    def add(self, event: CorrectionEvent, code_id: int | None, restored: dict) -> CorrectionOutcome:
        if code_id is None:
            kind = "modifier" if len(event.code) == 2 else "procedure"
            code_id = self.tables.add_code(event.code, kind)
            self.new_codes += 1
        values = self.changed_values(event, _blank_state(), restored)
        end = _day_after(values["termination_date"])
        if end is not None and end < event.effective_date:
            end = event.effective_date
        version_id = self.insert(code_id, values, event.effective_date, end, None)
        return self.outcome(event, APPLIED, f"new code version from {event.effective_date}", version_id)

    def restored_values(self, event: CorrectionEvent, code_id: int | None) -> dict | None:
        """The values a revert or reinstate takes from the release of ``revert_to_year`` (None
        while that release is not loaded)."""
        if event.kind not in ("revert", "reinstate"):
            return {}
        year = event.revert_to_year
        source = _annual_release(self.before, year)
        if source is None:
            return None
        version = self.listed(source.id, code_id) if code_id is not None else None
        if version is None:
            raise LoadError(
                self.where,
                f"{event.code} goes back to the {year} release ({source.label}), which does not list it",
                line=event.source_row,
                field="CODE",
            )
        return {change.field: version[change.field] for change in event.changes if change.value is None}

    def changed_values(self, event: CorrectionEvent, before: dict, restored: dict) -> dict:
        after = dict(before)
        for change in event.changes:
            if change.field in restored and change.value is None:
                after[change.field] = restored[change.field]
            elif change.operation == "set":
                after[change.field] = _column(change.value)
            else:
                items = [item for item in (after[change.field] or "").split(LIST_SEPARATOR) if item]
                if change.operation == "include" and change.value not in items:
                    items.append(change.value)
                elif change.operation == "exclude" and change.value in items:
                    items.remove(change.value)
                after[change.field] = LIST_SEPARATOR.join(items)
        return after

    def delete(self, event: CorrectionEvent, code_id: int | None) -> CorrectionOutcome:
        if code_id is None:
            return self.outcome(event, NOT_APPLIED, f"{event.code} is not in any loaded release")
        if self.listed(self.corrected.id, code_id) is None and not self.ever_made_by_corrections(code_id):
            return self.outcome(event, NOT_APPLIED,
                                f"{self.corrected.label} does not list {event.code}: there is nothing to delete")
        targets = self.in_force_from(self.current(code_id), event.effective_date)
        if not targets:
            return self.outcome(event, NO_CHANGE,
                                f"{event.code} already has no version from {event.effective_date} (deleted before)")
        for version in targets:
            self.supersede(version)
            if version["effective_from"] < event.effective_date:
                self.insert(code_id, _row_values(version), version["effective_from"], event.effective_date, None)
        self.deleted.add(event.code)
        return self.outcome(event, APPLIED,
                            f"what {self.corrected.label} said about {event.code} from {event.effective_date} "
                            f"is no longer known from {self.known}")

    def withdraw(self, event: CorrectionEvent, code_id: int | None) -> CorrectionOutcome:
        if code_id is None or not self.ever_made_by_corrections(code_id):
            return self.outcome(event, NOT_APPLIED,
                                f"no earlier correction of {self.corrected.label} changed {event.code}")
        if self.listed(self.corrected.id, code_id) is not None:
            return self.outcome(event, NOT_APPLIED,
                                f"{self.corrected.label} lists {event.code}: withdrawing a correction of a listed "
                                "code needs its state before that correction, which is not recorded")
        made = self.made_by_corrections(self.current(code_id))
        if not made:
            return self.outcome(event, NO_CHANGE, f"what the corrections added for {event.code} was taken back before")
        for version in made:
            self.supersede(version)
        return self.outcome(event, APPLIED,
                            f"the version an earlier correction added is no longer known from {self.known}")


# --- what the corrections changed ------------------------------------------------------------


def _record(code: str, kind: str, row) -> HcpcsRecord:
    values = {}
    for name in STATE_FIELDS:
        value = row[name]
        if name in _LIST_FIELDS:
            value = tuple(value.split(LIST_SEPARATOR)) if value else ()
        values[name] = value
    return HcpcsRecord(
        code=code,
        kind=kind,
        sequence_number=0,
        action_code=row["action_code"],
        action_effective_date=row["action_effective_date"],
        source_line=0,
        **values,
    )


def known_state(session: Session, *, effective: date, known_on: date) -> dict[str, HcpcsRecord]:
    """Every code's state in force on ``effective`` as CMS's files (releases and corrections)
    said on ``known_on``: code -> record, as ``kb.diff.diff_hcpcs`` compares them.

    The rule is ``kb.queries.CodeVersion.in_force``: known on ``known_on``, started by
    ``effective``, and not ended by then unless that end was not yet known.
    """
    end_known = sa.and_(
        _VERSION.c.effective_to.is_not(None),
        sa.or_(_VERSION.c.effective_to_known_from.is_(None), _VERSION.c.effective_to_known_from <= known_on),
    )
    rows = session.execute(
        sa.select(HcpcsCode.code, HcpcsCode.kind, _VERSION)
        .join(HcpcsCode, HcpcsCode.id == _VERSION.c.code_id)
        .where(
            _VERSION.c.known_from <= known_on,
            sa.or_(_VERSION.c.known_to.is_(None), _VERSION.c.known_to > known_on),
            _VERSION.c.effective_from <= effective,
            sa.not_(sa.and_(end_known, _VERSION.c.effective_to <= effective)),
        )
        .order_by(HcpcsCode.code, _VERSION.c.effective_from, _VERSION.c.known_from, _VERSION.c.id.desc())
    ).mappings()
    state: dict[str, HcpcsRecord] = {}
    for row in rows:  # the latest effective_from, then known_from, wins, as in CodeHistory.version_on
        state[row["code"]] = _record(row["code"], row["kind"], row)
    return state


def known_states(
    session: Session, *, effective: date, known_before: date, known_after: date
) -> tuple[dict[str, HcpcsRecord], dict[str, HcpcsRecord]]:
    """The HCPCS state in force on ``effective`` as known on ``known_before`` and on ``known_after``."""
    return (
        known_state(session, effective=effective, known_on=known_before),
        known_state(session, effective=effective, known_on=known_after),
    )


def knowledge_provenance(session: Session, *, effective: date, known_on: date) -> Provenance:
    """The HCPCS files a state known on ``known_on`` rests on, as a citation."""
    rows = session.execute(
        sa.select(Release)
        .where(
            Release.source.in_((ANNUAL_SOURCE, SOURCE)),
            Release.published_date <= known_on,
            Release.effective_date <= effective,
        )
        .order_by(Release.effective_date, Release.published_date, Release.id)
    ).scalars().all()
    cited = "; ".join(
        f"{r.label} ({r.file_name}{'!' + r.member if r.member else ''}, published {r.published_date})" for r in rows
    )
    return Provenance(label=f"HCPCS as known on {known_on}", effective_date=effective,
                      citation=cited or "no HCPCS file published by then")


def knowledge_changes(session: Session, *, effective: date, known_before: date, known_after: date) -> list[Change]:
    """What became known between ``known_before`` and ``known_after`` about the codes in force on
    ``effective``: ``kb.diff.diff_hcpcs`` of the two ``known_states``.

    With the 2018 annual release and its corrections V1 to V4 loaded, ``effective`` 2018-03-01,
    ``known_before`` 2017-12-21 and ``known_after`` 2018-01-31 give what the corrections changed.
    """
    before, after = known_states(session, effective=effective, known_before=known_before, known_after=known_after)
    return diff_hcpcs(
        before,
        after,
        old_provenance=knowledge_provenance(session, effective=effective, known_on=known_before),
        new_provenance=knowledge_provenance(session, effective=effective, known_on=known_after),
    )
