"""Read-only questions to the knowledge base, answered as plain frozen records."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from kb.models import HcpcsCode, HcpcsListing, HcpcsVersion, Release
from kb.store import LIST_SEPARATOR
from loaders.hcpcs_record import STATE_FIELDS

_LIST_FIELDS = {
    "pricing_indicators",
    "coverage_issues_refs",
    "carriers_manual_refs",
    "lab_certifications",
    "cross_references",
    "type_of_service",
}


@dataclass(frozen=True)
class ReleaseInfo:
    id: int
    source: str
    label: str
    file_name: str
    member: str | None
    effective_date: date
    effective_date_basis: str
    published_date: date
    published_date_basis: str
    record_count: int
    sha256: str
    size: int
    loader_version: str
    regulation: str | None
    notes: str | None


def releases(session: Session, source: str | None = None) -> list[ReleaseInfo]:
    query = sa.select(Release).order_by(Release.source, Release.effective_date, Release.published_date, Release.id)
    if source:
        query = query.where(Release.source == source)
    return [
        ReleaseInfo(
            id=r.id,
            source=r.source,
            label=r.label,
            file_name=r.file_name,
            member=r.member,
            effective_date=r.effective_date,
            effective_date_basis=r.effective_date_basis,
            published_date=r.published_date,
            published_date_basis=r.published_date_basis,
            record_count=r.record_count,
            sha256=r.sha256,
            size=r.size,
            loader_version=r.loader_version,
            regulation=r.regulation,
            notes=r.notes,
        )
        for r in session.exec(query).scalars()
    ]


@dataclass(frozen=True)
class Listing:
    """What one release said about a code."""

    release_label: str
    release_effective_date: date
    published_date: date
    action_code: str
    action_effective_date: date | None
    version_number: int


@dataclass(frozen=True)
class CodeVersion:
    number: int  # 1 for the earliest version of the code
    effective_from: date
    effective_to: date | None  # exclusive
    effective_to_known_from: date | None
    known_from: date
    known_to: date | None  # exclusive
    first_release: str
    last_release: str
    action_code: str
    action_effective_date: date | None
    fields: dict  # STATE_FIELDS -> value (tuples for repeated fields)

    def in_force(self, on: date, known_on: date) -> bool:
        """Whether this version applied on ``on`` as CMS's files said on ``known_on``."""
        if not (self.known_from <= known_on and (self.known_to is None or known_on < self.known_to)):
            return False
        if on < self.effective_from:
            return False
        end_known = self.effective_to is not None and (
            self.effective_to_known_from is None or self.effective_to_known_from <= known_on
        )
        return not end_known or on < self.effective_to


@dataclass(frozen=True)
class CodeHistory:
    code: str
    kind: str
    versions: tuple[CodeVersion, ...]
    listings: tuple[Listing, ...]

    def version_on(self, on: date, *, known_on: date | None = None) -> CodeVersion | None:
        known_on = known_on or date.max
        matching = [v for v in self.versions if v.in_force(on, known_on)]
        return max(matching, key=lambda v: (v.effective_from, v.known_from), default=None)

    def explain(self, on: date, *, known_on: date | None = None) -> str:
        """One sentence on the code's standing on a date, as known on a date."""
        version = self.version_on(on, known_on=known_on)
        known = f" as CMS's files said on {known_on}" if known_on else ""
        if version is not None:
            return f"{self.code} was in effect on {on}{known}: version {version.number}"
        visible = [v for v in self.versions if v.known_from <= (known_on or date.max)]
        if not visible:
            return f"{self.code}: no loaded release had been published by {known_on}"
        ended = [v for v in visible if v.fields["termination_date"] and v.fields["termination_date"] < on]
        if ended:
            last = max(ended, key=lambda v: v.fields["termination_date"])
            return f"{self.code} was not in effect on {on}{known}: terminated {last.fields['termination_date']}"
        first = min(visible, key=lambda v: v.effective_from)
        added = first.fields["added_date"]
        if on < first.effective_from and added and added <= on:
            return (
                f"{self.code} existed on {on} (added {added}), but the loaded releases show its state "
                f"only from {first.effective_from}"
            )
        if on < first.effective_from:
            return f"{self.code} was not yet in effect on {on}{known}: it starts {first.effective_from}"
        return f"{self.code} was not in effect on {on}{known}"


