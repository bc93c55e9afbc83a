"""CMS's corrections to an annual HCPCS release, read as typed correction events.

After publishing an annual Alpha-Numeric HCPCS file CMS publishes a "HCPCS corrections" document,
sometimes in several successive versions (2018: V1 to V4 within three weeks; 2019: two).
``read_corrections`` returns them in version order, and **a later version supersedes an earlier
one for every code it mentions**; apply them in that order, event by event. Do not drop an earlier
version's events because a later version exists: the 2018 versions restate their predecessors (V2
repeats V1's rows and adds its own, V3 turns V2's additions of G9978/G9979 into removals, V4 takes
back V3's additions of G9989/G9990 and no longer lists G9978/G9979), but the 2019 version 2 lists
only three new rows, one of which sets the ASC indicator of C1890, a code that version 1 adds.

The layout, recognised by content and never by file name: a title row naming the release year
(``2018 HCPCS CORRECTIONS``, ``2019 ALPHA-NUMERIC HCPCS CORRECTIONS``), a header row starting with
``CODE`` and ``ACTION`` whose other headings are listed in ``COLUMNS``, then one row per code with
the action in CMS's words (``Revise Long Desc``, ``ADD Code``, ``Terminate code``, ``Change ASC
Ind/ASC eff date``, ``Should not have been updated - revert back to 2017 description`` ...). Each
action text is matched against ``ACTION_RULES``; a text no rule matches is a ``LoadError``.

Copies of one version. A zip holds each version as ``.xlsx`` and as a text export: tab-separated
``.txt`` (2017) or fixed-column ``.prn`` (2018, 2019). The ``.xlsx`` is the copy read: it keeps
whole cell values and typed dates, while the ``.prn`` export cuts every column to its width
("Revise Long & Short De", "01/01/201", long descriptions after 20 to 60 characters) and cannot
be read back faithfully. A tab-separated ``.txt`` is read when a version has no ``.xlsx``; a
version that exists only as ``.prn`` is a ``LoadError``. Members that are not corrections
documents (the 2018 zip's README) are passed over; a zip with none is a ``LoadError``. The tests check that the 2017 ``.txt``
gives the same events as its ``.xlsx`` and that every ``.prn`` line agrees with its ``.xlsx`` row.

Knowledge date. The documents carry no date of their own (their titles name only the year), so
the date is the zip member date, and of a version's copies the **earliest** one: re-saving a copy
only ever moves its date later. CMS re-saved the 2018 ``.prn`` copies on 2018-09-11 (the zip's
README says nothing else changed), and the 2019 version 1 ``.xlsx`` on 2019-01-03 together with
version 2, while its ``.prn`` is dated 2018-12-20 (its core properties say it was created that
day). ``knowledge_date_basis`` names the member and lists the dates of all the copies. A file read
on its own (not from a zip) carries no date: its ``knowledge_date`` is None and the basis says so
(never the file's modification time); the store then takes it as known from the effective date
of the release it corrects, as it does for an HCPCS release file without a publication date.

Event kinds (``CORRECTION_KINDS``) and what ``changes`` holds for each:

``add``
    the code belongs in the release: the values the row gives, plus ``action_code`` ``"A"`` and
    ``added_date`` and ``action_effective_date`` equal to the effective date.
``revise``
    the fields the row changes, with their new values.
``terminate``
    ``action_code`` ``"D"``, ``action_effective_date`` the effective date and ``termination_date``
    the day before (the release files date a termination on the last valid day: Q9994 in the 2019
    file is action ``D`` effective 20190101, terminated 20181231), plus a cross reference if given.
``revert``
    the fields to restore from release ``revert_to_year``, each with value ``None``: the store
    resolves them. "Revert back to 2017 description" restores both descriptions: the 2018 file had
    given G9637/G9638 the long and short descriptions of G9367/G9368.
``reinstate``
    a code removed from the release in error ("Removed in error - add back to file", modifier DA
    in 2019): every field of ``STATE_FIELDS`` is restored from the previous release
    (``revert_to_year`` = release year - 1).
``delete``
    the release should not list the code at all (G9890/G9891, listed as added in the 2018 file).
``withdraw``
    an entry of an earlier version of the corrections is taken back ("Remove, will be assigned at a
    later date", "DO NOT ADD - Remove from previous corrections document"); no change to the
    release itself.

A ``FieldChange`` sets a field (``operation="set"``), or for a repeated field adds or removes one
item (``"include"``: "Add Lab Cert code 220"; ``"exclude"``: "Remove xref code Q0080"), which the
store applies to the value the release gives.

Values are typed as in ``HcpcsRecord``: text stripped with whitespace runs folded, repeated fields
as tuples (``"9,F"`` is ``("9", "F")``; a pricing indicator is two characters, so the number 53 in
an xlsx cell is ``"53"``), dates as ``datetime.date`` or ``None``. An event's ``effective_date`` is
the row's ``EFF DATE`` when it has one, else January 1 of the release year. One real date is
mistyped: ``01/0/12019`` for Q5111 in the 2019 version 1; a date whose slashes are misplaced is read
when its eight digits make a valid MMDDYYYY date, any other text in a date column is a
``LoadError``. A ``COMMENTS`` cell is read when it names a statute (``Statute 1833(t)`` sets
``statute``); any other comment is a ``LoadError``.

Every non-blank row is accounted for: a correction row becomes an event, and the title row, the
header row and any row without a code (a note) are listed in ``unapplied`` with the reason.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from python_calamine import CalamineWorkbook

from loaders.archives import is_zip, open_zip, read_member
from loaders.control_characters import TAB, refuse_in_cells, refuse_in_text
from loaders.errors import LoadError
from loaders.xlsx_extent import check_sheet_extents
from loaders.hcpcs_record import STATE_FIELDS

CORRECTION_KINDS: dict[str, str] = {
    "add": "the code belongs in the release, with the values given",
    "revise": "fields of the code change",
    "terminate": "the code is discontinued from the effective date",
    "revert": "fields go back to their values in release revert_to_year",
    "reinstate": "a code removed in error comes back as the previous release had it",
    "delete": "the release should not list the code at all",
    "withdraw": "an entry of an earlier version of the corrections is taken back",
}

FIELD_OPERATIONS: dict[str, str] = {
    "set": "the field takes the value",
    "include": "the value is one item to add to the repeated field",
    "exclude": "the value is one item to remove from the repeated field",
}

#: Column headings as CMS writes them (whitespace folded, upper case) and what each holds: a
#: ``HcpcsRecord`` field, or ``code``/``action``/``effective_date``/``comments`` of the row itself.
#: ``LC EDIT`` (2018 V1 only, always empty) is read as lab certification codes.
COLUMNS: dict[str, str] = {
    "CODE": "code",
    "ACTION": "action",
    "EFF DATE": "effective_date",
    "SHORT DESC": "short_description",
    "LONG DESC": "long_description",
    "TOS": "type_of_service",
    "BETOS": "betos",
    "COV": "coverage_code",
    "PRICE": "pricing_indicators",
    "XREF CODE": "cross_references",
    "ASC IND": "asc_group",
    "ASC DATE": "asc_effective_date",
    "LC EDIT": "lab_certifications",
    "COMMENTS": "comments",
}

_REPEATED_FIELDS = frozenset({"type_of_service", "pricing_indicators", "cross_references", "lab_certifications"})
_DATE_FIELDS = frozenset({"effective_date", "asc_effective_date", "action_effective_date", "added_date", "termination_date"})
#: Repeated fields whose items have a fixed width, padded with zeros when a spreadsheet stored a number.
_ITEM_WIDTHS: dict[str, int] = {"pricing_indicators": 2}

_CODE_PATTERN = re.compile(r"[A-Z0-9]{5}|[A-Z0-9]{2}")
_TITLE_PATTERN = re.compile(r"\b(?P<year>(?:19|20)\d\d)\b.*\bHCPCS CORRECTIONS\b", re.IGNORECASE)
_VERSION_PATTERN = re.compile(r"(?:^|[^a-z0-9])v(?P<version>\d+)(?:[^a-z0-9]|$)", re.IGNORECASE)
_NAME_YEAR_PATTERN = re.compile(r"HCPCS?[_ -]?(?P<year>(?:19|20)\d\d)", re.IGNORECASE)
_DATE_PATTERN = re.compile(r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})")
_MISPLACED_SLASH_DATE_PATTERN = re.compile(r"[\d/]+")
_COMMENT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"statute (?P<value>\S+)", re.IGNORECASE), "statute"),
)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of ``HcpcsRecord`` (a name of ``STATE_FIELDS``, ``action_code`` or
    ``action_effective_date``) and its value after the correction, typed as in ``HcpcsRecord``.

    ``operation`` is one of ``FIELD_OPERATIONS``: ``"set"``, or ``"include"``/``"exclude"`` of one
    item of a repeated field. For a ``revert`` or ``reinstate`` event the value is ``None``: the
    field takes its value from the release the event names.
    """

    field: str
    value: object
    operation: str = "set"


