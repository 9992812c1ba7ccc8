"""Usage statements through the HTTP API: a customer with 100 vehicles and a month of
readings, 50 on urbain and 50 on flotte-pro (pooled kilometres).

The readings and rollups come from bench/usage.py's seeding. `billing serve` runs in a
child process on a free port, as in production; the benchmark asks it, with an admin key
and one kept-alive connection, for the closed month's statement many times (median and
p95 in ms, JSON and CSV) and for the month in progress (priced to date and projected),
then reads the web process's peak RSS.

In the same run it times alone the single SQL query that reads the closed month's rollups
for the customer (bench/usage.py's): `statement_vs_raw_query` is that query's median time
divided by the HTTP statement's, the share of a statement's time that is reading its data.

Then a writer commits one row at a time, as the ingest does, first alone and then while
statements are requested back to back: `commit_ms_max_under_reads` is its longest commit
while they are (on SQLite, a reading request that took the write lock would make it wait
as long as a statement), and `writes_under_reads_vs_alone` its commits per second then
against alone (the processes share the machine's cores, so below 1 even when nothing
waits; on PostgreSQL it comes out above 1, each commit being a round trip to a server
process, which a busy machine answers sooner than an idle one).

    python bench/statements.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench._support import (
    RssSampler,
    database,
    free_port,
    postgres_server,
    process_peak_rss_mb,
    ratio,
    report,
    scratch_database,
)
from bench.usage import PERIOD, START, analyze, seed, store, time_raw_query, time_rebuild
from billing.api_keys import create_api_key
from billing.pricing.assignments import PlanAssignment
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory

GOAL_P95_MS = 100
WRITER_S = 3
WARM_UP_COMMITS = 200
CUSTOMER = "cus_usage"  # bench/usage.py's customer


def assign_plans(url: str, vehicle_ids: list[str]) -> str:
    """Half the vehicles on urbain, half on flotte-pro, from the 1st; returns an admin key."""
    db = database(url)
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, now)
        half = len(vehicle_ids) // 2
        session.add_all(
            PlanAssignment(
                id=f"asg_{vehicle_id}", vehicle_id=vehicle_id, plan_version=1, effective_at=START,
                plan_code="urbain" if index < half else "flotte-pro",
            )
            for index, vehicle_id in enumerate(vehicle_ids)
        )  # fmt: skip
        session.commit()
        _key, plain = create_api_key(session, "admin", name="bench")
    db.engine.dispose()
    return plain


@contextlib.contextmanager
def web_server(url: str) -> Iterator[tuple[int, int]]:
    """`billing serve` on a free port; yields (port, pid) once /healthz answers."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        environment = {**os.environ, "DATABASE_URL": url, "BILLING_DATA_DIR": data_dir}
        command = [sys.executable, "-m", "billing.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(port)]  # fmt: skip
        log = Path(data_dir) / "serve.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(command, env=environment, stderr=stderr)
        try:
            _wait_until_healthy(port, process, log)
            yield port, process.pid
        finally:
            process.terminate()
            process.wait(10)


def _wait_until_healthy(
    port: int, process: subprocess.Popen, log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"billing serve exited with {process.returncode}:\n{log.read_text()[-2000:]}"
            )
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"billing serve did not answer on port {port}")


