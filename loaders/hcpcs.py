"""Reader for CMS HCPCS Level II releases ("Alpha-Numeric HCPCS File").

Reads what CMS ships: the release zip (its ``*ANWEB*`` txt, else its xlsx), a bare fixed-width txt
(record layout in ``loaders.hcpcs_layout``) or a bare xlsx (annual or quarterly). A member of a zip
can be named as ``archive.zip!member``. The reader is pure: bytes in, one frozen ``HcpcsRelease``
out; bad input raises ``LoadError`` naming the file, the line or row, and the field.

Decisions on what the real files do:

- Text encoding: CMS writes cp1252. A file that is valid UTF-8 and holds non-ASCII bytes was
  re-saved by someone and is read as UTF-8 (the layout counts characters, so its columns still
  fit); any other byte that cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) means the file
  is damaged or in another encoding, and is refused with its line, column and field. Nothing is
  silently replaced. The disclaimer lines before the first record are skipped undecoded.
- Lines shorter than 320 columns (continuations trimmed to 91, one 2019 line of 316) are read as
  if padded with blanks.
- Long descriptions: the text of the first line and of its continuation lines (record
  identification code 4 or 8, in sequence-number order) joined by one space, runs of whitespace
  folded. The xlsx keeps one cell per record (continued on RECID 4 rows only past the cell's
  limit), so both editions of one release give the same text.
- CMS's txt and xlsx of one release do not quite agree: in 2017 three action effective dates
  differ (L5638, L5640, L5643), in 2019 the xlsx leaves the action effective date blank for 115
  old codes and adds a fourth type of service to E0210 and E0776. Each edition is read as it is.
- The one defect repaired: five 2018 records (C9488, C9745-C9748) have no ASC group and their ASC
  effective date two columns early (both editions). They are read as no ASC group and the date,
  and each repair is listed in ``HcpcsRelease.repairs``.
- The xlsx SEQNUM has 4 digits where the layout has 5 (its last digit, always 0, is dropped):
  ``0010`` is read as sequence number 100, as the txt gives it.
- Zip bombs: a file, a zip member or an xlsx package whose declared uncompressed size passes
  ``MAX_MEMBER_BYTES`` (200 MB; a release is about 4 MB) is refused before anything is expanded.
  A member is never expanded past its declared size: one that holds more fails its CRC check and
  is refused as damaged; reading also stops at the cap whatever the header says.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path, PurePosixPath

from python_calamine import CalamineSheet, CalamineWorkbook

from loaders.archives import check_package_size, is_zip, open_zip, read_member
from loaders.control_characters import (
    LINE_ENDS,
    TAB,
    control_character_message,
    find_control_character,
    refuse_control_characters,
)
from loaders.errors import LoadError
from loaders.xlsx_extent import check_sheet_extents
from loaders.hcpcs_layout import (
    HCPCS_LAYOUT,
    LAYOUT_BY_NAME,
    RECORD_IDS,
    RECORD_LENGTH,
    XLSX_COLUMNS,
    XLSX_SEQUENCE_SCALE,
    LayoutField,
)
from loaders.hcpcs_record import RECORD_FIELDS, HcpcsRecord

#: Largest file, zip member or xlsx package (uncompressed) the reader expands; a release is ~4 MB.
MAX_MEMBER_BYTES = 200 * 1024 * 1024
#: Disclaimer lines CMS puts before the first record (8 to 11 in the real files) are skipped; a
#: file with no record among its first this many lines is not an HCPCS release.
MAX_HEADER_LINES = 40
#: Rows searched for the xlsx header row (row 1, 8 or 11 in the real files).
MAX_XLSX_HEADER_ROWS = 50
#: Headings that identify the header row of an HCPCS xlsx.
XLSX_KEY_HEADINGS = frozenset({"HCPC", "SEQNUM", "RECID", "LONG DESCRIPTION"})

_QUARTER_NAMES = {1: "annual", 4: "APR", 7: "JUL", 10: "OCT"}
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("january", "february", "march", "april", "may", "june", "july", "august", "september",
         "october", "november", "december"),
        start=1,
    )
}
_NAME_YEAR = re.compile(r"HCPCS?_?(\d{4}|\d{2})(?!\d)", re.IGNORECASE)
_ANY_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_NAME_QUARTER = re.compile(r"(?<![a-z])(jan|january|apr|april|jul|july|oct|october)(?![a-z])", re.IGNORECASE)
_README_DATE = re.compile(r"(" + "|".join(_MONTHS) + r")\s+(\d{1,2}),\s*(\d{4})", re.IGNORECASE)
_CORE_MODIFIED = re.compile(rb"<dcterms:modified[^>]*>(\d{4})-(\d\d)-(\d\d)")
_CODE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


@dataclass(frozen=True)
class HcpcsRelease:
    """One HCPCS release as read from one file: its records and what is known about it."""

    path: str
    member: str | None
    file_format: str
    records: tuple[HcpcsRecord, ...]
    effective_date: date
    effective_date_basis: str
    published_date: date | None
    published_date_basis: str
    label: str
    #: Known defects of the file that the reader corrected, one line each with where and what.
    repairs: tuple[str, ...] = ()


def read_hcpcs(path: str | Path, *, effective: date | None = None) -> HcpcsRelease:
    """Read an HCPCS release zip, fixed-width txt or xlsx (``archive.zip!member`` picks a member).

    ``effective`` overrides the effective date, which is otherwise January 1 of the year in the
    xlsx sheet's name or the file name (or the quarter the name gives: ``HCPC2023_JAN_Contr``),
    or else the latest action effective date inside. The publication date is the zip's README
    date, the member's date in the zip, or the xlsx's last-modified document property; a file
    with none of them has no publication date (``published_date`` None, and the basis says so),
    never the file's modification time.
    """
    source = _open_source(str(path))
    if source.file_format == "txt":
        records, repairs = _parse_txt(source.data, source.path)
        named = source.names
    else:
        records, repairs, sheet_name = _parse_xlsx(source.data, source.path)
        named = (("sheet name", sheet_name),) + source.names
    if not records:
        raise LoadError(source.path, "no HCPCS records in the file", line=1, field="record_identification_code")
    effective_date, effective_basis = _effective_date(source.path, named, records, effective)
    return HcpcsRelease(
        path=source.path,
        member=source.member,
        file_format=source.file_format,
        records=records,
        effective_date=effective_date,
        effective_date_basis=effective_basis,
        published_date=source.published_date,
        published_date_basis=source.published_basis,
        label=release_label(effective_date),
        repairs=repairs,
    )


def is_hcpcs_file(path: str | Path) -> bool:
    """True when the file's content is an HCPCS release: a zip holding an ANWEB txt or xlsx, a txt
    whose first record lines fit the layout, or an xlsx with the HCPCS header row."""
    try:
        source = _open_source(str(path))
    except LoadError:
        return False
    if source.file_format == "xlsx":
        check_sheet_extents(source.data, source.path)  # too large to read is an error, not "not HCPCS"
    try:
        if source.file_format == "txt":
            _first_record(source.data[: 64 * 1024], source.path)
        else:
            _find_xlsx_header(_open_workbook(source.data, source.path), source.path)
    except LoadError:
        return False
    return True


def release_label(effective_date: date) -> str:
    """ "2019 annual" for a January 1 release, else "2020 APR", "2020 JUL", "2020 OCT"."""
    quarter_month = (effective_date.month - 1) // 3 * 3 + 1
    return f"{effective_date.year} {_QUARTER_NAMES[quarter_month]}"


# --- opening the file --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    path: str  # as the release reports it: "file" or "archive.zip!member"
    member: str | None
    file_format: str
    data: bytes
    names: tuple[tuple[str, str], ...]  # (what, name) that may carry the release year: member, then file
    published_date: date | None
    published_basis: str


def _open_source(path_text: str) -> _Source:
    file_path, member_name = _split_member(path_text)
    data = _read_file(file_path)
    file_name = Path(file_path).name
    if not data:
        raise LoadError(file_path, "the file is empty (0 bytes): expected an HCPCS release zip, txt or xlsx")
    if not is_zip(data):
        if member_name:
            raise LoadError(file_path, f"not a zip archive, so it has no member {member_name!r}")
        return _Source(file_path, None, "txt", data, (("file name", file_name),), None,
                       "no publication date in the file (a txt outside CMS's zip has no README)")
    archive = open_zip(data, file_path)
    if member_name is None and _is_xlsx_package(archive):
        check_package_size(archive, file_path, limit=MAX_MEMBER_BYTES)
        published, basis = _xlsx_modified(archive)
        if published is None:
            basis = "no publication date in the file (no last-modified date in its document properties)"
        return _Source(file_path, None, "xlsx", data, (("file name", file_name),), published, basis)
    info = _choose_member(archive, file_path, member_name)
    where = f"{file_path}!{info.filename}"
    member_data = read_member(archive, info, where, limit=MAX_MEMBER_BYTES)
    file_format = "txt"
    if is_zip(member_data):
        member_package = open_zip(member_data, where)
        check_package_size(member_package, where, limit=MAX_MEMBER_BYTES)
        file_format = "xlsx"
    published, basis = _readme_date(archive, file_path)
    if published is None and info.date_time[:3] != (1980, 1, 1):
        published, basis = date(*info.date_time[:3]), f"timestamp of {info.filename} in the zip"
    if published is None and file_format == "xlsx":
        published, basis = _xlsx_modified(member_package)
    member_file_name = PurePosixPath(info.filename).name
    if published is None:
        basis = "no publication date in the zip (no README date, no member date)"
    return _Source(where, info.filename, file_format, member_data,
                   (("file name", member_file_name), ("file name", file_name)), published, basis)


def _split_member(path_text: str) -> tuple[str, str | None]:
    """``archive.zip!member`` -> (archive, member); a path that exists as given is a plain file."""
    if "!" in path_text and not Path(path_text).exists():
        archive, member = path_text.rsplit("!", 1)
        return archive, member
    return path_text, None


def _read_file(file_path: str) -> bytes:
    try:
        size = Path(file_path).stat().st_size
        if size > MAX_MEMBER_BYTES:
            raise LoadError(file_path, f"the file holds {size:,} bytes, more than the {MAX_MEMBER_BYTES:,} an HCPCS release can", field="file size")
        return Path(file_path).read_bytes()
    except OSError as error:
        raise LoadError(file_path, f"cannot read the file: {error.strerror or error}") from error


def _is_xlsx_package(archive: zipfile.ZipFile) -> bool:
    names = set(archive.namelist())
    return "[Content_Types].xml" in names and "xl/workbook.xml" in names


def _choose_member(archive: zipfile.ZipFile, archive_path: str, member_name: str | None) -> zipfile.ZipInfo:
    if member_name is not None:
        try:
            return archive.getinfo(member_name)
        except KeyError:
            raise LoadError(archive_path, f"the zip has no member {member_name!r}", field="member") from None
    candidates = [info for info in archive.infolist() if "ANWEB" in PurePosixPath(info.filename).name.upper()]
    for extension in (".txt", ".xlsx"):
        found = [info for info in candidates if info.filename.lower().endswith(extension)]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(info.filename for info in found)
            raise LoadError(archive_path, f"several ANWEB members ({names}): name one as {archive_path}!<member>", field="member")
    names = ", ".join(archive.namelist()) or "none"
    raise LoadError(archive_path, f"no *ANWEB*.txt or *ANWEB*.xlsx member in the zip (members: {names})", field="member")


def _readme_date(archive: zipfile.ZipFile, archive_path: str) -> tuple[date | None, str]:
    for info in archive.infolist():
        if "README" not in info.filename.upper() or not info.filename.lower().endswith(".txt"):
            continue
        text = read_member(archive, info, f"{archive_path}!{info.filename}", limit=1024 * 1024)
        match = _README_DATE.search(text[:4096].decode("cp1252", errors="replace"))
        if match:
            month, day, year = match.groups()
            try:
                return date(int(year), _MONTHS[month.lower()], int(day)), f"publication date in {info.filename}"
            except ValueError:
                continue
    return None, ""


def _xlsx_modified(package: zipfile.ZipFile) -> tuple[date | None, str]:
    try:
        info = package.getinfo("docProps/core.xml")
    except KeyError:
        return None, ""
    match = _CORE_MODIFIED.search(read_member(package, info, "docProps/core.xml", limit=1024 * 1024))
    if not match:
        return None, ""
    year, month, day = (int(part) for part in match.groups())
    return date(year, month, day), "last-modified date in the xlsx document properties"


# --- the effective date ------------------------------------------------------------------------


def _effective_date(
    where: str, names: tuple[tuple[str, str], ...], records: tuple[HcpcsRecord, ...], effective: date | None
) -> tuple[date, str]:
    if effective is not None:
        return effective, "given by the user"
    for what, name in names:
        from_name = _date_from_name(name)
        if from_name is not None:
            return from_name, f"{what} {name}"
    action_dates = [record.action_effective_date for record in records if record.action_effective_date]
    if not action_dates:
        raise LoadError(where, "no effective date: none in the file name, no action effective date in the file; give one", field="action_effective_date")
    latest = max(action_dates)
    return latest, f"latest action effective date in the file ({latest.isoformat()})"


def _date_from_name(name: str) -> date | None:
    """2019 from ``HCPC2019_CONTR_ANWEB.txt``, 2017 from ``HCPC17_...``, July 2020 from
    ``HCPC2020_JUL_ANWEB.txt``; None when the name has no year."""
    match = _NAME_YEAR.search(name) or _ANY_YEAR.search(name)
    if match is None:
        return None
    year = int(match.group(1))
    year += 2000 if year < 100 else 0
    quarter = _NAME_QUARTER.search(name)
    month = _MONTHS[next(full for full in _MONTHS if full.startswith(quarter.group(1).lower()))] if quarter else 1
    return date(year, month, 1)


# --- records from layout lines, shared by txt and xlsx --------------------------------------------


def _number(text: str) -> int:
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"expected digits, found {text!r}")
    return int(digits)


def _date(text: str) -> date | None:
    digits = text.strip()
    if not digits:
        return None
    if len(digits) != 8 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"expected a date YYYYMMDD, found {text!r}")
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise ValueError(f"impossible date {digits!r}") from None


#: Layout fields the record carries, in record order; kind, long_description and source_line come
#: from several lines, so ``_records`` makes them itself.
_CONVERTED_FIELDS: tuple[LayoutField, ...] = tuple(
    LAYOUT_BY_NAME[name] for name in RECORD_FIELDS if name not in ("kind", "long_description", "source_line")
)
_VALUE_CONVERTERS = {"number": _number, "date": _date}


class _Collected:
    """Record lines in file order: each record's first line (padded to the record length), its
    kind and line number, and the long-description text of it and of its continuation lines."""

    __slots__ = ("where", "first_lines", "long_texts", "kinds", "numbers", "continuations")

    def __init__(self, where: str):
        self.where = where
        self.first_lines: list[str] = []
        self.long_texts: list[str] = []
        self.kinds: list[str] = []
        self.numbers: list[int] = []
        self.continuations: dict[int, list[tuple[int, str]]] = {}

    def add_first(self, line: str, long_text: str, kind: str, number: int) -> None:
        self.first_lines.append(line)
        self.long_texts.append(long_text)
        self.kinds.append(kind)
        self.numbers.append(number)

    def add_continuation(self, code: str, kind: str, sequence: str, text: str, number: int) -> None:
        first_lines = self.first_lines
        if not (first_lines and code == first_lines[-1][_CODE_COLUMNS] and kind == self.kinds[-1] and sequence.isascii() and sequence.isdigit()):
            self._check_continuation(code, kind, sequence, number)
        self.continuations.setdefault(len(first_lines) - 1, []).append((int(sequence), text))

    def _check_continuation(self, code: str, kind: str, sequence: str, number: int) -> None:
        """Raise for a continuation line that does not continue the record before it."""
        if not self.first_lines:
            raise LoadError(self.where, f"continuation line of {code.strip()!r} before any first line", line=number, field="record_identification_code")
        first_code = self.first_lines[-1][_CODE_COLUMNS].strip()
        if code.strip() != first_code:
            raise LoadError(self.where, f"continuation line of {code.strip()!r} follows the record of {first_code!r}", line=number, field="code")
        if kind != self.kinds[-1]:
            raise LoadError(self.where, f"{kind} continuation line follows a {self.kinds[-1]} record", line=number, field="record_identification_code")
        try:
            _number(sequence)
        except ValueError as error:
            raise LoadError(self.where, str(error), line=number, field="sequence_number") from None


_CODE_COLUMNS = LAYOUT_BY_NAME["code"].columns
_ASC_GROUP_COLUMNS = LAYOUT_BY_NAME["asc_group"].columns
_ASC_DATE_COLUMNS = LAYOUT_BY_NAME["asc_effective_date"].columns


def _records(collected: _Collected) -> tuple[tuple[HcpcsRecord, ...], tuple[str, ...]]:
    """Convert the collected lines field by field (one pass per layout field), then build records."""
    lines, numbers, where = collected.first_lines, collected.numbers, collected.where
    repairs = _repair_shifted_asc_dates(lines, numbers, where)
    long_texts = collected.long_texts
    for index, parts in collected.continuations.items():
        parts.sort(key=itemgetter(0))
        long_texts[index] = " ".join([long_texts[index], *(text for _, text in parts)])
    columns: dict[str, list] = {
        "kind": collected.kinds,
        "long_description": [" ".join(text.split()) for text in long_texts],
        "source_line": numbers,
    }
    for field in _CONVERTED_FIELDS:
        texts = list(map(itemgetter(field.columns), lines))
        columns[field.name] = _convert_column(field, texts, numbers, where)
    records = tuple(map(HcpcsRecord, *(columns[name] for name in RECORD_FIELDS)))
    return records, repairs


def _convert_column(field: LayoutField, texts: list[str], numbers: list[int], where: str) -> list:
    if field.kind == "text":
        return [" ".join(text.split()) for text in texts]  # runs of whitespace folded
    if field.kind == "code" and field.occurs == 1:
        return [text.strip() for text in texts]
    convert = _occurrences_of(field) if field.occurs > 1 else _VALUE_CONVERTERS[field.kind]
    values = {}
    for text in dict.fromkeys(texts):  # each distinct text once (a few dozen), in file order
        try:
            values[text] = convert(text)
        except ValueError as error:
            raise LoadError(where, str(error), line=numbers[texts.index(text)], field=field.name) from None
    return list(map(values.__getitem__, texts))


def _occurrences_of(field: LayoutField) -> Callable[[str], tuple[str, ...]]:
    """A function from the columns of a repeated field to its non-blank slots, stripped:
    ("00",) from the pricing indicator's "00      "."""
    slots = itemgetter(*(slice(start, start + field.width) for start in range(0, field.end - field.start + 1, field.width)))

    def occurrences(text: str) -> tuple[str, ...]:
        return tuple(filter(None, map(str.strip, slots(text))))

    return occurrences


