"""Loading files into the knowledge base: recognise each file by its content, parse, store.

Each file is parsed completely before anything is written, then stored in its own transaction: a
bad file changes nothing, and the files before it stay loaded. Within a source, files are stored
in effective-date order whatever order they were named in (HCPCS files loaded by earlier calls are
re-sequenced by ``kb.hcpcs_sequence``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy.engine import Engine

from kb.database import transaction
from kb.store import FileIdentity, StoreSummary, find_release, store_hcpcs_release, store_hhpps_table
from kb.corrections import store_hcpcs_corrections
from loaders import hcpcs, hcpcs_corrections, hhpps
from loaders.errors import LoadError
from regulations.catalogue import Catalogue, load_catalogue

#: The rural add-on tables carry no date; CMS's pricer applies them to CY2019 through CY2022
#: (the add-on factors themselves, and their end, are in the regulation catalogue).
RURAL_ADDON_EFFECTIVE = date(2019, 1, 1)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class LoadReport:
    stored: list[StoreSummary] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def recognise(path: Path) -> str | None:
    """What kind of source ``path`` is, judged by its content: ``hcpcs``, ``hcpcs-corrections``,
    ``hhpps`` or None."""
    if path.stat().st_size == 0:
        raise LoadError(path, "the file is empty")
    if hhpps.is_hhpps_table(path):
        return "hhpps"
    if hcpcs.is_hcpcs_file(path):
        return "hcpcs"
    if hcpcs_corrections.is_corrections_file(path):
        return "hcpcs-corrections"
    return None


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
) -> LoadReport:
    """Load every file named (folders: every file in them that hhkb recognises).

    HCPCS releases and their corrections are stored in effective-date then publication-date
    order, whatever order they were named in, so that none has to re-sequence the others.

    A file named on its own that hhkb does not recognise is an error; inside a folder it is
    reported as skipped.
    """
    catalogue = catalogue or load_catalogue()
    report = LoadReport()
    pending: list[tuple[tuple, Callable[[], StoreSummary]]] = []
    for path, named in expand(paths):
        if on_file:
            on_file(path)
        kind = recognise(path) if named or path.stat().st_size else None
        if kind is None:
            if named:
                raise LoadError(path, "not a file hhkb knows: expected a CMS HCPCS release (zip, txt, xlsx) "
                                      "or an HH PPS pricer table (csv)")
            report.skipped.append(Skipped(path, "not a source hhkb loads"))
            continue
        identity = FileIdentity.of(path)
        if kind == "hcpcs":
            with transaction(engine) as session:
                existing = find_release(session, "hcpcs", identity.sha256)
            if existing is not None:
                report.stored.append(StoreSummary(release=existing, already_loaded=True))
                continue
            parsed = hcpcs.read_hcpcs(path, effective=effective)
            pending.append(((0, parsed.effective_date, parsed.published_date or date.min, path.name),
                            _hcpcs_step(engine, parsed, identity)))
        elif kind == "hcpcs-corrections":
            for document in hcpcs_corrections.read_corrections(path):
                corrected_release = date(document.release_year, 1, 1)
                pending.append(((0, corrected_release, document.knowledge_date, path.name, document.version),
                                _corrections_step(engine, document, identity)))
        else:
            table = hhpps.read_hhpps_table(path)
            report.warnings.extend(f"{path.name}: {warning}" for warning in table.warnings)
            pending.append(((1, table.effective_date or RURAL_ADDON_EFFECTIVE, date.min, path.name),
                            _hhpps_step(engine, table, identity, catalogue)))
    for _key, step in sorted(pending, key=lambda item: item[0]):
        report.stored.append(step())
    return report


def _hcpcs_step(engine: Engine, parsed, identity: FileIdentity) -> Callable[[], StoreSummary]:
    def step() -> StoreSummary:
        with transaction(engine) as session:
            return store_hcpcs_release(session, parsed, identity)

    return step


def _corrections_step(engine: Engine, document, identity: FileIdentity) -> Callable[[], StoreSummary]:
    def step():
        with transaction(engine) as session:
            return store_hcpcs_corrections(session, document, identity)

    return step


def _hhpps_step(engine: Engine, table, identity: FileIdentity, catalogue: Catalogue) -> Callable[[], StoreSummary]:
    if table.effective_date is not None:
        effective, effective_basis = table.effective_date, "the effectiveDate column of its rows"
    else:
        effective = RURAL_ADDON_EFFECTIVE
        effective_basis = "undated table; CMS's pricer applies the rural add-on tables from CY2019"
    rule = next(
        (r for r in catalogue.rules if r.kind == "hh_pps_rule" and r.effective == effective and not r.corrects),
        None,
    )
    if rule is not None and rule.published is not None:
        published, published_basis, regulation = rule.published, f"publication of {rule.document_id} ({rule.citation})", rule.document_id
    else:
        published, published_basis, regulation = None, "", None

    def step() -> StoreSummary:
        with transaction(engine) as session:
            return store_hhpps_table(
                session, table, identity,
                effective_date=effective, effective_date_basis=effective_basis,
                published_date=published, published_date_basis=published_basis, regulation=regulation,
            )

    return step
