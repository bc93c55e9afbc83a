"""Time the HCPCS reader on each annual release zip: parse seconds, records per second, peak memory.

Run from the checkout: ``.venv/bin/python bench/bench_parse_hcpcs.py``. Prints figures; never
passes or fails on time. Parse time is the best of several runs (the zip is read from disk and
expanded each time); peak memory is measured by tracemalloc on a separate run, because tracing
slows Python down.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loaders.hcpcs import read_hcpcs  # noqa: E402

HCPCS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "cms" / "hcpcs"
RUNS = 7


def measure(path: Path) -> tuple[int, float, int]:
    """(records, best parse seconds, peak traced bytes) for one release file."""
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        release = read_hcpcs(path)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    read_hcpcs(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(release.records), best, peak


def main() -> None:
    archives = sorted(HCPCS_DIR.glob("*-Alpha-Numeric-HCPCS-File.zip"))
    print(f"{'release zip':<40} {'member':<32} {'records':>8} {'parse s':>8} {'records/s':>10} {'peak MB':>8}")
    for archive in archives:
        release = read_hcpcs(archive)
        records, seconds, peak = measure(archive)
        print(
            f"{archive.name:<40} {release.member:<32} {records:>8,} {seconds:>8.3f}"
            f" {records / seconds:>10,.0f} {peak / 2**20:>8.1f}"
        )


if __name__ == "__main__":
    main()
