"""Shared fixtures: real data from ../shared, and a fresh knowledge base on SQLite and PostgreSQL.

``engine`` runs each test that asks for it once on SQLite and once on the PostgreSQL server named by
``HHKB_TEST_POSTGRES_URL`` (the README's test command and CI start one). Each test gets its own
freshly migrated database, cloned from a template migrated once per run.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import database

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CMS = SHARED / "cms"
HCPCS_DIR = CMS / "hcpcs"
HHPPS_DIR = CMS / "hhpps"
X12_DIR = SHARED / "x12"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: The HH PPS pricer tables the tests rest on, by name: a file added to ../shared later changes no
#: test's expectations.
HHPPS_YEARS = (2020, 2021, 2022, 2023, 2024, 2025, 2026)
HHPPS_FILES = tuple(
    HHPPS_DIR / f"{kind}-{year}.csv" for year in HHPPS_YEARS for kind in ("hrg", "rev", "cbsa-wage-index")
) + (HHPPS_DIR / "add-on-table.csv", HHPPS_DIR / "extra-add-on-table.csv")

POSTGRES_URL = os.environ.get("HHKB_TEST_POSTGRES_URL")
#: Every database test runs on both; without a PostgreSQL server (a local run outside the README's
#: test command) the PostgreSQL half is reported as skipped, never silently left out. CI refuses
#: to run without one (``pytest_configure``).
BACKENDS = ["sqlite", "postgresql"]


def pytest_report_header(config):
    if POSTGRES_URL:
        return f"databases: SQLite and PostgreSQL ({POSTGRES_URL})"
    return "databases: SQLite only (HHKB_TEST_POSTGRES_URL is not set: the README's test command sets it)"


def pytest_configure(config):
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError("CI must run the PostgreSQL tests: HHKB_TEST_POSTGRES_URL is not set")
    if not SHARED.is_dir():
        raise pytest.UsageError(f"the real CMS data is expected at {SHARED}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = database.open_database(f"sqlite:///{path}")
    engine.dispose()
    return path


_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_admin():
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: HHKB_TEST_POSTGRES_URL is not set (the README's `make test` starts one)")
    engine = database.make_engine(POSTGRES_URL)
    engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    template = f"hhkb_template_{os.getpid()}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{template}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{template}"'))
    url = engine.url.set(database=template)
    migrated = database.open_database(url.render_as_string(hide_password=False))
    migrated.dispose()
    yield engine, template
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{template}"'))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """The URL of a fresh, migrated knowledge base on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "hhkb.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    admin, template = request.getfixturevalue("postgres_admin")
    name = f"hhkb_test_{os.getpid()}_{next(_counter)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def engine(database_url):
    engine = database.open_database(database_url)
    yield engine
    engine.dispose()
