"""The derived HCPCS tables as one load works on them: read once, changed in memory, written once.

Applying an HCPCS release (``kb.store.apply_hcpcs_records``) or a corrections document
(``kb.corrections.apply_corrections``) reads and changes codes, versions, listings and correction
outcomes. They do it on an ``HcpcsTables``: the codes and versions read from the knowledge base in
one query each (listings and correction outcomes of a stored file when first asked for), then
changed in memory, then written back in bulk by ``write``: new rows through ``kb.bulk.insert_rows``,
the ends and knowledge ends of stored versions in one UPDATE. The same version logic thus serves a
file applied on top of what is stored and every stored file applied again in publication order
(``kb.hcpcs_sequence``), which starts from ``HcpcsTables.empty`` and writes the whole result once.

Rows are plain dicts and tuples with the values the columns hold: repeated fields joined by
``kb.store.LIST_SEPARATOR``, dates as ``datetime.date`` on every database. New rows get their ids
here, in the order they are made, after the highest stored id; on PostgreSQL the id sequences are
moved past them when they are written.
"""

from __future__ import annotations

from datetime import date
from typing import Iterable

import sqlalchemy as sa
from sqlmodel import Session

from kb.bulk import insert_rows
from kb.models import HcpcsCode, HcpcsCorrection, HcpcsListing, HcpcsVersion

CODE = HcpcsCode.__table__
VERSION = HcpcsVersion.__table__
LISTING = HcpcsListing.__table__
CORRECTION = HcpcsCorrection.__table__

VERSION_COLUMNS: tuple[str, ...] = tuple(column.name for column in VERSION.columns)
LISTING_COLUMNS: tuple[str, ...] = (
    "release_id", "code_id", "version_id", "action_code", "action_effective_date", "sequence_number", "source_line",
)
CORRECTION_COLUMNS: tuple[str, ...] = tuple(column.name for column in CORRECTION.columns if column.name != "id")
#: The columns of a stored version that applying a later file changes.
ENDING_COLUMNS: tuple[str, ...] = ("effective_to", "effective_to_known_from", "known_to")

_DERIVED = (CORRECTION, LISTING, VERSION, CODE)


