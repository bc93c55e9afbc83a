"""Tables of the knowledge base.

The schema is made only by the Alembic migrations in ``kb/migrations``; these classes describe it
for queries, and ``tests/test_database.py`` checks that the two agree on both databases.

Time is kept on two axes:

* effective time: when a state applies in the world (``effective_from`` inclusive,
  ``effective_to`` exclusive; ``None`` = open);
* knowledge time: when CMS's files said so (``known_from`` inclusive, ``known_to`` exclusive).

A version whose end was learnt later than the version itself (a later release closes it) keeps the
day that end became known in ``effective_to_known_from``, so "as known on K" can ignore an end that
was not yet published on K. Nothing is overwritten: a correction supersedes a version by setting its
``known_to`` and adding a new version.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class ExactDecimal(TypeDecorator):
    """A ``Decimal`` stored exactly on every database.

    PostgreSQL keeps ``NUMERIC`` exactly; SQLite has no decimal type and SQLAlchemy would round
    through ``float``, so there the value is kept as its text.
    """

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal, got {type(value).__name__}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value


def decimal_field(**kwargs) -> Decimal:
    return Field(sa_type=ExactDecimal, **kwargs)


class Release(SQLModel, table=True):
    """One loaded source file, with its provenance (the knowledge time is ``published_date``)."""

    __tablename__ = "release"
    __table_args__ = (sa.UniqueConstraint("source", "sha256", name="uq_release_source_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40, index=True)
    label: str = Field(max_length=80)
    file_format: str = Field(max_length=20)
    file_name: str = Field(max_length=400)
    member: str | None = Field(default=None, max_length=400)
    sha256: str = Field(max_length=64)
    size: int
    effective_date: date
    effective_date_basis: str = Field(max_length=400)
    published_date: date
    published_date_basis: str = Field(max_length=400)
    loader_version: str = Field(max_length=40)
    loaded_at: datetime
    record_count: int
    regulation: str | None = Field(default=None, max_length=40)
    notes: str | None = Field(default=None, sa_type=sa.Text)  # e.g. the optional columns a table lacked


class HcpcsCode(SQLModel, table=True):
    """The stable identity of one HCPCS Level II procedure or modifier code."""

    __tablename__ = "hcpcs_code"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=5, unique=True)
    kind: str = Field(max_length=10)


class HcpcsVersion(SQLModel, table=True):
    """One distinct state of a code, with its effective interval and its knowledge interval."""

    __tablename__ = "hcpcs_version"

    id: int | None = Field(default=None, primary_key=True)
    code_id: int = Field(foreign_key="hcpcs_code.id", index=True)
    effective_from: date
    effective_to: date | None = None
    effective_to_known_from: date | None = None
    known_from: date
    known_to: date | None = None
    first_release_id: int = Field(foreign_key="release.id")
    action_code: str = Field(max_length=1)
    action_effective_date: date | None = None
    long_description: str = Field(sa_type=sa.Text)
    short_description: str = Field(max_length=40)
    pricing_indicators: str = Field(max_length=20)
    multiple_pricing_indicator: str = Field(max_length=1)
    coverage_issues_refs: str = Field(max_length=30)
    carriers_manual_refs: str = Field(max_length=40)
    statute: str = Field(max_length=10)
    lab_certifications: str = Field(max_length=40)
    cross_references: str = Field(max_length=40)
    coverage_code: str = Field(max_length=1)
    asc_group: str = Field(max_length=2)
    asc_effective_date: date | None = None
    opps_group: str = Field(max_length=3)
    opps_payment_indicator: str = Field(max_length=1)
    opps_effective_date: date | None = None
    processing_note: str = Field(max_length=4)
    betos: str = Field(max_length=3)
    type_of_service: str = Field(max_length=10)
    anesthesia_base_units: str = Field(max_length=3)
    added_date: date | None = None
    termination_date: date | None = None


class HcpcsListing(SQLModel, table=True):
    """What one release listed for one code: the version it showed and the action it gave."""

    __tablename__ = "hcpcs_listing"

    release_id: int = Field(foreign_key="release.id", primary_key=True)
    code_id: int = Field(foreign_key="hcpcs_code.id", primary_key=True)
    version_id: int = Field(foreign_key="hcpcs_version.id", index=True)
    action_code: str = Field(max_length=1)
    action_effective_date: date | None = None
    sequence_number: int
    source_line: int


class HhppsCaseMix(SQLModel, table=True):
    """A HIPPS code's case-mix weight and LUPA threshold, as one pricer table lists it."""

    __tablename__ = "hhpps_case_mix"
    __table_args__ = (sa.UniqueConstraint("release_id", "hipps", name="uq_hhpps_case_mix_release_hipps"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    hipps: str = Field(max_length=5, index=True)
    effective_from: date
    weight: Decimal = decimal_field()
    lupa_threshold: int
    source_row: int


class HhppsRevenueRate(SQLModel, table=True):
    """Per revenue code: the LUPA per-visit rate and the per-15-minute unit rate (outlier cost)."""

    __tablename__ = "hhpps_revenue_rate"
    __table_args__ = (sa.UniqueConstraint("release_id", "revenue_code", name="uq_hhpps_revenue_rate_release_code"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    revenue_code: str = Field(max_length=4)
    effective_from: date
    visit_rate: Decimal = decimal_field()
    visit_rate_rural: Decimal = decimal_field()
    visit_rate_no_quality: Decimal = decimal_field()
    visit_rate_no_quality_rural: Decimal = decimal_field()
    unit_rate: Decimal = decimal_field()
    unit_rate_rural: Decimal = decimal_field()
    unit_rate_no_quality: Decimal = decimal_field()
    unit_rate_no_quality_rural: Decimal = decimal_field()
    source_row: int


class HhppsWageIndex(SQLModel, table=True):
    """A CBSA's wage index as published; a CBSA listed twice in one file keeps both rows."""

    __tablename__ = "hhpps_wage_index"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    cbsa: str = Field(max_length=5, index=True)
    effective_from: date
    wage_index: Decimal = decimal_field()
    name: str = Field(max_length=200)
    name_flag: str | None = Field(default=None, max_length=200)
    imputed_floor_wage_index: Decimal | None = decimal_field(default=None)
    reclassified_wage_index: Decimal | None = decimal_field(default=None)
    rural_floor_wage_index: Decimal | None = decimal_field(default=None)
    size: str | None = Field(default=None, max_length=20)
    source_row: int


class HhppsRuralAddOn(SQLModel, table=True):
    """A county's rural add-on category (A, B or C) in one pricer table."""

    __tablename__ = "hhpps_rural_addon"
    __table_args__ = (sa.UniqueConstraint("release_id", "county_fips", name="uq_hhpps_rural_addon_release_county"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    county_fips: str = Field(max_length=5, index=True)
    category: str = Field(max_length=1)
    source_row: int


class HcpcsCorrection(SQLModel, table=True):
    """One row of a CMS corrections document, and what applying it did (never silent)."""

    __tablename__ = "hcpcs_correction"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    code: str = Field(max_length=5, index=True)
    kind: str = Field(max_length=20)
    action_text: str = Field(max_length=400)
    source_row: int
    effective_date: date | None = None
    outcome: str = Field(max_length=20)  # "applied", "no change", "not applied"
    reason: str = Field(default="", max_length=400)
    version_id: int | None = Field(default=None, foreign_key="hcpcs_version.id")
    #: The event's field changes as JSON (``kb.corrections.encode_changes``), kept so that the
    #: document can be applied again when files are re-sequenced; None for rows stored before.
    changes: str | None = Field(default=None, sa_type=sa.Text)
    revert_to_year: int | None = None


class HcpcsChangeReportRow(SQLModel, table=True):
    """One code as CMS's own change report for a release lists it (CMS's diff, kept as CMS said it)."""

    __tablename__ = "hcpcs_change_report_row"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    code: str = Field(max_length=5, index=True)
    action_code: str = Field(max_length=1)
    change_description: str = Field(sa_type=sa.Text)
    short_description: str | None = Field(default=None, sa_type=sa.Text)
    long_description: str | None = Field(default=None, sa_type=sa.Text)
    source_line: int


class AgencyClaim(SQLModel, table=True):
    """An agency's home health claim: only the fields pricing and the billing rules need.

    No names, addresses or birth dates; the beneficiary only as a keyed hash.
    """

    __tablename__ = "claim"
    __table_args__ = (sa.UniqueConstraint("agency_id", "claim_id", "type_of_bill", name="uq_claim_agency_claim_bill"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    agency_id: str = Field(max_length=20, index=True)
    claim_id: str = Field(max_length=40)
    type_of_bill: str = Field(max_length=4)
    period_from: date = Field(index=True)
    period_through: date
    admission_date: date | None = None
    admission_source: str | None = Field(default=None, max_length=2)
    patient_status: str | None = Field(default=None, max_length=2)
    hipps: str | None = Field(default=None, max_length=5, index=True)
    cbsa: str | None = Field(default=None, max_length=5, index=True)
    fips_county: str | None = Field(default=None, max_length=5)
    quality_data_submitted: bool = True
    review_tracking_number: str | None = Field(default=None, max_length=50)
    state: str | None = Field(default=None, max_length=2)
    diagnoses: str = Field(default="", max_length=400)
    condition_codes: str = Field(default="", max_length=100)
    occurrence_codes: str = Field(default="", max_length=400)
    value_codes: str = Field(default="", max_length=400)
    beneficiary_key: str = Field(max_length=64)
    source_segment: int


class AgencyClaimLine(SQLModel, table=True):
    """One service line of a claim."""

    __tablename__ = "claim_line"

    id: int | None = Field(default=None, primary_key=True)
    claim_pk: int = Field(foreign_key="claim.id", index=True)
    line_number: int
    revenue_code: str = Field(max_length=4, index=True)
    hcpcs: str | None = Field(default=None, max_length=5, index=True)
    hipps: str | None = Field(default=None, max_length=5)
    modifiers: str = Field(default="", max_length=20)
    units: Decimal = decimal_field()
    charge: Decimal = decimal_field()
    service_date: date | None = None


class CatalogueDocument(SQLModel, table=True):
    """A catalogue file loaded into the knowledge base (rule years as data): its text exactly as
    read, so its entries are read back as the package's own are (``kb.store.catalogue_of``)."""

    __tablename__ = "catalogue_document"

    release_id: int = Field(foreign_key="release.id", primary_key=True)
    text: str = Field(sa_type=sa.Text)


class ClaimSuppliedInput(SQLModel, table=True):
    """What a user supplied for one claim that the claim itself does not carry (see
    ``kb.claim_inputs``): the day the notice of admission was received, and whether the period is
    a partial period because the agency discharged and readmitted the patient within it. ``None``:
    not supplied by this row."""

    __tablename__ = "claim_supplied_input"
    __table_args__ = (sa.UniqueConstraint("release_id", "agency_id", "claim_id",
                                          name="uq_claim_supplied_input_release_claim"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    agency_id: str = Field(max_length=20)
    claim_id: str = Field(max_length=40)
    noa_received: date | None = None
    readmitted_in_period: bool | None = None
    source_row: int


class AgencyVbpFactor(SQLModel, table=True):
    """An agency's value-based purchasing adjustment factor for one calendar year, as supplied."""

    __tablename__ = "agency_vbp_factor"
    __table_args__ = (sa.UniqueConstraint("release_id", "agency_id", "year", name="uq_agency_vbp_factor_release_year"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    agency_id: str = Field(max_length=20, index=True)
    year: int
    factor: Decimal = decimal_field()
    source_row: int


class WebAccount(SQLModel, table=True):
    """A local account of the web app (``kb.accounts``): the password only as an Argon2id hash."""

    __tablename__ = "web_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=20)
    disabled: bool = False
    created_at: datetime = Field(sa_type=sa.DateTime)  # UTC


class WebAccountAgency(SQLModel, table=True):
    """An agency (NPI) whose claims an account may see."""

    __tablename__ = "web_account_agency"

    account_id: int = Field(foreign_key="web_account.id", primary_key=True)
    agency_id: str = Field(max_length=20, primary_key=True)


class AuditEvent(SQLModel, table=True):
    """One action of the audit log (``kb.audit``). Append-only: the database refuses an UPDATE or a
    DELETE of a row (triggers of migration 0010). Never holds claim data or a password."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=sa.DateTime, index=True)  # UTC
    username: str = Field(max_length=64)
    action: str = Field(max_length=40)
    agency_id: str | None = Field(default=None, max_length=20)
    address: str = Field(default="", max_length=64)
    detail: str = Field(default="", max_length=400)


class ReviewSignOff(SQLModel, table=True):
    """A compliance officer's sign-off of one year's review for one agency: who, in which role,
    when, and the review exactly as signed (its JSON and the sha256 of that text). Append-only,
    as the audit log."""

    __tablename__ = "review_signoff"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(max_length=20, index=True)
    year: int
    username: str = Field(max_length=64)
    role: str = Field(max_length=20)
    signed_at: datetime = Field(sa_type=sa.DateTime)  # UTC
    content_sha256: str = Field(max_length=64)
    content: str = Field(sa_type=sa.Text)


class BeneficiaryKeyFingerprint(SQLModel, table=True):
    """Which key the database's beneficiary hashes were made with, without the key: an HMAC of a
    fixed text under it (``kb.claims``). One row; a load under another key is refused."""

    __tablename__ = "beneficiary_key_fingerprint"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(max_length=64)