def _repair_shifted_asc_dates(lines: list[str], numbers: list[int], where: str) -> tuple[str, ...]:
    """Undo the one known defect of the real files, in place, and say where it was undone.

    Five 2018 records (C9488, C9745-C9748) have no ASC group and their ASC effective date starts
    two columns early: ASC group "20", ASC effective date "170401  " (the xlsx has the same split).
    They are read as no ASC group and the date 20170401.
    """
    repairs = []
    for index, line in enumerate(lines):
        effective = line[_ASC_DATE_COLUMNS]
        if not effective.endswith("  ") or effective.isspace():
            continue
        group = line[_ASC_GROUP_COLUMNS]
        digits = group + effective[:6]
        if not (digits.isascii() and digits.isdigit()):
            continue
        try:
            _date(digits)
        except ValueError:
            continue
        blank_group = " " * (_ASC_GROUP_COLUMNS.stop - _ASC_GROUP_COLUMNS.start)
        lines[index] = line[: _ASC_GROUP_COLUMNS.start] + blank_group + digits + line[_ASC_DATE_COLUMNS.stop :]
        repairs.append(
            f"{where}, line {numbers[index]}, field asc_effective_date: ASC group {group!r} and ASC"
            f" effective date {effective.strip()!r} read as no ASC group and date {digits}"
            " (the date starts two columns early in the file)"
        )
    return tuple(repairs)


