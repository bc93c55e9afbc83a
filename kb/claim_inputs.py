"""Pricing inputs a claim does not carry, supplied by the user: stored, and read back per claim.

CMS's pricer is given the day the notice of admission was received, the agency's VBP adjustment
factor and whether a same-agency readmission made the period partial; a claims file has none of
them (docs/pricing-inputs.md). :func:`load_supplied_inputs` stores a file of them
(``loaders.claim_inputs``) as a release of source ``pricing_inputs``, one transaction per file;
loading the same file again changes nothing. When two files supply the same input (an agency's
factor for a year, a claim's NOA date), the file loaded last wins.

:class:`SuppliedInputs` reads them all once and answers, per claim, what was supplied and from
which file and line, and what was not: the pricer then assumes the input absent (a timely NOA, a
factor of 1, no readmission), and its trace and the impact report say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.database import transaction
from kb.models import AgencyVbpFactor, ClaimSuppliedInput, Release
from kb.store import FileIdentity, StoreSummary, add_release, find_release
from loaders.claim_inputs import SuppliedInputs as ParsedInputs
from loaders.claim_inputs import read_supplied_inputs
from loaders.errors import LoadError

SOURCE = "pricing_inputs"


def store_supplied_inputs(session: Session, parsed: ParsedInputs, identity: FileIdentity) -> StoreSummary:
    """Record one pricing-inputs file as a release with its rows (the caller's transaction)."""
    existing = find_release(session, SOURCE, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    what = "VBP adjustment factors" if parsed.kind == "vbp" else "claim pricing inputs"
    release = add_release(
        session, source=SOURCE, label=f"{what} ({identity.name})"[:80], file_format="csv", identity=identity,
        member=None, effective_date=date.today(), effective_date_basis="supplied data: the day it was loaded",
        published_date=date.today(), published_date_basis="supplied data: the day it was loaded",
        record_count=len(parsed.rows),
    )
    if parsed.kind == "vbp":
        rows = [{"release_id": release.id, "agency_id": r.agency_id, "year": r.year, "factor": r.factor,
                 "source_row": r.row} for r in parsed.rows]
        model = AgencyVbpFactor
    else:
        rows = [{"release_id": release.id, "agency_id": r.agency_id, "claim_id": r.claim_id,
                 "noa_received": r.noa_received, "readmitted_in_period": r.readmitted_in_period,
                 "source_row": r.row} for r in parsed.rows]
        model = ClaimSuppliedInput
    for name, limit in (("agency_id", 20), ("claim_id", 40)):
        for row, parsed_row in zip(rows, parsed.rows):
            if name in row and len(row[name]) > limit:
                raise LoadError(identity.name, f"{len(row[name])} characters, more than the {limit} kept",
                                line=parsed_row.row, field=name)
    session.execute(sa.insert(model), rows)
    return StoreSummary(release=release, already_loaded=False, records=len(rows), new_versions=len(rows))


def load_supplied_inputs(engine: Engine, paths: Iterable[str | Path]) -> list[StoreSummary]:
    """Load pricing-inputs files, each in its own transaction; LoadError leaves that file unloaded."""
    summaries = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise LoadError(path, "no such file")
        parsed = read_supplied_inputs(path)
        identity = FileIdentity.of(path)
        with transaction(engine) as session:
            summaries.append(store_supplied_inputs(session, parsed, identity))
    return summaries


@dataclass(frozen=True)
class Supplied:
    """One supplied value and where it came from (file and line)."""

    value: object
    source: str


@dataclass(frozen=True)
class ClaimInputs:
    """What was supplied for one claim; None: not supplied (the pricer assumes it absent)."""

    year: int  # the year whose VBP factor applies: the claim's own, chosen by its through date
    noa_received: Supplied | None = None
    vbp_factor: Supplied | None = None
    readmitted_in_period: Supplied | None = None

    @property
    def supplied(self) -> tuple[str, ...]:
        """The names of the inputs supplied (``noa``, ``vbp``, ``readmission``)."""
        names = (("noa", self.noa_received), ("vbp", self.vbp_factor), ("readmission", self.readmitted_in_period))
        return tuple(name for name, value in names if value is not None)


class SuppliedInputs:
    """Every supplied input, read once (later files win), answered per claim."""

    def __init__(self, session: Session, *, agency: str | None = None):
        self.claims: dict[tuple[str, str], dict[str, Supplied]] = {}
        self.vbp: dict[tuple[str, int], Supplied] = {}
        claim_rows = (
            sa.select(ClaimSuppliedInput.agency_id, ClaimSuppliedInput.claim_id, ClaimSuppliedInput.noa_received,
                      ClaimSuppliedInput.readmitted_in_period, ClaimSuppliedInput.source_row, Release.file_name)
            .join(Release, Release.id == ClaimSuppliedInput.release_id)
            .order_by(Release.id, ClaimSuppliedInput.source_row)
        )
        vbp_rows = (
            sa.select(AgencyVbpFactor.agency_id, AgencyVbpFactor.year, AgencyVbpFactor.factor,
                      AgencyVbpFactor.source_row, Release.file_name)
            .join(Release, Release.id == AgencyVbpFactor.release_id)
            .order_by(Release.id, AgencyVbpFactor.source_row)
        )
        if agency is not None:
            claim_rows = claim_rows.where(ClaimSuppliedInput.agency_id == agency)
            vbp_rows = vbp_rows.where(AgencyVbpFactor.agency_id == agency)
        for agency_id, claim_id, noa_received, readmitted, row, file_name in session.execute(claim_rows):
            entry = self.claims.setdefault((agency_id, claim_id), {})
            where = f"{file_name} line {row}"
            if noa_received is not None:
                day = noa_received if isinstance(noa_received, date) else date.fromisoformat(noa_received)
                entry["noa"] = Supplied(day, where)
            if readmitted is not None:
                entry["readmission"] = Supplied(bool(readmitted), where)
        for agency_id, year, factor, row, file_name in session.execute(vbp_rows):
            self.vbp[(agency_id, year)] = Supplied(Decimal(factor), f"{file_name} line {row}")

    def __bool__(self) -> bool:
        return bool(self.claims or self.vbp)

    def of(self, agency_id: str, claim_id: str, year: int) -> ClaimInputs:
        entry = self.claims.get((agency_id, claim_id), {})
        return ClaimInputs(year, entry.get("noa"), self.vbp.get((agency_id, year)), entry.get("readmission"))
