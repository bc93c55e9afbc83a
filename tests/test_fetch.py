"""The CMS source downloader: the table of known files, cache, resume, retries and every refusal.

Files are served by a local HTTP server on 127.0.0.1 (``mirror_server``) from two folders laid out
like ../shared: tests/fixtures/fetch/mirror (a small made-up file) and ../shared itself. No test
reaches the internet.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests

from loaders import fetch
from loaders.errors import LoadError
from loaders.fetch import fetch_all, known_releases, load_source_table, parse_source_table

from .conftest import FIXTURES, SHARED

MIRROR_FIXTURES = FIXTURES / "fetch" / "mirror"
VISITS = "cms/demo/visits.csv"
VISITS_SHA256 = "2c3367896c688f36253b6da5b7a6748bf4831e4ece6d816d279aab62b42d3be4"
VISITS_BYTES = (MIRROR_FIXTURES / VISITS).read_bytes()
REV_2024 = "cms/hhpps/rev-2024.csv"
REV_2024_SHA256 = "f0b0f345f94fc951494765a416d6bb1bc4cb45eae74c968d27eab3bc6c29e076"

DEMO_TABLE = f"""
releases:
  demo-visits:
    title: A made-up visit list
    files:
      - path: {VISITS}
        sha256: {VISITS_SHA256}
        size: {len(VISITS_BYTES)}
        url: null
  demo-pair:
    title: The visit list and the real CY2024 revenue table
    files:
      - path: {VISITS}
        sha256: {VISITS_SHA256}
        size: {len(VISITS_BYTES)}
        url: null
      - path: {REV_2024}
        sha256: {REV_2024_SHA256}
        size: 605
