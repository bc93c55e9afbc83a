"""The claim record as every claim loader yields it: only what pricing and the billing rules need.

A claim keeps no names, addresses or birth dates. The beneficiary appears only as
``beneficiary_key``, an HMAC-SHA256 of the member identifier under a key the caller supplies, so the
same beneficiary gets the same key across files without the identifier ever being stored.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

#: Revenue code of the line that carries the HIPPS code of a home health period.
HIPPS_REVENUE_CODE = "0023"

#: Value code of the CBSA where the service was furnished, and of the FIPS county.
CBSA_VALUE_CODE = "61"
FIPS_COUNTY_VALUE_CODE = "85"


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One service line (837I loop 2400)."""

    line_number: int  # LX01
    revenue_code: str  # SV201, four digits: "0023", "0551"
    hcpcs: str | None  # SV202-2 when SV202-1 is HC
    hipps: str | None  # SV202-2 when SV202-1 is HP (the 0023 line)
    modifiers: tuple[str, ...]  # SV202-3 .. SV202-6
    units: Decimal  # SV205 (unit basis SV204, UN)
    charge: Decimal  # SV203
    service_date: date | None  # DTP*472 (first date of a range)


@dataclass(frozen=True, slots=True)
class Claim:
    """One institutional claim (837I loop 2300 with its lines)."""

    agency_id: str  # billing provider NPI (2010AA NM109)
    claim_id: str  # CLM01, the patient control number
    type_of_bill: str  # "0" + facility code + frequency: "0329", NOA "032A"
    period_from: date  # DTP*434 statement period
    period_through: date
    admission_date: date | None  # DTP*435
    admission_source: str | None  # CL102, point of origin
    patient_status: str | None  # CL103
    hipps: str | None  # from the 0023 line
    cbsa: str | None  # value code 61, five digits
    fips_county: str | None  # value code 85, five digits
    quality_data_submitted: bool  # not an 837 field: True unless the claims CSV says otherwise
    review_tracking_number: str | None  # REF*G1, pre-claim review unique tracking number
    state: str | None  # billing provider state (2010AA N402)
    diagnoses: tuple[str, ...]  # principal (ABK) first, then the others (ABF) in file order
    condition_codes: tuple[str, ...]  # HI*BG
    occurrence_codes: tuple[tuple[str, date], ...]  # HI*BH: (code, date)
    value_codes: tuple[tuple[str, Decimal | str], ...]  # HI*BE: (code, amount)
    beneficiary_key: str  # beneficiary_key_of(member id, key)
    #: Where the claim was read: the CLM segment number in an 837I file, the first row in a claims
    #: CSV, 0 for a generated claim. Provenance only, so it takes no part in equality.
    source_segment: int = field(compare=False)
    lines: tuple[ClaimLine, ...] = ()

    @property
    def facility_code(self) -> str:
        """Facility type code (positions 2-3 of the type of bill): "32" for home health."""
        return self.type_of_bill[1:3]

    @property
    def frequency_code(self) -> str:
        """Claim frequency (position 4 of the type of bill): 9 final, 7 adjustment, A NOA ..."""
        return self.type_of_bill[3:]


def beneficiary_key_of(member_id: str, hash_key: bytes) -> str:
    """The keyed hash (HMAC-SHA256, hex) that stands in for a member identifier."""
    if not hash_key:
        raise ValueError("the beneficiary hash key must not be empty")
    return hmac.new(hash_key, member_id.encode("utf-8"), hashlib.sha256).hexdigest()


def cbsa_and_county(value_codes: tuple[tuple[str, Decimal | str], ...]) -> tuple[str | None, str | None]:
    """The CBSA (value code 61) and FIPS county (value code 85) as five-digit codes.

    On a claim both are codes written in the amount field, so ``35614`` or ``35614.00``; leading
    zeros are not written (county ``01001`` arrives as ``1001``). Raises ValueError when the amount
    is not a whole number of at most five digits.
    """
    found: dict[str, str] = {}
    for code, amount in value_codes:
        if code in (CBSA_VALUE_CODE, FIPS_COUNTY_VALUE_CODE) and code not in found:
            found[code] = five_digit_code(amount, value_code=code)
    return found.get(CBSA_VALUE_CODE), found.get(FIPS_COUNTY_VALUE_CODE)


def five_digit_code(amount: Decimal | str, *, value_code: str) -> str:
    """``Decimal("1001.00")`` -> ``"01001"``; ValueError when not a whole number below 100000."""
    try:
        number = amount if isinstance(amount, Decimal) else Decimal(amount)
    except ArithmeticError:
        number = Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value() or not 0 <= number < 100000:
        raise ValueError(f"value code {value_code} amount {amount} is not a five-digit code")
    return f"{int(number):05d}"
