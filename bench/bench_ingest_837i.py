"""Benchmark: generate synthetic 837I claims to a temporary file, then time the pure parse.

Prints figures, never passes or fails. The parse runs in a fresh child process so that its peak
resident memory is the reader's alone, not the generator's.

    .venv/bin/python bench/bench_ingest_837i.py                 # 100,000 claims
    .venv/bin/python bench/bench_ingest_837i.py --claims 20000 --keep /tmp/sample.837i
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi  # noqa: E402
from loaders.claim_record import Claim  # noqa: E402
from loaders.x12_837i import read_837i, write_837i  # noqa: E402

HRG_TABLE = ROOT.parent / "shared" / "cms" / "hhpps" / "hrg-{year}.csv"
AGENCIES = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000, help="number of claims (default 100000)")
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--keep", type=Path, help="write the 837I here and keep it")
    parser.add_argument("--parse-only", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.parse_only:
        print(json.dumps(parse(arguments.parse_only)))
        return

    started = time.perf_counter()
    thresholds = lupa_thresholds(arguments.year)
    claims: list[Claim] = []
    member_ids: dict[str, str] = {}
    for agency in range(AGENCIES):
        periods = arguments.claims // AGENCIES + (1 if agency < arguments.claims % AGENCIES else 0)
        profile = AgencyProfile(
            agency_id=synthetic_npi(1000 + agency), state="OH", cbsa="17140", fips_county="39061", periods=periods,
            review_choice_option=1,
        )
        sample = generate_sample(profile, year=arguments.year, seed=arguments.seed, lupa_thresholds=thresholds)
        claims.extend(sample.claims)
        member_ids.update(sample.member_ids)
    generated = time.perf_counter() - started
    line_count = sum(len(claim.lines) for claim in claims)

    with tempfile.TemporaryDirectory() as directory:
        target = arguments.keep or Path(directory) / "bench.837i"
        started = time.perf_counter()
        with open(target, "w", encoding="ascii", newline="") as stream:
            write_837i(claims, stream, member_ids=member_ids)
        written = time.perf_counter() - started
        size = target.stat().st_size
        del claims, member_ids
        child = subprocess.run(
            [sys.executable, __file__, "--parse-only", str(target)], check=True, capture_output=True, text=True
        )
        result = json.loads(child.stdout)

    print(f"claims generated     {result['claims']:>12,} ({line_count:,} lines, {AGENCIES} agencies)")
    print(f"generate             {generated:>12.2f} s")
    print(f"write 837I           {written:>12.2f} s  ({size / 1e6:,.1f} MB, {result['segments']:,} segments)")
    print(f"parse 837I           {result['seconds']:>12.2f} s")
    print(f"parse rate           {result['claims'] / result['seconds']:>12,.0f} claims/s")
    print(f"problems             {result['problems']:>12,}")
    print(f"parse peak memory    {result['peak_mb']:>12.1f} MB (peak resident set of the parsing process)")


def parse(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    claims = problems = lines = 0
    for result in read_837i(path, beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY):
        if isinstance(result, Claim):
            claims += 1
            lines += len(result.lines)
        else:
            problems += 1
    seconds = time.perf_counter() - started
    with open(path, encoding="ascii") as stream:
        segments = sum(text.count("~") for text in iter(lambda: stream.read(1 << 20), ""))
    return {
        "seconds": seconds, "claims": claims, "lines": lines, "problems": problems, "segments": segments,
        "peak_mb": peak_resident_kb() / 1024,
    }


def peak_resident_kb() -> int:
    """Peak resident memory of this process image. On Linux ru_maxrss survives exec and would
    report the parent's peak, so read VmHWM, which begins afresh with the new image."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def lupa_thresholds(year: int) -> dict[str, int]:
    table = Path(str(HRG_TABLE).format(year=year))
    if not table.exists():
        return {}
    with open(table, newline="") as stream:
        return {row["code"]: int(row["threshold"]) for row in csv.DictReader(stream)}


if __name__ == "__main__":
    main()
