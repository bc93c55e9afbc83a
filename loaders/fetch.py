"""Download CMS source files by release: the one module of hhkb that talks to the network.

The files hhkb knows are a data table, ``cms_sources.yaml`` beside this module: for each release key
(``hcpcs-2019``, ``hcpcs-2018-corrections``, ``hcpcs-2020-04``, ``hhpps-2024`` ...) its files, each
with its place in a mirror (``cms/hcpcs/2019-Alpha-Numeric-HCPCS-File.zip``), its expected sha256 and
size, and CMS's published URL where there is one.

``fetch(key_or_path, dest_dir=...)`` puts each file of a release at ``dest_dir / <its path>``, so a
destination folder is laid out like ``../shared`` and can itself serve as a mirror. For each file:

1. a copy already in ``dest_dir`` with the expected sha256 is kept as it is;
2. else a copy in the cache (``<cache>/<sha256>/<file name>``) with that sha256 is copied from there;
3. else the file is streamed, in chunks, to ``<dest>.part`` from the mirror or from CMS, its sha256
   checked (a mismatch deletes the download and raises), moved into place, and copied to the cache.

A download resumes an existing ``.part`` with an HTTP ``Range`` request; a server that ignores the
range answers with the whole file, which then replaces the ``.part``. Connection errors, timeouts
and 5xx answers are retried ``retries`` times with exponential backoff (``RETRY_BACKOFF_SECONDS``,
doubling); a connection lost in the middle keeps the ``.part`` so the next attempt resumes. A
download larger than ``MAX_DOWNLOAD_BYTES`` is refused, whether the server announces it in
``Content-Length`` or not. Every failure is a ``LoadError`` whose path is the URL (or the file in a
local mirror): offline (``cannot reach ... (offline?)``), 404, the size cap, a sha256 mismatch.

Where files come from: ``mirror`` or, when it is not given, the environment variable
``HHKB_MIRROR``; either a base URL (``http://host/shared/``: the file is ``<base>/<path>``) or a local
folder laid out like ``../shared``. Without a mirror a file comes from its CMS URL; a file CMS
publishes no direct link to (the HH PPS pricer tables, the renamed quarterly xlsx) needs a mirror.

The cache folder is ``cache_dir``, else ``$HHKB_CACHE``, else ``$XDG_CACHE_HOME/hhkb``, else
``~/.cache/hhkb``. Two processes fetching the same file into the same folder at the same time are
not coordinated.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

import requests
import yaml

from loaders.errors import LoadError
from loaders.strict_yaml import YamlKeyError, YamlList, YamlMapping, load_strict

#: The table of known CMS files shipped with hhkb.
TABLE_PATH = Path(__file__).with_name("cms_sources.yaml")

#: A download larger than this is refused: no CMS file hhkb knows comes near it.
MAX_DOWNLOAD_BYTES = 500 * 1024 * 1024

#: Bytes read and written at a time.
CHUNK_BYTES = 1024 * 1024

#: Wait before the first retry; each further retry waits twice as long as the one before.
RETRY_BACKOFF_SECONDS = 1.0

USER_AGENT = "hhkb (CMS source downloader)"

#: ``progress(file_path, bytes_so_far, total_bytes_or_None)``, called after each chunk.
Progress = Callable[[str, int, "int | None"], None]

_RELEASE_KEY = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_FIELDS = {"path", "sha256", "size", "url", "url_confirmed", "note"}
_RELEASE_FIELDS = {"title", "files"}


@dataclass(frozen=True)
class SourceFile:
    """One file of a release, as the table describes it."""

    path: str  # place in a mirror and in the destination: "cms/hhpps/hrg-2024.csv"
    sha256: str | None  # expected sha256 (lowercase hex), None where unknown
    size: int | None  # expected size in bytes, None where unknown
    url: str | None  # CMS's published URL, None where CMS publishes no direct link
    url_confirmed: bool  # False: the URL follows CMS's pattern but was not checked for this file
    note: str  # what is known about the URL and the file

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class KnownRelease:
    """A release key and the files it names."""

    key: str
    title: str
    files: tuple[SourceFile, ...]


@dataclass(frozen=True)
class SourceTable:
    """The table of known releases, in the order the table lists them."""

    releases: tuple[KnownRelease, ...]

    def release(self, key: str) -> KnownRelease | None:
        return next((release for release in self.releases if release.key == key), None)

    def file(self, path: str) -> SourceFile | None:
        return next(
            (source for release in self.releases for source in release.files if source.path == path), None
        )


# --- the table --------------------------------------------------------------------------------


def load_source_table(path: Path = TABLE_PATH) -> SourceTable:
    """Read and check a table of known files (by default the one shipped with hhkb)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LoadError(path, f"cannot read the table of CMS files: {error.strerror}") from error
    return parse_source_table(text, path)


