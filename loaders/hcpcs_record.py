"""The HCPCS record as every HCPCS loader yields it (one per procedure or modifier code)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

#: Fields that describe a code's state. Two records with equal state fields are the same version
#: of the code; the remaining fields say what one release did to it (action) or where it was read.
STATE_FIELDS: tuple[str, ...] = (
    "long_description",
    "short_description",
    "pricing_indicators",
    "multiple_pricing_indicator",
    "coverage_issues_refs",
    "carriers_manual_refs",
    "statute",
    "lab_certifications",
    "cross_references",
    "coverage_code",
    "asc_group",
    "asc_effective_date",
    "opps_group",
    "opps_payment_indicator",
    "opps_effective_date",
    "processing_note",
    "betos",
    "type_of_service",
    "anesthesia_base_units",
    "added_date",
    "termination_date",
)

#: CMS action codes, relative to the previous release (record layout, field "action code").
ACTION_CODES: dict[str, str] = {
    "A": "add",
    "B": "change in administrative data and long description",
    "C": "change in long description",
    "D": "discontinue",
    "F": "change in administrative data",
    "N": "no maintenance",
    "P": "payment change",
    "R": "reactivate",
    "S": "change in short description",
    "T": "miscellaneous",
}


@dataclass(frozen=True, slots=True)
class HcpcsRecord:
    """One HCPCS Level II procedure or modifier as one release lists it.

    Text fields are stripped, with runs of whitespace folded to one space; repeated fields are
    tuples without their blank entries; dates are ``datetime.date`` or ``None`` when blank.
    ``kind`` is ``"procedure"`` (record identification code 3/4) or ``"modifier"`` (7/8).
    ``source_line`` is where the record's first line was read (txt line or xlsx row, 1-based).
    """

    code: str
    kind: str
    sequence_number: int
    long_description: str
    short_description: str
    pricing_indicators: tuple[str, ...]
    multiple_pricing_indicator: str
    coverage_issues_refs: tuple[str, ...]
    carriers_manual_refs: tuple[str, ...]
    statute: str
    lab_certifications: tuple[str, ...]
    cross_references: tuple[str, ...]
    coverage_code: str
    asc_group: str
    asc_effective_date: date | None
    opps_group: str
    opps_payment_indicator: str
    opps_effective_date: date | None
    processing_note: str
    betos: str
    type_of_service: tuple[str, ...]
    anesthesia_base_units: str
    added_date: date | None
    action_effective_date: date | None
    termination_date: date | None
    action_code: str
    source_line: int

    def state(self) -> tuple:
        """The values of ``STATE_FIELDS`` in order: equal states mean the same version."""
        return tuple(getattr(self, name) for name in STATE_FIELDS)


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(HcpcsRecord))