def code_history(session: Session, code: str) -> CodeHistory | None:
    """Every version of a code and every release's listing of it, in two queries."""
    code = code.strip().upper()
    version = HcpcsVersion.__table__
    first_release = Release.__table__.alias("first_release")
    version_rows = session.execute(
        sa.select(HcpcsCode.id.label("identity_id"), HcpcsCode.code.label("identity_code"),
                  HcpcsCode.kind.label("identity_kind"), version, first_release.c.label.label("first_release_label"))
        .select_from(HcpcsCode)
        .outerjoin(version, version.c.code_id == HcpcsCode.id)
        .outerjoin(first_release, first_release.c.id == version.c.first_release_id)
        .where(HcpcsCode.code == code)
        .order_by(version.c.effective_from, version.c.known_from, version.c.id)
    ).all()
    if not version_rows:
        return None
    identity = version_rows[0]
    version_rows = [row for row in version_rows if row.id is not None]
    number = {row.id: n for n, row in enumerate(version_rows, start=1)}
    # The listings found through their versions, by index: the listing's own key starts with the
    # release, so on SQLite a filter on its code alone read every listing.
    listing = HcpcsListing.__table__
    listing_rows = session.execute(
        sa.select(listing.c.version_id, listing.c.action_code, listing.c.action_effective_date, Release.label,
                  Release.effective_date, Release.published_date)
        .join(Release, Release.id == listing.c.release_id)
        .join(version, version.c.id == listing.c.version_id)
        .where(version.c.code_id == identity.identity_id, listing.c.code_id == identity.identity_id)
        .order_by(Release.effective_date, Release.published_date, Release.id)
    ).all()
    labels = {}
    for row in listing_rows:
        labels.setdefault(row.version_id, []).append(row.label)
    versions = tuple(
        CodeVersion(
            number=number[row.id],
            effective_from=row.effective_from,
            effective_to=row.effective_to,
            effective_to_known_from=row.effective_to_known_from,
            known_from=row.known_from,
            known_to=row.known_to,
            first_release=row.first_release_label,
            last_release=(labels.get(row.id) or [row.first_release_label])[-1],
            action_code=row.action_code,
            action_effective_date=row.action_effective_date,
            fields={name: _field_value(name, getattr(row, name)) for name in STATE_FIELDS},
        )
        for row in version_rows
    )
    listings = tuple(
        Listing(
            release_label=row.label,
            release_effective_date=row.effective_date,
            published_date=row.published_date,
            action_code=row.action_code,
            action_effective_date=row.action_effective_date,
            version_number=number[row.version_id],
        )
        for row in listing_rows
    )
    return CodeHistory(code=identity.identity_code, kind=identity.identity_kind, versions=versions, listings=listings)


def _field_value(name: str, value):
    if name in _LIST_FIELDS:
        return tuple(value.split(LIST_SEPARATOR)) if value else ()
    return value


@dataclass(frozen=True)
class SearchHit:
    code: str
    short_description: str
    long_description: str
    effective_from: date
    termination_date: date | None


_KNOWLEDGE_STATE = sa.select(sa.func.count(Release.id), sa.func.max(Release.id),
                             sa.select(Release.sha256).order_by(Release.id.desc()).limit(1).scalar_subquery())


def knowledge_state(session: Session | sa.Connection) -> tuple:
    """What identifies the files loaded in the knowledge base: the number of releases, the newest
    release id and that release's sha256. Every load adds a release row in the transaction that
    stores the file, so an answer computed from the database holds as long as this is unchanged."""
    return tuple(session.execute(_KNOWLEDGE_STATE).one())


