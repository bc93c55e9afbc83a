"""The claims CSV: one row per claim line, the claim's fields repeated on each of its rows.

The layout is documented in docs/claims-csv.md. Reading is strict: the first bad row raises
LoadError naming the file, the row (the physical line number, the header being line 1) and the
column. :func:`write_claims_csv` writes what :func:`read_claims_csv` reads back as equal claims.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import TextIO

from loaders.claim_record import HIPPS_REVENUE_CODE, Claim, ClaimLine, cbsa_and_county
from loaders.control_characters import refuse_in_cells
from loaders.errors import LoadError

#: Columns holding the claim's fields, repeated on every row of the claim.
CLAIM_COLUMNS: tuple[str, ...] = (
    "agency_id",
    "claim_id",
    "type_of_bill",
    "period_from",
    "period_through",
    "admission_date",
    "admission_source",
    "patient_status",
    "hipps",
    "cbsa",
    "fips_county",
    "quality_data_submitted",
    "review_tracking_number",
    "state",
    "diagnoses",
    "condition_codes",
    "occurrence_codes",
    "value_codes",
    "beneficiary_key",
)
#: Columns holding one line of the claim.
LINE_COLUMNS: tuple[str, ...] = (
    "line_number",
    "revenue_code",
    "hcpcs",
    "line_hipps",
    "modifiers",
    "units",
    "charge",
    "service_date",
)
COLUMNS: tuple[str, ...] = CLAIM_COLUMNS + LINE_COLUMNS

#: Columns that must not be empty; every other column may be empty (None, or an empty list).
REQUIRED_COLUMNS = frozenset(
    {"agency_id", "claim_id", "type_of_bill", "period_from", "period_through", "quality_data_submitted",
     "beneficiary_key", "line_number", "revenue_code", "units", "charge"}
)

LIST_SEPARATOR = ";"
PAIR_SEPARATOR = "="

_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_TYPE_OF_BILL = re.compile(r"0[0-9A-Z]{2}[0-9A-Z]\Z")
_REVENUE_CODE = re.compile(r"[0-9]{4}\Z")
_HEX_KEY = re.compile(r"[0-9a-f]{64}\Z")
_CODE = re.compile(r"[0-9A-Z]+\Z")
_FLAGS = {"Y": True, "N": False}

# The fields of a claim that identify it: rows of one claim are contiguous and share these.
_IDENTITY = ("agency_id", "claim_id", "type_of_bill", "period_from")


def read_claims_csv(source: str | os.PathLike[str] | TextIO, *, path: str | None = None) -> Iterator[Claim]:
    """Yield the claims of a claims CSV, in file order. ``source`` is a path or a text stream."""
    if isinstance(source, (str, os.PathLike)):
        name = path or os.fspath(source)
        with open(source, encoding="utf-8-sig", newline="") as stream:
            yield from _read(stream, name)
    else:
        yield from _read(source, path or str(getattr(source, "name", "<stream>")))


def _read(stream: TextIO, path: str) -> Iterator[Claim]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise LoadError(path, "the file is empty: expected a header row", line=1)
    header = [name.strip() for name in header]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise LoadError(path, f"header lacks column(s) {', '.join(missing)}", line=1, field=missing[0])
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise LoadError(path, f"header has unknown column(s) {', '.join(unknown)}", line=1, field=unknown[0])
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise LoadError(path, f"header repeats column(s) {', '.join(duplicated)}", line=1, field=duplicated[0])
    index = {name: header.index(name) for name in COLUMNS}

    current: _PendingClaim | None = None
    seen: dict[tuple[str, ...], int] = {}
    for row in reader:
        row_number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise LoadError(path, f"row has {len(row)} cells, the header {len(header)}", line=row_number)
        refuse_in_cells(row, path, line=row_number, headings=header, allowed="")
        cells = {name: row[index[name]].strip() for name in COLUMNS}
        for name in REQUIRED_COLUMNS:
            if not cells[name]:
                raise LoadError(path, "empty, but required", line=row_number, field=name)
        identity = tuple(cells[name] for name in _IDENTITY)
        if current is not None and identity == current.identity:
            for name in CLAIM_COLUMNS:
                if cells[name] != current.cells[name]:
                    raise LoadError(
                        path,
                        f"differs from the claim's first row (line {current.row_number}): "
                        f"{cells[name]!r} instead of {current.cells[name]!r}",
                        line=row_number,
                        field=name,
                    )
        else:
            if current is not None:
                yield current.finish(path)
            if identity in seen:
                raise LoadError(
                    path,
                    f"claim {cells['claim_id']} continues here after other claims (it began on line "
                    f"{seen[identity]}): a claim's rows must be contiguous",
                    line=row_number,
                    field="claim_id",
                )
            seen[identity] = row_number
            current = _PendingClaim(identity, cells, row_number)
        current.lines.append(_line(cells, path, row_number))
    if current is not None:
        yield current.finish(path)


class _PendingClaim:
    def __init__(self, identity: tuple[str, ...], cells: dict[str, str], row_number: int):
        self.identity = identity
        self.cells = cells
        self.row_number = row_number
        self.lines: list[ClaimLine] = []

    def finish(self, path: str) -> Claim:
        cells = self.cells
        row = self.row_number
        field = _Field(path, row, cells)
        type_of_bill = field.matching("type_of_bill", _TYPE_OF_BILL, "is not 0 + facility + frequency, e.g. 0329")
        period_from = field.date("period_from")
        period_through = field.date("period_through")
        if period_through < period_from:
            raise LoadError(path, f"{period_through} is before period_from {period_from}", line=row, field="period_through")
        value_codes = field.pairs("value_codes", field.decimal_text)
        try:
            value_cbsa, value_county = cbsa_and_county(value_codes)
        except ValueError as error:
            raise LoadError(path, str(error), line=row, field="value_codes") from None
        cbsa = field.optional("cbsa")
        fips_county = field.optional("fips_county")
        if value_cbsa is not None and cbsa != value_cbsa:
            raise LoadError(path, f"{cbsa!r} disagrees with value code 61 ({value_cbsa})", line=row, field="cbsa")
        if value_county is not None and fips_county != value_county:
            raise LoadError(path, f"{fips_county!r} disagrees with value code 85 ({value_county})", line=row, field="fips_county")
        hipps = field.optional("hipps")
        line_hipps = next(
            (line.hipps for line in self.lines if line.revenue_code == HIPPS_REVENUE_CODE and line.hipps), None
        )
        if hipps != line_hipps:
            raise LoadError(
                path, f"{hipps!r} disagrees with the HIPPS of the claim's 0023 line ({line_hipps!r})", line=row, field="hipps"
            )
        key = field.matching("beneficiary_key", _HEX_KEY, "is not 64 lowercase hex digits (an HMAC-SHA256)")
        flag = cells["quality_data_submitted"]
        if flag not in _FLAGS:
            raise LoadError(path, f"{flag!r} is neither Y nor N", line=row, field="quality_data_submitted")
        return Claim(
            agency_id=cells["agency_id"],
            claim_id=cells["claim_id"],
            type_of_bill=type_of_bill,
            period_from=period_from,
            period_through=period_through,
            admission_date=field.optional_date("admission_date"),
            admission_source=field.optional("admission_source"),
            patient_status=field.optional("patient_status"),
            hipps=hipps,
            cbsa=cbsa,
            fips_county=fips_county,
            quality_data_submitted=_FLAGS[flag],
            review_tracking_number=field.optional("review_tracking_number"),
            state=field.optional("state"),
            diagnoses=field.codes("diagnoses"),
            condition_codes=field.codes("condition_codes"),
            occurrence_codes=field.pairs("occurrence_codes", field.iso_date),
            value_codes=value_codes,
            beneficiary_key=key,
            source_segment=row,
            lines=tuple(self.lines),
        )


def _line(cells: dict[str, str], path: str, row: int) -> ClaimLine:
    field = _Field(path, row, cells)
    number = cells["line_number"]
    if not number.isdigit():
        raise LoadError(path, f"{number!r} is not a whole number", line=row, field="line_number")
    hcpcs = field.optional("hcpcs")
    hipps = field.optional("line_hipps")
    if hcpcs is not None and hipps is not None:
        raise LoadError(path, "a line has either a HCPCS or a HIPPS code, not both", line=row, field="line_hipps")
    modifiers = field.codes("modifiers")
    if modifiers and hcpcs is None and hipps is None:
        raise LoadError(path, "modifiers without a HCPCS or HIPPS code", line=row, field="modifiers")
    return ClaimLine(
        line_number=int(number),
        revenue_code=field.matching("revenue_code", _REVENUE_CODE, "is not four digits"),
        hcpcs=hcpcs,
        hipps=hipps,
        modifiers=modifiers,
        units=field.decimal("units"),
        charge=field.decimal("charge"),
        service_date=field.optional_date("service_date"),
    )


class _Field:
    """Typed access to the cells of one row, raising LoadError with the row and column."""

    def __init__(self, path: str, row: int, cells: dict[str, str]):
        self.path = path
        self.row = row
        self.cells = cells

    def error(self, name: str, message: str) -> LoadError:
        return LoadError(self.path, message, line=self.row, field=name)

    def optional(self, name: str) -> str | None:
        return self.cells[name] or None

    def matching(self, name: str, pattern: re.Pattern[str], message: str) -> str:
        text = self.cells[name]
        if not pattern.match(text):
            raise self.error(name, f"{text!r} {message}")
        return text

    def decimal(self, name: str) -> Decimal:
        return self.decimal_text(name, self.cells[name])

    def decimal_text(self, name: str, text: str) -> Decimal:
        if not _DECIMAL.match(text):
            raise self.error(name, f"{text!r} is not a decimal number")
        return Decimal(text)

    def date(self, name: str) -> date:
        return self.iso_date(name, self.cells[name])

    def optional_date(self, name: str) -> date | None:
        return self.iso_date(name, self.cells[name]) if self.cells[name] else None

    def iso_date(self, name: str, text: str) -> date:
        if not _ISO_DATE.match(text):
            raise self.error(name, f"{text!r} is not a date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise self.error(name, f"{text!r} is not a date that exists") from None

    def codes(self, name: str) -> tuple[str, ...]:
        text = self.cells[name]
        if not text:
            return ()
        codes = tuple(code.strip() for code in text.split(LIST_SEPARATOR))
        for code in codes:
            if not _CODE.match(code):
                raise self.error(name, f"{code!r} is not a code (capital letters and digits)")
        return codes

    def pairs(self, name: str, convert) -> tuple[tuple[str, object], ...]:
        text = self.cells[name]
        if not text:
            return ()
        pairs = []
        for item in text.split(LIST_SEPARATOR):
            code, separator, value = (part.strip() for part in item.partition(PAIR_SEPARATOR))
            if not separator or not _CODE.match(code):
                raise self.error(name, f"{item.strip()!r} is not CODE{PAIR_SEPARATOR}VALUE")
            pairs.append((code, convert(name, value)))
        return tuple(pairs)


def write_claims_csv(claims: Iterable[Claim], stream: TextIO) -> None:
    """Write claims in the documented layout (header first, ``\\n`` line ends).

    Raises ValueError for a claim without lines (it would have no row) or a code that holds a
    list or pair separator.
    """
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for claim in claims:
        if not claim.lines:
            raise ValueError(f"claim {claim.claim_id} has no lines: the layout has one row per line")
        claim_cells = [
            claim.agency_id,
            claim.claim_id,
            claim.type_of_bill,
            claim.period_from.isoformat(),
            claim.period_through.isoformat(),
            _optional_date(claim.admission_date),
            claim.admission_source or "",
            claim.patient_status or "",
            claim.hipps or "",
            claim.cbsa or "",
            claim.fips_county or "",
            "Y" if claim.quality_data_submitted else "N",
            claim.review_tracking_number or "",
            claim.state or "",
            _joined("diagnoses", claim.diagnoses),
            _joined("condition_codes", claim.condition_codes),
            LIST_SEPARATOR.join(f"{code}{PAIR_SEPARATOR}{day.isoformat()}" for code, day in claim.occurrence_codes),
            LIST_SEPARATOR.join(f"{code}{PAIR_SEPARATOR}{_decimal(amount)}" for code, amount in claim.value_codes),
            claim.beneficiary_key,
        ]
        for line in claim.lines:
            writer.writerow(
                claim_cells
                + [
                    str(line.line_number),
                    line.revenue_code,
                    line.hcpcs or "",
                    line.hipps or "",
                    _joined("modifiers", line.modifiers),
                    _decimal(line.units),
                    _decimal(line.charge),
                    _optional_date(line.service_date),
                ]
            )


def _optional_date(day: date | None) -> str:
    return day.isoformat() if day is not None else ""


def _decimal(value: Decimal | str) -> str:
    return format(value, "f") if isinstance(value, Decimal) else value


def _joined(name: str, codes: tuple[str, ...]) -> str:
    for code in codes:
        if LIST_SEPARATOR in code or PAIR_SEPARATOR in code:
            raise ValueError(f"{name} code {code!r} contains {LIST_SEPARATOR!r} or {PAIR_SEPARATOR!r}")
    return LIST_SEPARATOR.join(codes)
