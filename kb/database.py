"""Where the knowledge base lives, and how its schema is brought up to date.

Library code never holds a module-level engine: callers open one with :func:`open_database` and pass
sessions explicitly.

One writer at a time
    A load stores in one transaction opened by :func:`writing`, which first takes the database's
    write lock: a transaction-scoped advisory lock on PostgreSQL (``pg_advisory_xact_lock``), the
    SQLite write lock itself (``BEGIN IMMEDIATE``). A second load waits for the first to finish
    (``on_wait`` is told once), up to ``wait`` seconds, then raises :class:`DatabaseBusy`. Schema
    upgrades take the same lock, so processes opening a new database at once migrate it once.

Reading only
    A command that only reads opens a SQLite file read-only (``mode=ro``; ``immutable=1`` when its
    folder cannot be written, as on a read-only file system) and switches no journal mode, so a
    database on read-only media answers; writing to one raises :class:`DatabaseUnwritable`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import Session

MIGRATIONS = Path(__file__).with_name("migrations")

#: The advisory lock key loads and upgrades take on PostgreSQL (any fixed 64-bit number; ASCII "hhkbload").
WRITE_LOCK_KEY = int.from_bytes(b"hhkbload", "big") & 0x7FFF_FFFF_FFFF_FFFF

#: How long a load waits for another to finish, in seconds, unless told otherwise.
DEFAULT_WAIT = 600.0


class DatabaseBusy(Exception):
    """Another process holds the database's write lock longer than this one would wait."""


class DatabaseUnwritable(Exception):
    """The database cannot be written: a read-only file, a read-only file system, a full disk."""


def default_database_url() -> str:
    """``HHKB_DATABASE_URL`` if set, else a SQLite file in the user's data folder.

    The folder is ``$XDG_DATA_HOME/hhkb`` (``~/.local/share/hhkb`` when unset), or ``HHKB_HOME``.
    """
    url = os.environ.get("HHKB_DATABASE_URL")
    if url:
        return url
    home = os.environ.get("HHKB_HOME")
    if home:
        folder = Path(home)
    else:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        folder = Path(data) / "hhkb"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'hhkb.sqlite3'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_reader_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file of a SQLite URL, or None (another database, or SQLite in memory)."""
    url = sa.make_url(url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):  # a URI filename: sqlite:///file:path?mode=ro&uri=true
        name = url.database[len("file:"):].split("?")[0]
        return Path(name) if name and name != ":memory:" else None
    return Path(url.database)


def _folder_writable(path: Path) -> bool:
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url`` (any SQLAlchemy URL; ``postgresql://`` uses psycopg 3).

    ``read_only`` opens a SQLite file read-only (``mode=ro``, or ``immutable=1`` when its folder
    cannot be written); other databases are opened as they are.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    path = sqlite_file(url) if read_only else None
    if path is not None:
        mode = "mode=ro" if _folder_writable(path) else "immutable=1"
        engine = sa.create_engine(f"sqlite:///file:{path.resolve()}?{mode}&uri=true")
        sa.event.listen(engine, "connect", _sqlite_reader_pragmas)
        return engine
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head", *, wait: float = DEFAULT_WAIT) -> None:
    """Bring the schema up to ``revision`` with the Alembic migrations, holding the write lock (two
    processes opening a new database at once: the second finds it migrated)."""
    with engine.connect() as connection:
        _take_write_lock(connection, wait=wait, on_wait=None)
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def open_database(url: str | None = None, *, auto_upgrade: bool = True, read_only: bool = False) -> Engine:
    """Open the knowledge base at ``url`` (default: :func:`default_database_url`).

    On first use, and after an update of hhkb, the schema is upgraded automatically. ``read_only``
    (for commands that only read) opens a SQLite file read-only once its schema is up to date.
    """
    url = url or default_database_url()
    if read_only and sqlite_file(url) is not None:
        reader = make_engine(url, read_only=True)
        try:
            revision = current_revision(reader)
        except sa.exc.OperationalError:
            revision = None
        if revision == head_revision() or not auto_upgrade:
            return reader
        reader.dispose()
        if not _folder_writable(sqlite_file(url)):
            raise DatabaseUnwritable(f"{sqlite_file(url)}: the database needs a schema upgrade, and its folder "
                                     f"cannot be written")
        open_database(url, auto_upgrade=True).dispose()
        return make_engine(url, read_only=True)
    path = sqlite_file(url)
    if path is not None and not _folder_writable(path):
        raise DatabaseUnwritable(f"{path}: cannot write to its folder {path.parent} (read-only file system, "
                                 f"or no permission): a command that stores needs it")
    engine = make_engine(url)
    if auto_upgrade and current_revision(engine) != head_revision():
        upgrade(engine)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together at the end, or rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def writing(engine: Engine, *, wait: float = DEFAULT_WAIT,
            on_wait: Callable[[str], None] | None = None) -> Iterator[Session]:
    """:func:`transaction`, with the database's write lock taken first (see the module doc):
    one load at a time, whatever the other loads do."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            _take_write_lock(session.connection(), wait=wait, on_wait=on_wait)
            yield session


def _where(connection: sa.Connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)


def _take_write_lock(connection: sa.Connection, *, wait: float, on_wait: Callable[[str], None] | None) -> None:
    waiting = f"another load is writing to {_where(connection)}: waiting up to {wait:g} s for it to finish"
    busy = f"another load is writing to {_where(connection)} and did not finish within {wait:g} s: try again later"
    if connection.dialect.name == "postgresql":
        if connection.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY}).scalar():
            return
        if wait <= 0:
            raise DatabaseBusy(busy)
        if on_wait:
            on_wait(waiting)
        connection.execute(sa.text(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'"))
        try:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise DatabaseBusy(busy) from None
            raise
        connection.execute(sa.text("SET LOCAL lock_timeout TO DEFAULT"))
        return
    if connection.dialect.name != "sqlite":
        return
    previous = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    try:
        connection.exec_driver_sql("PRAGMA busy_timeout = 0")
        if _begin_immediate(connection):
            return
        if wait <= 0:
            raise DatabaseBusy(busy)
        if on_wait:
            on_wait(waiting)
        deadline = time.monotonic() + wait
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        while not _begin_immediate(connection):
            if time.monotonic() >= deadline:
                raise DatabaseBusy(busy)
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous)}")


def _begin_immediate(connection: sa.Connection) -> bool:
    """Start the SQLite transaction holding the write lock; False when another writer holds it."""
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except sa.exc.OperationalError as error:
        if "locked" in str(error.orig) or "busy" in str(error.orig):
            return False
        if "readonly" in str(error.orig) or "read-only" in str(error.orig):
            raise DatabaseUnwritable(f"{_where(connection)}: {error.orig}") from None
        raise
    return True
