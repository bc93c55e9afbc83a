"""CMS's own change reports inside the annual HCPCS zips: one (code, action, description) per code.

Each annual zip carries CMS's diff against the previous release, as a workbook and as printer
files (``.prn``) of the same rows:

- 2017: ``HCPCS2017_Trans Report_Alpha.xlsx``, ``HCPCS2017_Trans Report_ChangesbyHCPC.prn`` (and
  ``..._ChangesbyAction.prn``, the same rows sorted by action): code, type of change.
- 2018: ``HCPC18_Trans_Report_Alpha.xlsx``, ``HCPC18_Trans_Report_Alpha_ChangesbyHCPC.prn`` (and
  ``..._ChangesbyAction.prn``): code, type of change.
- 2019: ``HCPC2019_Trans_Alpha.xlsx``, ``Changes_by_HCPCSCode.prn`` (and
  ``Changes_by_ActionCode.prn``): code, type of change, short description, long description. The
  ``.prn`` cuts the type of change to 22 characters ("Long Description Chang") and the long
  description to 62; the workbook holds them whole.
- The quarterly workbooks (``2020-04/trans_alpha.xlsx``) put a note above the header row.

CMS writes the type of change in words, which ``CHANGE_DESCRIPTIONS`` maps to the action code
letters of the record layout (``loaders.hcpcs_record.ACTION_CODES``), as each workbook's
"Action Code Key" sheet pairs them. A word cut short by a ``.prn`` column is accepted when it is
the start of exactly one known wording.

Workbook sheets: "Changes by HCPCS Code" (or "... HCPC code", "... HCPC") is read unless
``sheet`` says otherwise; "Changes by Action Code" lists the same rows in another order.
A code listed twice with different actions (2020-07's action sheet lists CS twice) is kept as
read and named in ``HcpcsChangeReport.conflicts``.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from python_calamine import CalamineError, CalamineWorkbook

from loaders.archives import read_member
from loaders.control_characters import refuse_in_cells, refuse_in_text
from loaders.errors import LoadError
from loaders.xlsx_extent import check_sheet_extents

#: CMS's wordings of a type of change (whitespace folded, case ignored) -> action code letter.
CHANGE_DESCRIPTIONS: dict[str, str] = {
    "add": "A",
    "coverage & long desc change": "B",
    "coverage and long desc change": "B",
    "coverage and long description change": "B",
    "change in both coverage & long description": "B",
    "long description change": "C",
    "change in long description": "C",
    "long/short description change": "C",  # 2020-07 (CS); the release file gives it action C
    "discontinued": "D",
    "coverage change": "F",
    "change in coverage": "F",
    "no change": "N",
    "payment change": "P",
    "change in payment": "P",
    "re-activated": "R",
    "short description change": "S",
    "change in short description": "S",
    "misc change (tos, betos)": "T",
    "miscellaneous change (betos or type of service)": "T",
}

#: Shortest cut-off wording accepted as the start of a known one.
MINIMUM_PREFIX = 10

#: Zip members that are change reports, in order of preference (the workbook holds whole texts).
CHANGE_REPORT_MEMBERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"trans.*\.xlsx$", re.IGNORECASE),
    re.compile(r"changes_?by_?hcpc.*\.prn$", re.IGNORECASE),
    re.compile(r"changes_?by_?.*\.prn$", re.IGNORECASE),
)

_CODE = re.compile(r"[A-Z0-9]{2}|[A-Z0-9]{5}")
_HEADER = re.compile(r"\s*HCPC", re.IGNORECASE)
_SHEET_BY_CODE = re.compile(r"changes by hcpc", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HcpcsChangeRow:
    """One code as CMS's change report lists it.

    ``change_description`` is CMS's wording as read; ``action_code`` its letter. The descriptions
    are given by the 2019 and later reports only (``None`` before), whitespace folded.
    ``source_line`` is the 1-based line (``.prn``) or row (workbook).
    """

    code: str
    action_code: str
    change_description: str
    short_description: str | None
    long_description: str | None
    source_line: int


@dataclass(frozen=True, slots=True)
class HcpcsChangeReport:
    """The rows of one change report, in file order; ``path`` names the file (zip!member)."""

    path: str
    rows: tuple[HcpcsChangeRow, ...]

    @property
    def conflicts(self) -> tuple[str, ...]:
        """Codes listed more than once with different actions, sorted."""
        actions: dict[str, set[str]] = {}
        for row in self.rows:
            actions.setdefault(row.code, set()).add(row.action_code)
        return tuple(sorted(code for code, found in actions.items() if len(found) > 1))

    def by_code(self) -> dict[str, HcpcsChangeRow]:
        """Code -> its row; a code listed twice with different actions raises ``LoadError``."""
        result: dict[str, HcpcsChangeRow] = {}
        for row in self.rows:
            seen = result.get(row.code)
            if seen is not None and seen.action_code != row.action_code:
                raise LoadError(
                    self.path,
                    f"code {row.code} is listed twice with different actions "
                    f"(line {seen.source_line}: {seen.action_code}, line {row.source_line}: {row.action_code})",
                    line=row.source_line,
                    field="type_of_change",
                )
            result.setdefault(row.code, row)
        return result

    def codes_with(self, action_code: str) -> frozenset[str]:
        """The codes whose action is ``action_code``."""
        return frozenset(row.code for row in self.rows if row.action_code == action_code)

    def action_counts(self) -> Counter[str]:
        """Action code -> number of rows."""
        return Counter(row.action_code for row in self.rows)


def action_code_for(description: str) -> str | None:
    """The action code letter for CMS's wording of a type of change, or ``None`` if unknown."""
    wording = " ".join(description.split()).casefold()
    if wording in CHANGE_DESCRIPTIONS:
        return CHANGE_DESCRIPTIONS[wording]
    if len(wording) < MINIMUM_PREFIX:
        return None
    letters = {letter for known, letter in CHANGE_DESCRIPTIONS.items() if known.startswith(wording)}
    return letters.pop() if len(letters) == 1 else None


