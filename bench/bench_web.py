"""The web app under 20 concurrent clients: latency of the code page, search and the review page.

Run from the checkout: ``.venv/bin/python bench/bench_web.py [POSTGRES_URL]``. Loads all of
``../shared/cms`` into a fresh SQLite file (and, when a PostgreSQL URL is given or
HHKB_BENCH_POSTGRES_URL is set, into a fresh PostgreSQL database), starts ``hhkb serve`` in its
own process on a free port of 127.0.0.1, and sends a bounded number of requests per page from 20
client threads, each with its own connection. Prints p50/p95/p99 per page against the targets
(code page and search 50 ms, review page 300 ms at p95); the review's first computation for a
year is timed apart (the app keeps it until the loaded files change). Never passes or fails.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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
PAGES = {
    # page: (URLs cycled through, requests, p95 target in seconds)
    "code page": ([f"/codes/{code}?as_of=2019-06-01" for code in CODES], 1000, 0.050),
    "search": ([f"/search?q={text.replace(' ', '+')}" for text in SEARCHES], 1000, 0.050),
    "review page": (["/review/2024", "/review/2024?change_type=weight_changed&page=2", "/review/2018?watched=true",
                     "/review/2018?change_type=discontinued"], 200, 0.300),
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


def hammer(base: str, urls: list[str], requests: int) -> list[float]:
    """``requests`` GETs over ``CLIENTS`` threads; the seconds each took."""
    seconds: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        with httpx.Client(base_url=base, timeout=60) as session:
            for number in counter:
                started = time.perf_counter()
                response = session.get(urls[number % len(urls)])
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                with lock:
                    seconds.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds


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
        print(f"  {'page':<12} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}  target p95")
        for name, (urls, requests, target) in PAGES.items():
            started = time.perf_counter()
            seconds = hammer(base, urls, requests)
            wall = time.perf_counter() - started
            p95 = percentile(seconds, 0.95)
            print(f"  {name:<12} {len(seconds):>8} {percentile(seconds, 0.50) * 1000:>8.1f} {p95 * 1000:>8.1f}"
                  f" {percentile(seconds, 0.99) * 1000:>8.1f} {len(seconds) / wall:>7.0f}  "
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
