"""Every operational failure is one line naming what and where, with its own exit status (the
README lists them): 2 a bad option value, 3 a database another process holds, 4 something that
cannot be written (a read-only database, a read-only file system, a full disk, an unwritable
``--out``). The database is unchanged after each.

A read-only database is made with a read-only SQLite URI (``?mode=ro``) and, on PostgreSQL, with
``default_transaction_read_only``: the tests run as root, whom a file's mode does not stop. The
read-only file system is a read-only bind mount in a private user and mount namespace
(``unshare``); the full disk is ``os.fsync`` failing with ENOSPC at the operating-system boundary.
"""

from __future__ import annotations

import errno
import os
import subprocess

import sqlalchemy as sa

from kb import database
from reports import output
from tests.conftest import FIXTURES
from tests.hostile.conftest import one_line_error
from tests.hostile.loads import HHKB
from tests.test_cli import row_counts

SAMPLE = FIXTURES / "hcpcs" / "sample_anweb.txt"
CLAIMS = FIXTURES / "claims" / "two-claims.csv"


def _read_only(hhkb) -> str:
    """The same database, opened so that it cannot be written."""
    url = sa.make_url(hhkb.url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///file:{url.database}?mode=ro&uri=true"
    engine = database.make_engine(hhkb.url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on'))
    engine.dispose()
    return hhkb.url


def test_bad_option_values_are_one_line_with_status_2(hhkb):
    for arguments, expected in (
        (["search", "x", "--limit", "-1"], "error: main search: Invalid value for '--limit': -1 is not in the range x>=1."),
        (["load", "--wait", "-1", str(SAMPLE)], "error: main load: Invalid value for '--wait': -1.0 is not in the range x>=0."),
        (["code", "G0151", "--as-of", "2019-13-01"], "error: main code: Invalid value for '--as-of': '2019-13-01' is not a date (YYYY-MM-DD)"),
    ):
        assert one_line_error(hhkb(*arguments, status=2)) == expected


def test_a_read_only_database_refuses_a_load_and_leaves_no_key_file(hhkb, monkeypatch):
    hhkb("load", "--effective", "2019-07-01", str(SAMPLE))
    before = row_counts(hhkb.url)
    read_only = _read_only(hhkb)
    monkeypatch.delenv("HHKB_BENEFICIARY_KEY", raising=False)
    if hhkb.url.startswith("postgresql"):
        monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "test key")
    claims = hhkb.at(read_only, "claims", "load", str(CLAIMS), status=4)
    assert "cannot be written" in one_line_error(claims) and "read" in one_line_error(claims)
    assert row_counts(hhkb.url) == before
    answer = hhkb.at(read_only, "releases")
    assert "sample_anweb.txt" in answer.stdout
    url = sa.make_url(hhkb.url)
    if url.get_backend_name() == "sqlite":
        assert not os.path.exists(url.database + ".beneficiary-key")


def test_a_read_only_database_refuses_a_new_file(hhkb, tmp_path):
    hhkb("load", "--effective", "2019-07-01", str(SAMPLE))
    before = row_counts(hhkb.url)
    other = tmp_path / "other.txt"
    other.write_bytes(SAMPLE.read_bytes().replace(b"G0151", b"G0150"))
    result = hhkb.at(_read_only(hhkb), "load", "--effective", "2020-01-01", str(other), status=4)
    line = one_line_error(result)
    assert line.startswith("error: the database ") and "cannot be written" in line
    assert row_counts(hhkb.url) == before


def test_a_database_on_a_read_only_file_system_answers_reads_and_refuses_loads(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    url = f"sqlite:///{folder / 'kb.sqlite3'}"
    environment = {**os.environ, "HHKB_BENEFICIARY_KEY": "test key", "COLUMNS": "200"}
    subprocess.run([*HHKB, "--db", url, "load", "--effective", "2019-07-01", str(SAMPLE)], check=True,
                   capture_output=True, env=environment)
    assert sorted(p.name for p in folder.iterdir()) == ["kb.sqlite3"]
    script = (f'mount --bind "{folder}" "{folder}" && mount -o bind,remount,ro "{folder}" && '
              f'"$0" --db "{url}" releases && "$0" --db "{url}" code G0151 && '
              f'"$0" --db "{url}" load --effective 2020-01-01 "{SAMPLE}"; echo "status $?" >&2')
    result = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script, HHKB[0]],
                            capture_output=True, text=True, env=environment, timeout=120)
    assert "sample_anweb.txt" in result.stdout and "G0151" in result.stdout
    *errors, status = [line for line in result.stderr.splitlines() if line.strip()]
    assert status == "status 4", result.stderr
    assert errors == [f"error: {folder / 'kb.sqlite3'}: cannot write to its folder {folder} (read-only file system, "
                      f"or no permission): a command that stores needs it"]
    assert sorted(p.name for p in folder.iterdir()) == ["kb.sqlite3"]


def test_the_database_locked_by_another_writer(hhkb, tmp_path):
    hhkb("claims", "load", str(CLAIMS))
    before = row_counts(hhkb.url)
    other = tmp_path / "more-claims.csv"
    other.write_text(CLAIMS.read_text().replace(",P00000", ",Q00000"))
    engine = database.open_database(hhkb.url)
    try:
        with database.writing(engine) as session:
            if engine.dialect.name == "postgresql":  # a claims load waits on rows, not on the load lock
                session.execute(sa.text("LOCK TABLE claim IN EXCLUSIVE MODE"))
                hold = database.make_engine(hhkb.url)
                with hold.connect() as connection:
                    connection.execute(sa.text("ALTER DATABASE " + f'"{engine.url.database}"' + " SET lock_timeout = '1s'"))
                    connection.commit()
                hold.dispose()
            result = hhkb("claims", "load", str(other), status=3)
    finally:
        engine.dispose()
    line = one_line_error(result)
    assert line.startswith("error: the database ") and "is locked by another process" in line
    assert line.endswith("try again when it has finished")
    assert row_counts(hhkb.url) == before


def test_a_full_disk_and_an_unwritable_out_are_status_4(hhkb, tmp_path, monkeypatch):
    hhkb("load", "--effective", "2019-07-01", str(SAMPLE))
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    result = hhkb("diff", "knowledge", "--as-of", "2019-07-01", "--known-before", "2019-01-01", "--known-after", "2019-12-31", "--out", str(not_a_folder / "out"),
                  status=4)
    line = one_line_error(result)
    assert line.startswith(f"error: cannot write {not_a_folder}") and "Not a directory" in line

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "fsync", disk_full)
    out = tmp_path / "out"
    result = hhkb("diff", "knowledge", "--as-of", "2019-07-01", "--known-before", "2019-01-01", "--known-after", "2019-12-31", "--out", str(out), status=4)
    line = one_line_error(result)
    assert line.startswith(f"error: cannot write {out}/") and line.endswith(": No space left on device")
    assert all(not p.name.startswith(".") for p in out.iterdir())
