"""What every ``hhkb`` command shares: the console it prints to, and how it reports a problem
(one line on stderr naming what and where, and an exit status).

Exit statuses (the README lists them):

- 1: findings at or above ``--fail-at`` (``check``), or the knowledge base cannot answer (a
  release, a parameter or a price it does not have);
- 2: bad input: a file, a row, a field (``LoadError``), or a bad option value;
- 3: the database is busy (another load holds it longer than ``--wait``) or cannot be reached;
- 4: something cannot be written: a read-only database or file system, a full disk, an
  unwritable ``--out``.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from functools import wraps

import click
import psycopg
import sqlalchemy as sa

from kb.database import DatabaseBusy, DatabaseUnwritable
from kb.parameters import ParameterError
from kb.pricing import PricingError
from kb.review import ReviewError
from loaders.errors import LoadError
from reports.safety import echo, make_console

# Prints text as it is (never as markup): see reports.safety.
console = make_console()

BAD_INPUT, BUSY, UNWRITABLE = 2, 3, 4

#: What the operating system says when a file cannot be written.
_WRITE_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG,
                 errno.EISDIR, errno.ENOTDIR, errno.EEXIST}


def failure(error: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit status of an operational failure, or None (a defect: let it
    show its traceback)."""
    if isinstance(error, LoadError):
        return str(error), BAD_INPUT
    if isinstance(error, (ParameterError, ReviewError, PricingError)):
        return str(error.args[0] if error.args else error), 1
    if isinstance(error, DatabaseBusy):
        return str(error), BUSY
    if isinstance(error, DatabaseUnwritable):
        return str(error), UNWRITABLE
    if isinstance(error, click.UsageError):
        where = f"{error.ctx.command_path}: " if error.ctx is not None else ""
        return where + error.format_message(), BAD_INPUT
    if isinstance(error, sa.exc.DBAPIError):
        return _database_failure(error.orig if error.orig is not None else error,
                                 operational=isinstance(error, sa.exc.OperationalError))
    if isinstance(error, (sqlite3.Error, psycopg.Error)):  # raised by the driver itself (kb.bulk's COPY)
        return _database_failure(error, operational=isinstance(error, (sqlite3.OperationalError,
                                                                        psycopg.OperationalError)))
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        reason = error.strerror or str(error)
        if error.errno in _WRITE_ERRORS:
            return f"cannot write {where}{reason}", UNWRITABLE
        return f"{where}{reason}", UNWRITABLE
    return None


def _database_failure(error: BaseException, *, operational: bool) -> tuple[str, int] | None:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    sqlstate = getattr(error, "sqlstate", None) or ""
    lowered = text.lower()
    database = _database_named()
    if "locked" in lowered or "busy" in lowered or sqlstate in ("55P03", "40P01"):
        return (f"the database {database} is locked by another process ({text}): try again when it "
                f"has finished"), BUSY
    if "readonly" in lowered or "read-only" in lowered or sqlstate == "25006":
        return f"the database {database} cannot be written ({text})", UNWRITABLE
    if "disk is full" in lowered or "disk i/o" in lowered or sqlstate.startswith("53"):
        return f"the database {database} cannot be written ({text})", UNWRITABLE
    if operational:
        return f"the database {database} cannot be used ({text})", BUSY
    return None


def _database_named() -> str:
    context = click.get_current_context(silent=True)
    url = getattr(getattr(context.find_root(), "obj", None), "url", None) if context else None
    if url:
        return sa.make_url(url).render_as_string(hide_password=True)
    return "(default database)"


def _exit_on_failure(error: BaseException) -> None:
    known = failure(error)
    if known is None:
        raise error
    message, status = known
    echo(f"error: {message}", err=True)
    sys.exit(status)


class Commands(click.Group):
    """The root group: any operational failure of any command becomes one line and its status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:  # noqa: BLE001 - mapped or re-raised by _exit_on_failure
            _exit_on_failure(error)


def reports_errors(command):
    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (LoadError, ParameterError, ReviewError, PricingError) as error:
            _exit_on_failure(error)

    return wrapper