# --- fixed-width txt ---------------------------------------------------------------------------


def _is_record_shaped(line: bytes) -> bool:
    """Code in 1-5 (letters, digits, blanks), a 5-digit sequence number in 6-10."""
    return len(line) >= 11 and line[5:10].isdigit() and not line[:5].isspace() and all(byte in _CODE_BYTES for byte in line[:5])


def _first_record(data: bytes, where: str) -> tuple[int, int]:
    """(0-based line index, byte offset) of the first record line, after the disclaimer lines."""
    offset = 0
    first_text_line = None
    for index in range(MAX_HEADER_LINES):
        end = data.find(b"\n", offset)
        line = data[offset : len(data) if end < 0 else end].rstrip(b"\r")
        if _is_record_shaped(line):
            record_id = line[10:11].decode("latin-1")
            if RECORD_IDS.get(record_id, ("", False))[1]:
                return index, offset
            raise LoadError(where, f"the first record line has record identification code {record_id!r}, expected 3 or 7", line=index + 1, field="record_identification_code")
        if first_text_line is None and line.strip():
            first_text_line = index + 1
        if end < 0:
            break
        offset = end + 1
    raise LoadError(
        where,
        f"not an HCPCS release: none of the first {MAX_HEADER_LINES} lines fits the record layout"
        " (code in columns 1-5, sequence number 6-10, record identification code 11)",
        line=first_text_line or 1,
        field="record_identification_code",
    )


