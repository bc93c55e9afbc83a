"""Updates that are not final: HCPCS code requests, proposed rules, read from strict YAML.

A compliance officer prepares next year in the summer, from what is requested and proposed. Each
entry says what it is (``kind``), what it is about (``subject``: codes, HIPPS, CBSAs, constants),
what it would change, its status history with dates (requested, discussed, deferred, proposed,
approved, denied, finalised ...; ``finalised_as`` names the final document) and its citations.

Layout (``pending.yaml``)::

    pending:
      - id: HCPCS-R0070-portable-imaging
        kind: hcpcs_code_request           # one of KINDS
        title: ...
        applicant: DispatchHealth Imaging   # optional
        subject: {codes: [R0070]}           # codes, hipps, cbsas, constants (lists)
        would_change: ...                   # in words
        proposed: {long_description: ...}   # optional: field -> proposed value
        effective: 2025-01-01               # optional: when it would take effect
        scenario: CMS-1780-P                # optional: the what-if scenario that prices it
        citation: ...
        confirmed: false
        note: ...
        status:
          - {status: requested, date: 2023-01-03, citation: ..., note: ...}
          - {status: finalised, date: 2023-11-13, finalised_as: CMS-1780-F}

The reader is the catalogue's (``regulations.catalogue``): scalars stay text, a repeated key is an
error, an unknown key is a ``LoadError`` naming the file, the line and the key path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Mapping


from loaders.errors import LoadError
from regulations.catalogue import _boolean, _check_keys, _date, _optional_text, _text
from loaders.strict_yaml import YamlList, YamlMapping, parse_document, read_text, starts_with_key

DEFAULT_PATH = Path(__file__).with_name("pending.yaml")

KINDS: Mapping[str, str] = MappingProxyType({
    "hcpcs_code_request": "request to CMS to add, revise or end a HCPCS Level II code",
    "proposed_rule": "proposed rule (Federal Register)",
    "pricer_table": "proposed or preliminary pricer table",
})
STATUSES: tuple[str, ...] = ("requested", "discussed", "proposed", "deferred", "approved", "denied", "withdrawn",
                             "finalised")
#: A status after which the update is no longer pending.
CLOSING_STATUSES = frozenset({"approved", "denied", "withdrawn", "finalised"})
SUBJECT_KEYS = ("codes", "hipps", "cbsas", "constants")

_TOP_KEYS = {"pending": True}
_ENTRY_KEYS = {"id": True, "kind": True, "title": True, "applicant": False, "subject": True, "would_change": True,
               "proposed": False, "effective": False, "scenario": False, "citation": True, "confirmed": True,
               "note": False, "status": True}
_STATUS_KEYS = {"status": True, "date": True, "citation": False, "note": False, "finalised_as": False}


@dataclass(frozen=True, slots=True)
class Status:
    status: str
    on: date
    citation: str | None
    note: str
    finalised_as: str | None = None


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    entry_id: str
    kind: str
    title: str
    applicant: str | None
    subject: Mapping[str, tuple[str, ...]]
    would_change: str
    proposed: Mapping[str, str]
    effective: date | None
    scenario: str | None
    citation: str
    confirmed: bool
    note: str
    history: tuple[Status, ...]
    origin: str = ""
    line: int = 0

    def status_on(self, on: date | None) -> Status | None:
        """The latest status on a date (None: not yet requested or proposed)."""
        found = None
        for status in self.history:
            if on is None or status.on <= on:
                found = status
        return found

    def pending_on(self, on: date | None) -> bool:
        status = self.status_on(on)
        return status is not None and status.status not in CLOSING_STATUSES

    @property
    def codes(self) -> tuple[str, ...]:
        return self.subject.get("codes", ())

    def subject_text(self) -> str:
        return "; ".join(f"{key} {', '.join(values)}" for key, values in self.subject.items() if values)


def is_pending_file(path: Path) -> bool:
    """Whether a file looks like a catalogue of pending updates: YAML text whose first key is ``pending:``."""
    return starts_with_key(path, "pending")


def merge_pending(known: tuple[PendingUpdate, ...], added: tuple[PendingUpdate, ...],
                  path: str | Path) -> tuple[PendingUpdate, ...]:
    """The updates of ``known`` with those of a later file: a new id joins them; a known id is the
    same update later on, so its status history must go on from the known one (every known status
    first, as it was), and the later entry takes its place. Otherwise a ``LoadError`` naming the
    file, the line and the key."""
    merged = {update.entry_id: update for update in known}
    for index, update in enumerate(added):
        before = merged.get(update.entry_id)
        if before is not None and update.history[:len(before.history)] != before.history:
            raise LoadError(path, f"id {update.entry_id!r} is already listed ({before.origin}, line {before.line}) "
                                  "with another status history: a later file may only add statuses after the "
                                  "known ones",
                            line=update.line, field=f"pending[{index}].id")
        merged[update.entry_id] = update
    return tuple(merged.values())


def load_pending(path: str | Path | None = None) -> tuple[PendingUpdate, ...]:
    path = Path(path) if path is not None else DEFAULT_PATH
    text = read_text(path)
    return parse_pending(text, path)


def parse_pending(text: str, path: str | Path = "<text>") -> tuple[PendingUpdate, ...]:
    document = parse_document(text, path)
    if not isinstance(document, YamlMapping):
        raise LoadError(path, "the file must be a mapping with a 'pending' list", line=1)
    _check_keys(path, document, _TOP_KEYS, "")
    entries = document["pending"]
    if not isinstance(entries, YamlList) or not entries:
        raise LoadError(path, "'pending' must be a non-empty list", line=document.lines["pending"], field="pending")
    found: list[PendingUpdate] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"pending[{index}]"
        if not isinstance(entry, YamlMapping):
            raise LoadError(path, "an entry must be a mapping", line=entries.line, field=where)
        update = _read_entry(path, entry, where)
        if update.entry_id in seen:
            raise LoadError(path, f"id {update.entry_id!r} is listed twice (first on line {seen[update.entry_id]})",
                            line=entry.lines["id"], field=f"{where}.id")
        seen[update.entry_id] = entry.lines["id"]
        found.append(update)
    return tuple(found)


def _read_entry(path: str | Path, entry: YamlMapping, where: str) -> PendingUpdate:
    _check_keys(path, entry, _ENTRY_KEYS, where)
    kind = _text(path, entry, "kind", where)
    if kind not in KINDS:
        raise LoadError(path, f"unknown kind {kind!r}: use one of {', '.join(KINDS)}", line=entry.lines["kind"],
                        field=f"{where}.kind")
    subject = entry["subject"]
    if not isinstance(subject, YamlMapping) or not subject:
        raise LoadError(path, "'subject' must be a mapping of codes, hipps, cbsas or constants",
                        line=entry.lines["subject"], field=f"{where}.subject")
    _check_keys(path, subject, dict.fromkeys(SUBJECT_KEYS, False), f"{where}.subject")
    subjects = {}
    for key, values in subject.items():
        if not isinstance(values, YamlList) or not all(isinstance(v, str) and v.strip() for v in values):
            raise LoadError(path, "expected a list of values", line=subject.lines[key], field=f"{where}.subject.{key}")
        subjects[key] = tuple(v.strip().upper() if key != "constants" else v.strip() for v in values)
    proposed = entry.get("proposed", YamlMapping())
    if not isinstance(proposed, YamlMapping):
        raise LoadError(path, "'proposed' must be a mapping of field: value", line=entry.lines["proposed"],
                        field=f"{where}.proposed")
    proposed_values = {key: _text(path, proposed, key, f"{where}.proposed") for key in proposed}
    history = entry["status"]
    if not isinstance(history, YamlList) or not history:
        raise LoadError(path, "'status' must be a non-empty list", line=entry.lines["status"], field=f"{where}.status")
    statuses = []
    for index, item in enumerate(history):
        item_where = f"{where}.status[{index}]"
        if not isinstance(item, YamlMapping):
            raise LoadError(path, "a status must be a mapping", line=history.line, field=item_where)
        _check_keys(path, item, _STATUS_KEYS, item_where)
        name = _text(path, item, "status", item_where)
        if name not in STATUSES:
            raise LoadError(path, f"unknown status {name!r}: use one of {', '.join(STATUSES)}",
                            line=item.lines["status"], field=f"{item_where}.status")
        on = _date(path, item, "date", item_where)
        if statuses and on < statuses[-1].on:
            raise LoadError(path, f"status dates must not go back in time ({on} is before {statuses[-1].on})",
                            line=item.lines["date"], field=f"{item_where}.date")
        finalised_as = _optional_text(path, item, "finalised_as", item_where)
        if finalised_as and name != "finalised":
            raise LoadError(path, "'finalised_as' belongs to a 'finalised' status", line=item.lines["finalised_as"],
                            field=f"{item_where}.finalised_as")
        statuses.append(Status(name, on, _optional_text(path, item, "citation", item_where),
                               _optional_text(path, item, "note", item_where) or "", finalised_as))
    return PendingUpdate(
        entry_id=_text(path, entry, "id", where), kind=kind, title=_text(path, entry, "title", where),
        applicant=_optional_text(path, entry, "applicant", where), subject=MappingProxyType(subjects),
        would_change=_text(path, entry, "would_change", where), proposed=MappingProxyType(proposed_values),
        effective=_date(path, entry, "effective", where), scenario=_optional_text(path, entry, "scenario", where),
        citation=_text(path, entry, "citation", where), confirmed=_boolean(path, entry, "confirmed", where),
        note=_optional_text(path, entry, "note", where) or "", history=tuple(statuses), origin=str(path),
        line=entry.line,
    )
