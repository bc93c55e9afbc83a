"""ASC X12 837 institutional claims (005010X223A2 / X223A3): a streaming reader and a writer.

The reader holds one chunk of the file and one claim at a time, so a file of any size reads in
constant memory. It yields a :class:`Claim` for every claim it could read and a
:class:`ClaimProblem` for every claim it had to skip (missing CLM05, a bad date, a service line
without a revenue code, ...); the rest of the file still loads. A file that is not an X12 837I
interchange at all (empty, another format, another transaction set, cut short before IEA) raises
:class:`LoadError`.

Delimiters come from each ISA segment: the element separator is the fourth character, the component
separator is ISA16 and the segment terminator the character after it. Whitespace around segments
(CRLF, newlines, spaces) is ignored. One interchange may declare one component separator and use
another in its body; the reader then reads with the one the body uses, taken from the first CLM05,
and says so with a :class:`ClaimProblem` that skips nothing.

Loops are tracked so that claim-level data is read only from loop 2300 and line data only from loop
2400: a DTP, REF or HI inside 2310x (providers), 2320 (other subscriber) or 2330x (other payer) never
overwrites the claim's own. Names, addresses, birth dates and member identifiers are read only to be
hashed (the member identifier) or not at all; no message quotes them.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import BinaryIO, TextIO

from loaders.claim_record import (
    CBSA_VALUE_CODE,
    FIPS_COUNTY_VALUE_CODE,
    HIPPS_REVENUE_CODE,
    Claim,
    ClaimLine,
    beneficiary_key_of,
    five_digit_code,
)
from loaders.control_characters import control_character_message, find_control_character
from loaders.errors import LoadError

#: The implementation guides this reader understands (ST03, or GS08 when ST03 is absent).
IMPLEMENTATION_GUIDE_PREFIX = "005010X223"

_CHUNK_CHARACTERS = 1 << 20
_WHITESPACE = " \t\r\n\f\v"
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_DIGITS4 = re.compile(r"[0-9]{4}\Z")
_ZERO = Decimal(0)

# HI composite qualifiers (code list 1270) this reader keeps.
_PRINCIPAL_DIAGNOSIS = frozenset({"ABK", "BK"})  # ICD-10, ICD-9
_OTHER_DIAGNOSIS = frozenset({"ABF", "BF"})
_OCCURRENCE = "BH"
_VALUE = "BE"
_CONDITION = "BG"

# Loops, as the X223 guide numbers them. Only these matter for where a segment belongs.
_HEADER, _BILLING_PROVIDER, _BILLING_PROVIDER_NAME, _OTHER_PROVIDER_NAME = "1000", "2000A", "2010AA", "2010AB"
_SUBSCRIBER, _SUBSCRIBER_NAME, _PAYER_NAME = "2000B", "2010BA", "2010BB"
_PATIENT, _PATIENT_NAME = "2000C", "2010CA"
_CLAIM, _CLAIM_PROVIDER, _OTHER_SUBSCRIBER, _OTHER_SUBSCRIBER_NAME = "2300", "2310", "2320", "2330"
_LINE, _LINE_DRUG, _LINE_PROVIDER, _LINE_ADJUDICATION = "2400", "2410", "2420", "2430"
_LINE_LOOPS = frozenset({_LINE, _LINE_DRUG, _LINE_PROVIDER, _LINE_ADJUDICATION})
_OTHER_SUBSCRIBER_LOOPS = frozenset({_OTHER_SUBSCRIBER, _OTHER_SUBSCRIBER_NAME})


@dataclass(frozen=True, slots=True)
class ClaimProblem:
    """Why a claim was skipped (or, with ``claim_skipped`` False, something read around).

    ``element`` names the element at fault in X12 reference style (``CLM05-3``, ``DTP03``) or,
    for something missing from the claim, what is missing (``DTP*434``).
    """

    path: str
    segment_number: int  # 1-based, counting every segment of the file from the first ISA
    segment_id: str
    element: str | None
    message: str
    claim_id: str | None
    claim_skipped: bool = True

    def __str__(self) -> str:
        where = f"{self.path}, segment {self.segment_number} ({self.segment_id})"
        if self.element:
            where += f", element {self.element}"
        if self.claim_id is not None:
            where += f", claim {self.claim_id}"
        return f"{where}: {self.message}"


class _BadElement(Exception):
    """A value that cannot be read; becomes a ClaimProblem on the segment being read."""

    def __init__(self, element: str, message: str):
        super().__init__(message)
        self.element = element
        self.message = message


# --------------------------------------------------------------------------------------------
# Reading


def read_837i(
    source: str | os.PathLike[str] | BinaryIO | TextIO,
    *,
    beneficiary_hash_key: bytes,
    quality_data_submitted: bool = True,
    path: str | None = None,
) -> Iterator[Claim | ClaimProblem]:
    """Yield every claim of an 837I file, and a ClaimProblem for every claim that was skipped.

    ``source`` is a path or an open binary (or text) stream; ``path`` names a stream in messages.
    ``beneficiary_hash_key`` keys the HMAC that replaces the member identifier. The 837I has no
    field for the quality-data flag: every claim gets ``quality_data_submitted``.

    Raises LoadError when the file is empty, is not X12, holds a transaction set other than an
    837I, or ends before the IEA of its last interchange. Claims yielded before such an error are
    already out: load them in one transaction.
    """
    if not beneficiary_hash_key:
        raise ValueError("beneficiary_hash_key must not be empty")
    if isinstance(source, (str, os.PathLike)):
        name = path or os.fspath(source)
        with open(source, "rb") as stream:
            yield from _read_stream(stream, name, beneficiary_hash_key, quality_data_submitted)
    else:
        name = path or str(getattr(source, "name", "<stream>"))
        yield from _read_stream(source, name, beneficiary_hash_key, quality_data_submitted)


def _read_stream(
    stream: BinaryIO | TextIO, path: str, hash_key: bytes, quality_data_submitted: bool
) -> Iterator[Claim | ClaimProblem]:
    segments = _Segments(_chunks(stream), path)
    assembler = _Assembler(path, hash_key, quality_data_submitted, segments)
    handlers = assembler.handlers
    out = assembler.out
    for elements in segments:
        handler = handlers.get(elements[0])
        if handler is not None:
            handler(elements)
            if out:
                yield from out
                out.clear()
    if not segments.interchanges:
        raise LoadError(path, "the file holds no X12 interchange")
    if assembler.transaction_sets == 0:
        raise LoadError(path, "the file holds no 837 transaction set")


def _chunks(stream: BinaryIO | TextIO) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors=_LATIN_1_FALLBACK)
    first = True
    while True:
        raw = stream.read(_CHUNK_CHARACTERS)
        # X12 is ASCII, or UTF-8 text in its extended character set: read as UTF-8 (a character
        # split across chunks is completed by the next one); a byte that is not UTF-8 stands for
        # its latin-1 character, as older senders meant it.
        chunk = decoder.decode(raw, final=not raw) if isinstance(raw, bytes) else raw
        if not raw and not chunk:
            return
        if first and chunk.startswith("\ufeff"):
            chunk = chunk[1:]
        first = False
        yield chunk


def _latin_1_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    return error.object[error.start : error.end].decode("latin-1"), error.end


_LATIN_1_FALLBACK = "hhkb-x12-latin-1"
codecs.register_error(_LATIN_1_FALLBACK, _latin_1_fallback)


class _Segments:
    """Split a character stream into segments (lists of elements), interchange by interchange.

    Iterating yields each segment's elements; ``number`` is the current segment's 1-based number in
    the file and ``component_separator`` / ``repetition_separator`` hold the current interchange's
    declared separators.
    """

    def __init__(self, chunks: Iterator[str], path: str):
        self._chunks = chunks
        self._path = path
        self.number = 0
        self.interchanges = 0
        self.component_separator = ":"
        self.repetition_separator: str | None = None

    def _error(self, message: str, *, field: str | None = None) -> LoadError:
        return LoadError(self._path, message, field=field)

    def __iter__(self) -> Iterator[list[str]]:
        chunks = self._chunks
        buffer = ""
        exhausted = False
        while True:
            # Between interchanges: only whitespace, then "ISA" or the end of the file.
            buffer = buffer.lstrip(_WHITESPACE)
            while len(buffer) < 128 and not exhausted:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                else:
                    buffer = (buffer + chunk).lstrip(_WHITESPACE)
            if not buffer:
                if self.interchanges == 0:
                    raise self._error("the file is empty")
                return
            if not buffer.startswith("ISA"):
                if self.interchanges == 0:
                    raise self._error("not an X12 file: it does not begin with an ISA segment")
                raise self._error(
                    f"segment {self.number + 1}: data after the IEA of interchange {self.interchanges} "
                    "is not another interchange (ISA)"
                )
            isa, buffer, terminator = self._read_isa(buffer)
            self.number += 1
            self.interchanges += 1
            yield isa
            element_separator = self._element_separator
            # X12 allows control characters as delimiters, never inside a value
            delimiters = element_separator + self.component_separator + (self.repetition_separator or "")
            # Inside an interchange: split on the terminator until IEA.
            while True:
                parts = buffer.split(terminator)
                buffer = parts.pop()
                for index, part in enumerate(parts):
                    segment = part.strip(_WHITESPACE)
                    if not segment:
                        continue
                    self.number += 1
                    elements = segment.split(element_separator)
                    if segment[:3] == "ISA" and (len(segment) == 3 or not segment[3].isalnum()):
                        raise self._error(
                            f"segment {self.number}: a new ISA begins before the IEA of interchange "
                            f"{self.interchanges}: the interchange is truncated",
                            field="IEA",
                        )
                    control = find_control_character(segment, allowed=delimiters)
                    if control is not None:
                        raise self._error(
                            f"segment {self.number} ({elements[0][:3]}): {control_character_message(segment[control])}",
                            field=f"{elements[0][:3]}{segment.count(element_separator, 0, control):02d}",
                        )
                    yield elements
                    if elements[0] == "IEA":
                        parts.append(buffer)
                        buffer = terminator.join(parts[index + 1 :])
                        break
                else:
                    if exhausted:
                        raise self._error(
                            f"the file ends inside interchange {self.interchanges} after segment "
                            f"{self.number}: no IEA, the file is truncated",
                            field="IEA",
                        )
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                        if buffer.strip(_WHITESPACE):
                            # The last segment has no terminator: read it, then report the end.
                            buffer += terminator
                    else:
                        buffer += chunk
                    continue
                break

    def _read_isa(self, buffer: str) -> tuple[list[str], str, str]:
        """Parse the ISA at the start of ``buffer``; return its elements, the rest, the terminator."""
        if len(buffer) < 4:
            raise self._error(f"segment {self.number + 1} (ISA): the file ends inside ISA", field="ISA")
        element_separator = buffer[3]
        if element_separator.isalnum() or element_separator in _WHITESPACE:
            raise self._error(f"segment {self.number + 1} (ISA): the element separator {element_separator!r} is not a delimiter", field="ISA")
        position = 0
        for _ in range(16):
            position = buffer.find(element_separator, position + 1)
            if position < 0:
                raise self._error(f"segment {self.number + 1} (ISA): fewer than 16 elements", field="ISA16")
        if len(buffer) < position + 3:
            raise self._error(f"segment {self.number + 1} (ISA): the file ends inside ISA", field="ISA16")
        component_separator = buffer[position + 1]
        terminator = buffer[position + 2]
        if component_separator.isalnum() or component_separator in (element_separator, terminator):
            raise self._error(
                f"segment {self.number + 1} (ISA): ISA16 {component_separator!r} is not a usable component separator",
                field="ISA16",
            )
        if terminator.isalnum() or terminator == element_separator:
            raise self._error(
                f"segment {self.number + 1} (ISA): the segment terminator {terminator!r} is not a delimiter",
                field="ISA16",
            )
        elements = buffer[: position + 2].split(element_separator)
        if elements[12] != "00501":
            raise self._error(
                f"segment {self.number + 1} (ISA): version {elements[12]!r} is not 00501", field="ISA12"
            )
        repetition = elements[11]
        # ISA11 is the repetition separator in 00501; some senders leave the old "U" there.
        self.repetition_separator = None if repetition.isalnum() or repetition.isspace() else repetition
        self.component_separator = component_separator
        self._element_separator = element_separator
        return elements, buffer[position + 3 :], terminator


class _LineBuilder:
    __slots__ = ("segment", "line_number", "revenue_code", "hcpcs", "hipps", "modifiers", "units", "charge", "service_date", "has_service")

    def __init__(self, segment: int, line_number: int):
        self.segment = segment
        self.line_number = line_number
        self.revenue_code = ""
        self.hcpcs: str | None = None
        self.hipps: str | None = None
        self.modifiers: tuple[str, ...] = ()
        self.units = _ZERO
        self.charge = _ZERO
        self.service_date: date | None = None
        self.has_service = False


class _ClaimBuilder:
    __slots__ = (
        "segment", "claim_id", "agency_id", "state", "beneficiary_key", "type_of_bill",
        "period_from", "period_through", "admission_date", "admission_source", "patient_status",
        "review_tracking_number", "principal", "diagnoses", "condition_codes", "occurrence_codes",
        "value_codes", "cbsa", "fips_county", "lines", "problems", "period_seen",
    )

    def __init__(self, segment: int, claim_id: str):
        self.segment = segment
        self.claim_id = claim_id
        self.agency_id: str | None = None
        self.state: str | None = None
        self.beneficiary_key: str | None = None
        self.type_of_bill = ""
        self.period_from: date | None = None
        self.period_through: date | None = None
        self.admission_date: date | None = None
        self.admission_source: str | None = None
        self.patient_status: str | None = None
        self.review_tracking_number: str | None = None
        self.principal: str | None = None
        self.diagnoses: list[str] = []
        self.condition_codes: list[str] = []
        self.occurrence_codes: list[tuple[str, date]] = []
        self.value_codes: list[tuple[str, Decimal | str]] = []
        self.cbsa: str | None = None
        self.fips_county: str | None = None
        self.lines: list[_LineBuilder] = []
        self.problems: list[ClaimProblem] = []
        self.period_seen = False  # a DTP*434, readable or not


class _Assembler:
    """Turn segments into claims, tracking the loop each segment belongs to."""

    def __init__(self, path: str, hash_key: bytes, quality_data_submitted: bool, segments: _Segments):
        self.path = path
        self.hash_key = hash_key
        self.quality_data_submitted = quality_data_submitted
        self.segments = segments
        self.out: list[Claim | ClaimProblem] = []
        self.transaction_sets = 0
        self.handlers = {
            "ISA": self.isa, "IEA": self.iea, "GS": self.gs, "ST": self.st, "SE": self.se,
            "HL": self.hl, "NM1": self.nm1, "N4": self.n4, "DMG": self.dmg, "SBR": self.sbr,
            "CLM": self.clm, "DTP": self.dtp, "CL1": self.cl1, "REF": self.ref, "HI": self.hi,
            "LX": self.lx, "SV2": self.sv2, "LIN": self.lin, "SVD": self.svd,
        }
        self.component = ":"
        self.separator_checked = False
        self.group_version = ""
        self.in_transaction = False
        self._reset_transaction()

    # -- helpers ------------------------------------------------------------------------------

    def _reset_transaction(self) -> None:
        self.loop = _HEADER
        self.agency_id: str | None = None
        self.state: str | None = None
        self.member_id: str | None = None
        self.patient_birth_date: str | None = None
        self.in_patient_loop = False
        self.claim: _ClaimBuilder | None = None
        self.line: _LineBuilder | None = None

    def _fatal(self, segment_id: str, message: str, *, field: str | None = None) -> LoadError:
        return LoadError(self.path, f"segment {self.segments.number} ({segment_id}): {message}", field=field)

    def _problem(self, segment_id: str, element: str | None, message: str) -> None:
        claim = self.claim
        problem = ClaimProblem(
            self.path, self.segments.number, segment_id, element, message, claim.claim_id if claim else None
        )
        if claim is not None:
            claim.problems.append(problem)
        else:
            self.out.append(problem)

    def _bad(self, segment_id: str, error: _BadElement) -> None:
        self._problem(segment_id, error.element, error.message)

    # -- envelope -----------------------------------------------------------------------------

    def isa(self, elements: list[str]) -> None:
        self.component = self.segments.component_separator
        self.separator_checked = False

    def iea(self, elements: list[str]) -> None:
        if self.in_transaction:
            raise self._fatal("IEA", "the interchange ends inside a transaction set (ST without SE)", field="SE")

    def gs(self, elements: list[str]) -> None:
        self.group_version = _element(elements, 8)

    def st(self, elements: list[str]) -> None:
        if self.in_transaction:
            raise self._fatal("ST", "a transaction set begins before the previous one ended (no SE)", field="SE")
        kind = _element(elements, 1)
        if kind != "837":
            raise self._fatal("ST", f"transaction set {kind!r} is not an 837 claim", field="ST01")
        version = _element(elements, 3) or self.group_version
        if not version.startswith(IMPLEMENTATION_GUIDE_PREFIX):
            raise self._fatal(
                "ST", f"implementation guide {version!r} is not the 837 institutional (005010X223)", field="ST03"
            )
        self.in_transaction = True
        self.transaction_sets += 1
        self._reset_transaction()

    def se(self, elements: list[str]) -> None:
        self._close_claim()
        self.in_transaction = False
        self._reset_transaction()

    # -- hierarchy ----------------------------------------------------------------------------

    def hl(self, elements: list[str]) -> None:
        self._close_claim()
        level = _element(elements, 3)
        if level == "20":
            self.loop = _BILLING_PROVIDER
            self.agency_id = self.state = None
            self.member_id = self.patient_birth_date = None
            self.in_patient_loop = False
        elif level == "22":
            self.loop = _SUBSCRIBER
            self.member_id = self.patient_birth_date = None
            self.in_patient_loop = False
        elif level == "23":
            self.loop = _PATIENT
            self.patient_birth_date = None
            self.in_patient_loop = True
        else:
            self.loop = f"HL {level}"

    def nm1(self, elements: list[str]) -> None:
        entity = _element(elements, 1)
        loop = self.loop
        if self.claim is not None:
            if loop in _LINE_LOOPS:
                self.loop = _LINE_PROVIDER
            elif loop in _OTHER_SUBSCRIBER_LOOPS:
                self.loop = _OTHER_SUBSCRIBER_NAME
            else:
                self.loop = _CLAIM_PROVIDER
        elif entity == "85":
            self.loop = _BILLING_PROVIDER_NAME
            self.agency_id = _element(elements, 9) or None
        elif entity in ("87", "PE"):
            self.loop = _OTHER_PROVIDER_NAME
        elif entity == "IL":
            self.loop = _SUBSCRIBER_NAME
            self.member_id = _element(elements, 9) or None
        elif entity == "PR":
            self.loop = _PAYER_NAME
        elif entity == "QC":
            self.loop = _PATIENT_NAME
        elif entity in ("41", "40"):
            self.loop = _HEADER

    def n4(self, elements: list[str]) -> None:
        if self.loop == _BILLING_PROVIDER_NAME:
            self.state = _element(elements, 2) or None

    def dmg(self, elements: list[str]) -> None:
        if self.loop == _PATIENT_NAME:
            self.patient_birth_date = _element(elements, 2) or None

    def sbr(self, elements: list[str]) -> None:
        if self.claim is not None:
            self.loop = _OTHER_SUBSCRIBER

    def lin(self, elements: list[str]) -> None:
        if self.claim is not None and self.loop in _LINE_LOOPS:
            self.loop = _LINE_DRUG

    def svd(self, elements: list[str]) -> None:
        if self.claim is not None and self.loop in _LINE_LOOPS:
            self.loop = _LINE_ADJUDICATION

    # -- claim --------------------------------------------------------------------------------

    def clm(self, elements: list[str]) -> None:
        self._close_claim()
        if not self.in_transaction:
            raise self._fatal("CLM", "a claim outside a transaction set (no ST)", field="ST")
        self.loop = _CLAIM
        claim = self.claim = _ClaimBuilder(self.segments.number, _element(elements, 1))
        if not claim.claim_id:
            self._problem("CLM", "CLM01", "the patient control number is missing")
        claim.agency_id = self.agency_id
        claim.state = self.state
        if self.member_id:
            member = self.member_id
            if self.in_patient_loop:
                # A dependant under the subscriber: tell dependants of one subscriber apart.
                member = f"{member}\x1f{self.patient_birth_date or ''}"
            claim.beneficiary_key = beneficiary_key_of(member, self.hash_key)
        facility = _element(elements, 5)
        if not facility:
            self._problem("CLM", "CLM05", "the facility code / claim frequency composite is missing")
            return
        component = self.component
        if component not in facility and not self.separator_checked and len(facility) >= 3:
            used = facility[2]
            if not used.isalnum() and not used.isspace():
                self.out.append(
                    ClaimProblem(
                        self.path, self.segments.number, "CLM", "CLM05",
                        f"ISA16 declares {component!r} as the component separator but the body uses "
                        f"{used!r}: read with {used!r}",
                        claim.claim_id, claim_skipped=False,
                    )
                )
                self.component = component = used
        self.separator_checked = True
        parts = facility.split(component)
        facility_code = parts[0]
        frequency = parts[2] if len(parts) > 2 else ""
        if len(facility_code) != 2 or not facility_code.isalnum():
            self._problem("CLM", "CLM05-1", f"facility type code {facility_code!r} is not two characters")
        elif len(frequency) != 1 or not frequency.isalnum():
            self._problem("CLM", "CLM05-3", f"claim frequency code {frequency!r} is not one character")
        else:
            claim.type_of_bill = "0" + facility_code + frequency

    def dtp(self, elements: list[str]) -> None:
        loop = self.loop
        if loop == _CLAIM:
            qualifier = _element(elements, 1)
            claim = self.claim
            try:
                if qualifier == "434":
                    claim.period_seen = True
                    claim.period_from, claim.period_through = _date_range(elements)
                elif qualifier == "435":
                    claim.admission_date = _date_range(elements)[0]
            except _BadElement as error:
                self._bad("DTP", error)
        elif loop == _LINE and self.line is not None and len(elements) > 1 and elements[1] == "472":
            try:
                self.line.service_date = _date_range(elements)[0]
            except _BadElement as error:
                self._bad("DTP", error)

    def cl1(self, elements: list[str]) -> None:
        if self.loop == _CLAIM:
            self.claim.admission_source = _element(elements, 2) or None
            self.claim.patient_status = _element(elements, 3) or None

    def ref(self, elements: list[str]) -> None:
        if self.loop == _CLAIM and _element(elements, 1) == "G1":
            self.claim.review_tracking_number = _element(elements, 2) or None

    def hi(self, elements: list[str]) -> None:
        if self.loop != _CLAIM:
            return
        claim = self.claim
        component = self.component
        for position in range(1, len(elements)):
            composite = elements[position]
            if not composite:
                continue
            parts = composite.split(component)
            qualifier = parts[0]
            code = parts[1] if len(parts) > 1 else ""
            name = f"HI{position:02d}"
            if not code and qualifier in _KEPT_HI_QUALIFIERS:
                self._problem("HI", f"{name}-2", f"{qualifier} composite without a code")
                continue
            if qualifier in _PRINCIPAL_DIAGNOSIS:
                if claim.principal is not None:
                    self._problem("HI", f"{name}-1", "a second principal diagnosis")
                claim.principal = code
            elif qualifier in _OTHER_DIAGNOSIS:
                claim.diagnoses.append(code)
            elif qualifier == _CONDITION:
                claim.condition_codes.append(code)
            elif qualifier == _OCCURRENCE:
                if (parts[2] if len(parts) > 2 else "") != "D8":
                    self._problem("HI", f"{name}-3", f"occurrence code {code} date format is not D8")
                    continue
                try:
                    claim.occurrence_codes.append((code, _date(parts[3] if len(parts) > 3 else "", f"{name}-4")))
                except _BadElement as error:
                    self._bad("HI", error)
            elif qualifier == _VALUE:
                amount_text = parts[4] if len(parts) > 4 else ""
                amount = _decimal(amount_text)
                if amount is None:
                    self._problem("HI", f"{name}-5", f"value code {code} amount {amount_text!r} is not a number")
                    continue
                claim.value_codes.append((code, amount))
                if code in (CBSA_VALUE_CODE, FIPS_COUNTY_VALUE_CODE):
                    try:
                        five = five_digit_code(amount, value_code=code)
                    except ValueError as error:
                        self._problem("HI", f"{name}-5", str(error))
                        continue
                    if code == CBSA_VALUE_CODE and claim.cbsa is None:
                        claim.cbsa = five
                    elif code == FIPS_COUNTY_VALUE_CODE and claim.fips_county is None:
                        claim.fips_county = five

    # -- lines --------------------------------------------------------------------------------

    def lx(self, elements: list[str]) -> None:
        claim = self.claim
        if claim is None:
            self.loop = _LINE
            self._problem("LX", "LX01", "a service line outside any claim")
            return
        self.loop = _LINE
        text = elements[1] if len(elements) > 1 else ""
        number = int(text) if text.isdigit() else 0
        line = self.line = _LineBuilder(self.segments.number, number)
        claim.lines.append(line)
        if not text.isdigit():
            self._problem("LX", "LX01", f"line number {text!r} is not a number")

    def sv2(self, elements: list[str]) -> None:
        line = self.line
        if self.loop != _LINE or line is None:
            if self.claim is not None:
                self._problem("SV2", None, "an SV2 outside a service line (no LX before it)")
            return
        if line.has_service:
            self._problem("SV2", None, f"a second SV2 in line {line.line_number}")
            return
        line.has_service = True
        if len(elements) < 6:
            elements = elements + [""] * (6 - len(elements))
        revenue_code = elements[1]
        if not revenue_code:
            self._problem("SV2", "SV201", "the revenue code is missing")
            return
        if not _DIGITS4.match(revenue_code):
            self._problem("SV2", "SV201", f"revenue code {revenue_code!r} is not four digits")
            return
        line.revenue_code = revenue_code
        procedure = elements[2]
        if procedure:
            parts = procedure.split(self.component)
            qualifier = parts[0]
            code = parts[1] if len(parts) > 1 else ""
            if not code:
                self._problem("SV2", "SV202-2", f"procedure qualifier {qualifier!r} without a code")
                return
            if qualifier == "HC":
                line.hcpcs = code
            elif qualifier == "HP":
                line.hipps = code
            if len(parts) > 2:
                line.modifiers = tuple(modifier for modifier in parts[2:6] if modifier)
        charge = _decimal(elements[3])
        if charge is None:
            self._problem("SV2", "SV203", f"line charge {elements[3]!r} is not a number")
            return
        line.charge = charge
        basis = elements[4]
        if basis != "UN" and basis != "DA":
            self._problem("SV2", "SV204", f"unit basis {basis!r} is neither UN nor DA")
            return
        units = _decimal(elements[5])
        if units is None:
            self._problem("SV2", "SV205", f"units {elements[5]!r} is not a number")
            return
        line.units = units

    # -- closing a claim ----------------------------------------------------------------------

    def _close_claim(self) -> None:
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        self.line = None
        problems = claim.problems
        missing = []
        if not claim.agency_id:
            missing.append(("2010AA NM109", "no billing provider identifier (NM1*85 NM109)"))
        if claim.beneficiary_key is None:
            missing.append(("2010BA NM109", "no subscriber member identifier (NM1*IL NM109)"))
        if not claim.period_seen:
            missing.append(("DTP*434", "no statement period (DTP*434)"))
        if not claim.lines:
            missing.append(("LX", "no service line (loop 2400)"))
        for element, message in missing:
            problems.append(ClaimProblem(self.path, claim.segment, "CLM", element, message, claim.claim_id))
        for line in claim.lines:
            if not line.has_service:
                problems.append(
                    ClaimProblem(self.path, line.segment, "LX", "SV2", f"line {line.line_number} has no SV2", claim.claim_id)
                )
        if problems:
            self.out.extend(problems)
            return
        lines = tuple(
            ClaimLine(
                line.line_number, line.revenue_code, line.hcpcs, line.hipps, line.modifiers,
                line.units, line.charge, line.service_date,
            )
            for line in claim.lines
        )
        hipps = next((line.hipps for line in lines if line.revenue_code == HIPPS_REVENUE_CODE and line.hipps), None)
        diagnoses = tuple(claim.diagnoses) if claim.principal is None else (claim.principal, *claim.diagnoses)
        self.out.append(
            Claim(
                agency_id=claim.agency_id,
                claim_id=claim.claim_id,
                type_of_bill=claim.type_of_bill,
                period_from=claim.period_from,
                period_through=claim.period_through,
                admission_date=claim.admission_date,
                admission_source=claim.admission_source,
                patient_status=claim.patient_status,
                hipps=hipps,
                cbsa=claim.cbsa,
                fips_county=claim.fips_county,
                quality_data_submitted=self.quality_data_submitted,
                review_tracking_number=claim.review_tracking_number,
                state=claim.state,
                diagnoses=diagnoses,
                condition_codes=tuple(claim.condition_codes),
                occurrence_codes=tuple(claim.occurrence_codes),
                value_codes=tuple(claim.value_codes),
                beneficiary_key=claim.beneficiary_key,
                source_segment=claim.segment,
                lines=lines,
            )
        )


_KEPT_HI_QUALIFIERS = _PRINCIPAL_DIAGNOSIS | _OTHER_DIAGNOSIS | {_OCCURRENCE, _VALUE, _CONDITION}


def _element(elements: list[str], position: int) -> str:
    return elements[position] if position < len(elements) else ""


#: Dates and amounts repeat all through a claims file: parse each distinct text once.
_CACHE_LIMIT = 50_000
_DATES: dict[str, date] = {}
_DECIMALS: dict[str, Decimal] = {}


def _decimal(text: str) -> Decimal | None:
    """The exact value of an X12 decimal (R) element, None when the text is not one."""
    value = _DECIMALS.get(text)
    if value is None:
        if not _DECIMAL.match(text):
            return None
        value = Decimal(text)
        if len(_DECIMALS) < _CACHE_LIMIT:
            _DECIMALS[text] = value
    return value


def _date(text: str, element: str) -> date:
    day = _DATES.get(text)
    if day is not None:
        return day
    day = _parse_date(text, element)
    if len(_DATES) < _CACHE_LIMIT:
        _DATES[text] = day
    return day


def _parse_date(text: str, element: str) -> date:
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        raise _BadElement(element, f"date {text!r} is not CCYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise _BadElement(element, f"date {text!r} does not exist") from None


def _date_range(elements: list[str]) -> tuple[date, date]:
    """DTP02/DTP03 as (first, last): D8, RD8 (first-last) or DT (CCYYMMDDHHMM, the date part)."""
    if len(elements) < 4:
        elements = elements + [""] * (4 - len(elements))
    form = elements[2]
    text = elements[3]
    if form == "D8":
        day = _date(text, "DTP03")
        return day, day
    if form == "RD8":
        first, _, last = text.partition("-")
        start, end = _date(first, "DTP03"), _date(last, "DTP03")
        if end < start:
            raise _BadElement("DTP03", f"date range {text!r} ends before it begins")
        return start, end
    if form == "DT":
        if len(text) != 12 or not (text.isascii() and text.isdigit()):
            raise _BadElement("DTP03", f"date-time {text!r} is not CCYYMMDDHHMM")
        day = _date(text[:8], "DTP03")
        return day, day
    raise _BadElement("DTP02", f"date format {form!r} is not D8, RD8 or DT")


# --------------------------------------------------------------------------------------------
# Writing

#: Claims per transaction set in written files (the guide's advice for the 837).
CLAIMS_PER_TRANSACTION_SET = 5000

_WRITTEN_GUIDE = "005010X223A2"
_UNSAFE_TEXT = re.compile(r"[*:^~\r\n]")
#: CMS's published example of a well-formed NPI; stands for the attending physician of samples.
_SAMPLE_ATTENDING_NPI = "1234567893"


def write_837i(
    claims: Iterable[Claim],
    stream: TextIO,
    *,
    member_ids: Mapping[str, str],
    created: datetime | None = None,
    sender_id: str = "HHKBSAMPLE",
    receiver_id: str = "MEDICARE",
    interchange_control_number: int = 1,
) -> None:
    """Write claims as one 837I (005010X223A2) interchange that :func:`read_837i` reads back.

    ``member_ids`` maps each claim's ``beneficiary_key`` to the member identifier it was hashed
    from; the reader, given the same hash key, then yields equal claims. Everything else a valid
    837I needs and a Claim does not keep (names, addresses, birth dates, the payer, the attending
    physician) is written as obviously fake, well-formed text. The quality-data flag has no 837
    field and is not written. ``created`` dates the envelope; by default the day after the latest
    period, so that the same claims always give the same bytes. The interchange is marked as test
    data (ISA15 ``T``).

    Raises ValueError for a claim that cannot be written: a member id missing, a delimiter
    (``* : ^ ~``) inside a value, a type of bill that is not four characters starting with 0, a
    line with both a HCPCS and a HIPPS code.
    """
    claims = list(claims)
    if created is None:
        latest = max((claim.period_through for claim in claims), default=date(2000, 1, 1))
        created = datetime(latest.year, latest.month, latest.day, 12, 0) + timedelta(days=1)
    day = _x12_date(created.date())
    time = f"{created.hour:02d}{created.minute:02d}"
    _check_text("sender_id", sender_id)
    _check_text("receiver_id", receiver_id)
    write = stream.write
    write(
        _segment(
            "ISA", "00", " " * 10, "00", " " * 10, "ZZ", f"{sender_id:<15.15}", "ZZ", f"{receiver_id:<15.15}",
            day[2:], time, "^", "00501", f"{interchange_control_number:09d}", "0", "T", ":",
        )
    )
    write(_segment("GS", "HC", sender_id, receiver_id, day, time, "1", "X", _WRITTEN_GUIDE))
    transaction_sets = 0
    for start in range(0, len(claims), CLAIMS_PER_TRANSACTION_SET) or [0]:
        transaction_sets += 1
        batch = claims[start : start + CLAIMS_PER_TRANSACTION_SET]
        write(_transaction_set(batch, transaction_sets, day, time, sender_id, receiver_id, member_ids))
    write(_segment("GE", str(transaction_sets), "1"))
    write(_segment("IEA", "1", f"{interchange_control_number:09d}"))


def _transaction_set(
    claims: list[Claim], number: int, day: str, time: str, sender_id: str, receiver_id: str, member_ids: Mapping[str, str]
) -> str:
    control = f"{number:04d}"
    segments = [
        _segment("ST", "837", control, _WRITTEN_GUIDE),
        _segment("BHT", "0019", "00", control, day, time, "CH"),
        _segment("NM1", "41", "2", "SAMPLE SUBMITTER", "", "", "", "", "46", sender_id),
        _segment("PER", "IC", "SAMPLE CONTACT", "TE", "5555550100"),
        _segment("NM1", "40", "2", "MEDICARE", "", "", "", "", "46", receiver_id),
    ]
    hierarchy = 0
    provider_level = 0
    provider: tuple[str, str | None] | None = None
    for claim in claims:
        if (claim.agency_id, claim.state) != provider:
            provider = (claim.agency_id, claim.state)
            hierarchy += 1
            provider_level = hierarchy
            _check_text("agency_id", claim.agency_id)
            _check_text("state", claim.state or "")
            segments += [
                _segment("HL", str(hierarchy), "", "20", "1"),
                _segment("PRV", "BI", "PXC", "251E00000X"),
                _segment("NM1", "85", "2", "SAMPLE HOME HEALTH AGENCY", "", "", "", "", "XX", claim.agency_id),
                _segment("N3", "1 SAMPLE WAY"),
                _segment("N4", "SAMPLETOWN", claim.state or "", "999999999"),
                _segment("REF", "EI", "999999999"),
            ]
        hierarchy += 1
        segments.append(_segment("HL", str(hierarchy), str(provider_level), "22", "0"))
        segments.extend(_claim_segments(claim, member_ids))
    segments.append(_segment("SE", str(len(segments) + 1), control))
    return "".join(segments)


def _claim_segments(claim: Claim, member_ids: Mapping[str, str]) -> list[str]:
    member_id = member_ids.get(claim.beneficiary_key)
    if member_id is None:
        raise ValueError(f"claim {claim.claim_id}: no member id for its beneficiary key")
    _check_text("member id", member_id)
    type_of_bill = claim.type_of_bill
    if len(type_of_bill) != 4 or type_of_bill[0] != "0":
        raise ValueError(f"claim {claim.claim_id}: type of bill {type_of_bill!r} is not 0 + facility + frequency")
    for name in ("claim_id", "admission_source", "patient_status", "review_tracking_number"):
        _check_text(name, getattr(claim, name) or "")
    for code in (*claim.diagnoses, *claim.condition_codes, *(code for code, _ in claim.occurrence_codes)):
        _check_text("code", code)
    total = sum((line.charge for line in claim.lines), Decimal(0))
    segments = [
        _segment("SBR", "P", "18", "", "", "", "", "", "", "MA"),
        _segment("NM1", "IL", "1", "SAMPLE", "BENEFICIARY", "", "", "", "MI", member_id),
        _segment("N3", "2 SAMPLE WAY"),
        _segment("N4", "SAMPLETOWN", claim.state or "", "99999"),
        _segment("DMG", "D8", "19400101", "U"),
        _segment("NM1", "PR", "2", "MEDICARE", "", "", "", "", "PI", "SAMPLEMAC"),
        # CLM03, CLM04 and CLM06 are Not Used in 005010X223A2; CLM07 assignment (A: accepted),
        # CLM08 benefits assignment (Y), CLM09 release of information (Y) are required
        _segment("CLM", claim.claim_id, _amount(total), "", "", f"{type_of_bill[1:3]}:A:{type_of_bill[3]}", "", "A", "Y", "Y"),
        _segment("DTP", "434", "RD8", f"{_x12_date(claim.period_from)}-{_x12_date(claim.period_through)}"),
    ]
    if claim.admission_date is not None:
        segments.append(_segment("DTP", "435", "D8", _x12_date(claim.admission_date)))
    if claim.admission_source is not None or claim.patient_status is not None:
        # CL101 (priority of admission) is not kept; home health reports 9.
        segments.append(_segment("CL1", "9", claim.admission_source or "", claim.patient_status or ""))
    if claim.review_tracking_number is not None:
        segments.append(_segment("REF", "G1", claim.review_tracking_number))
    if claim.diagnoses:
        segments.append(_segment("HI", f"ABK:{claim.diagnoses[0]}"))
    segments += _hi_segments([f"ABF:{code}" for code in claim.diagnoses[1:]])
    segments += _hi_segments([f"BH:{code}:D8:{_x12_date(day)}" for code, day in claim.occurrence_codes])
    segments += _hi_segments([f"BE:{_text('value code', code)}:::{_amount(amount)}" for code, amount in claim.value_codes])
    segments += _hi_segments([f"BG:{code}" for code in claim.condition_codes])
    segments.append(_segment("NM1", "71", "1", "SAMPLE", "ATTENDING", "", "", "", "XX", _SAMPLE_ATTENDING_NPI))
    for line in claim.lines:
        segments.append(_segment("LX", str(line.line_number)))
        segments.append(_segment("SV2", line.revenue_code, _procedure(claim, line), _amount(line.charge), "UN", _amount(line.units)))
        if line.service_date is not None:
            segments.append(_segment("DTP", "472", "D8", _x12_date(line.service_date)))
    return segments


def _procedure(claim: Claim, line: ClaimLine) -> str:
    if line.hcpcs is not None and line.hipps is not None:
        raise ValueError(f"claim {claim.claim_id} line {line.line_number}: both a HCPCS and a HIPPS code")
    code = line.hcpcs if line.hcpcs is not None else line.hipps
    if code is None:
        if line.modifiers:
            raise ValueError(f"claim {claim.claim_id} line {line.line_number}: modifiers without a code")
        return ""
    if len(line.modifiers) > 4:
        raise ValueError(f"claim {claim.claim_id} line {line.line_number}: more than four modifiers")
    qualifier = "HC" if line.hcpcs is not None else "HP"
    return ":".join((qualifier, _text("procedure code", code), *(_text("modifier", m) for m in line.modifiers)))


def _hi_segments(composites: list[str]) -> list[str]:
    return [_segment("HI", *composites[start : start + 12]) for start in range(0, len(composites), 12)]


def _segment(*elements: str) -> str:
    return "*".join(elements).rstrip("*") + "~\n"


def _amount(value: Decimal | str) -> str:
    text = format(value, "f") if isinstance(value, Decimal) else value
    if not _DECIMAL.match(text):
        raise ValueError(f"{value!r} is not a plain decimal number")
    return text


def _text(name: str, value: str) -> str:
    _check_text(name, value)
    return value


def _check_text(name: str, value: str) -> None:
    if _UNSAFE_TEXT.search(value):
        raise ValueError(f"{name} {value!r} contains an X12 delimiter")


def _x12_date(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


