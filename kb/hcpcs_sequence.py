"""The order HCPCS files are applied in, whatever order they are loaded in.

HCPCS releases and CMS's corrections to them are applied in publication order: by effective date,
then publication (knowledge) date, a release before the corrections published the same day, one
year's corrections by version, then by file name, member and sha256 so that the order is total
(``order_key``). Applied in that order, knowledge time only moves forward and every file sees the
state its publication followed.

A file that arrives in that order (the usual case: next quarter's release) is applied on top of
what is stored. A file that belongs before files already loaded (history loaded after today's
release, a release after its corrections, version 1 after version 2) is slotted in: in the same
transaction, the derived HCPCS tables (codes, versions, listings, correction outcomes) are emptied
and every stored file is applied again, in order, from what the knowledge base keeps of it: a
release's records from its listings and the versions they show, a corrections document's rows
with their field changes. The stored files are read once, applied in memory
(``kb.hcpcs_tables``) and the result written once. The result is the one loading the files in
publication order gives; only row ids differ.
"""

from __future__ import annotations

import collections
import dataclasses
import operator

import sqlalchemy as sa
from sqlmodel import Session

from kb import corrections, hcpcs_tables, store
from kb.hcpcs_tables import HcpcsTables
from kb.models import Release
from loaders.errors import LoadError
from loaders.hcpcs_record import STATE_FIELDS

SOURCES: tuple[str, ...] = (store.HCPCS_SOURCE, corrections.SOURCE)

_state_of_row = operator.itemgetter(*STATE_FIELDS)


def order_key(release: Release) -> tuple:
    """Where a stored HCPCS release or corrections document goes in publication order."""
    is_correction = release.source == corrections.SOURCE
    return (
        release.effective_date,
        release.published_date,
        int(is_correction),
        corrections.correction_version(release) if is_correction else 0,
        release.file_name,
        release.member or "",
        release.sha256,
    )


def sequence(session: Session) -> list[Release]:
    """Every stored HCPCS release and corrections document, in publication order."""
    rows = session.execute(sa.select(Release).where(Release.source.in_(SOURCES))).scalars().all()
    return sorted(rows, key=order_key)


def place(session: Session, release: Release, content, *, where: str):
    """Apply a just-stored file (``content``: its records, or its corrections document) in
    publication order, re-applying the stored files that come after it; returns its summary."""
    order = sequence(session)
    position = order.index(release)
    _check_publication_dates(release, order, where)
    effective = {r.id: r.effective_date for r in order}
    new_content = (content, None) if release.source == store.HCPCS_SOURCE else content
    if position == len(order) - 1:
        tables = HcpcsTables.read(session, effective)
        summary = _apply(tables, release, new_content, order[:position], where=where)
        tables.write(session)
        return summary
    contents = _stored_contents(HcpcsTables.read(session, effective), [r for r in order if r is not release])
    contents[release.id] = new_content
    hcpcs_tables.clear(session)
    tables = HcpcsTables.empty(effective)
    summary = None
    for index, each in enumerate(order):
        applied = _apply(tables, each, contents[each.id], order[:index], where=where if each is release else None)
        if each is release:
            summary = applied
    tables.write(session)
    return dataclasses.replace(summary, reapplied=len(order) - 1 - position)


def _apply(tables: HcpcsTables, release: Release, content, before: list[Release], *, where: str | None = None):
    """Apply one file after ``before``; ``where`` names it when it is the file being loaded (its
    records are then checked for a cut-off release)."""
    if release.source == corrections.SOURCE:
        return corrections.apply_corrections(tables, release, content, before)
    previous = next((r for r in reversed(before) if r.source == store.HCPCS_SOURCE), None)
    records, states = content
    return store.apply_hcpcs_records(tables, release, records, previous, states, checked_as=where)


def _check_publication_dates(release: Release, order: list[Release], where: str) -> None:
    """Effective order and publication order must agree: a file effective later than another but
    published before it has no place where knowledge time only moves forward."""
    for other in order:
        if other is release:
            continue
        later_but_earlier = other.effective_date > release.effective_date and other.published_date < release.published_date
        earlier_but_later = other.effective_date < release.effective_date and other.published_date > release.published_date
        if later_but_earlier or earlier_but_later:
            raise LoadError(
                where,
                f"effective {release.effective_date} and published {release.published_date}, but {other.label!r} "
                f"({other.file_name}) is effective {other.effective_date} and published {other.published_date}: "
                "a file effective later must not be published earlier",
                field="published date",
            )


def _stored_contents(stored: HcpcsTables, releases: list[Release]) -> dict[int, object]:
    """What each stored file holds: a release's records (``StoredRecord``, with their states), or a
    corrections document as it was given."""
    records = _stored_records(stored)
    outcomes = stored.stored_corrections()
    contents: dict[int, object] = {}
    for release in releases:
        if release.source == corrections.SOURCE:
            contents[release.id] = corrections.stored_document(release, outcomes.get(release.id, []))
        else:
            contents[release.id] = records.get(release.id, ([], []))
    return contents


#: A stored release's record as applying it again reads it: what its listing says, and the dates
#: of the state its version holds (the rest of the state comes with it, in ``version_state`` form).
StoredRecord = collections.namedtuple(
    "StoredRecord", "code kind action_code action_effective_date sequence_number source_line added_date termination_date"
)


def _stored_records(stored: HcpcsTables) -> dict[int, tuple[list[StoredRecord], list[tuple]]]:
    """The records of every stored HCPCS release, by release id, in the order of the file, with
    their states: each listing with the state of the version it shows (equal to the record's)."""
    codes = {code_id: code for code, code_id in stored.code_ids.items()}
    states_of: dict[int, tuple] = {}
    by_release: dict[int, tuple[list[StoredRecord], list[tuple]]] = {}
    for release_id, rows in stored.stored_listings().items():
        records, states = by_release[release_id] = ([], [])
        for _, code_id, version_id, action_code, action_effective_date, sequence_number, source_line in rows:
            version = stored.versions[version_id]
            if version_id not in states_of:
                states_of[version_id] = _state_of_row(version)
            records.append(StoredRecord(codes[code_id], stored.code_kinds[code_id], action_code, action_effective_date,
                                        sequence_number, source_line, version["added_date"], version["termination_date"]))
            states.append(states_of[version_id])
    return by_release
