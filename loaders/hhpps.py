"""CMS Home Health PPS pricer tables (``../shared/cms/hhpps/``): bytes in, frozen rows out.

CMS ships the static tables of its Home Health Agency pricer as small CSV files, one set per
calendar year. A table is recognised by the columns its header row names, never by its file name,
and read by the columns it needs: in any order, with any letter case, extra columns left unread,
optional columns allowed to be missing (the table says which were absent and which were not read),
and columns with no name at all (CY2026 ends every row with six empty cells) allowed as long as
they stay empty. CMS changes these layouts without notice (CY2025's wage index has only its four
required columns). A file that names most of a layout's columns but lacks a required one is an
error naming that column, never a silent skip:

``hrg``
    ``code,effectiveDate,weight,threshold``: one row per HIPPS code (432 PDGM groups), its case-mix
    weight and its LUPA threshold (a period with fewer visits is paid per visit).
``rev``
    ``code,effectiveDate,nonruralDollarRate,...``: one row per revenue code (0420 PT, 0430 OT,
    0440 SLP, 0550 SN, 0560 MSS, 0570 aide): the LUPA per-visit rate and the per-15-minute unit
    rate used to impute outlier cost, non-rural and rural, with and without quality data.
``wage_index``
    ``cbsa,effectiveDate,geographicWageIndex,name,...``: the wage index per CBSA; ``999SS`` rows
    are the rural areas of state ``SS``. A CBSA may be listed twice with different values (CY2023:
    49700 and 49740); that is returned as data, see ``HhppsTable.conflicts`` and
    ``resolve_wage_index``.
``rural_addon``
    ``code,category``: county FIPS code to rural add-on category (A high utilisation, B low
    population density, C all other; section 50208 of the Bipartisan Budget Act of 2018).
    The tables carry no date. Which years they apply to, as CMS's pricer uses them:
    ``add-on-table.csv`` lists the rural counties and their category for CY2019 through CY2022
    (the add-on ended for periods beginning on or after 2023-01-01; a comment in CMS's pricer
    source says "1/1/2019 through 12/31/2023", the Federal Register rules and DOMAIN.md say the
    add-on ended with CY2022). ``extra-add-on-table.csv`` lists counties that are urban under the
    CBSA delineations CMS adopted for CY2021 (OMB Bulletin 18-04) but keep their rural add-on
    category; CMS's CY2021 rule pricer consults it only when the county is not in the first table.
    In the shipped copy all 47 of its counties are also in ``add-on-table.csv`` with the same
    category, so for these files it adds nothing.

Encoding, decided from the bytes: a UTF-8 byte order mark is dropped; bytes that decode as UTF-8
are read as UTF-8 (all shipped files do: they are ASCII except a few names); otherwise the file is
read as cp1252 (CMS's usual Windows code page) and a warning says so. Names are kept as
read apart from surrounding spaces; a name holding a replacement character (U+FFFD, 2024's "Mayag\\ufffdez, PR"), a question
mark standing for a letter (2020's "Mayag?ez, PR") or any other non-ASCII character (2020's
"San Germ\\u00dfn, PR") is flagged in ``HhppsTable.name_flags`` for a person to check.

Cells are read without their surrounding spaces (CY2026 writes ``"MASSACHUSETTS "``).
Numbers are exact ``Decimal`` built from the text: ``"01.0124"`` is ``Decimal("1.0124")`` and 2023's
``"194"`` stays ``Decimal("194")`` (equal to 194.00, not padded).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from loaders.control_characters import refuse_in_text
from loaders.errors import LoadError

TableKind = Literal["hrg", "rev", "wage_index", "rural_addon"]
ConflictPolicy = Literal["first", "last", "refuse"]

#: HIPPS under PDGM: timing/admission source 1-4, clinical group A-L, functional impairment A-C,
#: comorbidity adjustment 1-3, and a fifth position that is always 1.
HIPPS_PATTERN = re.compile(r"[1-4][A-L][A-C][1-3]1")
REVENUE_CODE_PATTERN = re.compile(r"\d{4}")
CBSA_PATTERN = re.compile(r"\d{5}")
COUNTY_FIPS_PATTERN = re.compile(r"\d{5}")
RURAL_ADDON_CATEGORIES = frozenset({"A", "B", "C"})
_DECIMAL_PATTERN = re.compile(r"\d+(\.\d+)?|\.\d+")
_DATE_PATTERN = re.compile(r"\d{8}")


# --- row types -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HrgRow:
    """One HIPPS code's case-mix weight and LUPA threshold (``hrg-YYYY.csv``)."""

    hipps: str
    effective_date: date
    weight: Decimal
    lupa_threshold: int
    row: int


