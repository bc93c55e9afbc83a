"""Each question of the knowledge base answered as plain data, the same for every reader: the
CLI's ``--json`` prints it, the web API returns it, the web pages render it.

An answer is a dict of dates, decimals, strings and lists; :func:`jsonable` turns it into what
JSON carries (dates as ISO text, decimals as exact strings), so ``hhkb code G0154 --json`` and
``GET /api/codes/G0154`` are the same document.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Any

from sqlmodel import Session

from kb import queries
from kb.store import pending_of


class NotFound(LookupError):
    """The knowledge base holds nothing under the name asked for (a code, a HIPPS, a CBSA)."""

    def __init__(self, message: str, *, close_matches: list[str] | None = None):
        super().__init__(message)
        self.close_matches = close_matches or []


def json_default(value: Any):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def dumps(answer: Any) -> str:
    """The answer as the CLI prints it."""
    return json.dumps(answer, indent=2, default=json_default)


def jsonable(answer: Any) -> Any:
    """The answer as JSON carries it (what :func:`dumps` prints, read back)."""
    return json.loads(json.dumps(answer, default=json_default))


def code_answer(session: Session, code: str, *, as_of: date | None = None, known_on: date | None = None,
                today: date | None = None) -> dict:
    """A code's history; with ``as_of`` or ``known_on``, the version in force and why."""
    history = queries.code_history(session, code)
    if history is None:
        raise NotFound(f"{code.strip().upper()} is in no loaded release",
                       close_matches=queries.close_codes(session, code))
    asked = as_of or known_on
    on = as_of or today or date.today()
    current = history.version_on(on, known_on=known_on) if asked else None
    return {
        "code": history.code,
        "kind": history.kind,
        "as_of": as_of,
        "known_on": known_on,
        "answer": history.explain(on, known_on=known_on) if asked else None,
        "version_in_force": current.number if current else None,
        "versions": [asdict(v) for v in history.versions],
        "listings": [asdict(listing) for listing in history.listings],
        "pending": [pending_update_answer(update, known_on) for update in pending_of(session)
                    if history.code in update.codes],
    }


def pending_update_answer(update, known_on: date | None = None) -> dict:
    """A pending or proposed update (``regulations.pending.PendingUpdate``): what it would change, its
    status history with dates and citations; ``pending``: still open as known on ``known_on`` (None:
    as the latest status says). Never in force, so kept apart from the code's versions."""
    return {
        "entry_id": update.entry_id, "kind": update.kind, "title": update.title, "applicant": update.applicant,
        "subject": {key: list(values) for key, values in update.subject.items()},
        "would_change": update.would_change, "proposed": dict(update.proposed), "effective": update.effective,
        "citation": update.citation, "confirmed": update.confirmed, "note": update.note,
        "pending": update.pending_on(known_on),
        "history": [{"status": status.status, "date": status.on, "citation": status.citation, "note": status.note,
                     "finalised_as": status.finalised_as}
                    for status in update.history if known_on is None or status.on <= known_on],
    }


def search_answer(session: Session, text: str, *, limit: int = 50) -> dict:
    """Ranked codes matching ``text``; none found: codes that look like it."""
    hits = queries.search_codes(session, text, limit=limit)
    return {
        "query": text,
        "hits": [asdict(hit) for hit in hits],
        "close_matches": [] if hits else queries.close_codes(session, text),
    }


def releases_answer(session: Session, source: str | None = None) -> dict:
    """Every loaded file with its provenance."""
    return {"source": source, "releases": [asdict(release) for release in queries.releases(session, source)]}


def hipps_answer(session: Session, code: str, *, as_of: date | None = None) -> dict:
    """A HIPPS code: what each position means, and its weight and LUPA threshold by year, cited."""
    from kb.parameters import hipps_history, hipps_meaning

    code = code.strip().upper()
    history = hipps_history(session, code)
    if not history:
        raise NotFound(f"{code} is in no loaded case-mix table")
    if as_of:
        history = [year for year in history if year.effective_from <= as_of][-1:]
        if not history:
            raise NotFound(f"no case-mix table in force on {as_of} is loaded")
    return {
        "hipps": code,
        "as_of": as_of,
        "positions": [{"position": number, "name": name, "character": char, "meaning": meaning}
                      for number, (name, char, meaning) in enumerate(hipps_meaning(code), start=1)],
        "years": [{"effective_from": year.effective_from, "weight": year.weight,
                   "lupa_threshold": year.lupa_threshold, "file": year.source.file_name,
                   "row": year.source.row, "release": year.source.label, "sha256": year.source.sha256,
                   "citation": year.source.cite()} for year in history],
    }


def wage_index_answer(session: Session, cbsa: str, *, as_of: date | None = None, policy: str = "refuse") -> dict:
    """A CBSA's wage index by year (every row of every file, a CBSA listed twice in a year marked),
    or the one value in force on ``as_of`` under the duplicate-row ``policy``."""
    from kb.parameters import wage_index_history, year_tables
    from kb.store import catalogue_of

    cbsa = cbsa.strip()
    if as_of:
        values = [year_tables(session, catalogue_of(session), as_of, conflict_policy=policy).wage_index_of(cbsa)]
    else:
        values = wage_index_history(session, cbsa)
    if not values:
        raise NotFound(f"CBSA {cbsa} is in no loaded wage index")
    listed: dict[int, int] = {}
    for value in values:
        listed[value.source.release_id] = listed.get(value.source.release_id, 0) + 1
    return {
        "cbsa": cbsa,
        "as_of": as_of,
        "policy": policy if as_of else None,
        "values": [{"effective_from": value.effective_from, "wage_index": value.wage_index, "name": value.name,
                    "file": value.source.file_name, "row": value.source.row, "release": value.source.label,
                    "citation": value.source.cite(), "listed_in_file": listed[value.source.release_id],
                    "conflict": value.conflict, "name_flag": value.name_flag} for value in values],
    }


