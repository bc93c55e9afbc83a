"""Benchmark: ingest generated 837I claims into SQLite and PostgreSQL, then the CY2023 -> CY2024
impact over them.

Prints figures, never passes or fails. Each database runs in a fresh child process, so that its
peak resident memory is the ingest's and the impact's alone, not the generator's. PostgreSQL runs
when HHKB_BENCH_POSTGRES_URL names a server (a scratch database is created there and dropped).

    .venv/bin/python bench/bench_impact.py                  # 100,000 claims
    .venv/bin/python bench/bench_impact.py --claims 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_ingest_837i import AGENCIES, lupa_thresholds, peak_resident_kb  # noqa: E402

HHPPS = ROOT.parent / "shared" / "cms" / "hhpps"
TABLES = [HHPPS / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index") for year in (2023, 2024)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000, help="number of claims (default 100000)")
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--run", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.run:
        print(json.dumps(run(*arguments.run)))
        return

    from kb.sample_agency import AgencyProfile, generate_sample, synthetic_npi
    from loaders.x12_837i import write_837i

    started = time.perf_counter()
    thresholds = lupa_thresholds(arguments.year)
    claims, member_ids = [], {}
    for agency in range(AGENCIES):
        periods = arguments.claims // AGENCIES + (1 if agency < arguments.claims % AGENCIES else 0)
        profile = AgencyProfile(agency_id=synthetic_npi(1000 + agency), state="OH", cbsa="17140",
                                fips_county="39061", periods=periods, review_choice_option=1)
        sample = generate_sample(profile, year=arguments.year, seed=arguments.seed, lupa_thresholds=thresholds)
        claims.extend(sample.claims)
        member_ids.update(sample.member_ids)
    lines = sum(len(claim.lines) for claim in claims)
    print(f"generated {len(claims):,} claims, {lines:,} lines, {AGENCIES} agencies in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / "bench.837i"
        with open(target, "w", encoding="ascii", newline="") as stream:
            write_837i(claims, stream, member_ids=member_ids)
        del claims, member_ids
        print(f"837I file {target.stat().st_size / 1e6:,.1f} MB")
        backends = [("SQLite", f"sqlite:///{directory}/bench.sqlite3")]
        postgres = os.environ.get("HHKB_BENCH_POSTGRES_URL")
        if postgres:
            backends.append(("PostgreSQL", postgres))
        else:
            print("note: HHKB_BENCH_POSTGRES_URL is not set; PostgreSQL skipped")
        for name, url in backends:
            child = subprocess.run([sys.executable, __file__, "--run", url, str(target)], check=True,
                                   capture_output=True, text=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"{name}:")
            print(f"  ingest             {result['ingest_seconds']:>9.2f} s  ({result['claims']:,} claims, "
                  f"{result['claims'] / result['ingest_seconds']:,.0f} claims/s)")
            print(f"  impact 2023->2024  {result['impact_seconds']:>9.2f} s  ({result['priced']:,} priced, "
                  f"{result['unpriced']:,} not priced, {result['alone']:,} priced alone, {result['classes']:,} classes)")
            print(f"  difference         {result['difference']:>12}  (before the outlier cap; cap line {result['cap_line']})")
            print(f"  peak memory        {result['peak_mb']:>9.1f} MB (peak resident set of the child process)")


def run(url: str, file: str) -> dict:
    """Ingest ``file`` into a fresh database at ``url`` and run the impact (in this process)."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from kb import database, ingest
    from kb.claims import load_claims_files
    from kb.impact import impact
    from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY
    from regulations.catalogue import load_catalogue

    admin = None
    if url.startswith("postgresql"):
        admin = database.make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        name = f"hhkb_bench_{os.getpid()}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = database.open_database(url)
        ingest.load_files(engine, TABLES)
        started = time.perf_counter()
        report = load_claims_files(engine, [file], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with Session(engine) as session:
            result = impact(session, load_catalogue(), from_year=2023, to_year=2024)
        impact_seconds = time.perf_counter() - started
        engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {
        "ingest_seconds": ingest_seconds, "impact_seconds": impact_seconds,
        "claims": report.files[0].summary.records, "priced": len(result.claims), "unpriced": len(result.unpriced),
        "alone": result.priced_alone, "classes": result.pricing_classes, "difference": str(result.totals.difference),
        "cap_line": str(result.totals.cap_line), "peak_mb": peak_resident_kb() / 1024,
    }


if __name__ == "__main__":
    main()