def time_requests(port: int, key: str, path: str, repeat: int, accept: str) -> list[float]:
    """Milliseconds per request, sorted, over one kept-alive connection (after 3 warm-ups)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Accept": accept}
    timings = []
    for attempt in range(repeat + 3):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        if attempt >= 3:
            timings.append(elapsed)
    connection.close()
    if accept == "application/json" and "period=" in path:
        gross = json.loads(body)["totals"]["gross"]
        print(f"  {path}: TTC {gross}", file=sys.stderr)
    return sorted(timings)


def commits(url: str, seconds: float, while_running=None) -> dict:
    """One-row commits through the product's write sessions for `seconds` (after a warm-up
    of WARM_UP_COMMITS), optionally while `while_running(stop)` runs in a thread: commits
    per second and the longest commit."""
    db = database(url)
    with db.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS bench_writes (n INTEGER)"))
        session.commit()
    for n in range(WARM_UP_COMMITS):
        _commit_one(db, n)
    stop = threading.Event()
    reader = threading.Thread(target=while_running, args=(stop,)) if while_running else None
    if reader:
        reader.start()
    longest, count = 0.0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        began = time.perf_counter()
        _commit_one(db, count)
        longest = max(longest, time.perf_counter() - began)
        count += 1
    elapsed = time.perf_counter() - started
    stop.set()
    if reader:
        reader.join()
    db.engine.dispose()
    return {"per_s": count / elapsed, "longest_ms": longest * 1000}


def _commit_one(db, n: int) -> None:
    with db.session() as session:
        session.execute(text("INSERT INTO bench_writes (n) VALUES (:n)"), {"n": n})
        session.commit()


def statements_until(port: int, key: str, path: str):
    """A reader for `commits`: statements requested back to back until told to stop."""

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            time_requests(port, key, path, 1, "application/json")

    return run


def figures(timings: list[float]) -> tuple[float, float]:
    return round(statistics.median(timings), 2), round(timings[int(len(timings) * 0.95) - 1], 2)


def run(kind: str, vehicles: int, days: int, trips: int, trip_readings: int, repeat: int) -> dict:
    with scratch_database(kind) as url:
        ids = seed(url, vehicles)
        readings = store(url, ids, days, trips, trip_readings)
        time_rebuild(url)
        key = assign_plans(url, ids)
        analyze(url)
        closed = f"/api/v1/customers/{CUSTOMER}/statement?period={PERIOD}"
        current = f"/api/v1/customers/{CUSTOMER}/statement"
        with web_server(url) as (port, pid):
            sampler = RssSampler(pid)
            json_ms = time_requests(port, key, closed, repeat, "application/json")
            csv_ms = time_requests(port, key, closed, repeat // 2, "text/csv")
            current_ms = time_requests(port, key, current, repeat // 2, "application/json")
            alone = commits(url, WRITER_S)
            under_reads = commits(url, WRITER_S, statements_until(port, key, closed))
            peak_rss = process_peak_rss_mb(pid)
            memory = sampler.stop()
        raw_ms, _distance_m = time_raw_query(url, kind, CUSTOMER, PERIOD, repeat)
    median, p95 = figures(json_ms)
    raw_median = statistics.median(raw_ms)
    return {
        "statement_vs_raw_query": ratio(raw_median, median),
        "raw_query_ms_median": round(raw_median, 2),
        "statement_http_ms_median": median,
        "statement_http_ms_p95": p95,
        "statement_csv_http_ms_p95": figures(csv_ms)[1],
        "statement_in_progress_http_ms_p95": figures(current_ms)[1],
        "commit_ms_max_under_reads": round(under_reads["longest_ms"], 1),
        "commit_ms_max_alone": round(alone["longest_ms"], 1),
        "writes_under_reads_vs_alone": ratio(under_reads["per_s"], alone["per_s"]),
        "web_peak_rss_mb": round(peak_rss, 1),
        "web_rss_mb_first_quarter": memory["rss_mb_first_quarter"],
        "web_rss_mb_last_quarter": memory["rss_mb_last_quarter"],
        "calls": repeat,
        "readings": readings,
        "vehicles": vehicles,
        "days": days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 days of readings, fewer calls")
    args = parser.parse_args()
    # A month: 100 vehicles, 6 trips a day of 40 min (80 readings), 31 days: 1.5 M readings.
    days, trip_readings, repeat = (3, 20, 60) if args.quick else (31, 80, 300)
    backends = ["postgresql", "sqlite"] if postgres_server() else ["sqlite"]
    results = {}
    for kind in backends:
        results[kind] = run(kind, 100, days, 6, trip_readings, repeat)
        print(f"{kind}: {json.dumps(results[kind])}", file=sys.stderr)
    headline = results[backends[0]]
    p95 = headline["statement_http_ms_p95"]
    verdict = "meets" if p95 < GOAL_P95_MS else "misses"
    print(f"p95 {p95} ms {verdict} the goal of {GOAL_P95_MS} ms ({backends[0]})", file=sys.stderr)
    report({**headline, "database": backends[0], "details": results})


if __name__ == "__main__":
    main()