@dataclass(frozen=True, slots=True)
class RevenueRateRow:
    """Per-visit (LUPA) and per-15-minute (outlier) rates of one revenue code (``rev-YYYY.csv``).

    ``*_no_quality`` are the rates for an agency that did not submit quality data.
    """

    revenue_code: str
    effective_date: date
    visit_rate: Decimal
    visit_rate_rural: Decimal
    visit_rate_no_quality: Decimal
    visit_rate_no_quality_rural: Decimal
    unit_rate: Decimal
    unit_rate_rural: Decimal
    unit_rate_no_quality: Decimal
    unit_rate_no_quality_rural: Decimal
    row: int


@dataclass(frozen=True, slots=True)
class WageIndexRow:
    """One CBSA's wage index (``cbsa-wage-index-YYYY.csv``); the optional columns are blank in
    every shipped file and read as ``None``."""

    cbsa: str
    effective_date: date
    wage_index: Decimal
    name: str
    imputed_floor_wage_index: Decimal | None
    reclassified_wage_index: Decimal | None
    rural_floor_wage_index: Decimal | None
    size: str | None
    row: int

    @property
    def is_rural(self) -> bool:
        """``999SS`` rows are the rural (non-CBSA) area of state ``SS``."""
        return self.cbsa.startswith("999")


@dataclass(frozen=True, slots=True)
class RuralAddOnRow:
    """A county (FIPS state + county) and its rural add-on category A/B/C."""

    county_fips: str
    category: str
    row: int


HhppsRow = HrgRow | RevenueRateRow | WageIndexRow | RuralAddOnRow


@dataclass(frozen=True, slots=True)
class WageIndexConflict:
    """A CBSA listed more than once with different values, with every row that lists it."""

    cbsa: str
    rows: tuple[WageIndexRow, ...]

    def __str__(self) -> str:
        listed = ", ".join(f"row {r.row}: {r.wage_index}" for r in self.rows)
        return f"CBSA {self.cbsa} is listed {len(self.rows)} times with different values ({listed})"


@dataclass(frozen=True, slots=True)
class NameFlag:
    """A name that holds characters worth a look (kept exactly as read)."""

    row: int
    key: str
    name: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.key}): name {self.name!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class HhppsTable:
    """One pricer table as read.

    ``effective_date`` is the earliest effective date of its rows (``None`` for the undated rural
    add-on tables) and ``year`` its calendar year. ``warnings`` are plain sentences for a report
    (encoding fallback, several effective dates, name flags, conflicts).
    """

    path: str
    kind: TableKind
    encoding: str
    effective_date: date | None
    rows: tuple[HhppsRow, ...]
    conflicts: tuple[WageIndexConflict, ...] = ()
    name_flags: tuple[NameFlag, ...] = ()
    warnings: tuple[str, ...] = ()
    absent_columns: tuple[str, ...] = ()  # optional columns of the layout the file does not have
    unread_columns: tuple[str, ...] = ()  # named columns of the file that no layout column reads

    @property
    def year(self) -> int | None:
        return self.effective_date.year if self.effective_date else None


# --- layouts: header column -> row attribute and how to read it --------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    attribute: str
    read: Callable[[str], Any]
    required: bool = True  # False: the column may be absent and its cells blank (read as None)


@dataclass(frozen=True, slots=True)
class Layout:
    kind: TableKind
    row_type: type
    columns: tuple[Column, ...]
    key_attribute: str


def _read_decimal(text: str) -> Decimal:
    if not _DECIMAL_PATTERN.fullmatch(text):
        raise ValueError(f"not a decimal number: {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid text
        raise ValueError(f"not a decimal number: {text!r}") from exc
    # "01.0124" -> 1.0124: the leading zero is formatting, the digits after the point are kept.
    return value


def _read_int(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"not a whole number: {text!r}")
    return int(text)


def _read_date(text: str) -> date:
    if not _DATE_PATTERN.fullmatch(text):
        raise ValueError(f"not a date YYYYMMDD: {text!r}")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise ValueError(f"not a date YYYYMMDD: {text!r}") from exc


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def read(text: str) -> str:
        if not pattern.fullmatch(text):
            raise ValueError(f"not a {what}: {text!r}")
        return text

    return read


def _read_text(text: str) -> str:
    return text


_read_hipps = _matching(
    HIPPS_PATTERN,
    "PDGM HIPPS code (timing 1-4, clinical group A-L, functional A-C, comorbidity 1-3, then 1)",
)

LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "hrg",
        HrgRow,
        (
            Column("code", "hipps", _read_hipps),
            Column("effectiveDate", "effective_date", _read_date),
            Column("weight", "weight", _read_decimal),
            Column("threshold", "lupa_threshold", _read_int),
        ),
        key_attribute="hipps",
    ),
    Layout(
        "rev",
        RevenueRateRow,
        (
            Column("code", "revenue_code", _matching(REVENUE_CODE_PATTERN, "4-digit revenue code")),
            Column("effectiveDate", "effective_date", _read_date),
            Column("nonruralDollarRate", "visit_rate", _read_decimal),
            Column("ruralDollarRate", "visit_rate_rural", _read_decimal),
            Column("nonruralUnsubmittedDollarRate", "visit_rate_no_quality", _read_decimal),
            Column("ruralUnsubmittedDollarRate", "visit_rate_no_quality_rural", _read_decimal),
            Column("nonruralUnitDollarRate", "unit_rate", _read_decimal),
            Column("ruralUnitDollarRate", "unit_rate_rural", _read_decimal),
            Column("nonruralUnsubmittedUnitDollarRate", "unit_rate_no_quality", _read_decimal),
            Column("ruralUnsubmittedUnitDollarRate", "unit_rate_no_quality_rural", _read_decimal),
        ),
        key_attribute="revenue_code",
    ),
    Layout(
        "wage_index",
        WageIndexRow,
        (
            Column("cbsa", "cbsa", _matching(CBSA_PATTERN, "5-digit CBSA")),
            Column("effectiveDate", "effective_date", _read_date),
            Column("geographicWageIndex", "wage_index", _read_decimal),
            Column("name", "name", _read_text),
            Column("imputedFloorWageIndex", "imputed_floor_wage_index", _read_decimal, False),
            Column("reclassifiedWageIndex", "reclassified_wage_index", _read_decimal, False),
            Column("ruralFloorWageIndex", "rural_floor_wage_index", _read_decimal, False),
            Column("size", "size", _read_text, False),
        ),
        key_attribute="cbsa",
    ),
    Layout(
        "rural_addon",
        RuralAddOnRow,
        (
            Column("code", "county_fips", _matching(COUNTY_FIPS_PATTERN, "5-digit county FIPS code")),
            Column(
                "category",
                "category",
                _matching(re.compile("[ABC]"), "rural add-on category A, B or C"),
            ),
        ),
        key_attribute="county_fips",
    ),
)