def _fold(text: object) -> str:
    return " ".join(str(text).split())


def _row(path: str, line: int, code: str, change: str, short: str | None, long: str | None) -> HcpcsChangeRow:
    code = code.strip()
    if not _CODE.fullmatch(code):
        raise LoadError(path, f"{code!r} is not an HCPCS code or modifier", line=line, field="code")
    change = _fold(change)
    if not change:
        raise LoadError(path, f"code {code} has no type of change", line=line, field="type_of_change")
    action = action_code_for(change)
    if action is None:
        raise LoadError(path, f"unknown type of change {change!r} for code {code}", line=line, field="type_of_change")
    return HcpcsChangeRow(
        code=code,
        action_code=action,
        change_description=change,
        short_description=None if short is None else _fold(short),
        long_description=None if long is None else _fold(long),
        source_line=line,
    )


def parse_change_report_prn(data: bytes, path: str | Path = "<bytes>") -> HcpcsChangeReport:
    """Rows of a ``.prn`` change report (cp1252 text).

    The header line (the first line starting ``HCPC``) gives the layout: with ``SHORT
    DESCRIPTION`` and ``LONG DESCRIPTION`` headings (2019), those columns start where their
    headings start and the code and type of change fill the columns before; without them, a line
    is the code, a run of blanks, then the type of change. Blank lines are skipped.
    """
    label = str(path)
    text = refuse_in_text(data.decode("cp1252"), label)
    lines = text.splitlines()
    header_index = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if header_index is None:
        raise LoadError(label, "no header line starting 'HCPC' (not a CMS change report)", line=1)
    header = lines[header_index].upper()
    short_at, long_at = header.find("SHORT DESCRIPTION"), header.find("LONG DESCRIPTION")
    if (short_at < 0) != (long_at < 0) or (short_at >= 0 and long_at < short_at):
        raise LoadError(label, "header has a short description heading without a long one, or the reverse",
                        line=header_index + 1, field="header")
    rows: list[HcpcsChangeRow] = []
    for index in range(header_index + 1, len(lines)):
        line, number = lines[index], index + 1
        if not line.strip():
            continue
        lead = line[:short_at] if short_at >= 0 else line
        parts = lead.split(None, 1)
        if len(parts) < 2:
            raise LoadError(label, f"line holds a code but no type of change: {line.strip()!r}", line=number,
                            field="type_of_change")
        short = line[short_at:long_at] if short_at >= 0 else None
        long = line[long_at:] if short_at >= 0 else None
        rows.append(_row(label, number, parts[0], parts[1], short, long))
    return HcpcsChangeReport(path=label, rows=tuple(rows))


