"""The ``hhkb`` command line: thin commands that parse arguments, call one library function, print."""

from __future__ import annotations

import sys
from datetime import date
from functools import partial
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from kb import database, ingest, queries
from kb.cli_common import Commands, console, reports_errors
from reports.output import write_reports
from reports.safety import echo, make_console



def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Context:
    """The database of this run: ``engine`` for commands that only read (a SQLite file opened
    read-only), ``writer`` for those that store."""

    def __init__(self, url: str | None):
        self.url = url
        self._engine = None
        self._writer = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = database.open_database(self.url, read_only=True)
        return self._engine

    @property
    def writer(self):
        if self._writer is None:
            self._writer = database.open_database(self.url)
        return self._writer


@click.group(cls=Commands)
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
    echo(f"schema at revision {database.current_revision(engine)} on {engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--effective", callback=_date, help="Effective date for files whose name does not tell it (YYYY-MM-DD).")
@click.option("--strict", is_flag=True,
              help="Refuse the load (store nothing) when a folder holds a file hhkb would skip (documentation aside).")
@click.option("--wait", type=click.FloatRange(min=0), default=database.DEFAULT_WAIT, show_default=True, metavar="SECONDS",
              help="How long to wait for another load of the same database to finish (0: do not wait; exit 3).")
@click.pass_obj
@reports_errors
def load(obj: Context, paths, effective, strict, wait):
    """Load CMS files (zips, txt, xlsx, csv, or folders of them), recognised by their content.

    A folder load ends with the files it skipped and why; CMS's documentation (record layouts,
    readmes) is named as such.

    Example: hhkb load ../shared/cms/hcpcs
    """
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=make_console(stderr=True), transient=True) as progress:
        task = progress.add_task("reading", total=None)
        report = ingest.load_files(
            obj.writer, paths, effective=effective, strict=strict, wait=wait,
            on_file=lambda path: progress.update(task, description=f"reading {path.name}"),
            on_wait=lambda message: echo(f"waiting: {message}", err=True),
        )
    for summary in report.stored:
        echo(summary.describe())
    for warning in report.warnings:
        echo(f"warning: {warning}", err=True)
    for documentation, heading in ((True, "documentation, not data"),
                                   (False, "skipped (--strict refuses a load that skips files)")):
        listed = [skipped for skipped in report.skipped if skipped.documentation is documentation]
        if listed:
            echo(f"{heading}: {len(listed)} file(s)")
            for skipped in listed:
                echo(f"  {skipped.path}: {skipped.reason}")


@main.command("releases")
@click.option("--source", help="Only this source (e.g. hcpcs).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every field of each release's provenance).")
@click.pass_obj
def releases_command(obj: Context, source, as_json):
    """List loaded releases with their dates, record counts and sha256.

    Example: hhkb releases --source hcpcs
    """
    from sqlmodel import Session

    if as_json:
        from kb.answers import dumps, releases_answer

        with Session(obj.engine) as session:
            echo(dumps(releases_answer(session, source)))
        return
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
        echo(f"error: {code.upper()} is in no loaded release", err=True)
        sys.exit(1)
    asked = as_of or known_on
    current = history.version_on(as_of or date.today(), known_on=known_on) if asked else None
    if as_json:
        from kb.answers import code_answer, dumps

        with Session(obj.engine) as session:
            echo(dumps(code_answer(session, code, as_of=as_of, known_on=known_on)))
        return
    console.print(Text.assemble((history.code, "bold"), f" ({history.kind})"))
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
        console.print(f"    {f['long_description']}")
        console.print(
            f"    short: {f['short_description']} | pricing {','.join(f['pricing_indicators']) or '-'} | "
            f"coverage {f['coverage_code'] or '-'} | BETOS {f['betos'] or '-'} | "
            f"xref {','.join(f['cross_references']) or '-'} | added {f['added_date'] or '-'} | "
            f"terminated {f['termination_date'] or '-'}",
        )
    console.print("releases: " + "; ".join(
        f"{l.release_label} {l.action_code} (v{l.version_number})" for l in history.listings))
    from kb.store import pending_of

    with Session(obj.engine) as session:
        updates = pending_of(session)
    for update in updates:
        if history.code in update.codes:
            console.print(f"pending: {update.entry_id} ({update.kind}"
                          + (f", applicant {update.applicant}" if update.applicant else "") + f"): {update.would_change}",
                          highlight=False)
            console.print(f"  status: {_status_text(update, None)}; cited: {update.citation}", highlight=False)


