"""Loading files into the knowledge base: recognise each file by its content, parse, store.

Each file is parsed completely before anything is written. A load then stores its files in one
transaction holding the database's write lock (``kb.database.writing``), each file in a savepoint:
two loads at once give what one after the other gives, a multi-document source (the versions of a
corrections zip) is never split by another load, a load killed mid-way leaves the database as it
was, and a file refused while storing changes nothing while the files before it stay loaded.
Within a source, files are stored in effective-date order whatever order they were named in (HCPCS
files loaded by earlier calls are re-sequenced by ``kb.hcpcs_sequence``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.database import DEFAULT_WAIT, transaction, writing
from kb.store import (
    FileIdentity,
    StoreSummary,
    catalogue_of,
    find_release,
    store_catalogue_release,
    store_hcpcs_change_report,
    store_hcpcs_release,
    store_hhpps_table,
    store_pending_release,
    store_scenario_release,
)
from kb.corrections import store_hcpcs_corrections
from loaders import hcpcs, hcpcs_changes, hcpcs_corrections, hhpps
from loaders.archives import is_zip, open_zip, read_member
from loaders.errors import LoadError
from loaders.strict_yaml import read_text
from regulations.catalogue import Catalogue, is_catalogue_file, parse_catalogue
from regulations.pending import is_pending_file, parse_pending
from regulations.scenario import is_scenario_file, parse_scenario

#: The rural add-on tables carry no date; CMS's pricer applies them to CY2019 through CY2022
#: (the add-on factors themselves, and their end, are in the regulation catalogue).
RURAL_ADDON_EFFECTIVE = date(2019, 1, 1)


@dataclass(frozen=True)
class Skipped:
    """A file a folder load did not store, and why; ``documentation`` when it is CMS's prose about
    the data (a record layout, a readme) rather than data."""

    path: Path
    reason: str
    documentation: bool = False


@dataclass
class LoadReport:
    stored: list[StoreSummary] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def recognise(path: Path) -> str | None:
    """What kind of source ``path`` is, judged by its content: ``hcpcs``, ``hcpcs-corrections``,
    ``hhpps``, ``hcpcs-change-report``, ``catalogue`` (rule years as data), ``pending`` (updates not
    final yet), ``scenario`` (a what-if over a rule year) or None. A file that comes
    close to a known kind without being one (a pricer table that lacks a column) raises
    ``LoadError`` saying why."""
    if path.stat().st_size == 0:
        raise LoadError(path, "the file is empty")
    if is_catalogue_file(path):
        return "catalogue"
    if is_pending_file(path):
        return "pending"
    if is_scenario_file(path):
        return "scenario"
    table = hhpps.recognise_table(path)
    if isinstance(table, hhpps.HeaderProblem):
        raise LoadError(path, table.message, line=1, field=table.field)
    if table is not None:
        return "hhpps"
    if hcpcs.is_hcpcs_file(path):
        return "hcpcs"
    if hcpcs_corrections.is_corrections_file(path):
        return "hcpcs-corrections"
    if hcpcs_changes.is_change_report(path):
        return "hcpcs-change-report"
    return None


#: CMS's documentation shipped beside the data: named in a folder load, never stored.
_RECORD_LAYOUT = re.compile(rb"CMS RIF REPORT")
_README_NAME = re.compile(r"readme|proc_notes", re.IGNORECASE)
_DOCUMENT_BYTES = 8 * 1024 * 1024


def documentation(path: Path) -> str | None:
    """What kind of CMS documentation ``path`` is (a record layout, a readme), or None; a zip is
    documentation when every member is."""
    if _README_NAME.search(path.name):
        return "CMS readme"
    data = path.read_bytes()
    if not is_zip(data):
        return "CMS record layout" if _RECORD_LAYOUT.search(data[:4096]) else None
    try:
        with open_zip(data, str(path)) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            kinds = {
                "CMS readme" if _README_NAME.search(info.filename)
                else "CMS record layout" if _RECORD_LAYOUT.search(
                    read_member(archive, info, f"{path}!{info.filename}", limit=_DOCUMENT_BYTES)[:4096])
                else None
                for info in members
            }
    except LoadError:
        return None
    return kinds.pop() if members and len(kinds) == 1 and None not in kinds else None


def expand(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """Each file named, and the files inside each folder named, with whether it was named itself."""
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise LoadError(path, "no such file or folder")
        if path.is_dir():
            found.extend((p, False) for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
        else:
            found.append((path, True))
    return found


def load_files(
    engine: Engine,
    paths: Iterable[str | Path],
    *,
    effective: date | None = None,
    catalogue: Catalogue | None = None,
    on_file: Callable[[Path], None] | None = None,
    strict: bool = False,
    wait: float = DEFAULT_WAIT,
    on_wait: Callable[[str], None] | None = None,
) -> LoadReport:
    """Load every file named (folders: every file in them that hhkb recognises).

    HCPCS releases and their corrections are stored in effective-date then publication-date
    order, whatever order they were named in, so that none has to re-sequence the others.

    A file named on its own that hhkb does not recognise is an error; inside a folder it is
    reported as skipped, with the reason (CMS's documentation is named as such). ``strict`` makes
    any skipped file other than documentation an error, raised before anything is stored.

    Storing waits up to ``wait`` seconds for another load of the same database to finish
    (``on_wait`` is told when it starts waiting), then raises ``kb.database.DatabaseBusy``.
    """
    catalogues = _Catalogues(catalogue)
    report = LoadReport()
    pending: list[tuple[tuple, Callable[[Session], StoreSummary]]] = []
    releases_by_folder: dict[Path, list[FileIdentity]] = {}
    change_reports: list[tuple[Path, FileIdentity]] = []
    for path, named in expand(paths):
        if on_file:
            on_file(path)
        try:
            kind = recognise(path)
        except LoadError as error:
            if named:
                raise
            report.skipped.append(Skipped(path, error.message))
            continue
        if kind is None:
            if named:
                raise LoadError(path, "not a file hhkb knows: expected a CMS HCPCS release (zip, txt, xlsx), "
                                      "HCPCS corrections, an HH PPS pricer table (csv), a rule catalogue "
                                      "(YAML starting 'regulations:'), pending updates ('pending:') or a what-if "
                                      "scenario ('scenario:')")
            report.skipped.append(_unrecognised(path))
            continue
        identity = FileIdentity.of(path)
        if kind == "hcpcs":
            releases_by_folder.setdefault(path.parent, []).append(identity)
            with transaction(engine) as session:
                existing = find_release(session, "hcpcs", identity.sha256)
            if existing is not None:
                report.stored.append(StoreSummary(release=existing, already_loaded=True))
                continue
            parsed = hcpcs.read_hcpcs(path, effective=effective)
            pending.append(((0, parsed.effective_date, parsed.published_date or date.min, path.name),
                            _hcpcs_step(parsed, identity)))
        elif kind == "hcpcs-change-report":
            with transaction(engine) as session:
                existing = find_release(session, "hcpcs-change-report", identity.sha256)
            if existing is not None:
                report.stored.append(StoreSummary(release=existing, already_loaded=True))
                continue
            change_reports.append((path, identity))
        elif kind == "hcpcs-corrections":
            for document in hcpcs_corrections.read_corrections(path):
                corrected_release = date(document.release_year, 1, 1)
                pending.append(((0, corrected_release, document.knowledge_date or corrected_release, path.name,
                                 document.version),
                                _corrections_step(document, identity)))
        elif kind == "catalogue":
            text = read_text(path)
            entries = parse_catalogue(text, path, check_references=False).rules
            effective = min((rule.effective for rule in entries if rule.effective), default=date.min)
            pending.append(((-1, effective, path.name), _catalogue_step(path, text, identity, catalogues)))
        elif kind in ("pending", "scenario"):
            text = read_text(path)
            (parse_pending if kind == "pending" else parse_scenario)(text, path)  # a bad file stops the load here
            pending.append(((3, date.min, date.min, path.name), _text_step(kind, path, text, identity)))
        else:
            table = hhpps.read_hhpps_table(path)
            report.warnings.extend(f"{path.name}: {warning}" for warning in table.warnings)
            pending.append(((1, table.effective_date or RURAL_ADDON_EFFECTIVE, date.min, path.name),
                            _hhpps_step(table, identity, catalogues)))
    for path, identity in change_reports:
        pending.append(((2, date.min, date.min, path.name),
                        _change_report_step(path, identity, releases_by_folder.get(path.parent, []))))
    refused = [skipped for skipped in report.skipped if not skipped.documentation]
    if strict and refused:
        first = refused[0]
        raise LoadError(first.path, f"skipped ({first.reason}) and --strict refuses skipped files"
                        + (f"; {len(refused) - 1} more skipped" if len(refused) > 1 else ""))
    if pending:
        _store(engine, [step for _key, step in sorted(pending, key=lambda item: item[0])], report,
               wait=wait, on_wait=on_wait)
    return report


def _store(engine: Engine, steps: list[Callable[[Session], StoreSummary]], report: LoadReport, *,
           wait: float, on_wait: Callable[[str], None] | None) -> None:
    """Every step in one transaction under the write lock, each in a savepoint: a step refused
    with ``LoadError`` is undone alone, the steps before it are committed, and the error raised."""
    refused: LoadError | None = None
    with writing(engine, wait=wait, on_wait=on_wait) as session:
        for step in steps:
            try:
                with session.begin_nested():
                    summary = step(session)
            except LoadError as error:
                refused = error
                break
            report.stored.append(summary)
    if refused is not None:
        raise refused


def _unrecognised(path: Path) -> Skipped:
    """A file of a folder that is no source: CMS's documentation says so, anything else is named."""
    described = documentation(path)
    if described is not None:
        return Skipped(path, described, documentation=True)
    return Skipped(path, "not a source hhkb loads")


def _hcpcs_step(parsed, identity: FileIdentity) -> Callable[[Session], StoreSummary]:
    def step(session: Session) -> StoreSummary:
        return store_hcpcs_release(session, parsed, identity)

    return step


def _change_report_step(path: Path, identity: FileIdentity,
                        beside: list[FileIdentity]) -> Callable[[Session], StoreSummary]:
    """CMS's change report of a quarter names no date: it reports on the HCPCS release file loaded
    beside it (the same folder, the same load), whose dates it takes."""
    if len(beside) != 1:
        found = "no HCPCS release file" if not beside else f"{len(beside)} HCPCS release files"
        raise LoadError(path, f"a CMS change report names no date; it takes the dates of the HCPCS release "
                              f"loaded beside it in the same folder, and this load has {found} there: "
                              f"load the folder ({path.parent})")
    parsed = hcpcs_changes.read_hcpcs_changes(path)
    (release_identity,) = beside

    def step(session: Session) -> StoreSummary:
        describes = find_release(session, "hcpcs", release_identity.sha256)
        return store_hcpcs_change_report(session, parsed, identity, describes=describes)

    return step


def _corrections_step(document, identity: FileIdentity) -> Callable[[Session], StoreSummary]:
    def step(session: Session):
        return store_hcpcs_corrections(session, document, identity)

    return step


class _Catalogues:
    """The catalogue a load dates pricer tables by: the one given, else the database's, read again
    after a catalogue file of the same load is stored (rule files are stored before tables)."""

    def __init__(self, given: Catalogue | None):
        self.given = given
        self._read: Catalogue | None = None

    def changed(self) -> None:
        self._read = None

    def of(self, session) -> Catalogue:
        if self.given is not None:
            return self.given
        if self._read is None:
            self._read = catalogue_of(session)
        return self._read


def _catalogue_step(path: Path, text: str, identity: FileIdentity,
                    catalogues: _Catalogues) -> Callable[[Session], StoreSummary]:
    def step(session: Session) -> StoreSummary:
        summary = store_catalogue_release(session, path, text, identity)
        catalogues.changed()
        return summary

    return step


def _text_step(kind: str, path: Path, text: str, identity: FileIdentity) -> Callable[[Session], StoreSummary]:
    store = store_pending_release if kind == "pending" else store_scenario_release

    def step(session: Session) -> StoreSummary:
        return store(session, path, text, identity)

    return step


def _hhpps_step(table, identity: FileIdentity, catalogues: _Catalogues) -> Callable[[Session], StoreSummary]:
    if table.effective_date is not None:
        effective, effective_basis = table.effective_date, "the effectiveDate column of its rows"
    else:
        effective = RURAL_ADDON_EFFECTIVE
        effective_basis = "undated table; CMS's pricer applies the rural add-on tables from CY2019"

    def step(session: Session) -> StoreSummary:
        rule = next(
            (r for r in catalogues.of(session).rules
             if r.kind == "hh_pps_rule" and r.effective == effective and not r.corrects),
            None,
        )
        if rule is not None and rule.published is not None:
            published, published_basis, regulation = (
                rule.published, f"publication of {rule.document_id} ({rule.citation})", rule.document_id)
        else:  # knowledge time comes from the source, never from the clock
            published, published_basis, regulation = effective, (
                "no rule in the catalogue dates this table (load the year's rule as a catalogue file): "
                "taken as known from its effective date"), None
        return store_hhpps_table(
            session, table, identity,
            effective_date=effective, effective_date_basis=effective_basis,
            published_date=published, published_date_basis=published_basis, regulation=regulation,
        )

    return step
