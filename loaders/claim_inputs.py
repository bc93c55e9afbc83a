"""Pricing inputs a claim does not carry, supplied as CSV: bytes in, frozen rows out.

CMS's pricer is given, besides the claim, the day the notice of admission (NOA) was received (for
the late-NOA reduction), the agency's value-based purchasing (VBP) adjustment factor, and whether
the period is a partial period because the agency discharged and readmitted the patient within it.
A claim file carries none of them. Two CSV files supply them (docs/pricing-inputs.md), each
recognised by its header row:

``vbp``
    ``agency_id,year,vbp_adjustment_factor``: one row per agency and calendar year, the factor as
    CMS publishes it (``1.0125`` pays 1.25% more; 0 < factor < 2).
``claims``
    ``agency_id,claim_id`` and at least one of ``noa_received`` (ISO date) and
    ``readmitted_in_period`` (``yes``/``no``): one row per claim; an empty cell supplies nothing.

Other columns are ignored. Reading is strict: the first bad row raises ``LoadError`` naming the
file, the line (the header is line 1) and the column; a key listed twice is an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from loaders.errors import LoadError

InputKind = Literal["vbp", "claims"]

VBP_COLUMNS = ("agency_id", "year", "vbp_adjustment_factor")
CLAIM_KEY_COLUMNS = ("agency_id", "claim_id")
CLAIM_INPUT_COLUMNS = ("noa_received", "readmitted_in_period")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


@dataclass(frozen=True)
class VbpFactorRow:
    row: int
    agency_id: str
    year: int
    factor: Decimal


@dataclass(frozen=True)
class ClaimInputRow:
    row: int
    agency_id: str
    claim_id: str
    noa_received: date | None
    readmitted_in_period: bool | None


@dataclass(frozen=True)
class SuppliedInputs:
    kind: InputKind
    rows: tuple[VbpFactorRow, ...] | tuple[ClaimInputRow, ...]


def read_supplied_inputs(path: str | Path) -> SuppliedInputs:
    """Read one pricing-inputs CSV (see the module doc)."""
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError(path, "not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    if set(VBP_COLUMNS) <= set(header):
        kind: InputKind = "vbp"
    elif set(CLAIM_KEY_COLUMNS) <= set(header) and set(CLAIM_INPUT_COLUMNS) & set(header):
        kind = "claims"
    else:
        raise LoadError(
            path, f"not a pricing-inputs CSV: the header needs {', '.join(VBP_COLUMNS)}, or "
            f"{', '.join(CLAIM_KEY_COLUMNS)} with {' or '.join(CLAIM_INPUT_COLUMNS)}", line=1,
        )
    index = {name: position for position, name in enumerate(header)}
    rows: list = []
    seen: dict[tuple, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise LoadError(path, f"{len(cells)} cells, the header has {len(header)}", line=line)

        def cell(name: str) -> str:
            return cells[index[name]].strip() if name in index else ""

        for name in CLAIM_KEY_COLUMNS[:1] + (("year",) if kind == "vbp" else ("claim_id",)):
            if not cell(name):
                raise LoadError(path, "empty", line=line, field=name)
        if kind == "vbp":
            item = VbpFactorRow(line, cell("agency_id"), _year(path, line, cell("year")),
                                _factor(path, line, cell("vbp_adjustment_factor")))
            key = (item.agency_id, item.year)
        else:
            item = ClaimInputRow(line, cell("agency_id"), cell("claim_id"),
                                 _date(path, line, cell("noa_received")),
                                 _flag(path, line, cell("readmitted_in_period")))
            key = (item.agency_id, item.claim_id)
        if key in seen:
            what = f"year {key[1]}" if kind == "vbp" else f"claim {key[1]}"
            raise LoadError(path, f"agency {key[0]}, {what} is listed twice (first on line {seen[key]})",
                            line=line, field=VBP_COLUMNS[1] if kind == "vbp" else "claim_id")
        seen[key] = line
        rows.append(item)
    if not rows:
        raise LoadError(path, "the file holds no row to load")
    return SuppliedInputs(kind, tuple(rows))


def _year(path, line: int, text: str) -> int:
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        raise LoadError(path, f"{text!r} is not a calendar year", line=line, field="year")
    return int(text)


def _factor(path, line: int, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not Decimal(0) < value < Decimal(2):
        raise LoadError(path, f"{text!r} is not a VBP adjustment factor (a decimal between 0 and 2)",
                        line=line, field="vbp_adjustment_factor")
    return value


def _date(path, line: int, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LoadError(path, f"{text!r} is not a date (YYYY-MM-DD)", line=line, field="noa_received") from None


def _flag(path, line: int, text: str) -> bool | None:
    if not text:
        return None
    if text.lower() in _YES:
        return True
    if text.lower() in _NO:
        return False
    raise LoadError(path, f"{text!r} is not yes or no", line=line, field="readmitted_in_period")
