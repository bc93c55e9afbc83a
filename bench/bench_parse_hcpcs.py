"""Time the HCPCS reader on each annual release zip: parse seconds, records per second, peak memory.

Run from the checkout: ``.venv/bin/python bench/bench_parse_hcpcs.py``. Prints figures; never
passes or fails on time. A parse is the whole ``read_hcpcs`` of the zip: read from disk, expand the
ANWEB txt, read the README, build the records. Its time is the best of several runs, as wall-clock
seconds and as CPU seconds of this process (less disturbed by other work on the machine); records/s
is from the wall-clock time. Peak memory is measured by tracemalloc on a separate run, because
tracing slows Python down.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loaders.hcpcs import read_hcpcs  # noqa: E402

HCPCS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "cms" / "hcpcs"
RUNS = 9


def measure(path: Path) -> tuple[int, float, float, int]:
    """(records, best wall seconds, best CPU seconds, peak traced bytes) for one release file."""
    best = best_cpu = float("inf")
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        release = read_hcpcs(path)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - started_cpu)
    tracemalloc.start()
    read_hcpcs(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(release.records), best, best_cpu, peak


def main() -> None:
    archives = sorted(HCPCS_DIR.glob("*-Alpha-Numeric-HCPCS-File.zip"))
    print(f"{'release zip':<36} {'member':<30} {'records':>7} {'parse s':>8} {'cpu s':>7} {'records/s':>10} {'peak MB':>8}")
    for archive in archives:
        release = read_hcpcs(archive)
        records, seconds, cpu_seconds, peak = measure(archive)
        print(
            f"{archive.name:<36} {release.member:<30} {records:>7,} {seconds:>8.3f} {cpu_seconds:>7.3f}"
            f" {records / seconds:>10,.0f} {peak / 2**20:>8.1f}"
        )


if __name__ == "__main__":
    main()
