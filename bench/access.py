"""The unlock check (GET /api/v1/vehicles/{id}/access) over a registry of 10,000 vehicles
(100 customers of 100 vehicles; 10 customers blocked as overdue, 1 vehicle in 100 retired):
median and p95 in milliseconds, in process (the service function with its own session,
as a request has) and through HTTP (`billing serve` in a child process, one kept-alive
connection, an operator's key scoped to all the fleets, as an unlock service would hold).

Goals: p95 under 5 ms in process and 20 ms through HTTP; `*_vs_goal` is p95 / goal.

    python bench/access.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import update

from bench._support import database, postgres_server, ratio, report, scratch_database, seed_fleet
from bench.statements import web_server
from billing.access.models import OVERDUE
from billing.access.services import vehicle_access
from billing.access.state import block_customer
from billing.api_keys import create_api_key
from billing.auth import Principal
from billing.devices.models import Vehicle

CUSTOMERS, PER_CUSTOMER = 100, 100
GOAL_MS, GOAL_HTTP_MS = 5, 20


def seed(url: str) -> tuple[list[str], str]:
    """The registry; returns the vehicle ids and an operator key of every fleet."""
    held_from = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    vehicle_ids = []
    for c in range(CUSTOMERS):
        ids = [f"V{c:03d}-{v:03d}" for v in range(PER_CUSTOMER)]
        seed_fleet(url, f"access{c:03d}", ids, held_from)
        vehicle_ids += ids
    db = database(url)
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        for c in range(0, CUSTOMERS, CUSTOMERS // 10):
            block_customer(session, f"cus_access{c:03d}", OVERDUE, "invoice unpaid", now)
        session.execute(
            update(Vehicle)
            .where(Vehicle.id.in_(vehicle_ids[::100]))
            .values(status="retired", retired_at=now)
        )
        session.commit()
        fleets = tuple(f"flt_access{c:03d}" for c in range(CUSTOMERS))
        key = create_api_key(session, "operator", fleet_ids=fleets)[1]
    db.engine.dispose()
    return vehicle_ids, key


def in_process(url: str, vehicle_ids: list[str], samples: int) -> list[float]:
    db = database(url)
    principal = Principal(key_id="bench", role="admin")
    timings, picked = [], random.Random(1).choices(vehicle_ids, k=samples + 20)
    for index, vehicle_id in enumerate(picked):
        started = time.perf_counter()
        with db.session() as session:
            vehicle_access(session, principal, vehicle_id, dt.datetime.now(dt.UTC))
        if index >= 20:  # warm-up
            timings.append((time.perf_counter() - started) * 1000)
    db.engine.dispose()
    return sorted(timings)


def through_http(url: str, vehicle_ids: list[str], key: str, samples: int) -> list[float]:
    timings, refused = [], 0
    with web_server(url) as (port, _pid):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}"}
        picked = random.Random(2).choices(vehicle_ids, k=samples + 20)
        for index, vehicle_id in enumerate(picked):
            started = time.perf_counter()
            connection.request("GET", f"/api/v1/vehicles/{vehicle_id}/access", headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"{vehicle_id}: {response.status} {body[:300]!r}")
            refused += not json.loads(body)["allowed"]
            if index >= 20:
                timings.append(elapsed)
        connection.close()
    print(f"  {refused} of {len(picked)} answers refused", file=sys.stderr)
    return sorted(timings)


def figures(timings: list[float]) -> tuple[float, float]:
    return round(statistics.median(timings), 3), round(timings[int(len(timings) * 0.95) - 1], 3)


def run(kind: str, samples: int, http_samples: int) -> dict:
    with scratch_database(kind) as url:
        started = time.monotonic()
        vehicle_ids, key = seed(url)
        print(f"  {kind}: seeded {len(vehicle_ids)} vehicles in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
        median, p95 = figures(in_process(url, vehicle_ids, samples))
        http_median, http_p95 = figures(through_http(url, vehicle_ids, key, http_samples))
    return {
        "access_ms_p95": p95,
        "access_http_ms_p95": http_p95,
        "access_ms_median": median,
        "access_http_ms_median": http_median,
        "access_p95_vs_goal": ratio(p95, GOAL_MS),
        "access_http_p95_vs_goal": ratio(http_p95, GOAL_HTTP_MS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, one database")
    args = parser.parse_args()
    samples, http_samples = (1000, 500) if args.quick else (10_000, 3000)
    backends = ["postgresql", "sqlite"] if postgres_server() else ["sqlite"]
    if args.quick:
        backends = backends[:1]
    results = {kind: run(kind, samples, http_samples) for kind in backends}
    headline = results[backends[0]]
    report(
        {
            **headline,
            "vehicles": CUSTOMERS * PER_CUSTOMER,
            "database": backends[0],
            "samples": samples,
            "http_samples": http_samples,
            "details": results,
        }
    )


if __name__ == "__main__":
    main()
