"""The web app under 20 concurrent clients: latency of the code page, search and the review page.

Run from the checkout: ``.venv/bin/python bench/bench_web.py [POSTGRES_URL]``. Loads all of
``../shared/cms`` into a fresh SQLite file (and, when a PostgreSQL URL is given or
HHKB_BENCH_POSTGRES_URL is set, into a fresh PostgreSQL database), starts ``hhkb serve`` in its
own process on a free port of 127.0.0.1, and sends a bounded number of requests per page from 20
concurrent clients, each on its own kept-alive connection. The clients are asyncio coroutines
over plain sockets in one thread of this process: they share the machine with the server, so
they must cost it little. Prints p50/p95/p99 per page against the targets (code page and search
50 ms, review page 300 ms at p95), twice: over as many distinct URLs as requests, each answer
computed (``distinct``), and over a few URLs asked again and again (``repeated``), answered from
what the app keeps until a file is loaded. The review's first computation for a year is timed
apart (the app keeps it until the loaded files change). Never passes or fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from kb import database  # noqa: E402

CMS = REPO.parent / "shared" / "cms"
CLIENTS = 20
CODES = ("G0151", "G0152", "G0153", "G0154", "G0155", "G0156", "G0157", "G0158", "G0159", "G0160", "G0161",
         "G0162", "G0299", "G0300", "G0493", "G0494", "Q5001", "Q5002", "A4216", "E0114")
SEARCHES = ("home health aide", "G015", "physical therapist home health", "wound", "skilled nursing", "Q50")
REVIEWS = ("/review/2024", "/review/2024?change_type=weight_changed&page=2", "/review/2018?watched=true",
           "/review/2018?change_type=discontinued")
PAGES = {
    # page: (URLs asked again and again, requests, p95 target in seconds, as many URLs each asked once)
    "code page": ([f"/codes/{code}?as_of=2019-06-01" for code in CODES], 1000, 0.050,
                  [f"/codes/{code}?as_of={year}-{month:02}-01" for year in range(2012, 2025) for month in (1, 4, 7, 10)
                   for code in CODES][:1000]),
    "search": ([f"/search?q={text.replace(' ', '+')}" for text in SEARCHES], 1000, 0.050,
               [f"/search?q={text.replace(' ', '+')}&limit={limit}" for limit in range(1, 168)
                for text in SEARCHES][:1000]),
    "review page": (list(REVIEWS), 200, 0.300,
                    [f"{url}{'&' if '?' in url else '?'}policy=first&page={number}" for number in range(1, 51)
                     for url in REVIEWS]),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_database(backend: str, postgres_url: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='hhkb-bench-web-')}/bench.sqlite3"
    admin = database.make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"hhkb_bench_web_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def hhkb(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kb.cli import main; main()", *args]


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(hhkb("--db", url, "serve", "--port", str(port)), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/api/home", timeout=2).raise_for_status()
            return server, base
        except httpx.HTTPError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the web server did not start on {base}")
            time.sleep(0.2)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str) -> int:
    """One GET on a kept-alive HTTP/1.1 connection; its status (the body is read and dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\r\n".encode("latin-1"))
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if length is None:
        raise SystemExit(f"{path}: the answer has no Content-Length")
    await reader.readexactly(int(length.group(1)))
    return status


async def _hammer(host: str, port: int, urls: list[str], requests: int) -> list[float]:
    seconds: list[float] = []
    counter = iter(range(requests))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for number in counter:
                path = urls[number % len(urls)]
                started = time.perf_counter()
                status = await _get(reader, writer, f"{host}:{port}", path)
                seconds.append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"{path}: HTTP {status}")
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return seconds


def hammer(base: str, urls: list[str], requests: int) -> list[float]:
    """``requests`` GETs from ``CLIENTS`` concurrent clients, each on its own kept-alive connection,
    all in one thread of this process (asyncio over plain sockets: the clients share the 2 cores
    with the server, so they must cost little); the seconds each took."""
    host, port = base.removeprefix("http://").split(":")
    return asyncio.run(_hammer(host, int(port), urls, requests))


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def bench(backend: str, postgres_url: str | None) -> None:
    url = fresh_database(backend, postgres_url)
    started = time.perf_counter()
    subprocess.run(hhkb("--db", url, "load", str(CMS)), cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"{backend}: all of {CMS} loaded in {time.perf_counter() - started:.1f} s")
    server, base = serve(url)
    try:
        for year in (2018, 2024):
            started = time.perf_counter()
            httpx.get(f"{base}/review/{year}", timeout=300).raise_for_status()
            print(f"  review {year}: first computation {time.perf_counter() - started:.2f} s (kept until a load)")
        print(f"  {'page':<12} {'URLs':<8} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}"
              "  target p95")
        for name, (urls, requests, target, distinct_urls) in PAGES.items():
            for kind, asked, count in (("distinct", distinct_urls, len(distinct_urls)), ("repeated", urls, requests)):
                started = time.perf_counter()
                seconds = hammer(base, asked, count)
                wall = time.perf_counter() - started
                p95 = percentile(seconds, 0.95)
                print(f"  {name:<12} {kind:<8} {len(seconds):>8} {percentile(seconds, 0.50) * 1000:>8.1f}"
                      f" {p95 * 1000:>8.1f} {percentile(seconds, 0.99) * 1000:>8.1f} {len(seconds) / wall:>7.0f}  "
                      f"{'met' if p95 <= target else 'MISSED'} (<= {target * 1000:.0f} ms)")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    postgres_url = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("HHKB_BENCH_POSTGRES_URL")
    print(f"{CLIENTS} concurrent clients on 127.0.0.1, one uvicorn worker; Python {sys.version.split()[0]}")
    bench("sqlite", None)
    if postgres_url:
        bench("postgresql", postgres_url)
    else:
        print("postgresql: skipped (no HHKB_BENCH_POSTGRES_URL; .ci/bench starts a server)")


if __name__ == "__main__":
    main()
