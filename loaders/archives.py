"""Reading zip archives (CMS's zips, and xlsx packages) without trusting what they declare.

A member whose declared size is over the caller's limit is refused before anything is expanded; a
member is never read past the limit whatever its header says (one that holds more than it declares
fails its CRC check, or stops at the limit); a damaged or truncated archive is a ``LoadError``.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from loaders.errors import LoadError


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def open_zip(data: bytes, where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise LoadError(where, f"damaged or truncated zip archive ({error})", field="zip central directory") from error


def check_package_size(package: zipfile.ZipFile, where: str, *, limit: int) -> None:
    """Refuse an xlsx package whose parts declare more than ``limit`` bytes in all."""
    total = sum(info.file_size for info in package.infolist())
    if total > limit:
        raise LoadError(where, f"the xlsx declares {total:,} bytes uncompressed, more than the {limit:,} bytes "
                               "allowed: refusing to expand it", field="uncompressed size")


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, *, limit: int) -> bytes:
    """The expanded bytes of one member, at most ``limit`` of them."""
    if info.file_size > limit:
        raise LoadError(where, f"declares {info.file_size:,} bytes uncompressed, more than the {limit:,} bytes "
                               "allowed: refusing to expand it", field="uncompressed size")
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as error:
        raise LoadError(where, f"cannot expand the member, the zip is damaged or truncated ({error})",
                        field="compressed data") from error
    if len(data) > limit:
        raise LoadError(where, f"expands past {limit:,} bytes: refusing to read further", field="uncompressed size")
    return data