"""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- a local mirror over HTTP -------------------------------------------------------------------


@dataclass
class ServedRequest:
    path: str
    range: str | None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    bytes_sent: int = 0


@dataclass
class MirrorServer:
    """What the handler serves and what it saw."""

    roots: list[Path]
    url: str = ""
    requests: list[ServedRequest] = field(default_factory=list)
    honour_range: bool = True
    send_length: bool = True
    stall_seconds: float = 0
    #: per path, answers given before the real file: an HTTP status, or "cut" (half the body)
    scripted: dict[str, list[int | str]] = field(default_factory=dict)
    #: per path, bytes served instead of the file
    replaced: dict[str, bytes] = field(default_factory=dict)

    def body_of(self, path: str) -> bytes | None:
        if path in self.replaced:
            return self.replaced[path]
        for root in self.roots:
            candidate = (root / path).resolve()
            if candidate.is_relative_to(root.resolve()) and candidate.is_file():
                return candidate.read_bytes()
        return None


class MirrorHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        mirror: MirrorServer = self.server.mirror
        path = unquote(urlsplit(self.path).path).lstrip("/")
        served = ServedRequest(path=path, range=self.headers.get("Range"), headers=dict(self.headers))
        mirror.requests.append(served)
        if mirror.stall_seconds:
            time.sleep(mirror.stall_seconds)
        body = mirror.body_of(path)
        scripted = mirror.scripted.get(path)
        answer = scripted.pop(0) if scripted else None
        if isinstance(answer, int) or body is None:
            served.status = answer if isinstance(answer, int) else 404
            self.send_error(served.status)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", served.range or "")
        if match and mirror.honour_range:
            start = int(match.group(1))
        served.status = 206 if start else 200
        self.send_response(served.status)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if mirror.send_length:
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if answer == "cut":
            payload = payload[: len(payload) // 2]
        served.bytes_sent = len(payload)  # before writing: the client may check as soon as it has read
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up: a timeout or a refusal
            served.bytes_sent = 0


@pytest.fixture
def mirror_server():
    mirror = MirrorServer(roots=[MIRROR_FIXTURES, SHARED])
    server = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.daemon_threads = True
    server.mirror = mirror
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_port}/"
    yield mirror
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("HHKB_MIRROR", raising=False)
    monkeypatch.setenv("HHKB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(fetch, "RETRY_BACKOFF_SECONDS", 0)


@pytest.fixture
def demo(tmp_path):
    return parse_source_table(DEMO_TABLE, tmp_path / "demo.yaml")


def cache_files(tmp_path: Path) -> list[Path]:
    cache = tmp_path / "cache"
    return sorted(path for path in cache.rglob("*") if path.is_file()) if cache.exists() else []


# --- the table of known files ---------------------------------------------------------------------


def test_table_lists_every_cms_file_in_shared_with_its_sha256_and_size():
    listed = dict(re.findall(r"^([0-9a-f]{64})  (cms/\S+)$", (SHARED / "SOURCES.md").read_text(), re.M))
    sources = {source.path: source for release in known_releases() for source in release.files}
    assert set(sources) == set(listed.values())
    for path, source in sources.items():
        assert source.sha256 == sha256_of(SHARED / path), path
        assert source.size == (SHARED / path).stat().st_size, path


def test_table_has_the_release_keys_the_cli_documents():
    keys = [release.key for release in known_releases()]
    for key in ("hcpcs-2019", "hcpcs-2018-corrections", "hcpcs-2020-04", "hhpps-2024"):
        assert key in keys
    assert len(keys) == len(set(keys))


def test_table_says_which_urls_are_unconfirmed():
    for release in known_releases():
        for source in release.files:
            if source.url is None or not source.url_confirmed:
                assert source.note, source.path


BAD_TABLES = [
    pytest.param(
        "releases:\n  demo:\n    title: Demo\n    files:\n      - path: cms/a.csv\n        sha256: ABC\n",
        5, "releases.demo.files[0].sha256", "not 64 lowercase hexadecimal digits", id="bad-sha256",
    ),
    pytest.param(
        "releases:\n  demo:\n    title: Demo\n    files:\n      - path: ../secret.csv\n",
        5, "releases.demo.files[0].path", "not a plain relative path", id="path-escapes",
    ),
    pytest.param(
        "releases:\n  demo:\n    title: Demo\n    files:\n      - path: cms/a.csv\n"
        "  demo:\n    title: Again\n    files:\n      - path: cms/b.csv\n",
        6, "demo", "listed twice", id="duplicate-key",
    ),
    pytest.param(
        "releases:\n  demo:\n    title: Demo\n    files:\n      - path: cms/a.csv\n        checksum: x\n",
        5, "releases.demo.files[0].checksum", "unknown field", id="unknown-field",
    ),
    pytest.param(
        "releases:\n  demo:\n    title: Demo\n    files: []\n",
        3, "releases.demo.files", "non-empty list of files", id="no-files",
    ),
    pytest.param(
        "releases:\n  demo:\n    title: Demo\n    files:\n      - path: cms/a.csv\n        url: null\n"
        "        url_confirmed: true\n",
        5, "releases.demo.files[0].url_confirmed", "cannot be confirmed", id="confirmed-without-url",
    ),
    pytest.param(
        "releases:\n  demo:\n    title: [unclosed\n", 4, None, "not valid YAML", id="yaml-syntax",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), BAD_TABLES)
def test_bad_table_names_file_line_and_field(tmp_path, text, line, field, message):
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as caught:
        load_source_table(path)
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert caught.value.field == field
    assert message in caught.value.message


def test_one_file_described_two_ways_is_refused(tmp_path):
    text = (
        "releases:\n  one:\n    title: One\n    files:\n      - path: cms/a.csv\n        size: 1\n"
        "  two:\n    title: Two\n    files:\n      - path: cms/a.csv\n        size: 2\n"
    )
    with pytest.raises(LoadError) as caught:
        parse_source_table(text, "two-ways.yaml")
    assert str(caught.value) == (
        "two-ways.yaml, line 8, field releases.two.files: cms/a.csv is described differently in two releases"
    )


def test_unknown_key_lists_the_known_releases(tmp_path, demo):
    with pytest.raises(LoadError) as caught:
        fetch.fetch("hcpcs-1999", dest_dir=tmp_path, table=demo)
    assert caught.value.path == "hcpcs-1999"
    assert "known releases: demo-visits, demo-pair" in caught.value.message


# --- fetching -----------------------------------------------------------------------------------


def test_release_by_key_over_http_matches_the_table(tmp_path, mirror_server):
    seen = []
    folder = fetch.fetch(
        "hhpps-2024",
        dest_dir=tmp_path / "dest",
        mirror=mirror_server.url,
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert folder == tmp_path / "dest" / "cms" / "hhpps"
    release = next(release for release in known_releases() if release.key == "hhpps-2024")
    for source in release.files:
        assert sha256_of(tmp_path / "dest" / source.path) == source.sha256
    assert ("cms/hhpps/rev-2024.csv", 605, 605) in seen
    assert [request.path for request in mirror_server.requests] == [source.path for source in release.files]
    assert not list((tmp_path / "dest").rglob("*.part"))


def test_a_single_file_release_returns_the_file(tmp_path, mirror_server, demo):
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path == tmp_path / "dest" / VISITS
    assert path.read_bytes() == VISITS_BYTES


def test_one_file_of_a_release_by_its_path(tmp_path, mirror_server):
    path = fetch.fetch(REV_2024, dest_dir=tmp_path / "dest", mirror=mirror_server.url)
    assert path == tmp_path / "dest" / REV_2024
    assert sha256_of(path) == REV_2024_SHA256


def test_second_fetch_comes_from_the_cache_without_a_request(tmp_path, mirror_server, demo):
    fetch.fetch("demo-pair", dest_dir=tmp_path / "first", mirror=mirror_server.url, table=demo)
    assert len(mirror_server.requests) == 2
    assert (tmp_path / "cache" / VISITS_SHA256 / "visits.csv").read_bytes() == VISITS_BYTES

    fetch.fetch("demo-pair", dest_dir=tmp_path / "second", mirror=mirror_server.url, table=demo)
    fetch.fetch("demo-pair", dest_dir=tmp_path / "first", mirror=mirror_server.url, table=demo)
    assert len(mirror_server.requests) == 2
    assert (tmp_path / "second" / VISITS).read_bytes() == VISITS_BYTES
    assert sha256_of(tmp_path / "second" / REV_2024) == REV_2024_SHA256


def test_a_damaged_cache_entry_is_fetched_again(tmp_path, mirror_server, demo):
    damaged = tmp_path / "cache" / VISITS_SHA256 / "visits.csv"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not the file")
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path.read_bytes() == VISITS_BYTES
    assert damaged.read_bytes() == VISITS_BYTES
    assert len(mirror_server.requests) == 1


def test_resume_asks_only_for_the_rest(tmp_path, mirror_server, demo):
    part = tmp_path / "dest" / (VISITS + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(VISITS_BYTES[:100])
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path.read_bytes() == VISITS_BYTES
    [request] = mirror_server.requests
    assert (request.range, request.status, request.bytes_sent) == ("bytes=100-", 206, len(VISITS_BYTES) - 100)
    assert not part.exists()


def test_a_server_ignoring_range_restarts_the_download(tmp_path, mirror_server, demo):
    mirror_server.honour_range = False
    part = tmp_path / "dest" / (VISITS + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 100)  # a stale partial download that must not survive
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path.read_bytes() == VISITS_BYTES
    [request] = mirror_server.requests
    assert (request.range, request.status, request.bytes_sent) == ("bytes=100-", 200, len(VISITS_BYTES))


def test_a_connection_lost_midway_resumes_on_the_next_attempt(tmp_path, mirror_server, demo, monkeypatch):
    monkeypatch.setattr(fetch, "CHUNK_BYTES", 16)  # whole chunks read before the cut are kept
    mirror_server.scripted[VISITS] = ["cut"]
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path.read_bytes() == VISITS_BYTES
    first, second = mirror_server.requests
    assert (first.range, first.bytes_sent) == (None, len(VISITS_BYTES) // 2)
    kept = len(VISITS_BYTES) // 2 // 16 * 16
    assert (second.range, second.status, second.bytes_sent) == (f"bytes={kept}-", 206, len(VISITS_BYTES) - kept)


def test_a_partial_download_the_server_cannot_resume_starts_again(tmp_path, mirror_server, demo):
    mirror_server.scripted[VISITS] = [416]
    part = tmp_path / "dest" / (VISITS + ".part")
    part.parent.mkdir(parents=True)
    stale = VISITS_BYTES + b"trailing bytes of a stale download"
    part.write_bytes(stale)
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path.read_bytes() == VISITS_BYTES
    first, second = mirror_server.requests
    assert (first.range, first.status) == (f"bytes={len(stale)}-", 416)
    assert (second.range, second.status) == (None, 200)


def test_a_refusal_other_than_404_is_not_retried(tmp_path, mirror_server, demo):
    mirror_server.scripted[VISITS] = [403]
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert str(caught.value) == f"{mirror_server.url}{VISITS}: unexpected answer (HTTP 403 Forbidden)"
    assert len(mirror_server.requests) == 1


def test_progress_falls_back_on_the_table_size_without_content_length(tmp_path, mirror_server, demo):
    mirror_server.send_length = False
    seen = []
    fetch.fetch(
        "demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo,
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert seen[-1] == (VISITS, len(VISITS_BYTES), len(VISITS_BYTES))


def test_404_names_the_url(tmp_path, mirror_server, demo):
    mirror_server.roots = []
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert str(caught.value) == f"{mirror_server.url}{VISITS}: not found (HTTP 404)"
    assert len(mirror_server.requests) == 1  # a 404 is not retried


def test_500_then_success_is_retried(tmp_path, mirror_server, demo):
    mirror_server.scripted[VISITS] = [500, 503]
    path = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert path.read_bytes() == VISITS_BYTES
    assert [request.status for request in mirror_server.requests] == [500, 503, 200]


def test_retries_wait_longer_each_time(tmp_path, mirror_server, demo, monkeypatch):
    waits = []
    monkeypatch.setattr(fetch, "RETRY_BACKOFF_SECONDS", 0.5)
    monkeypatch.setattr(fetch.time, "sleep", waits.append)
    mirror_server.scripted[VISITS] = [500, 500, 500]
    fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo, retries=3)
    assert waits == [0.5, 1.0, 2.0]


def test_a_server_that_keeps_failing_is_given_up_on(tmp_path, mirror_server, demo):
    mirror_server.scripted[VISITS] = [500] * 5
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo, retries=2)
    assert caught.value.path == mirror_server.url + VISITS
    assert caught.value.message == "server error (HTTP 500 Internal Server Error) (gave up after 3 attempts)"
    assert len(mirror_server.requests) == 3


def test_sha256_mismatch_deletes_the_download_and_caches_nothing(tmp_path, mirror_server, demo):
    mirror_server.replaced[VISITS] = VISITS_BYTES.replace(b"G0299", b"G0300")
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert caught.value.path == mirror_server.url + VISITS
    assert caught.value.field == "sha256"
    assert f"expected {VISITS_SHA256}, got " in caught.value.message
    assert [path for path in (tmp_path / "dest").rglob("*") if path.is_file()] == []
    assert cache_files(tmp_path) == []


def test_connection_refused_says_offline(tmp_path, demo):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=url, table=demo, retries=1)
    assert caught.value.path == url + VISITS
    assert caught.value.message.startswith(f"cannot reach 127.0.0.1:{port} (offline?): ")
    assert "Connection refused" in caught.value.message
    assert caught.value.message.endswith("(gave up after 2 attempts)")


def test_a_server_that_does_not_answer_times_out(tmp_path, mirror_server, demo):
    mirror_server.stall_seconds = 1
    with pytest.raises(LoadError) as caught:
        fetch.fetch(
            "demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo, timeout=0.2, retries=0
        )
    assert caught.value.message == f"no answer from {urlsplit(mirror_server.url).netloc} within 0.2 s (gave up after 1 attempt)"


def test_a_response_over_the_size_cap_is_refused_from_its_content_length(tmp_path, mirror_server, demo, monkeypatch):
    monkeypatch.setattr(fetch, "MAX_DOWNLOAD_BYTES", 100)
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert str(caught.value) == (
        f"{mirror_server.url}{VISITS}, field Content-Length: refused: 286 bytes is more than the 100 byte limit"
    )
    assert not (tmp_path / "dest" / (VISITS + ".part")).exists()


def test_a_response_over_the_size_cap_is_refused_while_streaming(tmp_path, mirror_server, demo, monkeypatch):
    monkeypatch.setattr(fetch, "MAX_DOWNLOAD_BYTES", 100)
    mirror_server.send_length = False  # a hostile server announces nothing
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert caught.value.field == "body"
    assert caught.value.message == "refused: the body runs past the 100 byte limit"
    assert not (tmp_path / "dest" / (VISITS + ".part")).exists()
    assert cache_files(tmp_path) == []


def test_a_local_folder_mirror(tmp_path, demo):
    folder = tmp_path / "local-mirror"
    (folder / "cms" / "demo").mkdir(parents=True)
    (folder / VISITS).write_bytes(VISITS_BYTES)
    result = fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=folder, table=demo)
    assert result.read_bytes() == VISITS_BYTES
    with pytest.raises(LoadError) as caught:
        fetch.fetch("demo-pair", dest_dir=tmp_path / "dest", mirror=folder, table=demo)
    assert str(caught.value) == f"{folder / REV_2024}: not in the mirror folder"


def test_every_release_fetches_from_shared_as_a_local_mirror(tmp_path):
    keys = [release.key for release in known_releases()]
    fetched = fetch_all(keys, dest_dir=tmp_path / "dest", mirror=str(SHARED))
    assert set(fetched) == set(keys)
    assert fetched["hcpcs-2019"] == tmp_path / "dest" / "cms" / "hcpcs" / "2019-Alpha-Numeric-HCPCS-File.zip"
    assert fetched["hcpcs-2020-04"] == tmp_path / "dest" / "cms" / "hcpcs" / "2020-04"
    for release in known_releases():
        for source in release.files:
            assert sha256_of(tmp_path / "dest" / source.path) == source.sha256


def test_the_mirror_can_come_from_the_environment(tmp_path, mirror_server, monkeypatch):
    monkeypatch.setenv("HHKB_MIRROR", mirror_server.url)
    path = fetch.fetch(REV_2024, dest_dir=tmp_path / "dest")
    assert sha256_of(path) == REV_2024_SHA256
    assert [request.path for request in mirror_server.requests] == [REV_2024]


def test_a_missing_mirror_folder_is_refused(tmp_path):
    with pytest.raises(LoadError) as caught:
        fetch.fetch(REV_2024, dest_dir=tmp_path / "dest", mirror=tmp_path / "nowhere")
    assert caught.value.path == str(tmp_path / "nowhere")
    assert "mirror folder does not exist" in caught.value.message


def test_a_file_cms_does_not_link_to_needs_a_mirror(tmp_path):
    with pytest.raises(LoadError) as caught:
        fetch.fetch("hhpps-2024", dest_dir=tmp_path / "dest")
    assert str(caught.value) == (
        "cms/hhpps/hrg-2024.csv, field url: CMS publishes no direct link to this file: "
        "fetch it from a mirror (--mirror or HHKB_MIRROR)"
    )


def test_fetch_all_checks_every_key_before_downloading(tmp_path, mirror_server, demo):
    with pytest.raises(LoadError):
        fetch_all(["demo-visits", "demo-typo"], dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo)
    assert mirror_server.requests == []


def test_a_given_session_is_used_and_left_open(tmp_path, mirror_server, demo):
    session = requests.Session()
    session.headers["X-Test"] = "kept"
    fetch.fetch("demo-visits", dest_dir=tmp_path / "dest", mirror=mirror_server.url, table=demo, session=session)
    fetch.fetch(REV_2024, dest_dir=tmp_path / "dest", mirror=mirror_server.url, session=session)
    assert [request.headers.get("X-Test") for request in mirror_server.requests] == ["kept", "kept"]
    session.get(mirror_server.url + VISITS).raise_for_status()  # still open
    session.close()


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HHKB_CACHE", str(tmp_path / "explicit"))
    assert fetch.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("HHKB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.default_cache_dir() == tmp_path / "xdg" / "hhkb"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fetch.default_cache_dir() == tmp_path / "home" / ".cache" / "hhkb"