@dataclass(frozen=True, slots=True)
class CorrectionEvent:
    """One row of a corrections document: what CMS says to do to one code of the release.

    ``action_text`` is CMS's words as written, without surrounding blanks; ``kind`` is one of
    ``CORRECTION_KINDS``; ``revert_to_year`` names the release a ``revert`` or ``reinstate`` takes
    its values from; ``source_row`` is the xlsx row or text line (1-based).
    """

    code: str
    action_text: str
    kind: str
    changes: tuple[FieldChange, ...]
    effective_date: date | None
    source_row: int
    revert_to_year: int | None = None


@dataclass(frozen=True, slots=True)
class CorrectionDocument:
    """One version of the corrections to one annual release, as read from one member."""

    path: str
    member: str | None
    release_year: int
    version: int
    knowledge_date: date | None
    knowledge_date_basis: str
    events: tuple[CorrectionEvent, ...]
    unapplied: tuple[tuple[int, str, str], ...]


@dataclass(frozen=True, slots=True)
class ActionRule:
    """How one kind of action text becomes an event.

    ``pattern`` must match the whole action text (case ignored, whitespace runs folded); its named
    groups are field values given in the text itself, applied with ``operation``. ``required``
    columns must hold a value and ``allowed`` ones may; a value in any other column is an error,
    so nothing the row says is dropped. ``dated`` fields take the row's effective date moved by the
    given number of days; ``fixed`` are constant field values; ``restores`` are the fields a
    revert or reinstate takes from an earlier release.
    """

    pattern: re.Pattern[str]
    kind: str
    required: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    operation: str = "set"
    dated: tuple[tuple[str, int], ...] = ()
    fixed: tuple[tuple[str, object], ...] = ()
    restores: tuple[str, ...] = ()


