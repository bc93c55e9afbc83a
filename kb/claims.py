"""An agency's claims in the knowledge base: store a claims file, read claims back, price them.

Storing
    A claims file (837I or the claims CSV) becomes one ``release`` row of source ``claims``: its
    effective date is the earliest statement period start among its claims, its published date the
    day it was loaded. Claims and lines go in with :func:`kb.bulk.insert_rows`, the whole file in
    one transaction. Loading the same file again (same sha256) is a no-op; a claim already loaded
    from another file (same agency, claim id and type of bill) is an error naming both files.

Bad claims
    :func:`load_claims_files` recognises 837I and CSV by their content. A claim the reader cannot
    read (a bad date, a service line without a revenue code ...) is reported with the file, the
    segment or row and what is wrong, and skipped; the file's other claims load. A file that cannot
    be read at all (not X12, cut short, a CSV header without a column) raises ``LoadError`` and
    changes nothing.

The beneficiary hash key
    Member identifiers are never stored: the readers replace them with an HMAC-SHA256 under a
    key. :func:`beneficiary_hash_key` takes it from ``HHKB_BENEFICIARY_KEY``; otherwise, for a
    SQLite database, from a file beside it (``<database>.beneficiary-key``, created by the first
    claims load with 32 random bytes, readable by its owner only). A PostgreSQL database has no
    file beside it, so there the variable must be set. Messages never quote member ids or names.

    The same key must be used for every load of one database, or one beneficiary gets two keys and
    the impact's adjustment and void matching fails. So the first claims load stores the key's
    fingerprint (an HMAC of a fixed text under the key, never the key) and every later use checks
    it: another key is refused, and a lost key file is never replaced by a new key while the
    database holds claims or a fingerprint. A key is only made when it is stored with the
    database's fingerprint: a command that only reads (``hhkb check`` of files) leaves no key file
    behind, and with no key hashes its files under a key of its own run.

Pricing
    :func:`to_period_claim` turns a stored claim into the pricer's ``PeriodClaim`` with one
    year's tables; :func:`price_claim` prices a claim under the parameters in force on its
    through date, or on January 1 of another year ("what would it pay under 2024's rules").

    The year is chosen by the through date, as CMS's pricer chooses it: its driver (HHDRV) calls
    the new year's calculator when the through date is after December 31, and takes the wage index
    and rates in effect on the through date. A period from 2021-12-15 to 2022-01-13 is priced
    entirely under CY2022's catalogue constants, tables and wage index.

Rural add-on (CY2019-2022)
    As CMS's pricer finds the county's category (:func:`rural_add_on_category`): a rural CBSA
    (999SS) looks the county (value code 85) up in ``add-on-table.csv`` and a county missing there
    is refused (return code 31: no payment); any other CBSA looks it up in
    ``extra-add-on-table.csv`` from CY2021 (:data:`EXTRA_ADD_ON_LOOKUP_FROM`). The 500xx CBSAs of
    :data:`PRICER_RURAL_CBSAS` only choose the rural rate columns; they give no add-on.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import os
import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.bulk import insert_rows
from kb.claim_inputs import ClaimInputs, SuppliedInputs
from kb.database import sqlite_file, transaction, writing
from kb.models import AgencyClaim, AgencyClaimLine, BeneficiaryKeyFingerprint, Release
from kb.parameters import ConflictPolicy, ParameterError, YearTables, year_tables
from kb.pricing import ClaimLine as PricingLine
from kb.pricing import (
    TRANSFER_CONDITION_CODE,
    PeriodClaim,
    PricingError,
    PricingParameters,
    PricingResult,
    price_period,
)
from kb.store import FileIdentity, StoreSummary, add_release, catalogue_of, find_release
from loaders.claim_record import Claim, ClaimLine
from loaders.claims_csv import CLAIM_COLUMNS as CSV_CLAIM_COLUMNS
from loaders.claims_csv import COLUMNS as CSV_COLUMNS
from loaders.claims_csv import read_claims_csv
from loaders.errors import LoadError
from loaders.x12_837i import ClaimProblem, read_837i
from regulations.catalogue import Catalogue

SOURCE = "claims"
BENEFICIARY_KEY_VARIABLE = "HHKB_BENEFICIARY_KEY"
BENEFICIARY_KEY_SUFFIX = ".beneficiary-key"

#: How a tuple field is kept in one text column, and a (code, value) pair inside it.
LIST_SEPARATOR = "|"
PAIR_SEPARATOR = "="

#: Claim frequency (fourth character of the type of bill) of an adjustment and of a void.
ADJUSTMENT_FREQUENCY = "7"
VOID_FREQUENCY = "8"

#: CBSAs whose claims CMS's HH pricer pays at the rural rates besides the 999SS rural areas: the
#: pricer's driver (HHDRV, 88-level ``HHA-CBSA-RURAL-CHECK-ALL``) lists these codes, and takes the
#: rural columns of the revenue table when the CBSA begins with 999 (``HHA-CBSA-RURAL-CHECK``) or
#: is one of them. They choose rate columns only: no rural add-on comes from this list (the add-on
#: is found by county, :func:`rural_add_on_category`).
PRICER_RURAL_CBSAS = frozenset(
    "50001 50002 50005 50007 50025 50028 50031 50035 50036 50037 50041 50045 50047 50048 50050 "
    "50056 50057 50066 50068 50071 50073 50080 50084 50087 50089 50090 50091 50103 50104 50111 "
    "50115 50117 50118 50120 50121 50139 50146 50147 50149 50151 50164 50165 50168 50169 50173 "
    "50174 50177 50180 50182 50183".split()
)

#: The first year whose calculator looks a county of a CBSA that is not rural up in the extra
#: add-on table. CY2021: CMS's Java pricer (gov.cms.fiss.pricers.hha.core.Hha2021RulePricer) runs
#: ValidateExtraCountyCode after ValidateCountyCode; CY2020's calculator (HHCAL200) has no such
#: lookup. CY2022: its calculator's source is not in the sources reached; the lookup is taken to
#: apply, because the comment of both rules reads "From 1/1/2019 through 12/31/2023 ... eligible
#: urban county codes are in extra-add-on-table.csv" (every add-on year, not CY2021 alone), and the
#: table lists the 47 counties that became urban with the CBSA delineations adopted for CY2021
#: (OMB Bulletin 18-04), still in force in CY2022, while the county categories were fixed for the
#: whole CY2019-2022 add-on (BBA 2018 sec. 50208).
EXTRA_ADD_ON_LOOKUP_FROM = 2021
#: The return code of CMS's pricer for a rural CBSA whose county is not in the add-on table.
INVALID_COUNTY_RETURN_CODE = "31"
#: Years where CMS's own pricer and the rules disagree on the rural add-on: said in the trace of
#: every claim of a rural CBSA such a year prices, and in the impact report.
RURAL_ADD_ON_OPEN_QUESTIONS = {
    2023: (
        "open question: the rural add-on ended with CY2022 (BBA 2018 sec. 50208: periods ending in "
        "CY2019-2022), and hhkb applies none in CY2023; but CMS's CY2023 pricer context "
        "(gov.cms.fiss.pricers.hha.core.Hha2023PricerContext) still declares RURAL_ADDON_B_2023 = 1.010 "
        "(A and C 1.000), and its county rules carry the comment 'From 1/1/2019 through 12/31/2023'; "
        "whether CMS's pricer applies it in CY2023 is not settled"
    ),
}

_CLAIM_COLUMNS = (
    "release_id", "agency_id", "claim_id", "type_of_bill", "period_from", "period_through", "admission_date",
    "admission_source", "patient_status", "hipps", "cbsa", "fips_county", "quality_data_submitted",
    "review_tracking_number", "state", "diagnoses", "condition_codes", "occurrence_codes", "value_codes",
    "beneficiary_key", "source_segment",
)
_LINE_COLUMNS = (
    "claim_pk", "line_number", "revenue_code", "hcpcs", "hipps", "modifiers", "units", "charge", "service_date",
)


def _column_limits(model, names: Iterable[str]) -> dict[str, int]:
    limits = {}
    for name in names:
        length = getattr(model.__table__.c[name].type, "length", None)
        if length:
            limits[name] = length
    return limits


_CLAIM_LIMITS = _column_limits(AgencyClaim, _CLAIM_COLUMNS)
_LINE_LIMITS = _column_limits(AgencyClaimLine, _LINE_COLUMNS)


# --------------------------------------------------------------------------------------------
# The beneficiary hash key


#: What the stored fingerprint is an HMAC-SHA256 of, under the key.
_FINGERPRINT_TEXT = b"hhkb beneficiary key fingerprint, version 1"


def key_fingerprint(key: bytes) -> str:
    """The fingerprint the database keeps of ``key``: it tells keys apart and reveals nothing of them."""
    return hmac.new(key, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()


def beneficiary_hash_key(engine: Engine, *, storing: bool = False) -> bytes:
    """The key the readers hash member identifiers with, for this database (see the module doc).

    ``storing``: the hashes will be stored (a claims load): a key is made when there is none yet,
    and its fingerprint kept. Without it, and with no key, a key of this run only is returned.
    Raises ``LoadError`` for a key other than the database's, or a key lost from a database that
    holds claims.
    """
    where = engine.url.render_as_string(hide_password=True)
    key_file = _key_file(engine)
    value = os.environ.get(BENEFICIARY_KEY_VARIABLE)
    if value:
        key, source = value.encode("utf-8"), BENEFICIARY_KEY_VARIABLE
    elif key_file is not None and key_file.exists():
        key, source = key_file.read_text().strip().encode("utf-8"), str(key_file)
    elif storing and key_file is None:
        raise LoadError(where, f"set {BENEFICIARY_KEY_VARIABLE} to the secret that keys the beneficiary hash "
                               f"of this database")
    else:
        key, source = None, None
    stored, holds_claims = _stored_fingerprint(engine)
    if key is None:
        if stored is not None or holds_claims:
            raise LoadError(
                key_file or where,
                f"the beneficiary key of this database is missing (no {BENEFICIARY_KEY_VARIABLE} and no key file), "
                f"and its claims were hashed under a key with fingerprint {stored[:16] if stored else 'unrecorded'}: "
                f"restore the key file from its backup (a new key would give the same beneficiaries other hashes)")
        if not storing:
            return secrets.token_hex(32).encode("utf-8")
        return _make_key(engine, key_file)
    fingerprint = key_fingerprint(key)
    if stored is not None and stored != fingerprint:
        raise LoadError(
            source,
            f"this beneficiary key (fingerprint {fingerprint[:16]}) is not the key this database's claims were "
            f"hashed with (fingerprint {stored[:16]}): use that key (see the README on its backup)")
    return key


def _key_file(engine: Engine) -> Path | None:
    database = sqlite_file(engine.url)
    return None if database is None else Path(str(database) + BENEFICIARY_KEY_SUFFIX)


def _stored_fingerprint(engine: Engine) -> tuple[str | None, bool]:
    """The fingerprint kept in the database, and whether it holds any claim."""
    with Session(engine) as session:
        stored = session.execute(sa.select(BeneficiaryKeyFingerprint.fingerprint)).scalar()
        holds_claims = session.execute(sa.select(AgencyClaim.id).limit(1)).first() is not None
    return stored, holds_claims


def _record_fingerprint(session: Session, fingerprint: str) -> None:
    if session.execute(sa.select(BeneficiaryKeyFingerprint.id)).first() is None:
        session.add(BeneficiaryKeyFingerprint(id=1, fingerprint=fingerprint))
        session.flush()


def _make_key(engine: Engine, key_file: Path) -> bytes:
    """A new key, written beside the database only once its fingerprint could be written to the
    database (a database that cannot be written gets no key file); a load that stored one first
    (under the write lock) is followed."""
    key = secrets.token_hex(32).encode("utf-8")
    created = False
    try:
        with writing(engine) as session:
            if session.execute(sa.select(BeneficiaryKeyFingerprint.id)).first() is not None:
                session.rollback()
                return beneficiary_hash_key(engine, storing=True)
            _record_fingerprint(session, key_fingerprint(key))
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
            with os.fdopen(descriptor, "w") as stream:
                stream.write(key.decode("ascii") + "\n")
            session.rollback()  # the fingerprint is stored with the first claims (kb.claims.load_claims_files)
    except BaseException:
        if created:
            key_file.unlink(missing_ok=True)
        raise
    return key


# --------------------------------------------------------------------------------------------
# Storing


def claim_problem(claim: Claim) -> tuple[str, str] | None:
    """(field, what is wrong) when the claim cannot be stored as it is, else None."""
    if not claim.agency_id or not claim.claim_id:
        return "claim_id", "no agency or claim identifier"
    if claim.period_through < claim.period_from:
        return "period_through", f"{claim.period_through} is before the period start {claim.period_from}"
    values = (
        ("agency_id", claim.agency_id), ("claim_id", claim.claim_id), ("type_of_bill", claim.type_of_bill),
        ("admission_source", claim.admission_source), ("patient_status", claim.patient_status),
        ("hipps", claim.hipps), ("cbsa", claim.cbsa), ("fips_county", claim.fips_county),
        ("review_tracking_number", claim.review_tracking_number), ("state", claim.state),
        ("beneficiary_key", claim.beneficiary_key),
    )
    for name, value in values:
        if value is not None and len(value) > _CLAIM_LIMITS[name]:
            return name, f"{len(value)} characters, more than the {_CLAIM_LIMITS[name]} kept"
    for name, value in _list_columns(claim).items():
        if len(value) > _CLAIM_LIMITS[name]:
            return name, f"{len(value)} characters, more than the {_CLAIM_LIMITS[name]} kept"
    revenue_limit, code_limit, modifiers_limit = _LINE_LIMITS["revenue_code"], _LINE_LIMITS["hcpcs"], _LINE_LIMITS["modifiers"]
    for line in claim.lines:
        if (len(line.revenue_code) > revenue_limit or (line.hcpcs and len(line.hcpcs) > code_limit)
                or (line.hipps and len(line.hipps) > code_limit)
                or (line.modifiers and len(LIST_SEPARATOR.join(line.modifiers)) > modifiers_limit)):
            return "line", f"line {line.line_number}: a revenue code, code or modifiers longer than the columns keep"
    return None


def _list_columns(claim: Claim) -> dict[str, str]:
    return {
        "diagnoses": LIST_SEPARATOR.join(claim.diagnoses),
        "condition_codes": LIST_SEPARATOR.join(claim.condition_codes),
        "occurrence_codes": LIST_SEPARATOR.join(f"{code}{PAIR_SEPARATOR}{day.isoformat()}" for code, day in claim.occurrence_codes),
        "value_codes": LIST_SEPARATOR.join(f"{code}{PAIR_SEPARATOR}{amount}" for code, amount in claim.value_codes),
    }


#: Claims inserted per batch: a file of any size is stored in bounded memory, in one transaction.
STORE_BATCH = 5000


def store_claims(
    session: Session, claims: Iterable[Claim], identity: FileIdentity, *, file_format: str,
    label: str | None = None,
) -> StoreSummary:
    """Record a claims file as a release with its claims and lines (the caller's transaction).

    ``claims`` may be a stream: they are inserted in batches of :data:`STORE_BATCH`, and the
    release's effective date (and, when ``label`` is None, its label) set from them at the end.
    Raises LoadError for a file without claims, a claim listed twice in the file, a claim that
    cannot be stored (:func:`claim_problem`), or a claim already loaded from another file; the
    caller's transaction then rolls everything back.
    """
    existing = find_release(session, SOURCE, identity.sha256)
    if existing is not None:
        return StoreSummary(release=existing, already_loaded=True)
    release = add_release(
        session, source=SOURCE, label=label or f"claims ({identity.name})"[:80], file_format=file_format,
        identity=identity, member=None, effective_date=date.max,
        effective_date_basis="the earliest statement period start among the file's claims",
        published_date=date.today(), published_date_basis="a claims file: the day it was loaded", record_count=0,
    )
    connection = session.connection()
    first_seen: dict[tuple[str, str, str], int] = {}
    agencies: set[str] = set()
    earliest = latest = None
    line_count = 0
    batch: list[Claim] = []

    def flush() -> None:
        nonlocal line_count
        _refuse_claims_loaded_elsewhere(session, identity, batch, release.id)
        line_count += _insert_batch(connection, release.id, batch)
        batch.clear()

    for claim in claims:
        key = (claim.agency_id, claim.claim_id, claim.type_of_bill)
        if key in first_seen:
            raise LoadError(
                identity.name,
                f"claim {claim.claim_id} (agency {claim.agency_id}, type of bill {claim.type_of_bill}) is listed "
                f"twice (first at {first_seen[key]})",
                line=claim.source_segment, field="claim_id",
            )
        first_seen[key] = claim.source_segment
        problem = claim_problem(claim)
        if problem is not None:
            raise LoadError(identity.name, f"claim {claim.claim_id}: {problem[1]}", line=claim.source_segment, field=problem[0])
        agencies.add(claim.agency_id)
        earliest = claim.period_from if earliest is None else min(earliest, claim.period_from)
        latest = claim.period_from if latest is None else max(latest, claim.period_from)
        batch.append(claim)
        if len(batch) >= STORE_BATCH:
            flush()
    if batch:
        flush()
    if not first_seen:
        raise LoadError(identity.name, "the file holds no claim to load")
    release.effective_date = earliest
    release.record_count = len(first_seen)
    if label is None:
        who = next(iter(agencies)) if len(agencies) == 1 else f"{len(agencies)} agencies"
        release.label = f"claims of {who}, periods {earliest} to {latest}"[:80]
    session.flush()
    return StoreSummary(release=release, already_loaded=False, records=len(first_seen), new_versions=line_count)


def _insert_batch(connection, release_id: int, claims: list[Claim]) -> int:
    """Insert claims, fetch their ids back in one query, insert their lines; returns the lines."""
    table = AgencyClaim.__table__
    start_after = connection.execute(
        sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)).where(table.c.release_id == release_id)
    ).scalar_one()
    insert_rows(connection, table, _CLAIM_COLUMNS, [_claim_row(release_id, claim) for claim in claims])
    claim_pks = {
        (agency, claim_id, bill): pk
        for agency, claim_id, bill, pk in connection.execute(
            sa.select(table.c.agency_id, table.c.claim_id, table.c.type_of_bill, table.c.id)
            .where(table.c.release_id == release_id, table.c.id > start_after)
        )
    }
    return insert_rows(
        connection,
        AgencyClaimLine.__table__,
        _LINE_COLUMNS,
        [
            (pk, line.line_number, line.revenue_code, line.hcpcs, line.hipps,
             LIST_SEPARATOR.join(line.modifiers) if line.modifiers else "", line.units, line.charge, line.service_date)
            for claim in claims
            for pk in (claim_pks[(claim.agency_id, claim.claim_id, claim.type_of_bill)],)
            for line in claim.lines
        ],
    )


def _claim_row(release_id: int, claim: Claim) -> tuple:
    lists = _list_columns(claim)
    return (
        release_id, claim.agency_id, claim.claim_id, claim.type_of_bill, claim.period_from, claim.period_through,
        claim.admission_date, claim.admission_source, claim.patient_status, claim.hipps, claim.cbsa,
        claim.fips_county, claim.quality_data_submitted, claim.review_tracking_number, claim.state,
        lists["diagnoses"], lists["condition_codes"], lists["occurrence_codes"], lists["value_codes"],
        claim.beneficiary_key, claim.source_segment,
    )


def _refuse_claims_loaded_elsewhere(session: Session, identity: FileIdentity, claims: list[Claim],
                                    release_id: int) -> None:
    """LoadError naming both files when a claim of the batch is already stored from another file."""
    keys = {(c.agency_id, c.claim_id, c.type_of_bill): c.source_segment for c in claims}
    table = AgencyClaim.__table__
    rows = session.execute(
        sa.select(table.c.agency_id, table.c.claim_id, table.c.type_of_bill, Release.file_name, table.c.source_segment)
        .join(Release, Release.id == table.c.release_id)
        .where(id_in(session, table.c.agency_id, sorted({agency for agency, _, _ in keys})),
               id_in(session, table.c.claim_id, sorted({claim_id for _, claim_id, _ in keys})),
               table.c.release_id != release_id)
    )
    for agency, claim_id, bill, file_name, segment in rows:
        where = keys.get((agency, claim_id, bill))
        if where is not None:
            raise LoadError(
                identity.name,
                f"claim {claim_id} (agency {agency}, type of bill {bill}) is already loaded from {file_name} "
                f"(at {segment}); a claim is loaded from one file only",
                line=where, field="claim_id",
            )


# --------------------------------------------------------------------------------------------
# Loading files


@dataclass(frozen=True)
class BadClaim:
    """A claim skipped while loading a file: where it is and what is wrong (never PHI)."""

    path: str
    location: str  # "segment 812 (DTP), element DTP03" or "line 14, field period_from"
    claim_id: str | None
    message: str

    def __str__(self) -> str:
        claim = f", claim {self.claim_id}" if self.claim_id is not None else ""
        return f"{self.path}, {self.location}{claim}: {self.message}"


@dataclass
class ClaimsFileResult:
    path: Path
    file_format: str
    summary: StoreSummary
    skipped: list[BadClaim] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ClaimsLoadReport:
    files: list[ClaimsFileResult] = field(default_factory=list)

    @property
    def skipped(self) -> list[BadClaim]:
        return [bad for result in self.files for bad in result.skipped]


def recognise_claims_file(path: Path) -> str:
    """``837i`` or ``csv``, judged by the first bytes; LoadError for anything else."""
    with open(path, "rb") as stream:
        head = stream.read(4096)
    if not head.strip():
        raise LoadError(path, "the file is empty")
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"ISA"):
        return "837i"
    first_line = text.split(b"\n", 1)[0].decode("utf-8", "replace")
    names = {name.strip() for name in first_line.split(",")}
    if {"agency_id", "claim_id", "type_of_bill"} <= names:
        return "csv"
    raise LoadError(path, "neither an X12 837I interchange (no ISA segment) nor a claims CSV (no claims header row)")


def load_claims_files(
    engine: Engine,
    paths: Iterable[str | Path],
    *,
    beneficiary_hash_key: bytes,
    quality_data_submitted: bool = True,
    agencies: Collection[str] | None = None,
) -> ClaimsLoadReport:
    """Load claims files, each in its own transaction (see the module doc for bad claims).

    A file-level error raises LoadError: that file changes nothing, the files before it stay loaded.
    ``agencies``: the only agencies the files may hold claims of (a claim of another is a LoadError).
    """
    report = ClaimsLoadReport()
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise LoadError(path, "no such file")
        file_format = recognise_claims_file(path)
        skipped: list[BadClaim] = []
        warnings: list[str] = []
        if file_format == "837i":
            claims = _read_837i_file(path, beneficiary_hash_key, quality_data_submitted, skipped, warnings)
        else:
            claims = _read_csv_file(path, skipped)
        if agencies is not None:
            claims = _only_agencies(claims, path, file_format, frozenset(agencies))
        identity = FileIdentity.of(path)
        with transaction(engine) as session:
            _record_fingerprint(session, key_fingerprint(beneficiary_hash_key))
            summary = store_claims(session, _good_claims(claims, path, file_format, skipped), identity,
                                   file_format=file_format)
        report.files.append(ClaimsFileResult(path, file_format, summary, skipped, warnings))
    return report


def _only_agencies(claims: Iterable[Claim], path: Path, file_format: str, agencies: frozenset[str]) -> Iterator[Claim]:
    unit = "segment" if file_format == "837i" else "line"
    for claim in claims:
        if claim.agency_id not in agencies:
            raise LoadError(path, f"{unit} {claim.source_segment}: a claim of agency {claim.agency_id}, not of "
                                  f"{', '.join(sorted(agencies))}", field="agency_id")
        yield claim


def _good_claims(claims: Iterable[Claim], path: Path, file_format: str, skipped: list[BadClaim]) -> Iterator[Claim]:
    """The claims that can be stored; the others go to ``skipped`` with what is wrong."""
    seen: set[tuple[str, str, str]] = set()
    unit = "segment" if file_format == "837i" else "line"
    for claim in claims:
        problem = claim_problem(claim)
        key = (claim.agency_id, claim.claim_id, claim.type_of_bill)
        if problem is None and key in seen:
            problem = ("claim_id", "listed a second time in the file")
        if problem is not None:
            skipped.append(BadClaim(str(path), f"{unit} {claim.source_segment}, field {problem[0]}", claim.claim_id, problem[1]))
            continue
        seen.add(key)
        yield claim


def _read_837i_file(path: Path, hash_key: bytes, quality: bool, skipped: list[BadClaim],
                    warnings: list[str]) -> Iterator[Claim]:
    """The file's claims as the reader streams them; skipped claims and warnings on the side."""
    for item in read_837i(path, beneficiary_hash_key=hash_key, quality_data_submitted=quality):
        if isinstance(item, ClaimProblem):
            if item.claim_skipped:
                location = f"segment {item.segment_number} ({item.segment_id})" + (f", element {item.element}" if item.element else "")
                skipped.append(BadClaim(item.path, location, item.claim_id, item.message))
            else:
                warnings.append(str(item))
        else:
            yield item


_CSV_IDENTITY = ("agency_id", "claim_id", "type_of_bill")


def _read_csv_file(path: Path, skipped: list[BadClaim]) -> list[Claim]:
    """Read a claims CSV claim by claim, so that one bad claim is skipped and reported alone.

    The header is checked first (a bad header is a file-level error). A claim is the contiguous
    rows sharing agency, claim id and type of bill; rows that disagree on a claim column make the
    claim bad. Each claim's rows are read by ``read_claims_csv`` on their own, preceded by blank
    lines so that its messages keep the file's line numbers.
    """
    with open(path, encoding="utf-8-sig", newline="") as stream:
        text = stream.read()
    lines = text.splitlines(keepends=True)
    header_line = lines[0] if lines else ""
    list(read_claims_csv(io.StringIO(header_line), path=str(path)))  # a bad header raises here
    header = [name.strip() for name in next(csv.reader([header_line]))]
    index = {name: header.index(name) for name in CSV_COLUMNS}
    reader = csv.reader(io.StringIO(text))
    next(reader)
    groups: list[list[tuple[int, list[str]]]] = []  # each claim's rows: (line number, cells)
    identity_of_last = None
    for row in reader:
        line_number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        identity = tuple(row[index[n]].strip() for n in _CSV_IDENTITY) if len(row) == len(header) else line_number
        if groups and identity == identity_of_last:
            groups[-1].append((line_number, row))
        else:
            groups.append([(line_number, row)])
        identity_of_last = identity
    claims: list[Claim] = []
    for rows in groups:
        first_line, first_cells = rows[0]
        claim_id = first_cells[index["claim_id"]].strip() if len(first_cells) == len(header) else None
        disagreement = _disagreement(rows, index)
        if disagreement is not None:
            skipped.append(BadClaim(str(path), disagreement[0], claim_id, disagreement[1]))
            continue
        chunk = header_line + "\n" * (first_line - 2) + "".join(lines[first_line - 1 : rows[-1][0]])
        try:
            found = list(read_claims_csv(io.StringIO(chunk), path=str(path)))
        except LoadError as error:
            location = f"line {error.line}" + (f", field {error.field}" if error.field else "")
            skipped.append(BadClaim(str(path), location, claim_id or None, error.message))
            continue
        claims.extend(found)
    return claims


def _disagreement(rows: list[tuple[int, list[str]]], index: dict[str, int]) -> tuple[str, str] | None:
    """(location, message) of the first row whose claim columns differ from the claim's first row."""
    first_line, first = rows[0]
    for line_number, cells in rows[1:]:
        for name in CSV_CLAIM_COLUMNS:
            if cells[index[name]].strip() != first[index[name]].strip():
                return (f"line {line_number}, field {name}",
                        f"differs from the claim's first row (line {first_line}): {cells[index[name]].strip()!r} "
                        f"instead of {first[index[name]].strip()!r}")
    return None


# --------------------------------------------------------------------------------------------
# Reading back


@dataclass(frozen=True)
class StoredClaim:
    """A claim as read back, with its database id and the file it came from."""

    pk: int
    release_id: int
    claim: Claim


def stored_claim_ids(
    session: Session,
    *,
    agency: str | None = None,
    period_from: date | None = None,
    period_through: date | None = None,
) -> list[int]:
    """Ids of the stored claims in (period start, agency, claim id, type of bill) order.

    ``period_from`` / ``period_through`` keep the claims whose period starts on or after / on or
    before the date.
    """
    table = AgencyClaim.__table__
    query = sa.select(table.c.id).order_by(table.c.period_from, table.c.agency_id, table.c.claim_id, table.c.type_of_bill)
    if agency is not None:
        query = query.where(table.c.agency_id == agency)
    if period_from is not None:
        query = query.where(table.c.period_from >= period_from)
    if period_through is not None:
        query = query.where(table.c.period_from <= period_through)
    return [row[0] for row in session.execute(query)]


class Superseded(NamedTuple):
    """A stored claim a later adjustment replaced or a void cancelled: not the agency's claim now."""

    pk: int
    agency_id: str
    claim_id: str
    type_of_bill: str
    reason: str


def superseded_claims(session: Session, *, agency: str | None = None) -> list[Superseded]:
    """The stored claims that an adjustment or a void took the place of.

    Claims of one beneficiary (the keyed hash), agency, period start and kind of bill (the type of
    bill's first three characters) are one claim's versions. Taken in the order they were loaded
    (files in load order, claims in file order: the order an agency sends them), an adjustment
    (frequency 7) replaces every version standing before it and a void (frequency 8) cancels them;
    any other claim for payment stands beside those before it. Frequencies that are letters (a
    notice of admission ...) are not claims for payment and take no part. Only groups that hold an
    adjustment or a void are read back from the database.
    """
    table = AgencyClaim.__table__
    kind = sa.func.substr(table.c.type_of_bill, 1, 3)
    frequency = sa.func.substr(table.c.type_of_bill, 4, 1)
    key = (table.c.agency_id, table.c.beneficiary_key, table.c.period_from, kind)
    groups = (
        sa.select(*key[:3], kind.label("kind"))
        .group_by(*key)
        .having(sa.func.count() > 1)
        .having(sa.func.max(sa.case((frequency.in_([ADJUSTMENT_FREQUENCY, VOID_FREQUENCY]), 1), else_=0)) == 1)
    )
    if agency is not None:
        groups = groups.where(table.c.agency_id == agency)
    groups = groups.subquery()
    members = (
        sa.select(table.c.id, table.c.agency_id, table.c.claim_id, table.c.type_of_bill, *key[1:3])
        .join(groups, sa.and_(table.c.agency_id == groups.c.agency_id,
                              table.c.beneficiary_key == groups.c.beneficiary_key,
                              table.c.period_from == groups.c.period_from, kind == groups.c.kind))
        .order_by(table.c.id)
    )
    standing: dict[tuple, list] = defaultdict(list)
    superseded = []
    for row in session.execute(members):
        code = row.type_of_bill[3:]
        if not code.isdigit():
            continue
        versions = standing[(row.agency_id, row.beneficiary_key, row.period_from, row.type_of_bill[:3])]
        if code not in (ADJUSTMENT_FREQUENCY, VOID_FREQUENCY):
            versions.append(row)
            continue
        action = "replaced by adjustment" if code == ADJUSTMENT_FREQUENCY else "cancelled by void"
        superseded.extend(
            Superseded(earlier.id, earlier.agency_id, earlier.claim_id, earlier.type_of_bill,
                       f"{action} {row.claim_id} (type of bill {row.type_of_bill}), loaded after it; not priced")
            for earlier in versions
        )
        versions[:] = [row] if code == ADJUSTMENT_FREQUENCY else []
    return superseded


def iter_stored_claims(
    session: Session,
    *,
    agency: str | None = None,
    period_from: date | None = None,
    period_through: date | None = None,
    batch_size: int = 5000,
) -> Iterator[StoredClaim]:
    """Stored claims in :func:`stored_claim_ids` order, read in batches."""
    ids = stored_claim_ids(session, agency=agency, period_from=period_from, period_through=period_through)
    for start in range(0, len(ids), batch_size):
        yield from stored_claims_by_id(session, ids[start : start + batch_size])


def id_in(session: Session, column, values: Iterable):
    """``column IN values`` as each database does it fastest: one array parameter on PostgreSQL
    (thousands of placeholders cost psycopg more than the query), a plain IN list on SQLite."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        element = sa.Integer if isinstance(column.type, sa.Integer) else sa.String
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(element)))
    return column.in_(values)


def driver_id_condition(connection: sa.Connection, column: str, ids: Sequence[int]) -> tuple[str, tuple]:
    """``column`` is one of ``ids``, as SQL text and parameters for the driver's own cursor.

    On PostgreSQL the ids go as one array written as text (``{1,2,3}``): psycopg's typed array
    adaptation of thousands of integers costs more than the query reading them.
    """
    if connection.dialect.name == "postgresql":
        return f"{column} = ANY(CAST(%s AS bigint[]))", ("{" + ",".join(map(str, map(int, ids))) + "}",)
    placeholder = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return f"{column} IN ({', '.join([placeholder] * len(ids))})", tuple(ids)


def stored_claims_by_id(session: Session, ids: list[int], *, lines: bool = True) -> list[StoredClaim]:
    """The claims with these ids, in this order; with ``lines=False`` without their lines.

    Lines are read with the driver's own rows (no per-value processing by SQLAlchemy): a distinct
    date or amount text is converted once.
    """
    table = AgencyClaim.__table__
    if not ids:
        return []
    if not lines:
        by_id = {row["id"]: row for row in session.execute(sa.select(table).where(id_in(session, table.c.id, ids))).mappings()}
        return [_stored(by_id[pk], []) for pk in ids]
    connection = session.connection()
    condition, parameters = driver_id_condition(connection, "claim_pk", ids)
    cursor = connection.connection.cursor()  # the driver's cursor: rows as plain tuples
    try:
        cursor.execute(
            "SELECT claim_pk, line_number, revenue_code, hcpcs, hipps, modifiers, units, charge, service_date "
            f"FROM claim_line WHERE {condition} ORDER BY claim_pk, line_number, id",
            parameters,
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    wanted = set(ids)
    claim_lines: dict[int, list[ClaimLine]] = defaultdict(list)
    decimals: dict[object, Decimal] = {}
    dates: dict[object, date | None] = {None: None}
    for pk, number, revenue, hcpcs, hipps, modifiers, units, charge, service_date in rows:
        if pk not in wanted:
            continue
        units_value = decimals.get(units)
        if units_value is None:
            units_value = decimals[units] = units if isinstance(units, Decimal) else Decimal(units)
        charge_value = decimals.get(charge)
        if charge_value is None:
            charge_value = decimals[charge] = charge if isinstance(charge, Decimal) else Decimal(charge)
        day = dates.get(service_date, False)
        if day is False:
            day = dates[service_date] = service_date if isinstance(service_date, date) else date.fromisoformat(service_date)
        claim_lines[pk].append(ClaimLine(number, revenue, hcpcs, hipps, _split(modifiers), units_value, charge_value, day))
    by_id = {row["id"]: row for row in session.execute(sa.select(table).where(id_in(session, table.c.id, ids))).mappings()}
    return [_stored(by_id[pk], claim_lines[pk]) for pk in ids]


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(LIST_SEPARATOR)) if text else ()


def _pairs(text: str, convert) -> tuple:
    return tuple((code, convert(value)) for code, _, value in (item.partition(PAIR_SEPARATOR) for item in _split(text)))


def _stored(row, lines: list[ClaimLine]) -> StoredClaim:
    claim = Claim(
        agency_id=row["agency_id"],
        claim_id=row["claim_id"],
        type_of_bill=row["type_of_bill"],
        period_from=row["period_from"],
        period_through=row["period_through"],
        admission_date=row["admission_date"],
        admission_source=row["admission_source"],
        patient_status=row["patient_status"],
        hipps=row["hipps"],
        cbsa=row["cbsa"],
        fips_county=row["fips_county"],
        quality_data_submitted=bool(row["quality_data_submitted"]),
        review_tracking_number=row["review_tracking_number"],
        state=row["state"],
        diagnoses=_split(row["diagnoses"]),
        condition_codes=_split(row["condition_codes"]),
        occurrence_codes=_pairs(row["occurrence_codes"], date.fromisoformat),
        value_codes=_pairs(row["value_codes"], Decimal),
        beneficiary_key=row["beneficiary_key"],
        source_segment=row["source_segment"],
        lines=tuple(lines),
    )
    return StoredClaim(row["id"], row["release_id"], claim)


def read_claims(
    session: Session,
    *,
    agency: str | None = None,
    period_from: date | None = None,
    period_through: date | None = None,
) -> list[Claim]:
    """The stored claims (see :func:`iter_stored_claims` for the order and the filters)."""
    return [stored.claim for stored in iter_stored_claims(
        session, agency=agency, period_from=period_from, period_through=period_through)]


def find_claims(session: Session, claim_id: str, *, agency: str | None = None,
                type_of_bill: str | None = None) -> list[StoredClaim]:
    """Every stored claim with this claim id (one per agency and type of bill)."""
    table = AgencyClaim.__table__
    query = sa.select(table.c.id).where(table.c.claim_id == claim_id)
    if agency is not None:
        query = query.where(table.c.agency_id == agency)
    if type_of_bill is not None:
        query = query.where(table.c.type_of_bill == type_of_bill)
    ids = [row[0] for row in session.execute(query.order_by(table.c.agency_id, table.c.type_of_bill))]
    return stored_claims_by_id(session, ids)


# --------------------------------------------------------------------------------------------
# Pricing glue


def is_rural_cbsa(cbsa: str) -> bool:
    """Whether CMS's HH pricer pays a claim in this CBSA at the rural rates (see PRICER_RURAL_CBSAS)."""
    return cbsa.startswith("999") or cbsa in PRICER_RURAL_CBSAS


def is_rural_area(cbsa: str) -> bool:
    """A rural (non-CBSA) area of a state, ``999SS``: the CBSAs whose county CMS's pricer looks up
    in the add-on table (its ValidateCountyCode runs for the two-character state code)."""
    return cbsa.startswith("999")


def rural_add_on_category(claim: Claim, tables: YearTables) -> str | None:
    """The county's rural add-on category (value code 85) under this year's tables, as CMS's
    pricer finds it; None when the year has no rural add-on or the county has none.

    A rural area (999SS) looks the county up in the add-on table, and a county missing there is
    refused with PricingError (CMS's return code 31, no payment). Any other CBSA looks the county up
    in the extra add-on table from :data:`EXTRA_ADD_ON_LOOKUP_FROM`. The 500xx CBSAs give none.
    """
    year = tables.rate_year
    if all(getattr(year, f"rural_addon_{c}").value is None for c in "abc"):
        return None
    if not claim.cbsa:
        return None
    county = claim.fips_county
    if is_rural_area(claim.cbsa):
        category = tables.rural_categories.get(county) if county else None
        if category is None:
            missing = f"county {county}" if county else "no county (value code 85)"
            raise PricingError(
                claim.claim_id,
                f"return code {INVALID_COUNTY_RETURN_CODE}: {missing} of rural CBSA {claim.cbsa} is not in the "
                f"rural add-on table (add-on-table.csv); CMS's pricer pays nothing (ValidateCountyCode)",
            )
        return category
    if year.effective_from.year >= EXTRA_ADD_ON_LOOKUP_FROM and county:
        return tables.extra_rural_categories.get(county)
    return None


def lupa_source_admission(condition_codes: Sequence[str]) -> str:
    """The pricer's "LUPA source admission" input (HHA-LUPA-SRC-ADM) of a claim.

    Medicare Claims Processing Manual ch. 10 sec. 70.2 (pricer input record, LUPA-SRC-ADM):
    "Medicare systems set this indicator to 'B' when condition code 47 is present on the RAP or
    claim. The indicator is set to '1' in all other cases." The input is named after the old source
    of admission code B (transfer from another HHA), which CMS discontinued for services from
    2010-07-01 (CR 6757, Transmittal 1904) in favour of condition code 47 (CR 6801, Transmittal
    1917): the point of origin is therefore not read. Nor is the claim frequency: a replacement
    claim (frequency 7) keeps its add-on.
    """
    return "B" if TRANSFER_CONDITION_CODE in condition_codes else "1"


def input_notes(inputs: ClaimInputs) -> tuple[str, ...]:
    """What the trace says about the inputs a claim does not carry: supplied (where from) or
    assumed absent."""
    notes = []
    noa = inputs.noa_received
    notes.append(f"NOA received {noa.value} (supplied: {noa.source})" if noa is not None
                 else "NOA receipt date not supplied: assumed timely (no late-NOA reduction)")
    vbp = inputs.vbp_factor
    notes.append(f"VBP adjustment factor {vbp.value} for CY{inputs.year} (supplied: {vbp.source})" if vbp is not None
                 else f"VBP adjustment factor for CY{inputs.year} not supplied: assumed 1 (no VBP adjustment)")
    readmission = inputs.readmitted_in_period
    if readmission is not None:
        answer = "a same-agency readmission" if readmission.value else "no same-agency readmission"
        notes.append(f"{answer} within the period (supplied: {readmission.source})")
    else:
        notes.append("same-agency readmission within the period not supplied: assumed none")
    return tuple(notes)


def to_period_claim(claim: Claim, tables: YearTables, inputs: ClaimInputs | None = None) -> PeriodClaim:
    """The pricer's view of a stored claim under one year's tables.

    Wage index: the claim's CBSA (value code 61) in ``tables``; the LUPA source admission from its
    condition codes (:func:`lupa_source_admission`); the adjustment indicator '0' (the claims
    system's recode is not on a claim). ``inputs``: what was supplied beside the claim (none when
    not given); the rural add-on category is the parameters' (:func:`claim_parameters`). Raises
    PricingError when the claim lacks what pricing needs (a CBSA in the table, an admission date,
    whole units).
    """
    if not claim.cbsa:
        raise PricingError(claim.claim_id, "no CBSA (value code 61)")
    try:
        wage_index = tables.wage_index_of(claim.cbsa).wage_index
    except ParameterError as error:
        raise PricingError(claim.claim_id, str(error)) from None
    if claim.admission_date is None:
        raise PricingError(claim.claim_id, "no admission date (DTP*435)")
    lines = []
    for line in claim.lines:
        units = line.units
        if units != units.to_integral_value():
            raise PricingError(claim.claim_id, f"line {line.line_number}: units {units} is not a whole number")
        lines.append(PricingLine(line.revenue_code, line.hcpcs or "", int(units), line.service_date))
    inputs = inputs or ClaimInputs(claim.period_through.year)
    noa = inputs.noa_received
    return PeriodClaim(
        claim_id=claim.claim_id,
        type_of_bill=claim.type_of_bill,
        from_date=claim.period_from,
        through_date=claim.period_through,
        admission_date=claim.admission_date,
        hipps=claim.hipps,
        wage_index=wage_index,
        rural_add_on_category=None,
        quality_data_submitted=claim.quality_data_submitted,
        condition_codes=claim.condition_codes,
        patient_status=claim.patient_status or "",
        lines=tuple(lines),
        days_until_noa_received=max((noa.value - claim.period_from).days, 0) if noa is not None else 0,
        vbp_adjustment_factor=inputs.vbp_factor.value if inputs.vbp_factor is not None else Decimal("1"),
        readmitted_in_period=bool(inputs.readmitted_in_period.value) if inputs.readmitted_in_period else False,
        lupa_source_admission=lupa_source_admission(claim.condition_codes),
        input_notes=input_notes(inputs),
    )


def claim_parameters(claim: Claim, tables: YearTables) -> PricingParameters:
    """The year's pricing parameters for the claim's HIPPS, quality flag, CBSA, rurality and county
    (its rural add-on category, :func:`rural_add_on_category`, which may refuse the claim)."""
    if not claim.hipps:
        raise PricingError(claim.claim_id, "no HIPPS code")
    if not claim.cbsa:
        raise PricingError(claim.claim_id, "no CBSA (value code 61)")
    try:
        parameters = tables.pricing_parameters(
            claim.hipps, quality_data_submitted=claim.quality_data_submitted, rural=is_rural_cbsa(claim.cbsa),
            cbsa=claim.cbsa,
        )
    except ParameterError as error:
        raise PricingError(claim.claim_id, str(error)) from None
    category = rural_add_on_category(claim, tables)
    notes = ()
    question = RURAL_ADD_ON_OPEN_QUESTIONS.get(tables.rate_year.effective_from.year)
    if question is not None and is_rural_area(claim.cbsa):
        listed = tables.rural_categories.get(claim.fips_county or "")
        notes = (question + (f" (county {claim.fips_county} is category {listed} in add-on-table.csv)"
                             if listed else ""),)
    if category is None and not notes:
        return parameters
    return dataclasses.replace(parameters, rural_add_on_category=category, notes=notes)


class TablesCache:
    """YearTables by date for one session: each date's tables are read once."""

    def __init__(self, session: Session, catalogue: Catalogue | None = None, *,
                 conflict_policy: ConflictPolicy = "first"):
        self.session = session
        self.catalogue = catalogue or catalogue_of(session)
        self.conflict_policy = conflict_policy
        self._tables: dict[date, YearTables] = {}

    def on(self, day: date) -> YearTables:
        tables = self._tables.get(day)
        if tables is None:
            tables = year_tables(self.session, self.catalogue, day, conflict_policy=self.conflict_policy)
            self._tables[day] = tables
        return tables


@dataclass(frozen=True)
class PricedClaim:
    claim: Claim
    rules_on: date  # the date whose parameters priced it
    parameters: PricingParameters
    result: PricingResult
    chosen_by: str = ""  # why these rules: the claim's through date, or the year asked for
    inputs: ClaimInputs | None = None

    def outlier_cap_room(self) -> str:
        """What the 10% agency outlier cap would need for this claim's outlier to be paid."""
        outlier = self.result.outlier_amount
        ratio = self.parameters.outlier_cap_ratio
        if outlier <= 0:
            return "no outlier: the cap does not touch this claim"
        return (
            f"the outlier {outlier} is paid while the agency's outliers so far + {outlier} stay within "
            f"{ratio} x its payments so far, i.e. payments so far of at least {(outlier / ratio).quantize(Decimal('0.01'))} "
            f"with no other outlier yet ({self.parameters.cite('outlier_cap_ratio')})"
        )


def price_claim(
    session: Session,
    claim: Claim,
    *,
    rules_year: int | None = None,
    cache: TablesCache | None = None,
    supplied: SuppliedInputs | None = None,
) -> PricedClaim:
    """Price one claim under the parameters in force on its through date (the year CMS's pricer
    chooses), or on January 1 of ``rules_year``, with the inputs supplied for it (``supplied``, read
    from the database when not given). Raises PricingError (with the reason) for a claim that
    cannot be priced."""
    cache = cache or TablesCache(session)
    if rules_year is not None:
        on, chosen_by = date(rules_year, 1, 1), f"the year asked for (CY{rules_year})"
    else:
        on, chosen_by = claim.period_through, f"its through date {claim.period_through}"
    try:
        tables = cache.on(on)
    except ParameterError as error:
        raise PricingError(claim.claim_id, str(error)) from None
    supplied = supplied if supplied is not None else SuppliedInputs(session, agency=claim.agency_id)
    inputs = supplied.of(claim.agency_id, claim.claim_id, claim.period_through.year)
    parameters = claim_parameters(claim, tables)
    result = price_period(to_period_claim(claim, tables, inputs), parameters)
    return PricedClaim(claim, on, parameters, result, chosen_by, inputs)