def _text_codec(data: bytes, offset: int) -> str:
    """The encoding of the records (from ``offset`` on): see the module notes."""
    records = data[offset:]
    if records.isascii():
        return "ascii"  # the same text as cp1252, decoded faster
    try:
        records.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _parse_txt(data: bytes, where: str) -> tuple[tuple[HcpcsRecord, ...], tuple[str, ...]]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LoadError(where, "the file is UTF-16 encoded; CMS ships HCPCS txt files in cp1252", line=1, field="encoding")
    data = data.removeprefix(codecs.BOM_UTF8)
    first_index, offset = _first_record(data, where)
    codec = _text_codec(data, offset)
    try:
        text = data[offset:].decode(codec)
    except UnicodeDecodeError as error:
        _raise_decode_error(data, offset + error.start, first_index, offset, codec, where)
    collected = _Collected(where)
    add_first, add_continuation = collected.add_first, collected.add_continuation
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    _refuse_txt_control_characters(text, first_index, where)
    lines = text.split("\n")
    _refuse_cut_off_last_line(lines[-1], first_index + len(lines), where)
    for number, line in enumerate(lines, start=first_index + 1):
        role = RECORD_IDS.get(line[10:11])
        if role is None:
            if line and not line.isspace():
                _raise_unknown_line(line, number, where)
            continue
        kind, is_first_line = role
        if is_first_line:
            add_first(line if len(line) >= RECORD_LENGTH else line.ljust(RECORD_LENGTH), line[11:91], kind, number)
        else:
            add_continuation(line[:5], kind, line[5:10], line[11:91], number)
    return _records(collected)