def _rule(pattern: str, kind: str, **options) -> ActionRule:
    return ActionRule(re.compile(pattern, re.IGNORECASE), kind, **options)


_ADDED_CODE_COLUMNS = (
    "type_of_service",
    "betos",
    "coverage_code",
    "pricing_indicators",
    "cross_references",
    "asc_group",
    "asc_effective_date",
    "lab_certifications",
    "statute",
)

#: Every action text seen in the 2017, 2018 and 2019 corrections, as rules; first match wins.
ACTION_RULES: tuple[ActionRule, ...] = (
    _rule(
        r"add(?: code)?",
        "add",
        required=("short_description", "long_description"),
        allowed=_ADDED_CODE_COLUMNS,
        dated=(("added_date", 0), ("action_effective_date", 0)),
        fixed=(("action_code", "A"),),
    ),
    _rule(r"revise ?long desc(?:ription)?", "revise", required=("long_description",)),
    _rule(
        r"revise long (?:&|and) short desc(?:ription)?",
        "revise",
        required=("short_description", "long_description"),
    ),
    _rule(
        r"terminate code|discontinue",
        "terminate",
        allowed=("cross_references",),
        dated=(("action_effective_date", 0), ("termination_date", -1)),
        fixed=(("action_code", "D"),),
    ),
    _rule(r"remove xref code (?P<cross_references>[A-Z0-9]{5})", "revise", operation="exclude"),
    _rule(r"add lab cert code (?P<lab_certifications>[A-Z0-9]{3})", "revise", operation="include"),
    _rule(r"change xref code to (?P<cross_references>[A-Z0-9]{5})", "revise", allowed=("cross_references",)),
    _rule(
        r'change action code to "(?P<action_code>[A-Z])" and add action effective date',
        "revise",
        dated=(("action_effective_date", 0),),
    ),
    _rule(
        r"change cov to (?P<coverage_code>[A-Z0-9]) and price to (?P<pricing_indicators>[0-9]{2})",
        "revise",
        allowed=("coverage_code", "pricing_indicators"),
    ),
    _rule(r"change asc ind/asc eff date", "revise", required=("asc_group",), dated=(("asc_effective_date", 0),)),
    _rule(r'add "(?P<asc_group>[A-Z0-9]{2})" asc ind', "revise", allowed=("asc_group", "asc_effective_date")),
    _rule(
        r'remove "[A-Z0-9]{2}" asc ind and asc start date of \d{1,2}/\d{1,2}/\d{4}',
        "revise",
        fixed=(("asc_group", ""), ("asc_effective_date", None)),
    ),
    _rule(
        r"should not have been updated - revert back to (?P<revert_to_year>\d{4}) description",
        "revert",
        restores=("long_description", "short_description"),
    ),
    _rule(r"removed in error - add back to file", "reinstate", restores=STATE_FIELDS),
    _rule(r"delete", "delete"),
    _rule(
        r"remove, will be assigned at a later date|do not add - remove from previous corrections document",
        "withdraw",
    ),
)


