"""Usage queries and rebuilds: a customer with 100 vehicles and a month of readings.

Each vehicle rides several trips a day with a reading every 30 s while riding. The
benchmark stores the readings, runs `billing usage rebuild` (readings/s), then asks for
the customer's month of usage from the rollups many times (median and p95 in ms).

In the same run it times alone the single SQL query that reads the month's rollups for the
customer (daily distance, energy and active days, and trips, per vehicle), the limit of
any statement: `statement_vs_raw_query` is that query's median time divided by the
statement's (1.0 would mean the statement costs nothing beyond reading its rows).

    python bench/usage.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench._support import (
    database,
    postgres_server,
    ratio,
    report,
    scratch_database,
    seed_fleet,
    self_peak_rss_mb,
)
from billing.auth import Principal
from billing.db import sqlite_timestamp
from billing.metering.rebuild import rebuild_rollups
from billing.metering.services import customer_usage
from billing.periods import Period
from billing.telemetry.contract import Reading
from billing.telemetry.storage import insert_readings

PERIOD = Period(2026, 10)
START = dt.datetime(2026, 9, 30, 22, 0, tzinfo=dt.UTC)  # 1 October, midnight in Paris
ADMIN = Principal(key_id="bench", role="admin")
NOW = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)  # the month measured is closed


def seed(url: str, vehicles: int) -> list[str]:
    ids = [f"U-{n:04d}" for n in range(vehicles)]
    seed_fleet(url, "usage", ids, START)
    return ids


def rides(vehicle_index: int, days: int, trips_per_day: int, trip_readings: int):
    """A vehicle's readings: trips spread over working hours, a reading every 30 s."""
    odometer, energy = 1_000_000 + vehicle_index * 7919, 200_000
    for day in range(days):
        for trip in range(trips_per_day):
            begin = START + dt.timedelta(days=day, hours=7 + trip * 11 / trips_per_day)
            trip_id = f"t{day}-{trip}"
            for n in range(trip_readings):
                odometer += 150 + (vehicle_index + n) % 60  # 18 to 25 km/h
                energy += 4
                event = "start" if n == 0 else "end" if n == trip_readings - 1 else None
                yield (begin + dt.timedelta(seconds=30 * n), odometer, energy, trip_id, event)


def store(url: str, ids: list[str], days: int, trips_per_day: int, trip_readings: int) -> int:
    db = database(url)
    received = dt.datetime.now(dt.UTC)
    count = 0
    with db.session() as session:
        for index, vehicle_id in enumerate(ids):
            batch = [
                Reading(vehicle_id, f"{vehicle_id}-{n}", ts, odometer, energy, 80.0,
                        trip_id if event else None, event, None)
                for n, (ts, odometer, energy, trip_id, event) in enumerate(
                    rides(index, days, trips_per_day, trip_readings)
                )
            ]  # fmt: skip
            count += insert_readings(session, batch, received)
            session.commit()
    db.engine.dispose()
    return count


def time_rebuild(url: str) -> tuple[float, int]:
    db = database(url)
    with db.session() as session:
        started = time.perf_counter()
        result = rebuild_rollups(session, dt.datetime.now(dt.UTC), max_speed_kmh=60)
        seconds = time.perf_counter() - started
    db.engine.dispose()
    return result.readings / seconds, result.readings


def analyze(url: str) -> None:
    """Gather planner statistics, as autovacuum would after such a load in production:
    without them PostgreSQL nests loops over a month of trips it could hash."""
    db = database(url)
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    db.engine.dispose()


def time_statements(url: str, repeat: int) -> tuple[list[float], Decimal]:
    db = database(url)
    timings = []
    with db.session() as session:
        customer_usage(session, ADMIN, "cus_usage", PERIOD, NOW)  # warm the caches
        for _ in range(repeat):
            started = time.perf_counter()
            result = customer_usage(session, ADMIN, "cus_usage", PERIOD, NOW)
            timings.append((time.perf_counter() - started) * 1000)
            session.rollback()
    db.engine.dispose()
    assert result.total.distance_km > 0
    return sorted(timings), result.total.distance_km