@main.command()
@click.argument("text")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many codes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with close matches when nothing matches).")
@click.pass_obj
def search(obj: Context, text, limit, as_json):
    """Search the latest descriptions of all codes (every word must appear).

    Example: hhkb search "home health physical therapist"
    """
    from sqlmodel import Session

    if as_json:
        from kb.answers import dumps, search_answer

        with Session(obj.engine) as session:
            echo(dumps(search_answer(session, text, limit=limit)))
        return
    with Session(obj.engine) as session:
        hits = queries.search_codes(session, text, limit=limit)
    table = Table("code", "short", "long", "since", "terminated")
    for hit in hits:
        table.add_row(hit.code, hit.short_description, hit.long_description, str(hit.effective_from),
                      str(hit.termination_date or ""))
    console.print(table)
    if not hits:
        echo("no code matches")



@main.command()
@click.argument("keys", nargs=-1, required=True)
@click.option("--dest", type=click.Path(path_type=Path), default=Path("cms-data"), show_default=True,
              help="Where the files go (laid out like a mirror: cms/hcpcs/..., cms/hhpps/...).")
@click.option("--mirror", envvar="HHKB_MIRROR", help="A base URL or a local folder to fetch from instead of CMS.")
@click.option("--list", "list_only", is_flag=True, help="List the releases hhkb knows, and fetch nothing.")
@reports_errors
def fetch(keys, dest, mirror, list_only):
    """Download CMS source files by release key (cached by sha256, verified, resumable).

    Example: hhkb fetch hcpcs-2019 hhpps-2024 --mirror ../shared && hhkb load cms-data/cms
    """
    from loaders import fetch as fetcher

    if list_only:
        for release in fetcher.known_releases():
            echo(f"{release.key}: {release.title} ({len(release.files)} files)")
        return
    for key, path in fetcher.fetch_all(keys, dest_dir=dest, mirror=mirror).items():
        echo(f"{key}: {path}")


@main.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--agency", help="Check this agency's claims stored in the knowledge base instead of files.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the findings as HTML, Markdown, CSV and JSON here.")
@click.option("--format", "stdout_format", type=click.Choice(["summary", "html", "md", "csv", "json"]),
              default="summary", show_default=True, help="What to print.")
@click.option("--fail-at", type=click.Choice(["error", "warning", "info"]), default="warning", show_default=True,
              help="Exit 1 when a finding of this severity or above is found (for CI pipelines).")
@click.pass_obj
@reports_errors
def check(obj: Context, files, agency, out, stdout_format, fail_at):
    """Check claims (837I or claims CSV files, or an agency's stored claims) against the billing
    rules in force on each claim's dates. Exit status: 0 clean, 1 findings, 2 bad input.

    Example: hhkb check claims.837i --out out/ --fail-at error
    """
    from kb import rules as checker
    from kb.claims import beneficiary_hash_key
    from reports.findings import FORMATS, build_findings_report, render

    if bool(files) == bool(agency):
        raise click.UsageError("give claims files or --agency, not both")
    with _session(obj) as session:
        if agency:
            run = checker.check_agency(session, agency)
            if not run.claims_checked:
                echo(f"error: agency {agency} has no stored claims (hhkb claims load FILE stores them)", err=True)
                sys.exit(2)
        else:
            run = checker.check_files(files, session=session, beneficiary_hash_key=beneficiary_hash_key(obj.engine))
    report = build_findings_report(run.findings, rules=run.rules, claims_checked=run.claims_checked,
                                   sources=run.sources, problems=run.problems)
    if out is not None:
        write_reports(out, "findings", ((extension, partial(render, report, extension)) for extension in FORMATS))
        echo(f"wrote {', '.join(str(out / f'findings.{e}') for e in FORMATS)}")
    if stdout_format == "summary":
        counts: dict[tuple[str, str], int] = {}
        for finding in run.findings:
            counts[(finding.severity, finding.rule_id)] = counts.get((finding.severity, finding.rule_id), 0) + 1
        table = Table("severity", "rule", "findings")
        for (severity, rule_id), count in sorted(counts.items()):
            table.add_row(severity, rule_id, f"{count:,}")
        console.print(f"{run.claims_checked:,} claims checked, {len(run.findings):,} findings")
        console.print(table)
        for problem in run.problems:
            echo(f"skipped: {problem}", err=True)
    else:
        echo(render(report, stdout_format), nl=False)
    sys.exit(checker.exit_status(run.findings, fail_at))


