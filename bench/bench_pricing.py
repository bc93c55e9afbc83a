"""Measure the period pricer: claims priced a second, with and without attribution.

Run: .venv/bin/python bench/bench_pricing.py [number of claims]
Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from kb.pricing import ClaimLine, PeriodClaim, PricingParameters, attribute_change, price_period

HHPPS = Path(__file__).resolve().parents[1].parent / "shared" / "cms" / "hhpps"
HCPCS = {"0420": "G0151", "0430": "G0152", "0440": "G0153", "0550": "G0299", "0560": "G0155",
         "0570": "G0156"}  # fmt: skip
# CY2023 and CY2024 rule constants (DOMAIN.md section 3).
YEARS = {
    2023: ("2010.69", "1972.02", "0.761", "0.35"),
    2024: ("2038.13", "1998.56", "0.749", "0.27"),
}


def read_csv(name: str) -> list[dict[str, str]]:
    with open(HHPPS / name, newline="") as handle:
        return list(csv.DictReader(handle))


def parameters_by_hipps(year: int) -> dict[str, PricingParameters]:
    rate, rate_without_quality, labor_share, fdl_ratio = YEARS[year]
    rev = {row["code"]: row for row in read_csv(f"rev-{year}.csv")}
    base = PricingParameters(
        case_mix_weight=Decimal(1),
        lupa_threshold=0,
        thirty_day_rate=Decimal(rate),
        thirty_day_rate_without_quality_data=Decimal(rate_without_quality),
        labor_share=Decimal(labor_share),
        fdl_ratio=Decimal(fdl_ratio),
        loss_sharing_ratio=Decimal("0.80"),
        per_visit_rates={code: Decimal(row["nonruralDollarRate"]) for code, row in rev.items()},
        per_unit_rates={code: Decimal(row["nonruralUnitDollarRate"]) for code, row in rev.items()},
        lupa_add_on_factors={"0550": Decimal("1.8451"), "0420": Decimal("1.6700"),
                             "0430": Decimal("1.6700"), "0440": Decimal("1.6266")},
        rural_add_on_factors=None,
        late_noa_grace_days=5,
        outlier_cap_ratio=Decimal("0.10"),
    )  # fmt: skip
    return {
        row["code"]: dataclasses.replace(
            base, case_mix_weight=Decimal(row["weight"]), lupa_threshold=int(row["threshold"])
        )
        for row in read_csv(f"hrg-{year}.csv")
    }


def random_claim(number: int, hipps: str, rng: random.Random) -> PeriodClaim:
    from_date = date(2024, 1, 1) + timedelta(days=rng.randrange(300))
    lines = tuple(
        ClaimLine(code, HCPCS[code], rng.randint(2, 12), from_date + timedelta(rng.randrange(30)))
        for code in rng.choices(list(HCPCS), k=rng.randint(1, 20))
    )
    return PeriodClaim(
        claim_id=f"B{number}",
        type_of_bill="0329",
        from_date=from_date,
        through_date=from_date + timedelta(days=29),
        admission_date=from_date - timedelta(days=rng.choice((0, 30))),
        hipps=hipps,
        wage_index=Decimal(rng.randint(6000, 16000)) / 10000,
        rural_add_on_category=None,
        quality_data_submitted=rng.random() < 0.95,
        condition_codes=(),
        patient_status=rng.choice(("01", "01", "01", "06")),
        lines=lines,
        days_until_noa_received=rng.choice((0, 0, 0, 8)),
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rng = random.Random(2024)
    before, after = parameters_by_hipps(2023), parameters_by_hipps(2024)
    hipps_codes = sorted(set(before) & set(after))
    claims = [random_claim(n, rng.choice(hipps_codes), rng) for n in range(count)]

    started = time.perf_counter()
    results = [price_period(claim, after[claim.hipps]) for claim in claims]
    priced = time.perf_counter() - started
    lupa = sum(result.lupa for result in results)
    outliers = sum(result.outlier_amount > 0 for result in results)
    print(f"priced {count} claims in {priced:.2f} s ({count / priced:,.0f} claims/s); "
          f"{lupa} LUPA, {outliers} with an outlier")  # fmt: skip

    sample = claims[: max(1, count // 10)]
    started = time.perf_counter()
    for claim in sample:
        attribute_change(claim, before[claim.hipps], after[claim.hipps])
    attributed = time.perf_counter() - started
    print(f"attributed {len(sample)} claims 2023 -> 2024 in {attributed:.2f} s "
          f"({len(sample) / attributed:,.0f} claims/s)")  # fmt: skip


if __name__ == "__main__":
    main()
