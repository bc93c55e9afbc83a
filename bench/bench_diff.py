"""Time the diff engine on two full annual HCPCS releases (parsing excluded), and on the HH PPS tables.

Run from the checkout: ``.venv/bin/python bench/bench_diff.py``. Prints figures; never passes or
fails on time. Each figure is the best and the median of several runs of the pure function over
states already in memory; the target for one HCPCS release pair is under 0.2 s.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kb.diff import Provenance, apply_changes, diff_hcpcs, diff_hhpps, hhpps_state_from_tables  # noqa: E402
from loaders.hcpcs import read_hcpcs  # noqa: E402
from loaders.hhpps import read_hhpps_table, resolve_wage_index  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "cms"
RUNS = 15
TARGET_SECONDS = 0.2


def timed(work: Callable[[], object]) -> tuple[float, float, object]:
    """(best seconds, median seconds, last result) over ``RUNS`` runs."""
    seconds = []
    result = None
    for _ in range(RUNS):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds), result


def hhpps_state(year: int):
    folder = SHARED / "hhpps"
    return hhpps_state_from_tables(
        read_hhpps_table(folder / f"hrg-{year}.csv").rows,
        read_hhpps_table(folder / f"rev-{year}.csv").rows,
        resolve_wage_index(read_hhpps_table(folder / f"cbsa-wage-index-{year}.csv"), "first").values(),
        {},  # the yearly constants come from the rules, not from these tables
    )


def size(state) -> int:
    return len(state.weights) + len(state.wage_index) + len(state.visit_rates) + len(state.unit_rates)


def main() -> None:
    years = (2017, 2018, 2019)
    releases = {year: read_hcpcs(SHARED / "hcpcs" / f"{year}-Alpha-Numeric-HCPCS-File.zip") for year in years}
    print(f"{'comparison':<22} {'old size':>9} {'new size':>9} {'changes':>8} {'best s':>8} {'median s':>9} {'apply s':>8}  target")
    for old_year, new_year in zip(years, years[1:]):
        old, new = releases[old_year], releases[new_year]
        old_state = {r.code: r for r in old.records}
        new_state = {r.code: r for r in new.records}
        old_side = Provenance(old.label, old.effective_date, old.path)
        new_side = Provenance(new.label, new.effective_date, new.path)
        best, median, changes = timed(
            lambda: diff_hcpcs(old_state, new_state, old_provenance=old_side, new_provenance=new_side)
        )
        apply_best, _, _ = timed(lambda: apply_changes(old_state, changes))
        verdict = "met" if best < TARGET_SECONDS else "MISSED"
        print(
            f"HCPCS {old_year}->{new_year:<12} {len(old_state):>9,} {len(new_state):>9,} {len(changes):>8,}"
            f" {best:>8.4f} {median:>9.4f} {apply_best:>8.4f}  {verdict} (< {TARGET_SECONDS} s)"
        )
    for old_year in range(2020, 2024):
        old_state, new_state = hhpps_state(old_year), hhpps_state(old_year + 1)
        old_side = Provenance(f"CY{old_year}", date(old_year, 1, 1), f"hrg/rev/cbsa-wage-index-{old_year}.csv")
        new_side = Provenance(f"CY{old_year + 1}", date(old_year + 1, 1, 1), f"hrg/rev/cbsa-wage-index-{old_year + 1}.csv")
        best, median, changes = timed(
            lambda: diff_hhpps(old_state, new_state, old_provenance=old_side, new_provenance=new_side)
        )
        apply_best, _, _ = timed(lambda: apply_changes(old_state, changes))
        print(
            f"HH PPS {old_year}->{old_year + 1:<11} {size(old_state):>9,} {size(new_state):>9,} {len(changes):>8,}"
            f" {best:>8.4f} {median:>9.4f} {apply_best:>8.4f}"
        )
    print(f"({RUNS} runs each; parsing excluded; sizes: HCPCS codes, HH PPS weights + CBSAs + rates; Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
