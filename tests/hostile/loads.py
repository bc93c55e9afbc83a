"""What the concurrency and fault tests share: ``hhkb load`` run as separate processes on blank
databases of each backend, and the HCPCS tables of a database as plain rows to compare."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from kb import database
from tests.hcpcs_snapshot import snapshot

#: The installed command line, as an operator runs it.
HHKB = [str(Path(sys.executable).with_name("hhkb"))]
_counter = itertools.count()


def blank_database(request, tmp_path: Path, backend: str) -> str:
    """The URL of a database that does not exist yet (SQLite) or is empty (PostgreSQL): the first
    ``hhkb`` to open it migrates it, so processes started together also race to migrate."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'blank-{next(_counter)}.sqlite3'}"
    admin, _template = request.getfixturevalue("postgres_admin")
    name = f"hhkb_blank_{os.getpid()}_{next(_counter)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    request.addfinalizer(lambda: _drop(admin, name))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def _drop(admin, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def start_load(url: str, files, *extra: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([*HHKB, "--db", url, "load", *map(str, files), *extra],
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env={**os.environ, "COLUMNS": "200"})


def run_load(url: str, files) -> subprocess.CompletedProcess:
    process = start_load(url, files)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def tables(url: str) -> dict:
    """Releases, codes, versions, listings and correction outcomes, without ids."""
    engine = database.open_database(url)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()
