"""Backfill: loading the HCPCS releases newest-first against loading them in publication order.

Run from the checkout: ``.venv/bin/python bench/bench_backfill.py [POSTGRES_URL]``. Each run loads
the files into a fresh SQLite file (and, when a PostgreSQL URL is given or HHKB_BENCH_POSTGRES_URL
is set, into a fresh PostgreSQL database) with one ``kb.ingest.load_files`` call per file, as one
``hhkb load FILE`` each: open the knowledge base, recognise, parse, store. Newest-first makes every
load after the first slot its file in before the stored ones, which re-applies them in the same
transaction. Two sets: the six releases (2017, 2018, 2019 annual, 2020-04, 2020-07, 2023-01), and
the same with the 2017-2019 corrections zips. Prints the median seconds of several runs with the
minimum and maximum, and the ratio of the medians; never passes or fails.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from kb import database  # noqa: E402
from kb.ingest import load_files  # noqa: E402

HCPCS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "cms" / "hcpcs"
RELEASES = [HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip" for year in (2017, 2018, 2019)] + [
    HCPCS_DIR / "2020-04" / "anweb.xlsx", HCPCS_DIR / "2020-07" / "anweb.xlsx",
    HCPCS_DIR / "2023-01" / "HCPC2023_JAN_ANWEB_v3.xlsx",
]
CORRECTIONS = [HCPCS_DIR / f"{year}-HCPCS-Alpha-Numeric-Corrections.zip" for year in (2017, 2018, 2019)]
#: Publication order: each year's corrections after its release.
WITH_CORRECTIONS = [RELEASES[0], CORRECTIONS[0], RELEASES[1], CORRECTIONS[1], RELEASES[2], CORRECTIONS[2]] + RELEASES[3:]
RUNS = 3

_runs = iter(range(10**6))


def fresh_url(backend: str, postgres_url: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='hhkb-bench-')}/bench.sqlite3"
    admin = database.make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"hhkb_bench_backfill_{os.getpid()}_{next(_runs)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin.url.set(database=name).render_as_string(hide_password=False)


def load_one_by_one(url: str, paths: list[Path]) -> float:
    database.open_database(url).dispose()  # the schema, made before the clock starts
    started = time.perf_counter()
    for path in paths:
        engine = database.open_database(url)
        load_files(engine, [path])
        engine.dispose()
    return time.perf_counter() - started


def main() -> None:
    postgres_url = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("HHKB_BENCH_POSTGRES_URL")
    backends = ["sqlite"] + (["postgresql"] if postgres_url else [])
    print(f"{'backend':<11} {'files':<22} {'order':<14} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>6}")
    for backend in backends:
        for label, paths in (("6 releases", RELEASES), ("6 releases + 7 corr.", WITH_CORRECTIONS)):
            medians = {}
            for order, ordered in (("in order", paths), ("newest first", paths[::-1])):
                seconds = [load_one_by_one(fresh_url(backend, postgres_url), ordered) for _ in range(RUNS)]
                medians[order] = statistics.median(seconds)
                ratio = f"{medians[order] / medians['in order']:>6.2f}"
                print(f"{backend:<11} {label:<22} {order:<14} {medians[order]:>9.2f} {min(seconds):>7.2f} "
                      f"{max(seconds):>7.2f} {ratio}")
    if not postgres_url:
        print("PostgreSQL: not measured (pass a URL or set HHKB_BENCH_POSTGRES_URL)")


if __name__ == "__main__":
    main()