# --- public API ------------------------------------------------------------------------------


def read_corrections(path: str | Path) -> list[CorrectionDocument]:
    """The corrections documents in ``path`` (a zip, an ``.xlsx`` or a tab-separated text file),
    one per version, in version order: a later one supersedes the earlier ones."""
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise LoadError(path, "empty file: no HCPCS corrections")
    if is_zip(data) and not _is_xlsx_package(open_zip(data, str(path))):
        return _read_zip(path, data)
    layout = _sniff(path, data)
    if layout is None:
        raise LoadError(path, "not a HCPCS corrections document: no title naming 'HCPCS CORRECTIONS' above a CODE/ACTION header")
    if layout == "prn":
        raise LoadError(path, _PRN_REFUSAL)
    basis = "no publication date in the file (a corrections document outside CMS's zip has no member date)"
    return [_read_document(str(path), None, _version_of(path.name), layout, data, None, basis)]


def is_corrections_file(path: str | Path) -> bool:
    """Whether ``path`` is, or is a zip holding, a HCPCS corrections document (judged by content)."""
    path = Path(path)
    data = path.read_bytes()
    if not data:
        return False
    if not is_zip(data):
        return _sniff(path, data) is not None
    try:
        with open_zip(data, str(path)) as archive:
            if _is_xlsx_package(archive):  # a workbook, not an archive of files
                return _sniff(path, data) is not None
            return any(
                _sniff(where, read_member(archive, info, where, limit=MAX_DOCUMENT_BYTES)) is not None
                for info in archive.infolist()
                if not info.is_dir()
                for where in (f"{path}!{info.filename}",)
            )
    except LoadError:
        return False


def _is_xlsx_package(archive: zipfile.ZipFile) -> bool:
    return "[Content_Types].xml" in archive.namelist()


# --- members and versions --------------------------------------------------------------------

#: A corrections document is a few kilobytes; a member that expands past this is refused (zip bomb).
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024

_PRN_REFUSAL = (
    "only a fixed-column .prn copy: its export cuts every column to its width, so it cannot be "
    "read faithfully; read the .xlsx or tab-separated .txt copy of the same version"
)
_LAYOUT_PREFERENCE = ("xlsx", "text")


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    layout: str  # "xlsx", "text" (tab-separated) or "prn" (fixed columns)
    data: bytes
    dated: date