def _refuse_cut_off_last_line(line: str, number: int, where: str) -> None:
    """A file whose last record line has no line end and fewer than the layout's 320 characters
    ends inside a record: it is cut off, and refused, so that the records it lost are not read as
    codes the release no longer lists. (CMS's files end every line with CR LF; a line shorter than
    the layout with its line end is read, padded: 2017's continuation lines stop at column 91.)"""
    if line[10:11] in RECORD_IDS and len(line) < RECORD_LENGTH:
        raise LoadError(
            where,
            f"the file ends inside a record: its last line has {len(line)} of the {RECORD_LENGTH} characters of "
            "the record layout and no line end, so the file is cut off (download it again)",
            line=number, field=_field_at(len(line) + 1),
        )


def _refuse_txt_control_characters(text: str, first_index: int, where: str) -> None:
    """A control character (a tab too: the records are fixed-width) in the records' text (line
    ends already ``\\n``) is refused with its line, column and layout field."""
    index = find_control_character(text, allowed="\n")
    if index is None:
        return
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    raise LoadError(where, control_character_message(text[index], column),
                    line=first_index + 1 + text.count("\n", 0, index), field=_field_at(column))


def _field_at(column: int) -> str:
    """The layout field that holds a 1-based column (fillers included)."""
    for field in HCPCS_LAYOUT:
        if field.kind != "redefines" and field.start <= column <= field.end:
            return field.name
    return "beyond the record length"


