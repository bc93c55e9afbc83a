"""What the web tests share: a knowledge base loaded once per module with the files the journeys
need, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import shutil

import sqlalchemy as sa
from click.testing import CliRunner

from kb.cli import main
from tests.conftest import HCPCS_DIR, HHPPS_FILES

#: HCPCS 2017 and 2018 (the 2018 review), the 2018 corrections, the HH PPS tables 2020-2026.
WEB_FILES = (
    HCPCS_DIR / "2017-Alpha-Numeric-HCPCS-File.zip",
    HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip",
    HCPCS_DIR / "2018-HCPCS-Alpha-Numeric-Corrections.zip",
    *HHPPS_FILES,
)

_counter = itertools.count()


def cli(database_url: str, *args: str, ok: bool = True):
    result = CliRunner().invoke(main, ["--db", database_url, *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def loaded_database(request, backend: str, tmp_path_factory):
    """A fresh knowledge base on ``backend`` with ``WEB_FILES`` loaded; yields its URL, then drops it."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("web") / "hhkb.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        cli(url, "load", *map(str, WEB_FILES))
        yield url
        return
    admin, template = request.getfixturevalue("postgres_admin")
    name = f"hhkb_web_{os.getpid()}_{next(_counter)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    cli(url, "load", *map(str, WEB_FILES))
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
