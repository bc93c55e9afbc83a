"""The HCPCS tables of a knowledge base as plain, id-free rows, to compare two load orders.

Versions are named by code, intervals, knowledge interval, first release and state; listings and
correction outcomes by release file and by the version they point to. Release rows are compared
by file, dates and bases (never by id or loading time).
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from kb import queries
from kb.models import HcpcsCode, HcpcsCorrection, HcpcsListing, HcpcsVersion, Release

_VERSION_COLUMNS = [c.name for c in HcpcsVersion.__table__.columns if c.name not in ("id", "code_id", "first_release_id")]


def _release_name(release) -> tuple:
    return (release.source, release.label, release.file_name, release.member or "")


def snapshot(engine) -> dict:
    """Releases, versions, listings and correction outcomes of the HCPCS sources, without ids."""
    with Session(engine) as session:
        releases = {r.id: r for r in session.execute(sa.select(Release)).scalars()}
        codes = dict(session.execute(sa.select(HcpcsCode.id, HcpcsCode.code)).all())
        versions = {}
        for row in session.execute(sa.select(HcpcsVersion.__table__)).mappings():
            versions[row["id"]] = (codes[row["code_id"]], _release_name(releases[row["first_release_id"]])) + tuple(
                row[name] for name in _VERSION_COLUMNS
            )
        listings = sorted(
            (_release_name(releases[row.release_id]), codes[row.code_id], versions[row.version_id], row.action_code,
             row.action_effective_date, row.sequence_number, row.source_line)
            for row in session.execute(sa.select(HcpcsListing)).scalars()
        )
        outcomes = sorted(
            (_release_name(releases[row.release_id]), row.source_row, row.code, row.kind, row.outcome, row.reason,
             versions.get(row.version_id))
            for row in session.execute(sa.select(HcpcsCorrection)).scalars()
        )
        release_rows = sorted(
            _release_name(r) + (r.sha256, r.effective_date, r.effective_date_basis, r.published_date,
                                r.published_date_basis, r.record_count)
            for r in releases.values()
        )
    return {
        "releases": release_rows,
        "codes": sorted(codes.values()),
        "versions": sorted(versions.values(), key=repr),
        "listings": listings,
        "outcomes": outcomes,
    }


def answers(engine, codes: list[str], dates: list[date], known_on: list[date | None]) -> list[str]:
    """``hhkb code X --as-of D --known-on K`` for every combination: the explanation sentence and
    the version's number, interval and state."""
    lines = []
    with Session(engine) as session:
        for code in codes:
            history = queries.code_history(session, code)
            for on in dates:
                for known in known_on:
                    if history is None:
                        lines.append(f"{code} {on} {known}: unknown code")
                        continue
                    version = history.version_on(on, known_on=known)
                    detail = "" if version is None else (
                        f" | {version.number} {version.effective_from}..{version.effective_to} "
                        f"known {version.known_from}..{version.known_to} {sorted(version.fields.items())}"
                    )
                    lines.append(f"{code} {on} {known}: {history.explain(on, known_on=known)}{detail}")
    return lines


def empty(engine) -> None:
    """Remove every HCPCS file from the knowledge base (to load the same files again)."""
    with engine.begin() as connection:
        for model in (HcpcsCorrection, HcpcsListing, HcpcsVersion, HcpcsCode, Release):
            connection.execute(sa.delete(model))
