"""Measure checking claims against the billing rules: generated claims a second, with the rules'
knowledge held in memory (built from the CMS files) and preloaded from a SQLite knowledge base
loaded with the real CMS files.

Run: .venv/bin/python bench/bench_check.py [number of claims]   (default 100,000)
Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlmodel import Session

from kb import database, ingest
from kb.rules import DatabaseKnowledge, MemoryKnowledge, check_claims, codes_of
from kb.sample_agency import AgencyProfile, generate_claims, synthetic_npi
from loaders.hcpcs import read_hcpcs
from loaders.hhpps import read_hhpps_folder
from regulations.rules import load_rules

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "cms"
HCPCS_FILES = [
    SHARED / "hcpcs" / "2017-Alpha-Numeric-HCPCS-File.zip",
    SHARED / "hcpcs" / "2018-Alpha-Numeric-HCPCS-File.zip",
    SHARED / "hcpcs" / "2019-Alpha-Numeric-HCPCS-File.zip",
    SHARED / "hcpcs" / "2020-04" / "anweb.xlsx",
    SHARED / "hcpcs" / "2020-07" / "anweb.xlsx",
]
HHPPS = SHARED / "hhpps"
YEARS = (2020, 2021, 2022, 2023, 2024)
# (state, CBSA, county): a Review Choice state with pre-claim review, a rural area, a large city.
PLACES = (("IL", "99914", "17001", 1), ("OH", "99936", "39001", 1), ("NY", "35614", "36061", None),
          ("TX", "26420", "48201", 1), ("CA", "31084", "06037", None))  # fmt: skip


def generate(count: int, tables) -> list:
    claims = []
    per_year = -(-count // len(YEARS))
    for serial, year in enumerate(YEARS):
        thresholds = {row.hipps: row.lupa_threshold for t in tables if t.kind == "hrg" and t.year == year for row in t.rows}
        state, cbsa, county, option = PLACES[serial % len(PLACES)]
        profile = AgencyProfile(agency_id=synthetic_npi(serial + 1), state=state, cbsa=cbsa, fips_county=county,
                                periods=min(per_year, count - len(claims)), review_choice_option=option)
        claims.extend(generate_claims(profile, year=year, seed=2024, lupa_thresholds=thresholds))
    return claims


def memory_knowledge(tables) -> MemoryKnowledge:
    """HCPCS intervals from the latest annual file (added date to termination), tables from the CSVs."""
    release = read_hcpcs(HCPCS_FILES[2])
    spans = {
        record.code: [(record.added_date or date.min,
                       record.termination_date + timedelta(days=1) if record.termination_date else None)]
        for record in release.records
    }
    return MemoryKnowledge.from_hhpps_tables(tables, hcpcs=spans)


def run(label: str, claims, rules, knowledge) -> None:
    started = time.perf_counter()
    findings = list(check_claims(claims, rules, knowledge))
    seconds = time.perf_counter() - started
    lines = sum(len(claim.lines) for claim in claims)
    print(f"{label}: checked {len(claims):,} claims ({lines:,} lines) against {len(rules)} rules in {seconds:.2f} s "
          f"({len(claims) / seconds:,.0f} claims/s); {len(findings):,} findings")  # fmt: skip
    for (rule_id, severity), number in sorted(Counter((f.rule_id, f.severity) for f in findings).items()):
        print(f"    {number:>8,}  {severity:<7}  {rule_id}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rules = load_rules()
    tables = read_hhpps_folder(HHPPS)

    started = time.perf_counter()
    claims = generate(count, tables)
    print(f"generated {len(claims):,} claims for {len(YEARS)} agencies, CY{YEARS[0]}-CY{YEARS[-1]}, "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

    run("in memory", claims, rules, memory_knowledge(tables))

    with tempfile.TemporaryDirectory() as folder:
        engine = database.open_database(f"sqlite:///{folder}/hhkb.sqlite3")
        started = time.perf_counter()
        report = ingest.load_files(engine, [*HCPCS_FILES, HHPPS])
        print(f"loaded {len(report.stored)} CMS files into SQLite in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        with Session(engine) as session:
            knowledge = DatabaseKnowledge.preload(session, codes=codes_of(claims))
        print(f"preloaded the rules' knowledge in {knowledge.queries} queries, {time.perf_counter() - started:.3f} s")
        run("SQLite knowledge base", claims, rules, knowledge)
        engine.dispose()


if __name__ == "__main__":
    main()
