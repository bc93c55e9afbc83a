"""Benchmark: the annual review joined to claims (HCPCS, HH PPS and billing rules) on SQLite.

Generates claims of 2023, loads HCPCS 2020 JUL and 2023 and the CY2022-CY2024 pricer tables, then
times ``kb.review_claims.join_claims`` for the 2023 review over every stored claim, and the review
report built from it (JSON). Prints figures, never passes or fails.

    .venv/bin/python bench/bench_review_claims.py                  # 100,000 claims
    .venv/bin/python bench/bench_review_claims.py --claims 20000
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
    arguments = parser.parse_args()

    from sqlmodel import Session

    from kb import database, ingest
    from kb.claims import load_claims_files
    from kb.review import annual_review
    from kb.review_claims import join_claims
    from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi
    from kb.store import catalogue_of
    from loaders.x12_837i import write_837i
    from reports.changes import build_change_report, render_json

    thresholds = lupa_thresholds(arguments.year - 1)
    claims, member_ids = [], {}
    for agency in range(AGENCIES):
        periods = arguments.claims // AGENCIES + (1 if agency < arguments.claims % AGENCIES else 0)
        profile = AgencyProfile(agency_id=synthetic_npi(1000 + agency), state="OH", cbsa="17140",
                                fips_county="39061", periods=periods)
        sample = generate_sample(profile, year=arguments.year, seed=2024, lupa_thresholds=thresholds)
        claims.extend(sample.claims)
        member_ids.update(sample.member_ids)
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / "bench.837i"
        with open(target, "w", encoding="ascii", newline="") as stream:
            write_837i(claims, stream, member_ids=member_ids)
        count = len(claims)
        del claims, member_ids
        engine = database.open_database(f"sqlite:///{directory}/bench.sqlite3")
        files = [*sorted((SHARED / "hcpcs" / "2020-07").iterdir()), *sorted((SHARED / "hcpcs" / "2023-01").iterdir()),
                 *(SHARED / "hhpps" / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index")
                   for year in (arguments.year - 1, arguments.year))]
        ingest.load_files(engine, files)
        load_claims_files(engine, [target], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
        started = time.perf_counter()
        with Session(engine) as session:
            catalogue = catalogue_of(session)
            review = annual_review(session, catalogue, arguments.year)
            reviewed = time.perf_counter()
            join = join_claims(session, catalogue, arguments.year, review.changes, agencies=None)
        joined = time.perf_counter()
        report = build_change_report(review.changes, title="bench", join=join)
        rendered = len(render_json(report))
        done = time.perf_counter()
        engine.dispose()
    touched = sum(1 for touch in join.touches.values() if touch.count)
    print(f"SQLite, {count:,} claims, review {arguments.year}: {len(review.changes):,} changes, {touched:,} touch claims, "
          f"{len(join.rule_touches)} billing rules")
    print(f"  review (diffs)        {reviewed - started:>8.2f} s")
    print(f"  joined to claims      {joined - reviewed:>8.2f} s  (HCPCS lines, HH PPS impact, billing rules)")
    print(f"  report (JSON)         {done - joined:>8.2f} s  ({rendered / 1e6:,.1f} MB)")
    print(f"  total                 {done - started:>8.2f} s")
    print(f"  peak memory           {peak_resident_kb() / 1024:>8.1f} MB")


if __name__ == "__main__":
    main()