# --- reading -----------------------------------------------------------------------------------


def decode_table_bytes(data: bytes) -> tuple[str, str]:
    """Decode by looking at the bytes: UTF-8 (BOM dropped) when valid, cp1252 otherwise.

    Returns ``(text, encoding)``. cp1252 leaves five byte values undefined; those are decoded as
    Latin-1 so that no byte is lost.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """How a file's header row maps onto a layout: the position of each column it has, the
    optional columns it lacks, the named columns nobody reads, and the columns with no name."""

    layout: Layout
    position: Mapping[str, int]
    absent: tuple[str, ...]
    unread: tuple[str, ...]
    unnamed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """Why a header row matches no layout. ``near`` is the layout it comes close to (at least two of
    its columns and half of the required ones), so the problem is worth an error, not a skip."""

    message: str
    field: str | None
    near: Layout | None


def match_header(header: list[str]) -> HeaderMatch | HeaderProblem:
    """The layout a header row names, read by the columns each layout needs.

    Every layout whose required columns are all present is a candidate; the one that reads most
    of the file's columns wins. Names are compared without surrounding spaces and letter case.
    """
    names = [cell.strip() for cell in header]
    folded = [name.casefold() for name in names]
    unnamed = tuple(index for index, name in enumerate(names) if not name)
    candidates: list[HeaderMatch] = []
    near: list[tuple[float, Layout, list[str], str | None]] = []
    for layout in LAYOUTS:
        wanted = {column.header.casefold(): column.header for column in layout.columns}
        position: dict[str, int] = {}
        repeated = None
        for index, name in enumerate(folded):
            if name in wanted:
                if wanted[name] in position:
                    repeated = repeated or wanted[name]
                position.setdefault(wanted[name], index)
        required = [column.header for column in layout.columns if column.required]
        missing = [header_name for header_name in required if header_name not in position]
        if not missing and repeated is None:
            absent = tuple(column.header for column in layout.columns if column.header not in position)
            read = set(position.values())
            unread = tuple(names[index] for index in range(len(names)) if names[index] and index not in read)
            candidates.append(HeaderMatch(layout, MappingProxyType(position), absent, unread, unnamed))
        else:
            share = (len(required) - len(missing)) / len(required)
            if share >= 0.5 and len(position) >= 2:
                near.append((share, layout, missing, repeated))
    if candidates:
        candidates.sort(key=lambda match: len(match.position), reverse=True)
        if len(candidates) > 1 and len(candidates[0].position) == len(candidates[1].position):
            kinds = " and ".join(_describe(match.layout) for match in candidates[:2])
            return HeaderProblem(f"the header fits both an {kinds}: rename or drop a column", None, None)
        return candidates[0]
    near.sort(key=lambda item: item[0], reverse=True)
    if near and (len(near) == 1 or near[0][0] > near[1][0]):
        _share, layout, missing, repeated = near[0]
        if repeated is not None:
            return HeaderProblem(f"{_describe(layout)}: column {repeated!r} appears twice", repeated, layout)
        return HeaderProblem(f"looks like an {_describe(layout)} but lacks column {missing[0]!r}",
                             missing[0], layout)
    shown = ",".join(names)[:120]
    expected = ", ".join(
        repr(",".join(column.header for column in layout.columns if column.required)) for layout in LAYOUTS
    )
    return HeaderProblem(
        f"not an HH PPS pricer table: header {shown!r} has the required columns of none of {expected}",
        None, None,
    )


def _first_line(path: Path) -> list[str] | None:
    with path.open("rb") as stream:
        head = stream.read(4096)
    text, _ = decode_table_bytes(head)
    lines = text.splitlines()
    if not lines:
        return None
    return next(csv.reader([lines[0]]), None)


def recognise_table(path: str | Path) -> HeaderMatch | HeaderProblem | None:
    """What the first line of a file says: a layout, a near miss worth an error, or ``None``
    (not a table at all, or not a file)."""
    path = Path(path)
    if not path.is_file():
        return None
    header = _first_line(path)
    if header is None:
        return None
    found = match_header(header)
    if isinstance(found, HeaderProblem) and found.near is None:
        return None
    return found


def is_hhpps_table(path: str | Path) -> bool:
    """True when the file's header row names the columns of one of the pricer tables."""
    return isinstance(recognise_table(path), HeaderMatch)