class HcpcsTables:
    """Codes, versions, listings and correction outcomes, in memory (see the module docstring)."""

    def __init__(self, session: Session | None, release_effective: dict[int, date]):
        #: Where stored listings and correction outcomes are read from; None when nothing is stored.
        self._session = session
        #: The effective date of each HCPCS release and corrections document, by release id.
        self.release_effective = release_effective
        self.code_ids: dict[str, int] = {}
        #: Each code's kind (procedure or modifier), by code id.
        self.code_kinds: dict[int, str] = {}
        self.versions: dict[int, dict] = {}
        #: Each code's versions, by code id, in id order.
        self.versions_of: dict[int, list[dict]] = {}
        self._listings: dict[int, dict[int, tuple]] = {}
        self._corrections: dict[int, list[dict]] = {}
        self._new_codes: list[tuple] = []
        self._new_versions: list[dict] = []
        self._ended: dict[int, dict] = {}
        self._new_listings: list[tuple] = []
        self._new_corrections: list[dict] = []
        self._next_code_id = 1
        self._next_version_id = 1
        #: Versions with a lower id are stored: a change to their ends is written as an UPDATE.
        self._stored_below = 1

    # -- reading

    @classmethod
    def empty(cls, release_effective: dict[int, date]) -> HcpcsTables:
        """Tables with nothing in them, for files applied again after ``clear``."""
        return cls(None, release_effective)

    @classmethod
    def read(cls, session: Session, release_effective: dict[int, date]) -> HcpcsTables:
        """The stored codes and versions (listings and correction outcomes are read when asked for)."""
        tables = cls(session, release_effective)
        connection = session.connection()
        for code_id, code, kind in connection.execute(sa.select(CODE.c.id, CODE.c.code, CODE.c.kind)):
            tables.code_ids[code] = code_id
            tables.code_kinds[code_id] = kind
        tables._next_code_id = max(tables.code_ids.values(), default=0) + 1
        for row in _driver_rows(connection, sa.select(*VERSION.columns).order_by(VERSION.c.id), VERSION_COLUMNS,
                                _date_columns(VERSION)):
            tables.versions[row["id"]] = row
            tables.versions_of.setdefault(row["code_id"], []).append(row)
        tables._next_version_id = tables._stored_below = max(tables.versions, default=0) + 1
        return tables

    def stored_listings(self) -> dict[int, list[tuple]]:
        """Every stored listing, by release id, in the order of its file (``LISTING_COLUMNS`` tuples)."""
        connection = self._session.connection()
        query = sa.select(*(LISTING.c[name] for name in LISTING_COLUMNS)).order_by(LISTING.c.release_id,
                                                                                    LISTING.c.source_line)
        by_release: dict[int, list[tuple]] = {}
        for row in _driver_rows(connection, query, LISTING_COLUMNS, _date_columns(LISTING)):
            by_release.setdefault(row["release_id"], []).append(tuple(row[name] for name in LISTING_COLUMNS))
        return by_release

    def stored_corrections(self) -> dict[int, list[dict]]:
        """Every stored correction outcome, by release id, in the order they were stored."""
        rows = self._session.connection().execute(sa.select(CORRECTION).order_by(CORRECTION.c.id)).mappings()
        by_release: dict[int, list[dict]] = {}
        for row in rows:
            by_release.setdefault(row["release_id"], []).append(dict(row))
        return by_release

    def listing(self, release_id: int, code_id: int) -> tuple | None:
        """What ``release_id`` listed for ``code_id`` (a ``LISTING_COLUMNS`` tuple), or None."""
        if release_id not in self._listings:
            self._listings[release_id] = {}
            if self._session is not None:
                query = sa.select(*(LISTING.c[name] for name in LISTING_COLUMNS)).where(LISTING.c.release_id == release_id)
                for row in self._session.connection().execute(query):
                    self._listings[release_id][row[1]] = tuple(row)
        return self._listings[release_id].get(code_id)

    def corrections(self, release_ids: Iterable[int]) -> list[dict]:
        """The correction outcomes recorded for the documents ``release_ids``."""
        found = []
        for release_id in release_ids:
            if release_id not in self._corrections:
                self._corrections[release_id] = []
                if self._session is not None:
                    rows = self._session.connection().execute(
                        sa.select(CORRECTION).where(CORRECTION.c.release_id == release_id).order_by(CORRECTION.c.id)
                    ).mappings()
                    self._corrections[release_id] = [dict(row) for row in rows]
            found.extend(self._corrections[release_id])
        return found

    def current(self) -> dict[int, dict]:
        """Each code's latest version still known (``known_to`` open: the latest effective start,
        then the latest made), by code id."""
        current = {}
        for code_id, rows in self.versions_of.items():
            latest = None
            for row in rows:
                if row["known_to"] is None and (latest is None or row["effective_from"] >= latest["effective_from"]):
                    latest = row
            if latest is not None:
                current[code_id] = latest
        return current

    def known_versions(self, code_id: int) -> list[dict]:
        """A code's versions still known, in effective order (then knowledge order, then made)."""
        rows = [row for row in self.versions_of.get(code_id, ()) if row["known_to"] is None]
        return sorted(rows, key=lambda row: (row["effective_from"], row["known_from"], row["id"]))

    # -- changing

    def add_code(self, code: str, kind: str) -> int:
        code_id = self._next_code_id
        self._next_code_id += 1
        self.code_ids[code] = code_id
        self.code_kinds[code_id] = kind
        self._new_codes.append((code_id, code, kind))
        return code_id

    def add_version(self, **columns) -> int:
        """A new version (every column of ``hcpcs_version`` but its id); returns its id."""
        row = {"id": self._next_version_id, **columns}
        self._next_version_id += 1
        row = {name: row[name] for name in VERSION_COLUMNS}
        self.versions[row["id"]] = row
        self.versions_of.setdefault(row["code_id"], []).append(row)
        self._new_versions.append(row)
        return row["id"]

    def end_version(self, version_id: int, **columns) -> None:
        """Change the end or the knowledge end (``ENDING_COLUMNS``) of a version."""
        row = self.versions[version_id]
        row.update(columns)
        if version_id < self._stored_below:
            self._ended[version_id] = row

    def add_listings(self, release_id: int, rows: list[tuple]) -> None:
        self._listings[release_id] = {row[1]: row for row in rows}
        self._new_listings.extend(rows)

    def add_corrections(self, release_id: int, rows: list[dict]) -> None:
        self._corrections[release_id] = rows
        self._new_corrections.extend(rows)

    # -- writing

    def write(self, session: Session) -> None:
        """Write what changed: new codes, versions, listings and outcomes, and the changed ends."""
        connection = session.connection()
        insert_rows(connection, CODE, ("id", "code", "kind"), self._new_codes)
        if self._ended:
            connection.execute(
                VERSION.update().where(VERSION.c.id == sa.bindparam("version_id"))
                .values({name: sa.bindparam(f"new_{name}") for name in ENDING_COLUMNS}),
                [{"version_id": version_id, **{f"new_{name}": row[name] for name in ENDING_COLUMNS}}
                 for version_id, row in self._ended.items()],
            )
        insert_rows(connection, VERSION, VERSION_COLUMNS,
                    [tuple(row[name] for name in VERSION_COLUMNS) for row in self._new_versions])
        insert_rows(connection, LISTING, LISTING_COLUMNS, self._new_listings)
        insert_rows(connection, CORRECTION, CORRECTION_COLUMNS,
                    [tuple(row[name] for name in CORRECTION_COLUMNS) for row in self._new_corrections])
        if connection.dialect.name == "postgresql":
            for table in (CODE, VERSION):
                connection.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), max(id)) FROM {table.name} "
                    "HAVING max(id) IS NOT NULL"
                ))
        self._new_codes, self._new_versions, self._ended = [], [], {}
        self._new_listings, self._new_corrections = [], []
        self._stored_below = self._next_version_id


def clear(session: Session) -> None:
    """Empty the tables derived from the HCPCS files (the release rows stay)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # one statement for the four tables: no per-row foreign-key checks (it is transactional)
        connection.exec_driver_sql(f"TRUNCATE {', '.join(table.name for table in _DERIVED)}")
        return
    for table in _DERIVED:
        connection.execute(table.delete())


def _date_columns(table: sa.Table) -> frozenset[str]:
    return frozenset(column.name for column in table.columns if isinstance(column.type, sa.Date))


def _driver_rows(connection, query, names: tuple[str, ...], dates: frozenset[str]) -> list[dict]:
    """The rows of ``query`` as dicts, read through the driver (tens of thousands of rows): on
    SQLite dates come back as ISO text and are typed here."""
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    rows = connection.exec_driver_sql(str(compiled)).fetchall()
    if connection.dialect.name != "sqlite":
        return [dict(zip(names, row)) for row in rows]
    positions = [index for index, name in enumerate(names) if name in dates]
    typed = []
    for row in rows:
        values = list(row)
        for index in positions:
            if values[index] is not None:
                values[index] = date.fromisoformat(values[index])
        typed.append(dict(zip(names, values)))
    return typed
