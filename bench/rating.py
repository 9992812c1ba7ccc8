"""Benchmark of the rating engine: how many vehicle-periods one core prices per second.

Rates 1,000,000 vehicle-periods (100,000 with --quick) of a 4-charge plan (flat monthly
fee, 3-tier graduated km, per-trip price with a cap, per-started-10-kWh package) for
customers with fleets of 1 to 40 vehicles, one `rate_vehicles` call per customer-period,
as the invoice run does. Usage varies: idle vehicles, tier boundaries, capped trips,
vehicles on the plan for part of the month. Only the rating is timed, building the usage
is not, in CPU time of this process: vehicle-periods per second on one core, whatever
else the machine runs (the wall-clock rate is printed too).

In the same run, each customer-period is also priced by `handwritten_amounts`, the plan
written out by hand with inline Decimal arithmetic and no generality, the limit of what
Python can do for this work: `engine_vs_handwritten` is the engine's rate divided by its
rate (goal at least 0.5). Both must agree to the cent on every line, or the benchmark
fails. The last line printed is one JSON object, for CI.

    .venv/bin/python bench/rating.py [--quick]
"""

import argparse
import random
import resource
import sys
import time
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ratio, report
from billing.pricing.plans import Plan, parse_plan
from billing.pricing.rating import VehicleUsage, rate_vehicles

GOAL_PER_S = 100_000
GOAL_VS_HANDWRITTEN = 0.5
PLAN = {
    "code": "bench",
    "name": "Benchmark",
    "currency": "EUR",
    "vat_rate": "20.00",
    "charges": [
        {"metric": "vehicle_days", "model": "flat", "amount": "19.00"},
        {
            "metric": "distance_km",
            "model": "graduated",
            "included": "50",
            "tiers": [
                {"up_to": "100", "unit_amount": "0"},
                {"up_to": "500", "unit_amount": "0.08", "flat_amount": "1.00"},
                {"up_to": None, "unit_amount": "0.05"},
            ],
        },
        {"metric": "trips", "model": "per_unit", "unit_amount": "0.10", "maximum": "30.00"},
        {
            "metric": "energy_kwh",
            "model": "package",
            "package_size": "10",
            "package_amount": "2.50",
        },
    ],
}


CENT = Decimal("0.01")
ZERO = Decimal(0)
MONTHLY_FEE, KM_INCLUDED, KM_TIER_2_FLAT = Decimal("19.00"), Decimal(50), Decimal("1.00")
KM_TIER_1_UP_TO, KM_TIER_2_UP_TO = Decimal(100), Decimal(500)
KM_TIER_2_RATE, KM_TIER_3_RATE = Decimal("0.08"), Decimal("0.05")
KM_TIER_2_FULL = (KM_TIER_2_UP_TO - KM_TIER_1_UP_TO) * KM_TIER_2_RATE + KM_TIER_2_FLAT
TRIP_PRICE, TRIPS_CAP = Decimal("0.10"), Decimal("30.00")
KWH_PACKAGE, KWH_PACKAGE_PRICE = Decimal(10), Decimal("2.50")


