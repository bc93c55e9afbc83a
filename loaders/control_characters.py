"""Control characters in source text are refused at load, with file, line and field.

A NUL or another control character has no place in a CMS description, a code or a claim: it
is a damaged or a crafted file. Stored, it would later break a report or a terminal, and
PostgreSQL refuses NUL in text outright (SQLite would keep it). So every loader checks the text
it reads with :func:`refuse_control_characters` (one field) or :func:`find_control_character`
(a whole decoded file, then placed on its line): the C0 controls (U+0000-U+001F), DEL and the C1
controls (U+0080-U+009F) are refused, except the line ends and the tab where a format uses them
(``allowed``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from loaders.errors import LoadError

LINE_ENDS = "\r\n"
TAB = "\t"

_C0_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL BS TAB LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC "
             "FS GS RS US").split()
_CONTROLS = "".join(map(chr, [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]))


@lru_cache(maxsize=8)
def _pattern(allowed: str) -> re.Pattern[str]:
    refused = "".join(character for character in _CONTROLS if character not in allowed)
    return re.compile("[" + re.escape(refused) + "]")


def find_control_character(text: str, *, allowed: str = "") -> int | None:
    """The index of the first refused control character in ``text``, or None."""
    match = _pattern(allowed).search(text)
    return None if match is None else match.start()


def describe(character: str) -> str:
    """``"\\x00"`` -> ``"U+0000 (NUL)"``."""
    code = ord(character)
    name = _C0_NAMES[code] if code < 0x20 else "DEL" if code == 0x7F else unicodedata.name(character, "C1 control")
    return f"U+{ord(character):04X} ({name})"


def control_character_message(character: str, column: int | None = None) -> str:
    at = f" at column {column}" if column is not None else ""
    return f"control character {describe(character)}{at}: the file is damaged or not a text file of this kind"


def refuse_control_characters(text: str, where: object, *, line: int | None, field: str | None,
                              allowed: str = "") -> str:
    """``text`` itself, or a ``LoadError`` naming the file, line, field and character."""
    index = find_control_character(text, allowed=allowed)
    if index is not None:
        raise LoadError(where, control_character_message(text[index], index + 1), line=line, field=field)
    return text


def refuse_in_text(text: str, where: object, *, allowed: str = "", field: str | None = None) -> str:
    """``text`` (a whole decoded file, any line ends) itself, or a ``LoadError`` naming the line and
    column of its first refused control character (line ends are always allowed)."""
    index = find_control_character(text, allowed=allowed + LINE_ENDS)
    if index is None:
        return text
    before = text[:index].splitlines(keepends=True)
    at_line_start = not before or before[-1].endswith(("\n", "\r"))
    line = len(before) + (1 if at_line_start else 0)
    column = 1 if at_line_start else len(before[-1]) + 1
    raise LoadError(where, control_character_message(text[index], column), line=line, field=field)


def refuse_in_cells(cells: list[object], where: object, *, line: int, headings: list[str] | None = None,
                    allowed: str = TAB + LINE_ENDS) -> None:
    """A row of a table (text cells checked, others passed) with a ``LoadError`` naming the row and
    the cell's heading (or ``column N``) at the first refused control character."""
    for number, cell in enumerate(cells, 1):
        if isinstance(cell, str) and find_control_character(cell, allowed=allowed) is not None:
            heading = headings[number - 1] if headings and number <= len(headings) and headings[number - 1] else None
            refuse_control_characters(cell, where, line=line, field=heading or f"column {number}", allowed=allowed)
