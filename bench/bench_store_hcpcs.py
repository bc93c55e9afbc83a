"""Parse-and-store of each real annual HCPCS release: seconds, records/s, peak memory.

Run from the checkout: ``.venv/bin/python bench/bench_store_hcpcs.py [POSTGRES_URL]``. Each run
loads 2017, 2018 and 2019 in order into a fresh SQLite file (and, when a PostgreSQL URL is given or
HHKB_BENCH_POSTGRES_URL is set, into a fresh PostgreSQL database), timing ``read_hcpcs`` plus
``store_hcpcs_release`` in one transaction per release; the best of several runs is printed.
Peak memory is traced (tracemalloc) on a separate run. Prints figures; never passes or fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from kb import database  # noqa: E402
from kb.database import transaction  # noqa: E402
from kb.store import FileIdentity, store_hcpcs_release  # noqa: E402
from loaders.hcpcs import read_hcpcs  # noqa: E402

HCPCS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "cms" / "hcpcs"
YEARS = (2017, 2018, 2019)
RUNS = 5


def fresh_url(backend: str, postgres_url: str | None, run: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='hhkb-bench-')}/bench.sqlite3"
    admin = database.make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"hhkb_bench_{os.getpid()}_{run}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def load_all(url: str) -> dict[int, tuple[int, float]]:
    engine = database.open_database(url)
    times = {}
    for year in YEARS:
        path = HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip"
        identity = FileIdentity.of(path)
        started = time.perf_counter()
        release = read_hcpcs(path)
        with transaction(engine) as session:
            store_hcpcs_release(session, release, identity)
        times[year] = (len(release.records), time.perf_counter() - started)
    engine.dispose()
    return times


def main() -> None:
    postgres_url = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("HHKB_BENCH_POSTGRES_URL")
    backends = ["sqlite"] + (["postgresql"] if postgres_url else [])
    print(f"{'backend':<11} {'release':<8} {'records':>8} {'best s':>8} {'records/s':>10} {'peak MB':>8}")
    for backend in backends:
        best: dict[int, float] = {}
        records: dict[int, int] = {}
        for run in range(RUNS):
            for year, (count, seconds) in load_all(fresh_url(backend, postgres_url, run)).items():
                best[year] = min(best.get(year, float("inf")), seconds)
                records[year] = count
        tracemalloc.start()
        peaks = {}
        engine_url = fresh_url(backend, postgres_url, RUNS)
        engine = database.open_database(engine_url)
        for year in YEARS:
            path = HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip"
            tracemalloc.reset_peak()
            release = read_hcpcs(path)
            with transaction(engine) as session:
                store_hcpcs_release(session, release, FileIdentity.of(path))
            del release
            peaks[year] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        engine.dispose()
        for year in YEARS:
            print(f"{backend:<11} {year:<8} {records[year]:>8,} {best[year]:>8.3f} "
                  f"{records[year] / best[year]:>10,.0f} {peaks[year] / 1e6:>8.1f}")
    if not postgres_url:
        print("PostgreSQL: not measured (pass a URL or set HHKB_BENCH_POSTGRES_URL)")


if __name__ == "__main__":
    main()
