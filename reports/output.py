"""Writing report files: each one to a temporary file beside it, then renamed over the name, so a
reader (or a full disk, or a killed run) never sees half a report: the old file or the whole new
one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


def write_atomically(path: Path, text: str) -> Path:
    """``text`` as UTF-8 at ``path``, all or nothing."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # say where (a full disk names no file)
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    return path


def write_reports(folder: Path, stem: str, renderings: Iterable[tuple[str, Callable[[], str]]]) -> list[Path]:
    """``folder/stem.EXTENSION`` for each (extension, render) pair, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_atomically(folder / f"{stem}.{extension}", render()) for extension, render in renderings]