@dataclass(frozen=True)
class _Searchable:
    hit: SearchHit
    code: str  # lower case, as are the two descriptions
    short_description: str
    long_description: str
    text: str  # the three joined by a line break, which no word of a question holds


class SearchIndex:
    """The latest known description of every code, lowered once: what :func:`search_codes` reads.

    Made from the database in one query and kept, for each database, until a file is loaded
    (:func:`knowledge_state` changes); a search is then a scan in memory, with no query.
    """

    def __init__(self, rows):
        entries = []
        for code, short, long, effective_from, termination_date in rows:
            lowered = (code.lower(), short.lower(), long.lower())
            entries.append(_Searchable(SearchHit(code, short, long, effective_from, termination_date),
                                       *lowered, "\n".join(lowered)))
        self.entries = tuple(entries)

    @classmethod
    def of(cls, session: Session) -> SearchIndex:
        version = HcpcsVersion.__table__
        latest = (
            sa.select(version.c.code_id, sa.func.max(version.c.effective_from).label("effective_from"))
            .where(version.c.known_to.is_(None))
            .group_by(version.c.code_id)
            .subquery()
        )
        return cls(session.execute(
            sa.select(HcpcsCode.code, version.c.short_description, version.c.long_description,
                      version.c.effective_from, version.c.termination_date)
            .join(version, version.c.code_id == HcpcsCode.id)
            .join(latest, sa.and_(latest.c.code_id == version.c.code_id,
                                  latest.c.effective_from == version.c.effective_from))
            .where(version.c.known_to.is_(None))
            .order_by(HcpcsCode.code)
        ).all())

    def search(self, text: str, *, limit: int) -> list[SearchHit]:
        words = [w for w in text.lower().split() if w]
        phrase = " ".join(words)

        def rank(entry: _Searchable) -> int:
            if entry.code == phrase:
                return 0
            if entry.code.startswith(phrase):
                return 1
            if phrase in entry.short_description:
                return 2
            if phrase in entry.long_description:
                return 3
            return 4

        found = self.entries
        for word in words:
            found = [entry for entry in found if word in entry.text]
        ranked = sorted(found, key=lambda entry: (rank(entry), entry.code))
        return [entry.hit for entry in ranked[:limit]]


_search_indexes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> (state, SearchIndex)
_search_index_lock = threading.Lock()


def search_index(session: Session) -> SearchIndex:
    """The search index of the session's database as it is now: made once per set of loaded files."""
    engine = session.get_bind().engine
    state = knowledge_state(session)
    kept = _search_indexes.get(engine)
    if kept is not None and kept[0] == state:
        return kept[1]
    with _search_index_lock:  # concurrent first searches make it once
        kept = _search_indexes.get(engine)
        if kept is None or kept[0] != state:
            kept = _search_indexes[engine] = (state, SearchIndex.of(session))
    return kept[1]


def search_codes(session: Session, text: str, *, limit: int = 50) -> list[SearchHit]:
    """Codes whose latest known description contains every word of ``text`` (any case; ``%`` and
    ``_`` are the characters themselves, not wildcards), ranked: the code itself, then codes
    starting with the text, then descriptions holding the words as one phrase (short, then long),
    then the rest; by code within a rank."""
    return search_index(session).search(text, limit=limit)


def close_codes(session: Session, text: str, *, limit: int = 10) -> list[str]:
    """Loaded codes that look like ``text`` (same first four, else three, characters): what a
    mistyped code is offered instead."""
    code = text.strip().upper()
    for length in (4, 3):
        if len(code) < length:
            continue
        found = session.execute(
            sa.select(HcpcsCode.code).where(HcpcsCode.code.like(f"{code[:length]}%"))
            .order_by(HcpcsCode.code).limit(limit)
        ).scalars().all()
        if found:
            return list(found)
    return []