def _read_zip(path: Path, data: bytes) -> list[CorrectionDocument]:
    versions: dict[int, list[_Member]] = {}
    with open_zip(data, str(path)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member_data = read_member(archive, info, f"{path}!{info.filename}", limit=MAX_DOCUMENT_BYTES)
            layout = _sniff(f"{path}!{info.filename}", member_data)
            if layout is None:
                continue
            member = _Member(info.filename, layout, member_data, date(*info.date_time[:3]))
            versions.setdefault(_version_of(info.filename), []).append(member)
    if not versions:
        raise LoadError(path, "no HCPCS corrections document inside the zip")
    documents = [_read_version(path, version, members) for version, members in sorted(versions.items())]
    years = {document.release_year for document in documents}
    if len(years) > 1:
        raise LoadError(path, f"the versions correct different releases: {sorted(years)}")
    return documents


def _read_version(path: Path, version: int, members: list[_Member]) -> CorrectionDocument:
    chosen = None
    for layout in _LAYOUT_PREFERENCE:
        candidates = [member for member in members if member.layout == layout]
        if len(candidates) > 1:
            names = ", ".join(member.name for member in candidates)
            raise LoadError(path, f"version {version} is given twice as {layout}: {names}")
        if candidates:
            chosen = candidates[0]
            break
    if chosen is None:
        raise LoadError(f"{path}!{members[0].name}", f"version {version} is {_PRN_REFUSAL}")
    earliest = min(members, key=lambda member: (member.dated, member.name))
    copies = ", ".join(f"{member.name} {member.dated.isoformat()}" for member in sorted(members, key=lambda m: m.name))
    basis = f"zip member date of {earliest.name}, the earliest copy of version {version} ({copies})"
    return _read_document(str(path), chosen.name, version, chosen.layout, chosen.data, earliest.dated, basis)


def _version_of(name: str) -> int:
    match = _VERSION_PATTERN.search(Path(name).stem)
    return int(match["version"]) if match else 1


# --- reading rows ----------------------------------------------------------------------------


#: A corrections document's title and header stand in its first rows: sniffing reads no more.
_SNIFF_ROWS = 30


def _sniff(where: object, data: bytes) -> str | None:
    """``"xlsx"``, ``"text"`` or ``"prn"`` when ``data`` is a corrections document, else ``None``."""
    if data[:4] == b"PK\x03\x04":
        check_sheet_extents(data, where)  # a sheet too large to read is an error, not "not corrections"
        try:
            sheets = _xlsx_sheets(where, data, rows=_SNIFF_ROWS)
        except LoadError:
            return None
        return "xlsx" if any(_find_header(rows) is not None for _, rows in sheets) else None
    lines = data.decode("cp1252", errors="replace").splitlines()[:20]
    for index, line in enumerate(lines):
        if not _TITLE_PATTERN.search(line):
            continue
        for header in lines[index + 1 :]:
            if header.split()[:2] == ["CODE", "ACTION"]:
                return "text" if "\t" in header else "prn"
    return None


def _decode(where: object, data: bytes) -> str:
    """CMS's text files are cp1252 (a right quote is 0x92); UTF-8 is taken when the bytes are."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise LoadError(where, f"byte 0x{data[error.start]:02X} is neither UTF-8 nor cp1252 text", line=line) from error


def _text_rows(where: object, data: bytes) -> list[tuple[int, list[object]]]:
    """Tab-separated lines, 1-based line numbers; quoted cells keep their commas."""
    rows = []
    for number, line in enumerate(refuse_in_text(_decode(where, data), where, allowed=TAB).splitlines(), 1):
        rows.append((number, next(csv.reader([line], delimiter="\t"), [])))
    return rows


def _xlsx_sheets(where: object, data: bytes, *, rows: int | None = None) -> list[tuple[str, list[tuple[int, list[object]]]]]:
    """The workbook's sheets that hold a value, each as 1-based numbered rows from row 1
    (only the first ``rows`` rows when given)."""
    check_sheet_extents(data, where)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = []
        for name in workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(name)
            cells = sheet.to_python(skip_empty_area=False, nrows=rows) if rows else sheet.to_python(skip_empty_area=False)
            if any(not _is_blank(cell) for row in cells for cell in row):
                sheets.append((name, [(number, list(row)) for number, row in enumerate(cells, 1)]))
    except Exception as error:  # calamine raises its own types for a damaged workbook
        raise LoadError(where, f"cannot read the workbook: {error}") from error
    return sheets


def _xlsx_rows(where: object, data: bytes) -> list[tuple[int, list[object]]]:
    sheets = _xlsx_sheets(where, data)
    if not sheets:
        raise LoadError(where, "the workbook has no filled sheet")
    if len(sheets) > 1:
        raise LoadError(where, f"more than one filled sheet: {', '.join(name for name, _ in sheets)}")
    for number, cells in sheets[0][1]:
        refuse_in_cells(cells, where, line=number)
    return sheets[0][1]


def _is_blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _heading(cell: object) -> str:
    return " ".join(str(cell).split()).upper() if not _is_blank(cell) else ""


def _find_header(rows: list[tuple[int, list[object]]]) -> int | None:
    """Index in ``rows`` of the header row, when a title row comes before it."""
    titled = False
    for index, (_, cells) in enumerate(rows):
        headings = [_heading(cell) for cell in cells if not _is_blank(cell)]
        if titled and headings[:2] == ["CODE", "ACTION"]:
            return index
        titled = titled or any(_TITLE_PATTERN.search(str(cell)) for cell in cells if isinstance(cell, str))
    return None


# --- one document ----------------------------------------------------------------------------


def _read_document(
    path: str,
    member: str | None,
    version: int,
    layout: str,
    data: bytes,
    knowledge_date: date | None,
    knowledge_date_basis: str,
) -> CorrectionDocument:
    where = f"{path}!{member}" if member else path
    name = member or Path(path).name
    rows = _xlsx_rows(where, data) if layout == "xlsx" else _text_rows(where, data)
    header_index = _find_header(rows)
    if header_index is None:  # pragma: no cover - _sniff found it before
        raise LoadError(where, "no CODE/ACTION header row")
    unapplied: list[tuple[int, str, str]] = []
    release_year = None
    for number, cells in rows[:header_index]:
        text = _row_text(cells)
        if not text:
            continue
        title = _TITLE_PATTERN.search(text)
        if title and release_year is None:
            release_year = int(title["year"])
            unapplied.append((number, text, "document title: names the release corrected"))
        else:
            unapplied.append((number, text, "above the column header: not a correction"))
    if release_year is None:  # pragma: no cover - _find_header needs a title
        raise LoadError(where, "no title naming the release year")
    named = _NAME_YEAR_PATTERN.search(name)
    if named and int(named["year"]) != release_year:
        raise LoadError(where, f"the title corrects {release_year} but the file name says {named['year']}")

    header_number, header_cells = rows[header_index]
    columns = _columns(where, header_number, header_cells)
    unapplied.append((header_number, _row_text(header_cells), "column header"))
    release_effective = date(release_year, 1, 1)
    events = []
    for number, cells in rows[header_index + 1 :]:
        values = _row_values(where, number, cells, columns)
        if values is None:
            continue
        if not values.get("code"):
            unapplied.append((number, _row_text(cells), "no code: a note, not a correction"))
            continue
        events.append(_event(where, number, values, release_year, release_effective))
    return CorrectionDocument(
        path=path,
        member=member,
        release_year=release_year,
        version=version,
        knowledge_date=knowledge_date,
        knowledge_date_basis=knowledge_date_basis,
        events=tuple(events),
        unapplied=tuple(unapplied),
    )


def _row_text(cells: list[object]) -> str:
    return " | ".join(_cell_text(cell) for cell in cells if not _is_blank(cell))


def _cell_text(cell: object) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    return " ".join(str(cell).split())


def _columns(where: str, number: int, cells: list[object]) -> dict[int, tuple[str, str]]:
    """Column index -> (heading as written, what it holds)."""
    columns = {}
    for index, cell in enumerate(cells):
        heading = _heading(cell)
        if not heading:
            continue
        if heading not in COLUMNS:
            raise LoadError(where, f"unknown column heading {heading!r}", line=number, field=heading)
        columns[index] = (heading, COLUMNS[heading])
    return columns


@dataclass(frozen=True, slots=True)
class _Cell:
    heading: str
    raw: object


def _row_values(where: str, number: int, cells: list[object], columns: dict[int, tuple[str, str]]) -> dict[str, _Cell] | None:
    """The row's filled cells by what they hold, or ``None`` for a blank row."""
    if all(_is_blank(cell) for cell in cells):
        return None
    values: dict[str, _Cell] = {}
    for index, cell in enumerate(cells):
        if _is_blank(cell):
            continue
        if index not in columns:
            raise LoadError(where, f"value {_cell_text(cell)!r} under no column heading", line=number, field=f"column {index + 1}")
        heading, meaning = columns[index]
        values[meaning] = _Cell(heading, cell)
    return values


def _event(where: str, number: int, values: dict[str, _Cell], release_year: int, release_effective: date) -> CorrectionEvent:
    code_cell = values["code"]
    code = _cell_text(code_cell.raw).upper()
    if not _CODE_PATTERN.fullmatch(code):
        raise LoadError(where, f"{code!r} is not a HCPCS code or modifier", line=number, field=code_cell.heading)
    action_cell = values.get("action")
    if action_cell is None:
        raise LoadError(where, f"code {code} has no action", line=number, field="ACTION")
    action_text = str(action_cell.raw).strip()
    folded_action = " ".join(action_text.split())
    rule, match = next(
        ((rule, match) for rule in ACTION_RULES if (match := rule.pattern.fullmatch(folded_action))),
        (None, None),
    )
    if rule is None:
        raise LoadError(where, f"action {action_text!r} for {code} is not a known correction", line=number, field=action_cell.heading)

    row_effective = None
    if "effective_date" in values:
        row_effective = _date(where, number, values["effective_date"])
    effective_date = row_effective or release_effective

    given = {meaning: cell for meaning, cell in values.items() if meaning not in ("code", "action", "effective_date")}
    if "comments" in given:
        comment = given.pop("comments")
        field, value = _comment(where, number, comment)
        given[field] = _Cell(comment.heading, value)
    for field in rule.required:
        if field not in given:
            heading = next(h for h, meaning in COLUMNS.items() if meaning == field)
            raise LoadError(where, f"action {action_text!r} needs a value here", line=number, field=heading)
    for field, cell in given.items():
        if field not in rule.required and field not in rule.allowed:
            raise LoadError(
                where,
                f"value {_cell_text(cell.raw)!r} that action {action_text!r} does not use",
                line=number,
                field=cell.heading,
            )

    changes: dict[tuple[str, str], FieldChange] = {}
    origins: dict[tuple[str, str], str] = {}

    def put(field: str, value: object, operation: str, origin: str) -> None:
        key = (field, operation)
        if key in changes and changes[key].value != value:
            raise LoadError(
                where,
                f"{field} is {value!r} here but {changes[key].value!r} in the {origins[key]}",
                line=number,
                field=origin,
            )
        changes[key] = FieldChange(field, value, operation)
        origins[key] = origin

    revert_to_year = None
    for field, text in match.groupdict().items():
        if field == "revert_to_year":
            revert_to_year = int(text)
            continue
        value = _typed(field, text)
        put(field, value[0] if rule.operation != "set" and field in _REPEATED_FIELDS else value, rule.operation, "ACTION")
    for field, value in rule.fixed:
        put(field, value, "set", "ACTION")
    for field, days in rule.dated:
        if row_effective is None:
            raise LoadError(where, f"action {action_text!r} needs an effective date", line=number, field="EFF DATE")
        put(field, row_effective + timedelta(days=days), "set", "EFF DATE")
    for field, cell in given.items():
        value = _date(where, number, cell) if field in _DATE_FIELDS else _typed(field, cell.raw)
        put(field, value, "set", cell.heading)
    if rule.kind == "reinstate":
        revert_to_year = release_year - 1
    for field in rule.restores:
        put(field, None, "set", "ACTION")
    return CorrectionEvent(
        code=code,
        action_text=action_text,
        kind=rule.kind,
        changes=tuple(changes.values()),
        effective_date=effective_date,
        source_row=number,
        revert_to_year=revert_to_year,
    )


def _comment(where: str, number: int, cell: _Cell) -> tuple[str, str]:
    text = _cell_text(cell.raw)
    for pattern, field in _COMMENT_RULES:
        match = pattern.fullmatch(text)
        if match:
            return field, match["value"]
    raise LoadError(where, f"comment {text!r} is not understood", line=number, field=cell.heading)


def _typed(field: str, raw: object) -> object:
    text = _cell_text(raw)
    if field not in _REPEATED_FIELDS:
        return text
    width = _ITEM_WIDTHS.get(field)
    items = (item.strip() for item in text.split(","))
    return tuple(item.zfill(width) if width and item.isdigit() else item for item in items if item)


def _date(where: str, number: int, cell: _Cell) -> date | None:
    raw = cell.raw
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = _cell_text(raw)
    if not text:
        return None
    match = _DATE_PATTERN.fullmatch(text)
    if match is None and _MISPLACED_SLASH_DATE_PATTERN.fullmatch(text):
        digits = text.replace("/", "")
        if len(digits) == 8:
            match = _DATE_PATTERN.fullmatch(f"{digits[:2]}/{digits[2:4]}/{digits[4:]}")
    if match is not None:
        try:
            return date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError:
            pass
    raise LoadError(where, f"{text!r} is not a date (MM/DD/YYYY)", line=number, field=cell.heading)
