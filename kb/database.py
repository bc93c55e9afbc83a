"""Where the knowledge base lives, and how its schema is brought up to date.

Library code never holds a module-level engine: callers open one with :func:`open_database` and pass
sessions explicitly.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import Session

MIGRATIONS = Path(__file__).with_name("migrations")


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


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (any SQLAlchemy URL; ``postgresql://`` uses psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with the Alembic migrations."""
    command.upgrade(alembic_config(engine), revision)


def open_database(url: str | None = None, *, auto_upgrade: bool = True) -> Engine:
    """Open the knowledge base at ``url`` (default: :func:`default_database_url`).

    On first use, and after an update of hhkb, the schema is upgraded automatically.
    """
    engine = make_engine(url or default_database_url())
    if auto_upgrade and current_revision(engine) != head_revision():
        upgrade(engine)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together at the end, or rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