def parse_source_table(text: str, path: Path | str) -> SourceTable:
    """Build a ``SourceTable`` from the YAML text of a table; ``path`` names it in errors."""
    try:
        document = load_strict(text)
    except YamlKeyError as error:
        raise LoadError(path, f"{error.key!r} is listed twice", line=error.line, field=error.key) from error
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise LoadError(path, f"not valid YAML: {error.problem}", line=line) from error
    if not isinstance(document, dict) or not isinstance(document.get("releases"), dict):
        raise LoadError(path, "the table must be a mapping with a 'releases' mapping", line=1, field="releases")
    releases = []
    files_by_path: dict[str, SourceFile] = {}
    for key, entry in document["releases"].items():
        release = _release_from(path, key, entry, document["releases"].line)
        for source in release.files:
            earlier = files_by_path.setdefault(source.path, source)
            if earlier != source:
                raise LoadError(
                    path,
                    f"{source.path} is described differently in two releases",
                    line=_line_of(entry),
                    field=f"releases.{key}.files",
                )
        releases.append(release)
    return SourceTable(releases=tuple(releases))


def _line_of(entry: object) -> int | None:
    return entry.line if isinstance(entry, (YamlMapping, YamlList)) else None


def _scalar(text: object) -> object:
    """The strict reader keeps every scalar as text: ``null`` or nothing is None, ``true`` and
    ``false`` are booleans, digits a whole number; anything else stays as written."""
    if not isinstance(text, str):
        return text
    if text in ("", "null", "~"):
        return None
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


def _release_from(path: Path | str, key: object, entry: object, parent_line: int) -> KnownRelease:
    where = f"releases.{key}"
    if not isinstance(key, str) or not _RELEASE_KEY.match(key):
        raise LoadError(path, f"release key {key!r} is not lowercase letters, digits, '.' and '-'",
                        line=parent_line, field=where)
    if not isinstance(entry, dict):
        raise LoadError(path, "a release must be a mapping with 'title' and 'files'", line=parent_line, field=where)
    line = _line_of(entry)
    _refuse_unknown_fields(path, entry, _RELEASE_FIELDS, line, where)
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        raise LoadError(path, "a release needs a title", line=line, field=f"{where}.title")
    files = entry.get("files")
    if not isinstance(files, list) or not files:
        raise LoadError(path, "a release needs a non-empty list of files", line=line, field=f"{where}.files")
    return KnownRelease(
        key=key,
        title=title.strip(),
        files=tuple(_source_file_from(path, item, line, f"{where}.files[{index}]") for index, item in enumerate(files)),
    )