def handwritten_amounts(
    quantities: dict[str, Decimal], days: Decimal, days_in_period: int
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """PLAN's four line amounts for one vehicle-period, by hand: the same rules as the
    engine (docs/plans.md), for this plan only."""
    full_period = days == days_in_period
    fee = MONTHLY_FEE if full_period else MONTHLY_FEE * days / days_in_period
    km = quantities.get("distance_km", ZERO) - KM_INCLUDED
    if km <= KM_TIER_1_UP_TO:
        distance = ZERO
    elif km <= KM_TIER_2_UP_TO:
        distance = (km - KM_TIER_1_UP_TO) * KM_TIER_2_RATE + KM_TIER_2_FLAT
    else:
        distance = KM_TIER_2_FULL + (km - KM_TIER_2_UP_TO) * KM_TIER_3_RATE
    trips = quantities.get("trips", ZERO) * TRIP_PRICE
    cap = TRIPS_CAP if full_period else TRIPS_CAP * days / days_in_period
    if trips > cap:
        trips = cap
    blocks, rest = divmod(quantities.get("energy_kwh", ZERO), KWH_PACKAGE)
    if rest:
        blocks += 1
    return (
        fee.quantize(CENT, ROUND_HALF_UP),
        distance.quantize(CENT, ROUND_HALF_UP),
        trips.quantize(CENT, ROUND_HALF_UP),
        (blocks * KWH_PACKAGE_PRICE).quantize(CENT, ROUND_HALF_UP),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 vehicle-periods")
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    target = 100_000 if args.quick else 1_000_000
    plan = parse_plan(PLAN)
    rng = random.Random(args.seed)
    rated = customers = lines = 0
    billed = Decimal(0)
    cpu = wall = handwritten_cpu = 0.0
    while rated < target:
        fleet, days_in_period = _customer_period(rng, min(rng.randint(1, 40), target - rated))
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        rated_lines = rate_vehicles(plan, fleet, days_in_period)
        cpu += time.process_time() - cpu_started
        wall += time.perf_counter() - wall_started
        cpu_started = time.process_time()
        with localcontext() as context:  # the engine's precision, for a fair comparison
            context.prec = 50
            by_hand = [
                handwritten_amounts(usage.quantities, usage.days_on_plan, days_in_period)
                for usage in fleet
            ]
        handwritten_cpu += time.process_time() - cpu_started
        if [line.amount for line in rated_lines] != [a for amounts in by_hand for a in amounts]:
            raise SystemExit(f"the engine and the handwritten pricing disagree: {fleet}")
        rated += len(fleet)
        customers += 1
        lines += len(rated_lines)
        billed += sum(line.amount for line in rated_lines)
    _report(plan, rated, customers, lines, billed, cpu, wall, handwritten_cpu)


def _customer_period(rng: random.Random, size: int) -> tuple[list[VehicleUsage], int]:
    days_in_period = rng.choice((28, 30, 31, 31))
    return [_vehicle(rng, number, days_in_period) for number in range(size)], days_in_period


def _vehicle(rng: random.Random, number: int, days_in_period: int) -> VehicleUsage:
    if rng.random() < 0.85:
        days = Decimal(days_in_period)
    else:  # assigned or removed mid-period, to the half day
        days = Decimal(rng.randrange(1, days_in_period * 2)) / 2
    vehicle_id = f"MOB-{number:06d}"
    if rng.random() < 0.05:
        return VehicleUsage(vehicle_id, {}, days)  # idle: parked all period
    if rng.random() < 0.05:  # on a bound: all included, end of tier 1, end of tier 2
        km = Decimal(rng.choice((50, 150, 550)))
    else:  # up to 1,500 km a month (a busy delivery scooter), to the metre
        km = Decimal(rng.randrange(0, 1_500_000)).scaleb(-3)
    quantities = {
        "distance_km": km,
        "trips": Decimal(rng.randrange(0, 450)),  # over 300 reaches the 30.00 cap
        "energy_kwh": Decimal(rng.randrange(0, 45_000)).scaleb(-3),  # 3 kWh per 100 km
    }
    return VehicleUsage(vehicle_id, quantities, days)


def _report(
    plan: Plan,
    rated: int,
    customers: int,
    lines: int,
    billed: Decimal,
    cpu: float,
    wall: float,
    handwritten_cpu: float,
) -> None:
    per_second = rated / cpu
    handwritten_per_second = rated / handwritten_cpu
    versus = ratio(per_second, handwritten_per_second)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_rss_mb = peak_rss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    print(f"plan                 {plan.code}: {len(plan.charges)} charges")
    print(f"vehicle-periods      {rated:,} in {customers:,} customer-periods")
    print(f"lines                {lines:,}, billed {billed:,} {plan.currency} before VAT")
    print(f"rating time          {cpu:.2f} s CPU, {wall:.2f} s wall clock")
    print(f"per vehicle-period   {cpu / rated * 1e6:.2f} µs CPU")
    print(f"vehicle-periods/s    {per_second:,.0f} per CPU second (goal {GOAL_PER_S:,})")
    print(f"                     {rated / wall:,.0f} per wall-clock second")
    print(f"handwritten pricing  {handwritten_per_second:,.0f} per CPU second")
    print(f"engine/handwritten   {versus} (goal {GOAL_VS_HANDWRITTEN})")
    print(f"peak RSS             {peak_rss_mb:.1f} MB")
    report(
        {
            "engine_vs_handwritten": versus,
            "vehicle_periods_per_s": round(per_second),
            "handwritten_vehicle_periods_per_s": round(handwritten_per_second),
            "peak_rss_mb": round(peak_rss_mb, 1),
        }
    )


if __name__ == "__main__":
    main()
