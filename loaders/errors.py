"""The one error type that every loader raises for bad input."""

from __future__ import annotations


class LoadError(Exception):
    """Bad input, with where it was found.

    ``path`` is the file (for a member of a zip: ``archive.zip!member.txt``), ``line`` the 1-based
    line or row number when there is one, ``field`` the name of the field at fault when there is
    one. ``str(error)`` is a single line fit for a command-line message.
    """

    def __init__(self, path: object, message: str, *, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"

    def __reduce__(self):  # keep the error picklable with its keyword arguments
        return (_rebuild, (self.path, self.message, self.line, self.field))


def _rebuild(path: str, message: str, line: int | None, field: str | None) -> LoadError:
    return LoadError(path, message, line=line, field=field)
