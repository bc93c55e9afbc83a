"""How far each sheet of an xlsx reaches, read from its XML before any reader builds a grid.

The xlsx reader (calamine) holds a sheet as a dense grid from A1 to its last cell: one cell at
XFD1048576 in a 1.6 KB file asks for 17 billion cells and aborts the process. So before a
workbook is opened, :func:`check_sheet_extents` scans each worksheet part of the package, a chunk
at a time, for the references of its cells and rows (``<c r="XFD1048576">``, ``<row r="9">``) and
refuses a sheet whose grid (last row times last column) would pass :data:`MAX_GRID_CELLS`. The
declared ``<dimension>`` is not trusted: it is optional and may say anything. A cell or row without
a reference follows the one before it, so reaching far without references takes as many elements,
and the package size limits of ``loaders.archives`` bound those.
"""

from __future__ import annotations

import re
import zipfile
import zlib

from loaders.archives import open_zip
from loaders.errors import LoadError

#: The largest grid (rows x columns up to the last cell) a sheet may span. CMS's largest sheet, the
#: 2023 HCPCS release, spans about 7,800 rows x 48 columns (375,000 cells).
MAX_GRID_CELLS = 5_000_000

_CHUNK = 1 << 20
_LONGEST_TAG = 64 * 1024
# the reference of a cell (letters and digits) or of a row (digits). Any other attribute whose name
# ends in r and whose value looks like one, or text that does, counts too: a stricter check, never
# a looser one (``ref="A1:B2"`` does not match).
_REFERENCE = re.compile(rb"""r\s*=\s*["']([A-Za-z]{0,7})([0-9]{1,10})["']""")
_SHEET = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?sheet\b[^<>]*>""")
_ATTRIBUTE = re.compile(rb"""\s([\w.:-]+)\s*=\s*["']([^"']*)["']""")
_RELATIONSHIP = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?Relationship\b[^<>]*>""")


def column_number(letters: bytes) -> int:
    """``b"A"`` -> 1, ``b"XFD"`` -> 16384."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - ord("A") + 1
    return number


def check_sheet_extents(data: bytes, where: object, *, limit: int = MAX_GRID_CELLS) -> None:
    """A ``LoadError`` naming the sheet if one of the package's worksheets spans more than ``limit``
    cells from A1 to its last cell; nothing else is checked here (the reader reports the rest)."""
    try:
        package = open_zip(data, str(where))
    except LoadError:
        return  # not a package: the reader says so
    with package:
        for name, part in _worksheet_parts(package):
            rows, columns = _extent(package, part, where, name)
            if rows * columns > limit:
                raise LoadError(
                    where,
                    f"sheet {name!r} reaches row {rows:,} and column {columns:,} ({rows * columns:,} cells from A1), "
                    f"more than the {limit:,} a sheet may span: refusing to read it",
                    field="sheet",
                )


def _attributes(tag: bytes) -> dict[str, str]:
    return {key.decode("utf-8", "replace").rpartition(":")[2]: value.decode("utf-8", "replace")
            for key, value in _ATTRIBUTE.findall(tag)}


def _small_part(package: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = package.getinfo(name)
    except KeyError:
        return b""
    if info.file_size > 4 * _CHUNK:
        return b""
    try:
        return package.read(info)[: 4 * _CHUNK]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError):
        return b""


def _worksheet_parts(package: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, part name) of each sheet the workbook lists; every other worksheet part of
    the package under its own part name."""
    targets = {}
    for tag in _RELATIONSHIP.findall(_small_part(package, "xl/_rels/workbook.xml.rels")):
        attributes = _attributes(tag)
        target = attributes.get("Target", "")
        target = target.lstrip("/") if target.startswith("/") else "xl/" + target
        targets[attributes.get("Id")] = target
    parts = []
    for tag in _SHEET.findall(_small_part(package, "xl/workbook.xml")):
        attributes = _attributes(tag)
        part = targets.get(attributes.get("id"))
        if part is not None:
            parts.append((attributes.get("name", part), part))
    named = {part for _, part in parts}
    parts += [(info.filename, info.filename) for info in package.infolist()
              if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")
              and info.filename not in named]
    return parts


def _extent(package: zipfile.ZipFile, part: str, where: object, sheet: str) -> tuple[int, int]:
    """(last row, last column) the part's cell and row references reach (0, 0 when it has none)."""
    rows = columns = 0
    try:
        stream = package.open(part)
    except KeyError:
        return 0, 0
    except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, RuntimeError):
        return 0, 0  # the reader reports a damaged part
    with stream:
        carry = b""
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
                raise LoadError(where, f"sheet {sheet!r}: cannot expand its XML ({error})", field="sheet") from error
            text = carry + chunk
            cut = len(text) if not chunk else _safe_cut(text)
            if cut < len(text) - _LONGEST_TAG:
                raise LoadError(where, f"sheet {sheet!r}: a tag longer than {_LONGEST_TAG:,} bytes", field="sheet")
            scanned = text[:cut]
            found = _REFERENCE.findall(scanned)
            if found:
                letters, digits = zip(*found)
                rows = max(rows, *map(int, digits))
                columns = max(columns, *map(column_number, set(letters)))
            if not chunk:
                return rows, max(columns, 1 if rows else 0)  # cells without references: a column each
            carry = text[cut:]


def _safe_cut(text: bytes) -> int:
    """Where to stop scanning a chunk: before its last tag if that tag is not closed yet."""
    opening = text.rfind(b"<")
    return opening if opening >= 0 and text.find(b">", opening) < 0 else len(text)