def read_hhpps_table(path: str | Path) -> HhppsTable:
    """Read one pricer table from a file; raises ``LoadError`` for bad input."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot read the file: {exc.strerror}") from exc
    return parse_hhpps_table(data, path)


def parse_hhpps_table(data: bytes, path: str | Path = "<bytes>") -> HhppsTable:
    """Read one pricer table from its bytes; ``path`` is only used to name the source in errors."""
    text, encoding = decode_table_bytes(data)
    records = list(csv.reader(io.StringIO(refuse_in_text(text, path), newline="")))
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        raise LoadError(path, "empty file: no header row")
    found = match_header(records[0])
    if isinstance(found, HeaderProblem):
        raise LoadError(path, found.message, line=1, field=found.field)
    layout, width = found.layout, len(records[0])
    if len(records) == 1:
        raise LoadError(path, f"{_describe(layout)} has a header but no rows", line=2)

    rows: list[HhppsRow] = []
    for line_number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            raise LoadError(path, "blank row inside the table", line=line_number)
        if len(record) > width and any(cell.strip() for cell in record[width:]):
            raise LoadError(path, f"{len(record)} cells where the header has {width}", line=line_number)
        for index in found.unnamed:
            if index < len(record) and record[index].strip():
                raise LoadError(
                    path, f"a value under column {index + 1}, which the header leaves without a name",
                    line=line_number,
                )
        values: dict[str, Any] = {"row": line_number}
        for column in layout.columns:
            index = found.position.get(column.header)
            cell = record[index].strip() if index is not None and index < len(record) else ""
            if not cell:
                if column.required:
                    raise LoadError(path, "empty cell", line=line_number, field=column.header)
                values[column.attribute] = None
                continue
            try:
                values[column.attribute] = column.read(cell)
            except ValueError as exc:
                raise LoadError(path, str(exc), line=line_number, field=column.header) from exc
        rows.append(layout.row_type(**values))

    conflicts: tuple[WageIndexConflict, ...] = ()
    if layout.kind == "wage_index":
        conflicts = _wage_index_conflicts(rows)  # type: ignore[arg-type]
    else:
        _refuse_duplicates(path, layout, rows)

    warnings: list[str] = []
    if found.unread:
        warnings.append("columns not read: " + ", ".join(repr(name) for name in found.unread))
    if encoding != "utf-8":
        warnings.append(f"not valid UTF-8: read as {encoding}")
    dates = sorted({row.effective_date for row in rows if hasattr(row, "effective_date")})
    if len(dates) > 1:
        listed = ", ".join(d.isoformat() for d in dates)
        warnings.append(f"rows carry {len(dates)} effective dates: {listed}")
    name_flags = tuple(_flag_name(row) for row in rows if isinstance(row, WageIndexRow))
    name_flags = tuple(flag for flag in name_flags if flag is not None)
    warnings.extend(str(flag) for flag in name_flags)
    warnings.extend(str(conflict) for conflict in conflicts)

    return HhppsTable(
        path=str(path),
        kind=layout.kind,
        encoding=encoding,
        effective_date=dates[0] if dates else None,
        rows=tuple(rows),
        conflicts=conflicts,
        name_flags=name_flags,
        warnings=tuple(warnings),
        absent_columns=found.absent,
        unread_columns=found.unread,
    )


def read_hhpps_folder(path: str | Path) -> list[HhppsTable]:
    """Every pricer table in a folder (recognised by header; other files are left alone), sorted
    by kind then effective date then file name."""
    folder = Path(path)
    if not folder.is_dir():
        raise LoadError(folder, "not a folder")
    tables = [read_hhpps_table(p) for p in sorted(folder.iterdir()) if is_hhpps_table(p)]
    order = {layout.kind: index for index, layout in enumerate(LAYOUTS)}
    return sorted(
        tables,
        key=lambda t: (order[t.kind], t.effective_date or date.min, Path(t.path).name),
    )


def resolve_wage_index(table: HhppsTable, policy: ConflictPolicy) -> dict[str, WageIndexRow]:
    """CBSA -> the one row to use, choosing among conflicting rows by ``policy``.

    ``"first"`` keeps the row listed first, ``"last"`` the row listed last, ``"refuse"`` raises a
    ``LoadError`` naming the first conflicting CBSA and its rows (rows repeated with equal values
    are not conflicts).
    """
    if table.kind != "wage_index":
        raise LoadError(table.path, f"not a wage index table (it is {table.kind!r})")
    if policy not in ("first", "last", "refuse"):
        raise ValueError(f"unknown conflict policy {policy!r}: use 'first', 'last' or 'refuse'")
    if policy == "refuse" and table.conflicts:
        conflict = table.conflicts[0]
        raise LoadError(table.path, str(conflict), line=conflict.rows[1].row, field="cbsa")
    chosen: dict[str, WageIndexRow] = {}
    for row in table.rows:
        assert isinstance(row, WageIndexRow)
        if policy == "last" or row.cbsa not in chosen:
            chosen[row.cbsa] = row
    return chosen


# --- helpers -----------------------------------------------------------------------------------


def _describe(layout: Layout) -> str:
    return f"HH PPS {layout.kind} table"


def _refuse_duplicates(path: str | Path, layout: Layout, rows: list[HhppsRow]) -> None:
    seen: dict[str, int] = {}
    key_header = next(c.header for c in layout.columns if c.attribute == layout.key_attribute)
    for row in rows:
        key = getattr(row, layout.key_attribute)
        if key in seen:
            raise LoadError(
                path,
                f"duplicate {layout.key_attribute.replace('_', ' ')} {key} (first on line {seen[key]})",
                line=row.row,
                field=key_header,
            )
        seen[key] = row.row


def _values(row: WageIndexRow) -> tuple:
    return (
        row.effective_date,
        row.wage_index,
        row.name,
        row.imputed_floor_wage_index,
        row.reclassified_wage_index,
        row.rural_floor_wage_index,
        row.size,
    )


def _wage_index_conflicts(rows: list[WageIndexRow]) -> tuple[WageIndexConflict, ...]:
    by_cbsa: dict[str, list[WageIndexRow]] = {}
    for row in rows:
        by_cbsa.setdefault(row.cbsa, []).append(row)
    return tuple(
        WageIndexConflict(cbsa, tuple(listed))
        for cbsa, listed in by_cbsa.items()
        if len({_values(r) for r in listed}) > 1
    )


def _flag_name(row: WageIndexRow) -> NameFlag | None:
    name = row.name
    if "\ufffd" in name:
        reason = "holds the replacement character U+FFFD (a character lost before CMS shipped it)"
    elif re.search(r"[A-Za-z]\?[A-Za-z]", name):
        reason = "holds a question mark in place of a letter"
    elif not name.isascii():
        odd = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in dict.fromkeys(name) if ord(ch) > 127)
        reason = f"holds non-ASCII characters {odd}: check the spelling"
    else:
        return None
    return NameFlag(row=row.row, key=row.cbsa, name=name, reason=reason)