def _raise_decode_error(data: bytes, position: int, first_index: int, offset: int, codec: str, where: str) -> None:
    line = first_index + data.count(b"\n", offset, position) + 1
    line_start = data.rfind(b"\n", 0, position) + 1
    column = len(data[line_start:position].decode(codec, errors="replace")) + 1
    raise LoadError(
        where,
        f"byte 0x{data[position]:02X} at column {column} is not {codec} text (CMS ships HCPCS files in"
        " cp1252, where 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined): the file is damaged or in"
        " another encoding",
        line=line,
        field=_field_at(column),
    )


def _raise_unknown_line(line: str, number: int, where: str) -> None:
    if len(line) < 11:
        raise LoadError(where, f"a line of {len(line)} characters is too short for a record: {line.strip()!r}", line=number, field="record_identification_code")
    raise LoadError(where, f"unknown record identification code {line[10]!r} (expected 3, 4, 7 or 8)", line=number, field="record_identification_code")


# --- xlsx --------------------------------------------------------------------------------------


def _open_workbook(data: bytes, where: str) -> CalamineWorkbook:
    check_sheet_extents(data, where)
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as error:  # calamine raises its own types and plain ValueError for bad packages
        raise LoadError(where, f"cannot open the xlsx ({error})", field="workbook") from error