def _source_file_from(path: Path | str, item: object, release_line: int | None, where: str) -> SourceFile:
    if not isinstance(item, dict):
        raise LoadError(path, "a file must be a mapping with at least 'path'", line=release_line, field=where)
    line = _line_of(item)
    _refuse_unknown_fields(path, item, _FILE_FIELDS, line, where)

    def fail(field: str, message: str) -> LoadError:
        return LoadError(path, message, line=line, field=f"{where}.{field}")

    item = {name: _scalar(value) if name != "path" else value for name, value in item.items()}
    relative = item.get("path")
    pure = PurePosixPath(relative) if isinstance(relative, str) else None
    if pure is None or pure.is_absolute() or ".." in pure.parts or "\\" in relative or str(pure) != relative:
        raise fail("path", f"{relative!r} is not a plain relative path like cms/hcpcs/<file>")
    sha256 = item.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
        raise fail("sha256", f"{sha256!r} is not 64 lowercase hexadecimal digits")
    size = item.get("size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
        raise fail("size", f"{size!r} is not a positive number of bytes")
    url = item.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise fail("url", f"{url!r} is not an http(s) URL")
    confirmed = item.get("url_confirmed", False)
    if not isinstance(confirmed, bool):
        raise fail("url_confirmed", f"{confirmed!r} is not true or false")
    if confirmed and url is None:
        raise fail("url_confirmed", "a missing URL cannot be confirmed")
    note = item.get("note", "")
    if not isinstance(note, str):
        raise fail("note", "a note must be text")
    return SourceFile(path=relative, sha256=sha256, size=size, url=url, url_confirmed=confirmed, note=note.strip())


def _refuse_unknown_fields(path, entry: dict, allowed: set[str], line: int | None, where: str) -> None:
    for field in entry:
        if field not in allowed:
            raise LoadError(path, f"unknown field {field!r} (known: {', '.join(sorted(allowed))})",
                            line=line, field=f"{where}.{field}")


def known_releases(table: SourceTable | None = None) -> tuple[KnownRelease, ...]:
    """The releases hhkb knows, in table order."""
    return (table if table is not None else load_source_table()).releases


# --- where files live ---------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$HHKB_CACHE``, else ``$XDG_CACHE_HOME/hhkb``, else ``~/.cache/hhkb``."""
    if os.environ.get("HHKB_CACHE"):
        return Path(os.environ["HHKB_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "hhkb"
    return Path.home() / ".cache" / "hhkb"


def _mirror_from(mirror: str | Path | None) -> str | Path | None:
    """A base URL ending in '/', a local folder, or None for CMS itself."""
    if mirror is None:
        mirror = os.environ.get("HHKB_MIRROR") or None
    if mirror is None:
        return None
    text = str(mirror)
    if isinstance(mirror, str) and text.startswith(("http://", "https://")):
        return text.rstrip("/") + "/"
    folder = Path(urlsplit(text).path) if text.startswith("file://") else Path(mirror)
    folder = folder.expanduser()
    if not folder.is_dir():
        raise LoadError(folder, "the mirror folder does not exist (a mirror is an http(s) URL or a folder)")
    return folder


def _resolve(table: SourceTable, key_or_path: str) -> tuple[SourceFile, ...]:
    release = table.release(key_or_path)
    if release is not None:
        return release.files
    source = table.file(key_or_path)
    if source is not None:
        return (source,)
    known = ", ".join(release.key for release in table.releases)
    raise LoadError(key_or_path, f"not a known release or file path (known releases: {known})")


# --- fetching -------------------------------------------------------------------------------------


def fetch(
    release_key_or_relative_path: str,
    *,
    dest_dir: Path | str,
    mirror: str | Path | None = None,
    session: requests.Session | None = None,
    timeout: float = 30,
    retries: int = 3,
    progress: Progress | None = None,
    cache_dir: Path | str | None = None,
    table: SourceTable | None = None,
) -> Path:
    """Fetch a release (or one file of it) into ``dest_dir`` and return where it is.

    Returns the file itself for a file path or a release of one file; for a release of several
    files, the deepest folder holding them all (``dest_dir/cms/hcpcs/2020-04`` for
    ``hcpcs-2020-04``). ``session`` is used and left open when given; otherwise one is made for
    this call. ``retries`` is the number of further attempts after the first fails.
    """
    table = table if table is not None else load_source_table()
    sources = _resolve(table, release_key_or_relative_path)
    origin = _mirror_from(mirror)
    own_session = session is None
    session = session or _new_session()
    try:
        paths = [
            _fetch_file(
                source,
                dest_dir=Path(dest_dir),
                origin=origin,
                session=session,
                timeout=timeout,
                retries=retries,
                progress=progress,
                cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir(),
            )
            for source in sources
        ]
    finally:
        if own_session:
            session.close()
    if len(paths) == 1:
        return paths[0]
    return Path(os.path.commonpath(paths))


def fetch_all(
    keys: Iterable[str],
    *,
    dest_dir: Path | str,
    mirror: str | Path | None = None,
    session: requests.Session | None = None,
    timeout: float = 30,
    retries: int = 3,
    progress: Progress | None = None,
    cache_dir: Path | str | None = None,
    table: SourceTable | None = None,
) -> dict[str, Path]:
    """Fetch each key in turn over one session; map each key to what ``fetch`` returned for it.

    Every key is checked against the table before anything is downloaded.
    """
    keys = list(keys)
    table = table if table is not None else load_source_table()
    for key in keys:
        _resolve(table, key)
    own_session = session is None
    session = session or _new_session()
    try:
        return {
            key: fetch(
                key,
                dest_dir=dest_dir,
                mirror=mirror,
                session=session,
                timeout=timeout,
                retries=retries,
                progress=progress,
                cache_dir=cache_dir,
                table=table,
            )
            for key in keys
        }
    finally:
        if own_session:
            session.close()


def _new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _fetch_file(
    source: SourceFile,
    *,
    dest_dir: Path,
    origin: str | Path | None,
    session: requests.Session,
    timeout: float,
    retries: int,
    progress: Progress | None,
    cache_dir: Path,
) -> Path:
    target = dest_dir / source.path
    if source.sha256 is not None and target.is_file() and _sha256_of(target) == source.sha256:
        return target
    cached = _cached_copy(source, cache_dir)
    if cached is not None:
        _copy_atomically(cached, target)
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    if isinstance(origin, Path):
        where: str | Path = origin / source.path
        _copy_from_folder(where, part, source, progress)
    else:
        where = _url_of(source, origin)
        _download(where, part, source, session=session, timeout=timeout, retries=retries, progress=progress)
    _verify(part, source, where)
    os.replace(part, target)
    if source.sha256 is not None:
        _copy_atomically(target, cache_dir / source.sha256 / source.name)
    return target


def _url_of(source: SourceFile, base_url: str | None) -> str:
    if base_url is not None:
        return base_url + quote(source.path)
    if source.url is None:
        raise LoadError(
            source.path,
            "CMS publishes no direct link to this file: fetch it from a mirror (--mirror or HHKB_MIRROR)",
            field="url",
        )
    return source.url


def _cached_copy(source: SourceFile, cache_dir: Path) -> Path | None:
    if source.sha256 is None:
        return None
    cached = cache_dir / source.sha256 / source.name
    if not cached.is_file():
        return None
    if _sha256_of(cached) != source.sha256:
        cached.unlink()  # damaged in the cache: fetch it again
        return None
    return cached


def _copy_atomically(origin: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(origin, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(part: Path, source: SourceFile, where: str | Path) -> None:
    if source.sha256 is None:
        return
    actual = _sha256_of(part)
    if actual != source.sha256:
        part.unlink()
        raise LoadError(
            where,
            f"sha256 mismatch for {source.path}: expected {source.sha256}, got {actual}; the download was deleted",
            field="sha256",
        )


def _copy_from_folder(origin: Path, part: Path, source: SourceFile, progress: Progress | None) -> None:
    if not origin.is_file():
        raise LoadError(origin, "not in the mirror folder")
    total = origin.stat().st_size
    if total > MAX_DOWNLOAD_BYTES:
        raise LoadError(origin, f"refused: {total} bytes is more than the {MAX_DOWNLOAD_BYTES} byte limit", field="size")
    copied = 0
    with origin.open("rb") as stream, part.open("wb") as out:
        while chunk := stream.read(CHUNK_BYTES):
            out.write(chunk)
            copied += len(chunk)
            if progress is not None:
                progress(source.path, copied, total)


class _TryAgain(Exception):
    """A failure worth another attempt: connection trouble, a timeout, a 5xx answer."""


def _download(
    url: str,
    part: Path,
    source: SourceFile,
    *,
    session: requests.Session,
    timeout: float,
    retries: int,
    progress: Progress | None,
) -> None:
    attempts = retries + 1
    for attempt in range(attempts):
        try:
            _download_once(url, part, source, session=session, timeout=timeout, progress=progress)
            return
        except _TryAgain as problem:
            if attempt + 1 == attempts:
                tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                raise LoadError(url, f"{problem} (gave up after {tries})") from problem
            time.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)


def _download_once(
    url: str,
    part: Path,
    source: SourceFile,
    *,
    session: requests.Session,
    timeout: float,
    progress: Progress | None,
) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity"}  # the bytes exactly as published, for the sha256
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urlsplit(url).netloc
    try:
        response = session.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.Timeout as error:
        raise _TryAgain(f"no answer from {host} within {timeout} s") from error
    except requests.ConnectionError as error:
        raise _TryAgain(f"cannot reach {host} (offline?): {_reason(error)}") from error
    with response:
        status = response.status_code
        if status == 404:
            raise LoadError(url, "not found (HTTP 404)")
        if status >= 500:
            raise _TryAgain(f"server error (HTTP {status} {response.reason})")
        if status == 416 and offset:
            part.unlink()
            raise _TryAgain("the server cannot resume the partial download (HTTP 416); starting again")
        if status not in (200, 206):
            raise LoadError(url, f"unexpected answer (HTTP {status} {response.reason})")
        if status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != offset:
                part.unlink(missing_ok=True)
                raise _TryAgain("the server resumed at the wrong place; starting again")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # the whole file: a first request, or a server that ignores Range
        length = response.headers.get("Content-Length", "")
        total = offset + int(length) if length.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            part.unlink(missing_ok=True)
            raise LoadError(
                url, f"refused: {total} bytes is more than the {MAX_DOWNLOAD_BYTES} byte limit", field="Content-Length"
            )
        expected = total if total is not None else source.size  # for progress only
        received = offset
        try:
            with part.open(mode) as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        break
                    out.write(chunk)
                    if progress is not None:
                        progress(source.path, received, expected)
        except requests.RequestException as error:  # the connection broke: keep the .part to resume
            raise _TryAgain(f"connection to {host} lost after {received} bytes: {_reason(error)}") from error
        if received > MAX_DOWNLOAD_BYTES:
            part.unlink(missing_ok=True)
            raise LoadError(url, f"refused: the body runs past the {MAX_DOWNLOAD_BYTES} byte limit", field="body")
        if total is not None and received < total:
            raise _TryAgain(f"connection to {host} closed after {received} of {total} bytes")


def _content_range_start(header: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)$", (header or "").strip())
    return int(match.group(1)) if match else None


def _reason(error: BaseException) -> str:
    """The innermost cause of a requests error, which names what went wrong in plain words."""
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    for argument in getattr(error, "args", ()):
        if isinstance(argument, BaseException):
            error = argument
    text = str(error)
    return re.sub(r"^<[^>]+>:\s*", "", text) or type(error).__name__


__all__ = [
    "TABLE_PATH",
    "MAX_DOWNLOAD_BYTES",
    "SourceTable",
    "Progress",
    "KnownRelease",
    "SourceFile",
    "default_cache_dir",
    "fetch",
    "fetch_all",
    "known_releases",
    "load_source_table",
    "parse_source_table",
]
