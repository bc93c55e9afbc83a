"""Benchmark: the annual review joined to claims (HCPCS, HH PPS and billing rules) on SQLite.

Generates claims of 2023, loads HCPCS 2020 JUL and 2023 and the CY2022-CY2023 pricer tables, then
times ``kb.review_claims.join_claims`` for the 2023 review over every stored claim, and the review
report built from it (JSON and HTML). Prints wall-clock and CPU seconds, never passes or fails.

    .venv/bin/python bench/bench_review_claims.py                  # 100,000 claims
    .venv/bin/python bench/bench_review_claims.py --claims 20000
    .venv/bin/python bench/bench_review_claims.py --database /tmp/review-100k.sqlite3   # kept: run again

``--database``: the SQLite file to build (kept afterwards), or to time again when it exists.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_ingest_837i import AGENCIES, lupa_thresholds, peak_resident_kb  # noqa: E402

SHARED = ROOT.parent / "shared" / "cms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--database", type=Path, help="SQLite file to build and keep, or to reuse when it exists")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        database_file = arguments.database or Path(directory) / "bench.sqlite3"
        if not database_file.exists():
            build(database_file, arguments.claims, arguments.year)
        measure(database_file, arguments.year)


def build(database_file: Path, claims_wanted: int, year: int) -> None:
    """The bench database: claims of ``year`` from the sample generator, HCPCS and pricer tables."""

    from kb import database, ingest
    from kb.claims import load_claims_files
    from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi
    from loaders.x12_837i import write_837i

    thresholds = lupa_thresholds(year - 1)
    claims, member_ids = [], {}
    for agency in range(AGENCIES):
        periods = claims_wanted // AGENCIES + (1 if agency < claims_wanted % AGENCIES else 0)
        profile = AgencyProfile(agency_id=synthetic_npi(1000 + agency), state="OH", cbsa="17140",
                                fips_county="39061", periods=periods)
        sample = generate_sample(profile, year=year, seed=2024, lupa_thresholds=thresholds)
        claims.extend(sample.claims)
        member_ids.update(sample.member_ids)
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / "bench.837i"
        with open(target, "w", encoding="ascii", newline="") as stream:
            write_837i(claims, stream, member_ids=member_ids)
        del claims, member_ids
        engine = database.open_database(f"sqlite:///{database_file}")
        files = [*sorted((SHARED / "hcpcs" / "2020-07").iterdir()), *sorted((SHARED / "hcpcs" / "2023-01").iterdir()),
                 *(SHARED / "hhpps" / f"{kind}-{table_year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index")
                   for table_year in (year - 1, year))]
        ingest.load_files(engine, files)
        load_claims_files(engine, [target], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
        engine.dispose()


def measure(database_file: Path, year: int) -> None:
    import sqlalchemy as sa
    from sqlmodel import Session

    from kb import database
    from kb.models import AgencyClaim
    from kb.review import annual_review
    from kb.review_claims import join_claims
    from kb.store import catalogue_of
    from reports.changes import build_change_report, render_html, render_json

    engine = database.open_database(f"sqlite:///{database_file}")
    clock = [(time.perf_counter(), time.process_time())]

    def lap() -> str:
        clock.append((time.perf_counter(), time.process_time()))
        (wall_before, cpu_before), (wall, cpu) = clock[-2:]
        return f"{wall - wall_before:>8.2f} s  ({cpu - cpu_before:.2f} s CPU)"

    with Session(engine) as session:
        count = session.execute(sa.select(sa.func.count()).select_from(AgencyClaim)).scalar_one()
        clock[0] = (time.perf_counter(), time.process_time())
        catalogue = catalogue_of(session)
        review = annual_review(session, catalogue, year)
        reviewed = lap()
        join = join_claims(session, catalogue, year, review.changes, agencies=None)
        joined = lap()
    report = build_change_report(review.changes, title="bench", join=join)
    json_size = len(render_json(report))
    json_done = lap()
    html_size = len(render_html(report))
    html_done = lap()
    engine.dispose()
    (wall_start, cpu_start), (wall_end, cpu_end) = clock[0], clock[-1]
    touched = sum(1 for touch in join.touches.values() if touch.count)
    print(f"SQLite, {count:,} claims, review {year}: {len(review.changes):,} changes, {touched:,} touch claims, "
          f"{len(join.rule_touches)} billing rules")
    print(f"  review (diffs)        {reviewed}")
    print(f"  joined to claims      {joined}  (HCPCS lines, HH PPS impact, billing rules)")
    print(f"  report (JSON)         {json_done}  ({json_size / 1e6:,.1f} MB)")
    print(f"  report (HTML)         {html_done}  ({html_size / 1e6:,.1f} MB)")
    print(f"  total                 {wall_end - wall_start:>8.2f} s  ({cpu_end - cpu_start:.2f} s CPU)")
    print(f"  peak memory           {peak_resident_kb() / 1024:>8.1f} MB")


if __name__ == "__main__":
    main()