def _find_xlsx_header(workbook: CalamineWorkbook, where: str) -> tuple[CalamineSheet, int, dict[str, int]]:
    """(the sheet, the index of its header row, heading -> column index)."""
    for sheet_name in workbook.sheet_names:
        try:
            sheet = workbook.get_sheet_by_name(sheet_name)
            top_rows = sheet.to_python(skip_empty_area=False, nrows=MAX_XLSX_HEADER_ROWS)
        except Exception as error:  # a sheet calamine cannot read
            raise LoadError(where, f"cannot read sheet {sheet_name!r} ({error})", field="sheet") from error
        for index, row in enumerate(top_rows):
            headings = [str(cell).strip().upper() for cell in row]
            if XLSX_KEY_HEADINGS <= set(headings):
                columns = {heading: column for column, heading in reversed(list(enumerate(headings))) if heading}
                return sheet, index, columns
    sheets = ", ".join(repr(name) for name in workbook.sheet_names)
    raise LoadError(
        where,
        f"no header row with {', '.join(sorted(XLSX_KEY_HEADINGS))} in rows 1-{MAX_XLSX_HEADER_ROWS} of sheet(s) {sheets}",
        field="HCPC",
    )


def _cell_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    return "" if value is None else str(value)


def _xlsx_template(columns: dict[str, int], header_row: int, where: str) -> tuple[list[int], list[int], list[str]]:
    """How to lay an xlsx row out as a fixed-width line: for each slot of the layout in column
    order, the sheet column to take (-1: a blank), its width, and its heading (for messages).
    The long description is left blank: its cell is read whole, not cut to the layout's 80."""
    heading_of = {slot: heading for heading, slot in XLSX_COLUMNS.items()}
    sheet_columns, widths, headings = [], [], []
    for field in HCPCS_LAYOUT:
        if field.kind == "redefines":
            continue
        for occurrence in range(field.occurs):
            heading = heading_of.get((field.name, occurrence))
            if heading is not None and heading not in columns:
                raise LoadError(where, f"the header row has no column {heading!r}", line=header_row, field=heading)
            readable = heading is not None and field.name != "long_description"
            sheet_columns.append(columns[heading] if readable else -1)
            widths.append(field.width)
            headings.append(heading or field.name)
    return sheet_columns, widths, headings