def parse_change_report_xlsx(
    data: bytes, path: str | Path = "<bytes>", *, sheet: str | None = None
) -> HcpcsChangeReport:
    """Rows of a change report workbook: the "Changes by HCPC..." sheet, or ``sheet``.

    The header row is the first whose first cell starts with ``HCPC``; columns are code, type of
    change and, when the header has four cells, short and long description. Blank rows are skipped.
    """
    label = str(path)
    check_sheet_extents(data, label)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except CalamineError as error:
        raise LoadError(label, f"not a readable workbook: {error}") from error
    if sheet is None:
        sheet = next((name for name in workbook.sheet_names if _SHEET_BY_CODE.match(name)), None)
        if sheet is None:
            raise LoadError(label, f"no 'Changes by HCPC...' sheet (sheets: {', '.join(workbook.sheet_names)})",
                            field="sheet")
    elif sheet not in workbook.sheet_names:
        raise LoadError(label, f"no sheet {sheet!r} (sheets: {', '.join(workbook.sheet_names)})", field="sheet")
    where = f"{label} [{sheet}]"
    table = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    cells = [[_fold(cell) if not isinstance(cell, str) else cell for cell in row] for row in table]
    for number, row in enumerate(cells, 1):
        refuse_in_cells(row, where, line=number)
    header_index = next((i for i, row in enumerate(cells) if row and _HEADER.match(row[0])), None)
    if header_index is None:
        raise LoadError(where, "no header row whose first cell starts with 'HCPC'", line=1)
    with_descriptions = len([cell for cell in cells[header_index] if cell.strip()]) >= 4
    rows: list[HcpcsChangeRow] = []
    for index in range(header_index + 1, len(cells)):
        row, number = cells[index] + ["", "", "", ""], index + 1
        if not any(cell.strip() for cell in row):
            continue
        if not row[0].strip():
            raise LoadError(where, f"row has a type of change {row[1].strip()!r} but no code",
                            line=number, field="code")
        short, long = (row[2], row[3]) if with_descriptions else (None, None)
        rows.append(_row(where, number, row[0], row[1], short, long))
    return HcpcsChangeReport(path=where, rows=tuple(rows))


def is_change_report(path: str | Path) -> bool:
    """True when ``path`` is a change report workbook on its own (a quarter's ``trans_alpha.xlsx``):
    an xlsx with a "Changes by HCPC..." sheet. Judged by content, never by name."""
    try:
        with Path(path).open("rb") as stream:
            if stream.read(4) != b"PK\x03\x04":
                return False
        workbook = CalamineWorkbook.from_path(str(path))
    except (OSError, CalamineError, ValueError):
        return False
    return any(_SHEET_BY_CODE.match(name) for name in workbook.sheet_names)


def change_report_members(names: list[str]) -> list[str]:
    """The zip members that are change reports, best first (see ``CHANGE_REPORT_MEMBERS``)."""
    found: list[str] = []
    for pattern in CHANGE_REPORT_MEMBERS:
        found += [name for name in names if pattern.search(PurePosixPath(name).name) and name not in found]
    return found


#: CMS's change reports are under a megabyte; a member that expands past this is refused (zip bomb).
MAX_REPORT_BYTES = 50 * 1024 * 1024


def read_hcpcs_changes(path: str | Path, *, member: str | None = None, sheet: str | None = None) -> HcpcsChangeReport:
    """Read a change report from a ``.prn`` or ``.xlsx`` file, or from an annual zip.

    For a zip, ``member`` names the file inside; by default the best change report is read
    (the workbook). Errors name the file as ``archive.zip!member``.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path) and path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if member is None:
                    members = change_report_members(names)
                    if not members:
                        raise LoadError(
                            path, "the archive holds no HCPCS change report (*Trans*.xlsx, Changes_by_*.prn)"
                        )
                    member = members[0]
                elif member not in names:
                    raise LoadError(path, f"the archive has no member {member!r}")
                data = read_member(archive, archive.getinfo(member), f"{path}!{member}", limit=MAX_REPORT_BYTES)
            label = f"{path}!{member}"
            name = member
        else:
            data = path.read_bytes()
            label = str(path)
            name = path.name
    except OSError as error:
        raise LoadError(path, f"cannot read: {error.strerror or error}") from error
    except zipfile.BadZipFile as error:
        raise LoadError(path, f"not a readable zip archive: {error}") from error
    if name.lower().endswith(".prn"):
        return parse_change_report_prn(data, label)
    if name.lower().endswith(".xlsx"):
        return parse_change_report_xlsx(data, label, sheet=sheet)
    raise LoadError(label, "not a change report: expected a .prn or .xlsx file")
