"""The ``hhkb`` command line: thin commands that parse arguments, call one library function, print."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date
from functools import wraps
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kb import database, ingest, queries
from loaders.errors import LoadError

console = Console()


def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _reports_errors(command):
    """Turn a bad-input error into one line on stderr and exit status 2."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LoadError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)

    return wrapper


class Context:
    def __init__(self, url: str | None):
        self.url = url
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = database.open_database(self.url)
        return self._engine


@click.group()
@click.option("--db", "url", envvar="HHKB_DATABASE_URL", metavar="URL",
              help="SQLAlchemy URL of the knowledge base (default: a SQLite file in the user's data folder).")
@click.version_option(package_name="hhkb")
@click.pass_context
def main(ctx, url):
    """hhkb: a cited, versioned knowledge base of CMS home health coding and payment rules."""
    ctx.obj = Context(url)


@main.group()
def db():
    """The database: schema upgrades."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Context):
    """Bring the schema up to date (also done automatically on first use).

    Example: hhkb --db postgresql://user@localhost/hhkb db upgrade
    """
    engine = database.make_engine(obj.url or database.default_database_url())
    database.upgrade(engine)
    click.echo(f"schema at revision {database.current_revision(engine)} on {engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--effective", callback=_date, help="Effective date for files whose name does not tell it (YYYY-MM-DD).")
@click.pass_obj
@_reports_errors
def load(obj: Context, paths, effective):
    """Load CMS files (zips, txt, xlsx, csv, or folders of them), recognised by their content.

    Example: hhkb load ../shared/cms/hcpcs
    """
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("reading", total=None)
        report = ingest.load_files(
            obj.engine, paths, effective=effective,
            on_file=lambda path: progress.update(task, description=f"reading {path.name}"),
        )
    for summary in report.stored:
        click.echo(summary.describe())
    for skipped in report.skipped:
        click.echo(f"{skipped.path}: skipped, {skipped.reason}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@main.command("releases")
@click.option("--source", help="Only this source (e.g. hcpcs).")
@click.pass_obj
def releases_command(obj: Context, source):
    """List loaded releases with their dates, record counts and sha256.

    Example: hhkb releases --source hcpcs
    """
    from sqlmodel import Session

    with Session(obj.engine) as session:
        rows = queries.releases(session, source)
    table = Table("id", "source", "label", "effective", "published", "records", "file", "sha256")
    for r in rows:
        table.add_row(str(r.id), r.source, r.label, str(r.effective_date), str(r.published_date),
                      f"{r.record_count:,}", r.file_name + (f"!{r.member}" if r.member else ""), r.sha256[:12])
    console.print(table)


@main.command()
@click.argument("code")
@click.option("--as-of", callback=_date, help="The date the code is asked about (effective time).")
@click.option("--known-on", callback=_date, help="Answer as CMS's files said on this date (knowledge time).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def code(obj: Context, code, as_of, known_on, as_json):
    """A code's history: every version with its dates, actions and the releases behind it.

    Example: hhkb code G0154 --as-of 2015-06-01
    """
    from sqlmodel import Session

    with Session(obj.engine) as session:
        history = queries.code_history(session, code)
    if history is None:
        click.echo(f"error: {code.upper()} is in no loaded release", err=True)
        sys.exit(1)
    asked = as_of or known_on
    current = history.version_on(as_of or date.today(), known_on=known_on) if asked else None
    if as_json:
        payload = {
            "code": history.code,
            "kind": history.kind,
            "as_of": as_of,
            "known_on": known_on,
            "answer": history.explain(as_of or date.today(), known_on=known_on) if asked else None,
            "version_in_force": current.number if current else None,
            "versions": [asdict(v) for v in history.versions],
            "listings": [asdict(l) for l in history.listings],
        }
        click.echo(json.dumps(payload, indent=2, default=_json_default))
        return
    console.print(f"[bold]{history.code}[/bold] ({history.kind})")
    if asked:
        console.print(history.explain(as_of or date.today(), known_on=known_on))
    for v in history.versions:
        marker = "*" if current is not None and v.number == current.number else " "
        f = v.fields
        until = f"until {v.effective_to} (exclusive)" if v.effective_to else "open"
        console.print(
            f"{marker} version {v.number}: effective {v.effective_from}, {until}; known from {v.known_from}"
            + (f" to {v.known_to}" if v.known_to else "")
            + f"; releases {v.first_release} .. {v.last_release}; action {v.action_code}"
            + (f" ({v.action_effective_date})" if v.action_effective_date else "")
        )
        console.print(f"    {f['long_description']}", highlight=False)
        console.print(
            f"    short: {f['short_description']} | pricing {','.join(f['pricing_indicators']) or '-'} | "
            f"coverage {f['coverage_code'] or '-'} | BETOS {f['betos'] or '-'} | "
            f"xref {','.join(f['cross_references']) or '-'} | added {f['added_date'] or '-'} | "
            f"terminated {f['termination_date'] or '-'}",
            highlight=False,
        )
    console.print("releases: " + "; ".join(
        f"{l.release_label} {l.action_code} (v{l.version_number})" for l in history.listings))


@main.command()
@click.argument("text")
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def search(obj: Context, text, limit):
    """Search the latest descriptions of all codes (every word must appear).

    Example: hhkb search "home health physical therapist"
    """
    from sqlmodel import Session

    with Session(obj.engine) as session:
        hits = queries.search_codes(session, text, limit=limit)
    table = Table("code", "short", "long", "since", "terminated")
    for hit in hits:
        table.add_row(hit.code, hit.short_description, hit.long_description, str(hit.effective_from),
                      str(hit.termination_date or ""))
    console.print(table)
    if not hits:
        click.echo("no code matches")


def _json_default(value):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return str(value)