def _parse_xlsx(data: bytes, where: str) -> tuple[tuple[HcpcsRecord, ...], tuple[str, ...], str]:
    """The records, the repairs and the name of the sheet they were read from."""
    sheet, header, columns = _find_xlsx_header(_open_workbook(data, where), where)
    rows = sheet.to_python(skip_empty_area=False)
    sheet_columns, widths, headings = _xlsx_template(columns, header + 1, where)
    take = itemgetter(*sheet_columns)
    record_id_slot = headings.index("RECID")
    sequence_slot = headings.index("SEQNUM")
    sequence_width = widths[sequence_slot]
    long_column = columns["LONG DESCRIPTION"]
    collected = _Collected(where)
    for index in range(header + 1, len(rows)):
        number = index + 1
        row = rows[index]
        row.append("")  # what column -1 reads: the blank slots of the layout
        cells = [cell if type(cell) is str else _cell_text(cell) for cell in take(row)]
        long_text = _cell_text(row[long_column])
        if find_control_character(long_text, allowed=TAB + LINE_ENDS) is not None or find_control_character(
                "".join(cells)) is not None:
            _refuse_xlsx_control_characters(cells, headings, long_text, number, where)
        record_id = cells[record_id_slot].strip()
        if not record_id and not long_text.strip() and all(cell.isspace() or not cell for cell in cells):
            continue
        role = RECORD_IDS.get(record_id)
        if role is None:
            raise LoadError(where, f"unknown record identification code {record_id!r} (expected 3, 4, 7 or 8)", line=number, field="RECID")
        try:
            cells[sequence_slot] = str(_number(cells[sequence_slot]) * XLSX_SEQUENCE_SCALE).zfill(sequence_width)
        except ValueError as error:
            raise LoadError(where, str(error), line=number, field="SEQNUM") from None
        line = "".join(map(str.ljust, cells, widths))
        if len(line) != RECORD_LENGTH:
            line = _fit_cells(cells, widths, headings, number, where)
        kind, is_first_line = role
        if is_first_line:
            collected.add_first(line, long_text, kind, number)
        else:
            collected.add_continuation(line[_CODE_COLUMNS], kind, line[LAYOUT_BY_NAME["sequence_number"].columns], long_text, number)
    return (*_records(collected), sheet.name)


def _refuse_xlsx_control_characters(cells: list[str], headings: list[str], long_text: str, number: int,
                                    where: str) -> None:
    """A control character in a cell is refused (a tab or line break only in the long description,
    where a cell of free text may hold one)."""
    refuse_control_characters(long_text, where, line=number, field="LONG DESCRIPTION", allowed=TAB + LINE_ENDS)
    for cell, heading in zip(cells, headings):
        refuse_control_characters(cell, where, line=number, field=heading)


def _fit_cells(cells: list[str], widths: list[int], headings: list[str], number: int, where: str) -> str:
    """The line of a row with a cell wider than its layout field: fits once stripped, or fails."""
    stripped = [cell.strip() for cell in cells]
    for cell, width, heading in zip(stripped, widths, headings):
        if len(cell) > width:
            raise LoadError(where, f"{cell!r} is longer than the {width} characters of the record layout", line=number, field=heading)
    return "".join(map(str.ljust, stripped, widths))