# --- HH PPS parameters and the regulation catalogue ------------------------------------------

_POLICY = click.Choice(["first", "last", "refuse"])


def _session(obj: Context):
    from sqlmodel import Session

    return Session(obj.engine)


@main.command()
@click.argument("code")
@click.option("--as-of", callback=_date, help="The date asked about (default: every year loaded).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hipps(obj: Context, code, as_of, as_json):
    """A HIPPS code: the meaning of each position, its weight and LUPA threshold by year, cited.

    Example: hhkb hipps 1FC11 --as-of 2024-03-01
    """
    from kb.parameters import hipps_history, hipps_meaning

    if as_json:
        from kb.answers import NotFound, dumps, hipps_answer

        with _session(obj) as session:
            try:
                echo(dumps(hipps_answer(session, code, as_of=as_of)))
            except NotFound as error:
                echo(f"error: {error}", err=True)
                sys.exit(1)
        return
    with _session(obj) as session:
        history = hipps_history(session, code)
    code = code.upper()
    console.print(code, style="bold")
    for position, (name, char, meaning) in enumerate(hipps_meaning(code), start=1):
        console.print(f"  {position} {char}: {name}: {meaning}")
    if not history:
        echo(f"{code} is in no loaded case-mix table", err=True)
        sys.exit(1)
    if as_of:
        history = [h for h in history if h.effective_from <= as_of][-1:]
        if not history:
            echo(f"no case-mix table in force on {as_of} is loaded", err=True)
            sys.exit(1)
    table = Table("effective", "weight", "LUPA threshold", "source")
    for year in history:
        table.add_row(str(year.effective_from), str(year.weight), str(year.lupa_threshold), year.source.cite())
    console.print(table)


@main.command()
@click.argument("on", metavar="DATE", callback=_date)
@click.option("--known-on", callback=_date, help="Only what was published by this date.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@reports_errors
def params(obj: Context, on, known_on, as_json):
    """The HH PPS parameter set in force on a date, each value with its citation.

    Example: hhkb params 2024-03-01
    """
    from kb.parameters import year_tables
    from kb.store import catalogue_of
    from regulations.catalogue import CONSTANT_NAMES

    if as_json:
        from kb.answers import dumps, params_answer

        with _session(obj) as session:
            echo(dumps(params_answer(session, on, known_on=known_on)))
        return
    with _session(obj) as session:
        catalogue = catalogue_of(session)
        tables = year_tables(session, catalogue, on, known_on=known_on, conflict_policy="first")
    year = tables.rate_year
    rule = catalogue.get(year.rule)
    constants = {name: getattr(year, name) for name in CONSTANT_NAMES}
    console.print(Text.assemble((f"HH PPS parameters in force on {on}", "bold"), f": {year.rule} ({rule.citation}, "
                                f"published {rule.published}, effective {year.effective_from})"))
    table = Table("constant", "value", "citation", "confirmed")
    for name, value in constants.items():
        table.add_row(name, "none" if value.value is None else str(value.value), value.citation,
                      "yes" if value.confirmed else "no")
    console.print(table)
    tables_view = Table("table", "file", "release", "rows")
    tables_view.add_row("case-mix weights, LUPA thresholds", tables.sources["hrg"].file_name,
                        tables.sources["hrg"].label, str(len(tables.case_mix)))
    tables_view.add_row("per-visit and per-unit rates", tables.sources["rev"].file_name,
                        tables.sources["rev"].label, str(len(tables.visit_rates)))
    tables_view.add_row("wage index", tables.sources["wage_index"].file_name,
                        tables.sources["wage_index"].label, str(len(tables.wage_index)))
    console.print(tables_view)
    from kb.pricing import fixed_dollar_loss_amount

    outlier = fixed_dollar_loss_amount(year.rate_30_day.value, year.fdl_ratio.value)
    console.print(f"outlier fixed-dollar loss amount (30-day rate x FDL, before wage adjustment): ${outlier:,}")


@main.command("wage-index")
@click.argument("cbsa")
@click.option("--as-of", callback=_date, help="The date asked about (default: every year loaded).")
@click.option("--policy", type=_POLICY, default="refuse", show_default=True,
              help="A CBSA listed twice in one year's file: take the first row, the last, or refuse to choose.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@reports_errors
def wage_index(obj: Context, cbsa, as_of, policy, as_json):
    """A CBSA's wage index by year (or on a date), with the file and row it comes from.

    Example: hhkb wage-index 35614 --as-of 2024-03-01
    """
    from kb.parameters import wage_index_history, year_tables
    from kb.store import catalogue_of

    if as_json:
        from kb.answers import NotFound, dumps, wage_index_answer

        with _session(obj) as session:
            try:
                echo(dumps(wage_index_answer(session, cbsa, as_of=as_of, policy=policy)))
            except NotFound as error:
                echo(f"error: {error}", err=True)
                sys.exit(1)
        return
    with _session(obj) as session:
        if as_of:
            values = [year_tables(session, catalogue_of(session), as_of, conflict_policy=policy).wage_index_of(cbsa)]
        else:
            values = wage_index_history(session, cbsa)
    if not values:
        echo(f"CBSA {cbsa} is in no loaded wage index", err=True)
        sys.exit(1)
    table = Table("effective", "wage index", "name", "source", "note")
    for value in values:
        table.add_row(str(value.effective_from), str(value.wage_index), value.name, value.source.cite(),
                      "; ".join(n for n in (value.conflict, value.name_flag) if n))
    console.print(table)


@main.command("rules")
@click.option("--kind", help="Only entries of this kind (hh_pps_rule, correction, notice ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def rules_command(obj: Context, kind, as_json):
    """The regulation catalogue: every rule and source a change can cite.

    Example: hhkb rules --kind hh_pps_rule
    """
    from kb.store import catalogue_of

    if as_json:
        from kb.answers import dumps, rules_answer

        with _session(obj) as session:
            echo(dumps(rules_answer(session, kind)))
        return
    with _session(obj) as session:
        catalogue = catalogue_of(session)
    table = Table("id", "kind", "citation", "published", "effective", "confirmed", "title")
    for rule in catalogue.rules:
        if kind and rule.kind != kind:
            continue
        table.add_row(rule.document_id, rule.kind, rule.citation or "", str(rule.published or ""),
                      str(rule.effective or ""), "yes" if rule.confirmed else "no", rule.title)
    console.print(table)


# --- what changed ----------------------------------------------------------------------------

_FORMATS = ("html", "md", "csv", "json")


def _write_change_report(report, out: Path | None, stem: str, stdout_format: str) -> None:
    from reports import changes as render

    renderers = {"html": render.render_html, "md": render.render_markdown, "csv": render.render_csv,
                 "json": render.render_json}
    if out is not None:
        write_reports(out, stem, ((extension, partial(renderers[extension], report)) for extension in _FORMATS))
        echo(f"wrote {', '.join(str(out / f'{stem}.{e}') for e in _FORMATS)}")
    if stdout_format == "summary":
        columns = ["source", "change", "count", "watched"] + (["claims touched", "dollars"] if report.joined else [])
        table = Table(*columns)
        for line in report.summary:
            table.add_row(line.source_title, line.title, str(line.count), str(line.watched),
                          *([line.claims_touched, line.dollars] if report.joined else []))
        console.print(Text.assemble((report.title, "bold"), f": {report.total} changes"
                                    + (f" joined to {report.scope}" if report.joined else "")))
        console.print(table)
        for line in report.rules:
            console.print(f"billing rule {line.rule_id} {line.when} {line.date}: {line.claims_touched}", highlight=False)
        if report.pending:
            console.print("pending and proposed (not final):")
            for line in report.pending:
                console.print(f"  {line.entry_id} ({line.kind}): {line.status}"
                              + (f"; claims it would touch: {line.claims_touched}" if report.joined else ""), highlight=False)
    else:
        echo(renderers[stdout_format](report), nl=False)


_OUTPUT_OPTIONS = [
    click.option("--out", type=click.Path(path_type=Path), help="Write the report as HTML, Markdown, CSV and JSON here."),
    click.option("--format", "stdout_format", type=click.Choice(["summary", *_FORMATS]), default="summary",
                 show_default=True, help="What to print."),
]


def _output_options(command):
    for option in reversed(_OUTPUT_OPTIONS):
        command = option(command)
    return command


@main.group()
def diff():
    """Typed, cited changes between two HCPCS releases or two HH PPS rule years."""


@diff.command("hcpcs")
@click.argument("old")
@click.argument("new")
@_output_options
@click.pass_obj
@reports_errors
def diff_hcpcs_command(obj: Context, old, new, out, stdout_format):
    """Changes between two HCPCS releases, named by year, label, month or date.

    Example: hhkb diff hcpcs 2018 2019 --out out/
    """
    from kb.answers import hcpcs_diff_report

    with _session(obj) as session:
        report = hcpcs_diff_report(session, old, new)
    _write_change_report(report, out, f"hcpcs-{old}-{new}".replace(" ", "-"), stdout_format)


@diff.command("knowledge")
@click.option("--as-of", "effective", callback=_date, required=True, help="The effective date asked about.")
@click.option("--known-before", callback=_date, required=True, help="What CMS's files said on this date ...")
@click.option("--known-after", callback=_date, required=True, help="... against what they said on this one.")
@_output_options
@click.pass_obj
@reports_errors
def diff_knowledge_command(obj: Context, effective, known_before, known_after, out, stdout_format):
    """What CMS's files changed about one effective date between two knowledge dates (corrections).

    Example: hhkb diff knowledge --as-of 2018-03-01 --known-before 2017-12-21 --known-after 2018-01-31
    """
    from kb.corrections import knowledge_changes
    from kb.review import HOME_HEALTH_WATCH_LIST
    from reports.changes import build_change_report

    with _session(obj) as session:
        changes = knowledge_changes(session, effective=effective, known_before=known_before, known_after=known_after)
    report = build_change_report(
        changes, title=f"HCPCS on {effective} as known on {known_before} and on {known_after}",
        watch_list=HOME_HEALTH_WATCH_LIST)
    _write_change_report(report, out, f"hcpcs-known-{known_before}-{known_after}", stdout_format)


@diff.command("hhpps")
@click.argument("old_year", type=int)
@click.argument("new_year", type=int)
@click.option("--policy", type=_POLICY, default="first", show_default=True,
              help="A CBSA listed twice in one year's wage index: which row to compare.")
@_output_options
@click.pass_obj
@reports_errors
def diff_hhpps_command(obj: Context, old_year, new_year, policy, out, stdout_format):
    """Changes in HH PPS parameters from one calendar year to another.

    Example: hhkb diff hhpps 2023 2024 --format md
    """
    from kb.answers import hhpps_diff_report

    with _session(obj) as session:
        report = hhpps_diff_report(session, old_year, new_year, policy=policy)
    _write_change_report(report, out, f"hhpps-{old_year}-{new_year}", stdout_format)


@main.command()
@click.argument("year", type=int)
@click.option("--watch", multiple=True, help="Codes to put first (default: the home health codes).")
@click.option("--policy", type=_POLICY, default="first", show_default=True,
              help="A CBSA listed twice in one year's wage index: which row to compare.")
@click.option("--link", "links", multiple=True, metavar="TITLE=HREF",
              help="A link to show at the top of the review (e.g. to the impact report).")
@click.option("--agency", "agencies", multiple=True,
              help="Join every change to this agency's stored claims (repeat for several agencies).")
@click.option("--all-claims", is_flag=True, help="Join every change to all stored claims.")
@click.option("--touching-claims", is_flag=True, help="Only the changes that touch a claim (with --agency or --all-claims).")
@_output_options
@click.pass_obj
@reports_errors
def review(obj: Context, year, watch, policy, links, agencies, all_claims, touching_claims, out, stdout_format):
    """The compliance officer's annual review: everything taking effect in YEAR, by source, cited;
    with --agency, each change with the claims it touches and its dollars.

    Example: hhkb review 2024 --agency 9000000015 --out out/
    """
    from kb.answers import review_report
    from kb.review import annual_review
    from kb.review_claims import join_claims
    from kb.store import catalogue_of
    from reports.changes import Link

    parsed_links = []
    for text in links:
        title, separator, href = text.partition("=")
        if not separator or not title or not href:
            raise click.BadParameter(f"{text!r}: expected TITLE=HREF", param_hint="--link")
        parsed_links.append(Link(title, href))
    if agencies and all_claims:
        raise click.BadParameter("give --agency or --all-claims, not both", param_hint="--all-claims")
    if touching_claims and not (agencies or all_claims):
        raise click.BadParameter("needs --agency or --all-claims", param_hint="--touching-claims")
    joined = bool(agencies or all_claims)
    with _session(obj) as session:
        catalogue = catalogue_of(session)
        found = annual_review(session, catalogue, year, conflict_policy=policy)
        join = join_claims(session, catalogue, year, found.changes, agencies=agencies or None,
                           conflict_policy=policy) if joined else None
        pending = pending_lines(session, year, join)
    report = review_report(found, watch=watch, links=parsed_links, join=join, touching_only=touching_claims,
                           pending=pending)
    _write_change_report(report, out, f"review-{year}", stdout_format)

def pending_lines(session, year: int, join) -> list:
    """The pending and proposed updates the review of ``year`` shows, with the claims each would touch."""
    from kb.review_claims import pending_for_year, pending_touches
    from kb.store import catalogue_of, pending_of
    from reports.changes import PendingLine, claim_links, signed_money, touched_text

    updates = pending_for_year(pending_of(session), year)
    touches = pending_touches(session, catalogue_of(session), updates, year=year, join=join) if join else {}
    lines = []
    for update in updates:
        touch = touches.get(update.entry_id)
        links, more = claim_links(touch.claims) if touch else ((), 0)
        lines.append(PendingLine(
            update.entry_id, update.kind, update.subject_text(), update.would_change, _status_text(update, None),
            update.citation, touched_text(touch.count) if touch else ("not priced" if join else ""), links, more,
            "" if touch is None or touch.dollars is None else signed_money(touch.dollars), touch.how if touch else ""))
    return lines


def _status_text(update, as_of) -> str:
    return "; ".join(f"{s.status} {s.on}" + (f" as {s.finalised_as}" if s.finalised_as else "")
                     for s in update.history if as_of is None or s.on <= as_of)


@main.command("pending")
@click.option("--as-of", callback=_date, help="Show the updates and their status as known on this date.")
@click.pass_obj
def pending_command(obj: Context, as_of):
    """Updates that are not final: HCPCS code requests and proposed rules, with their status history.

    Example: hhkb pending --as-of 2023-08-01
    """
    from sqlmodel import Session

    from kb.store import pending_of

    with Session(obj.engine) as session:
        updates = pending_of(session)
    for update in updates:
        status = update.status_on(as_of)
        if status is None:
            continue
        state = "pending" if update.pending_on(as_of) else "closed"
        console.print(Text.assemble((update.entry_id, "bold"), f" ({update.kind}, {state}): {update.title}"))
        console.print(f"  subject: {update.subject_text()}; would change: {update.would_change}", highlight=False)
        console.print(f"  status: {_status_text(update, as_of)}", highlight=False)
        console.print(f"  cited: {update.citation}" + ("" if update.confirmed else " (not confirmed)"), highlight=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="The port to listen on.")
@click.pass_obj
def serve(obj: Context, host, port):
    """Serve the knowledge base as web pages and a JSON API (/api/..., schema at /openapi.json).

    Example: hhkb serve --port 8000   (then open http://127.0.0.1:8000/)
    """
    import uvicorn

    from kb.web import create_app

    echo(f"serving {obj.writer.url.render_as_string(hide_password=True)} on http://{host}:{port}/", err=True)
    uvicorn.run(create_app(obj.writer), host=host, port=port, log_level="warning")


from kb.cli_claims import register; register(main)  # noqa: E402, E702
from kb.cli_users import register as register_users; register_users(main)  # noqa: E402, E702
