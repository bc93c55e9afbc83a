"""The one text-safety layer: every CSV cell, Markdown text and terminal line hhkb writes passes
through here, so that data read from a file (a claim id, a CMS description) is shown as the text
it is and never acts as a formula, as Markdown or HTML, or as terminal markup.

- **CSV** (OWASP, "CSV Injection"): a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return (also after leading spaces) is prefixed with a single quote, so that a spreadsheet
  opening the file shows it as text instead of evaluating it (``=cmd|' /C calc'!A0``). A cell that
  is a plain number (an optional sign, ASCII digits, at most one decimal point, an optional ``%``,
  nothing else: ``-12.50``, ``+0.73%``) is kept as it is: such a cell holds no function, reference
  or operator after its sign, so a spreadsheet reads it as a number constant and nothing more.
- **Markdown**: characters that start inline markup (``\\ ` * _ [ ] < > | ~``; ``_`` unless inside
  a word) are escaped with a backslash (CommonMark escapes any ASCII punctuation this way), line
  breaks become spaces, and a text that would start a block (``#``, ``-``, ``+``, ``1.``) has that
  first mark escaped, so a value is one line of inline text in a table cell, a list item or a
  heading. ``<script>`` is written ``\\<script\\>`` and renders as the text it is.
- **Terminal**: the console prints text, never rich markup (``[kt]`` and ``[/x]`` are printed as
  they are), and control characters other than newline and tab are shown as ``\\xNN`` escapes
  instead of being sent to the terminal.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable

import click
from rich.console import Console

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)%?")

# ``_`` between two letters or digits can neither open nor close emphasis (CommonMark 6.2), so a
# name like HCPC2019_CONTR_ANWEB.txt stays as it is; any other ``_`` is escaped.
_MARKDOWN_INLINE = re.compile(r"([\\`*\[\]<>|~]|(?<![^\W_])_|_(?![^\W_]))")
_MARKDOWN_BLOCK_START = re.compile(r"^([#+-])|^([0-9]{1,9})([.)])(?=\s|$)")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# --- CSV -------------------------------------------------------------------------------------------


def csv_cell(value: object) -> str:
    """The text of one CSV cell, neutralised if a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    if text.lstrip(" ").startswith(CSV_FORMULA_STARTS):
        return "'" + text
    return text


def csv_document(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """A whole CSV text (``\\n`` line ends, quoting as the csv module does): the header, then the
    rows, every cell through :func:`csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_cell(name) for name in header)
    for row in rows:
        writer.writerow(csv_cell(value) for value in row)
    return out.getvalue()


# --- Markdown --------------------------------------------------------------------------------------


def markdown_text(value: object) -> str:
    """One line of inline Markdown that renders as ``value``'s text (for a table cell, a list item,
    a heading)."""
    text = " ".join(("" if value is None else str(value)).splitlines())
    text = _MARKDOWN_INLINE.sub(r"\\\1", text)
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    return _MARKDOWN_BLOCK_START.sub(
        lambda match: "\\" + match.group(1) if match.group(1) else match.group(2) + "\\" + match.group(3), text, count=1)


# --- terminal --------------------------------------------------------------------------------------


def terminal_text(value: object) -> str:
    """``value``'s text with control characters (but newline and tab) shown as ``\\xNN``."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value))


def make_console(*, stderr: bool = False) -> Console:
    """A rich console that prints strings as text: no markup, no highlighting, no emoji codes.
    A terminal gets tables fitted to its width; a pipe or file gets lines long enough not to wrap."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False,
                   width=None if stream.isatty() else 200)


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of a text made safe for a terminal (:func:`terminal_text`)."""
    click.echo(terminal_text(message), err=err, nl=nl)