def rules_answer(session: Session, kind: str | None = None) -> dict:
    """The regulation catalogue: every rule and document a change can cite."""
    from kb.store import catalogue_of

    catalogue = catalogue_of(session)
    return {
        "kind": kind,
        "rules": [{"document_id": rule.document_id, "kind": rule.kind, "title": rule.title,
                   "document_number": rule.document_number, "citation": rule.citation,
                   "published": rule.published, "effective": rule.effective, "corrects": rule.corrects,
                   "url": rule.url, "confirmed": rule.confirmed, "note": rule.note,
                   "supersedes": rule.supersedes}
                  for rule in catalogue.rules if not kind or rule.kind == kind],
    }


def params_answer(session: Session, on: date, *, known_on: date | None = None) -> dict:
    """The HH PPS parameter set in force on a date, each value with its citation."""
    from kb.parameters import year_tables
    from kb.store import catalogue_of
    from regulations.catalogue import CONSTANT_NAMES

    catalogue = catalogue_of(session)
    tables = year_tables(session, catalogue, on, known_on=known_on, conflict_policy="first")
    year = tables.rate_year
    rule = catalogue.get(year.rule)
    return {
        "date": on, "rule": year.rule, "rule_citation": rule.citation, "rule_published": rule.published,
        "effective_from": year.effective_from,
        "constants": {name: {"value": value.value, "citation": value.citation, "confirmed": value.confirmed}
                      for name, value in ((name, getattr(year, name)) for name in CONSTANT_NAMES)},
        "tables": {kind: {"file": source.file_name, "release": source.label, "sha256": source.sha256,
                          "regulation": source.regulation} for kind, source in tables.sources.items()},
        "hipps_codes": len(tables.case_mix),
        "cbsas": len(tables.wage_index),
    }


# --- change reports: a diff of two releases or years, and the annual review -----------------------

#: What a change report can be filtered by (the web page's form, the API's query).
CHANGE_FILTERS = ("source", "change_type", "watched", "text")


def filter_changes(changes, *, source: str | None = None, change_type: str | None = None,
                   watched: bool = False, text: str | None = None, watch_list=()) -> list:
    """The changes of one source and type, touching a watched code, or holding every word of ``text``."""
    from reports.changes import display_value

    watch = frozenset(watch_list)
    words = [word for word in (text or "").lower().split() if word]
    kept = []
    for change in changes:
        if source and change.source != source:
            continue
        if change_type and change.change_type != change_type:
            continue
        keys = {change.key, change.old_key or "", change.related_key or ""}
        if watched and not keys & watch:
            continue
        if words:
            haystack = " ".join([*keys, change.label or "", change.field or "", display_value(change.old),
                                 display_value(change.new), change.citation]).lower()
            if not all(word in haystack for word in words):
                continue
        kept.append(change)
    return kept


def hcpcs_diff_report(session: Session, old: str, new: str, **filters):
    """``hhkb diff hcpcs OLD NEW``: the change report of two HCPCS releases."""
    from kb.review import HOME_HEALTH_WATCH_LIST, diff_hcpcs_releases, find_hcpcs_release
    from reports.changes import build_change_report

    old_release, new_release = find_hcpcs_release(session, old), find_hcpcs_release(session, new)
    changes = diff_hcpcs_releases(session, old_release, new_release)
    return build_change_report(filter_changes(changes, watch_list=HOME_HEALTH_WATCH_LIST, **filters),
                               title=f"HCPCS changes: {old_release.label} to {new_release.label}",
                               watch_list=HOME_HEALTH_WATCH_LIST)


def hhpps_diff_report(session: Session, old_year: int, new_year: int, *, policy: str = "first", **filters):
    """``hhkb diff hhpps OLD NEW``: the change report of two HH PPS rule years."""
    from kb.review import diff_hhpps_years
    from kb.store import catalogue_of
    from reports.changes import build_change_report

    changes = diff_hhpps_years(session, catalogue_of(session), old_year, new_year, conflict_policy=policy)
    return build_change_report(filter_changes(changes, **filters), title=f"HH PPS changes: CY{old_year} to CY{new_year}")


def review_report(found, *, watch=(), links=(), join=None, touching_only=False, pending=(), **filters):
    """``hhkb review YEAR``: the annual review (``kb.review.annual_review``'s answer) as a change report;
    ``join`` (``kb.review_claims.join_claims``), ``touching_only`` and ``pending`` as the review
    joined to claims gives them."""
    from kb.review import HOME_HEALTH_WATCH_LIST
    from reports.changes import DocumentLine, build_change_report

    watch_list = tuple(watch) or HOME_HEALTH_WATCH_LIST
    documents = [DocumentLine(r.document_id, r.title, r.citation or "", str(r.published or ""), str(r.effective or ""))
                 for r in found.regulations]
    return build_change_report(filter_changes(found.changes, watch_list=watch_list, **filters),
                               title=f"Annual review {found.year}: what takes effect", watch_list=watch_list,
                               documents=documents, notes=found.notes, links=links, join=join,
                               touching_only=touching_only, pending=pending)


def audit_csv(session) -> str:
    """``hhkb audit`` and the admin's audit export: every event, oldest first, through the one CSV
    writer (cells that a spreadsheet would run as formulas are neutralised)."""
    from kb.audit import CSV_COLUMNS, events
    from reports.safety import csv_document

    return csv_document(CSV_COLUMNS, ([getattr(event, column) if column != "at" else event.at.isoformat()
                                       for column in CSV_COLUMNS] for event in reversed(events(session))))