# The month's rollups of one customer in one statement: what any statement must read.
_CUSTOMER_VEHICLES = """
    SELECT m.vehicle_id FROM fleet_memberships m JOIN fleets f ON f.id = m.fleet_id
    WHERE f.customer_id = :customer AND m.started_at < :end
      AND (m.ended_at IS NULL OR m.ended_at > :start)
"""
MONTH_OF_ROLLUPS = text(f"""
    SELECT vehicle_id, sum(distance_m) AS distance_m, sum(energy_wh) AS energy_wh,
           sum(active) AS active_days, sum(trips) AS trips, sum(seconds) AS seconds
    FROM (
        SELECT vehicle_id, distance_m, energy_wh,
               CASE WHEN distance_m > 0 THEN 1 ELSE 0 END AS active, 0 AS trips, 0 AS seconds
        FROM usage_days
        WHERE vehicle_id IN ({_CUSTOMER_VEHICLES})
          AND day >= :first_day AND day < :next_first_day
        UNION ALL
        SELECT vehicle_id, 0, 0, 0, 1, seconds FROM trips
        WHERE vehicle_id IN ({_CUSTOMER_VEHICLES}) AND end_ts >= :start AND end_ts < :end
    ) AS rollups
    GROUP BY vehicle_id
""")  # fmt: skip


def raw_query_parameters(kind: str, customer_id: str, period: Period) -> dict:
    start, end = period.bounds(ZoneInfo("Europe/Paris"))
    if kind == "sqlite":  # the text UTCDateTime stores there
        start, end = sqlite_timestamp(start), sqlite_timestamp(end)
    first_day, next_first_day = period.first_day(), period.next().first_day()
    return {"customer": customer_id, "start": start, "end": end, "first_day": first_day,
            "next_first_day": next_first_day}  # fmt: skip


def time_raw_query(url: str, kind: str, customer_id: str, period: Period, repeat: int):
    """Milliseconds of MONTH_OF_ROLLUPS, sorted (after a warm-up), and the distance in m
    it read, to check that it reads what the statement reads."""
    db = database(url)
    parameters = raw_query_parameters(kind, customer_id, period)
    timings = []
    with db.engine.connect() as connection:
        rows = connection.execute(MONTH_OF_ROLLUPS, parameters).all()
        for _ in range(repeat):
            started = time.perf_counter()
            rows = connection.execute(MONTH_OF_ROLLUPS, parameters).all()
            timings.append((time.perf_counter() - started) * 1000)
    db.engine.dispose()
    return sorted(timings), sum(row.distance_m or 0 for row in rows)


def run(kind: str, vehicles: int, days: int, trips: int, trip_readings: int, repeat: int) -> dict:
    with scratch_database(kind) as url:
        ids = seed(url, vehicles)
        stored = store(url, ids, days, trips, trip_readings)
        rebuild_rate, _rebuilt = time_rebuild(url)
        analyze(url)
        timings, distance_km = time_statements(url, repeat)
        raw_timings, raw_distance_m = time_raw_query(url, kind, "cus_usage", PERIOD, repeat)
    if Decimal(raw_distance_m).scaleb(-3) != distance_km:
        raise SystemExit(f"the raw query read {raw_distance_m} m, the statement {distance_km} km")
    median = statistics.median(timings)
    raw_median = statistics.median(raw_timings)
    return {
        "statement_vs_raw_query": ratio(raw_median, median),
        "statement_ms_median": round(median, 2),
        "raw_query_ms_median": round(raw_median, 2),
        "statement_ms_p95": round(timings[int(len(timings) * 0.95) - 1], 2),
        "rebuild_readings_per_s": round(rebuild_rate),
        "readings": stored,
        "vehicles": vehicles,
        "days": days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 days instead of a month")
    args = parser.parse_args()
    # A month: 100 vehicles, 6 trips a day of 40 min (80 readings), 31 days: 1.5 M readings.
    days, repeat = (5, 30) if args.quick else (31, 100)
    backends = ["postgresql", "sqlite"] if postgres_server() else ["sqlite"]
    results = {}
    for kind in backends:
        results[kind] = run(kind, 100, days, 6, 80, repeat)
        print(f"{kind}: {json.dumps(results[kind])}", file=sys.stderr)
    headline = results[backends[0]]
    report(
        {
            **{
                k: headline[k]
                for k in (
                    "statement_vs_raw_query",
                    "statement_ms_median",
                    "statement_ms_p95",
                    "raw_query_ms_median",
                )
            },
            "rebuild_readings_per_s": headline["rebuild_readings_per_s"],
            "database": backends[0],
            "peak_rss_mb": round(self_peak_rss_mb(), 1),
            "details": results,
        }
    )


if __name__ == "__main__":
    main()
