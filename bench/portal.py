"""The customer overview page through HTTP with a signed-in session: a customer with 100
vehicles and a month of readings (bench/usage.py's seeding, half on urbain, half on
flotte-pro), the month in progress near its end.

The application is served by the production HTTP server in a child process (this file
run with `--serve`), whose clock is fixed near the end of the seeded month, so that the
month in progress is a whole month of data whatever the day the benchmark runs. One
kept-alive connection asks for the overview many times with the session cookie of a
customer contact (median and p95 in ms), then for the statement of the same month through
the API; `overview_vs_statement` is the statement's median divided by the overview's,
the share of the page that is its statement (the page adds the previous month, the daily
kilometres and the rendering). The last line is the JSON of the figures.

The seeded vehicles join on the 1st, so the previous month is empty here: with a month of
data before, the page also prices it up to the same day (one closed statement's work,
which bench/statements.py measures).

    python bench/portal.py [--quick]
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
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    database,
    free_port,
    postgres_server,
    process_peak_rss_mb,
    ratio,
    report,
    scratch_database,
)
from bench.statements import CUSTOMER, assign_plans
from bench.usage import START, analyze, seed, store, time_rebuild

GOAL_P95_MS = 150
VEHICLES = 100


def clock_for(days: int) -> dt.datetime:
    """An hour after the last seeded day: the month in progress holds every reading."""
    return START + dt.timedelta(days=days, hours=1)


def sign_in(url: str, now: dt.datetime) -> str:
    """A contact of the benchmark's customer and a page session of theirs; its cookie."""
    from billing.users import services as users

    db = database(url)
    with db.session() as session:
        user = users.add_user(session, "bench@usage.example", "customer", now, customer_id=CUSTOMER)
        token = users.start_page_session(session, user, now)
    db.engine.dispose()
    return token


def serve(url: str, port: int, now: str) -> None:
    """The child process: the application on `port`, its clock fixed at `now`."""
    import gc

    from billing import create_app
    from billing.http_server import HttpServer
    from billing.settings import load_settings

    instant = dt.datetime.fromisoformat(now)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(database_url=url, data_dir=Path(data_dir))
        app = create_app(settings)
        app.extensions["billing.clock"] = lambda: instant
        gc.freeze()  # as `billing serve` does
        HttpServer(app, "127.0.0.1", port, threads=8, max_request_bytes=1 << 20).run()


@contextlib.contextmanager
def web_server(url: str, now: dt.datetime) -> Iterator[tuple[int, int]]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", url, str(port), now.isoformat()]
    process = subprocess.Popen(command, env=os.environ, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {process.stderr.read()[-2000:]!r}")
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


def time_requests(port: int, path: str, headers: dict, repeat: int) -> tuple[list[float], bytes]:
    """Milliseconds per request, sorted, over one kept-alive connection (after 3 warm-ups)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings, body = [], b""
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
    return sorted(timings), body


def figures(timings: list[float]) -> tuple[float, float]:
    return round(statistics.median(timings), 2), round(timings[int(len(timings) * 0.95) - 1], 2)


def run(kind: str, days: int, trips: int, trip_readings: int, repeat: int) -> dict:
    now = clock_for(days)
    with scratch_database(kind) as url:
        ids = seed(url, VEHICLES)
        readings = store(url, ids, days, trips, trip_readings)
        time_rebuild(url)
        key = assign_plans(url, ids)
        cookie = sign_in(url, now)
        analyze(url)
        with web_server(url, now) as (port, pid):
            page_ms, page = time_requests(
                port, f"/accounts/{CUSTOMER}/", {"Cookie": f"billing_session={cookie}"}, repeat
            )
            statement_ms, _ = time_requests(
                port,
                f"/api/v1/customers/{CUSTOMER}/statement",
                {"Authorization": f"Bearer {key}"},
                repeat // 2,
            )
            peak_rss = process_peak_rss_mb(pid)
    if b'id="amount-to-date"' not in page or page.count(b'<tr><th scope="row"><a') < VEHICLES:
        raise RuntimeError("the overview does not show the month's amount and every vehicle")
    median, p95 = figures(page_ms)
    statement_median, statement_p95 = figures(statement_ms)
    return {
        "portal_overview_ms_p95": p95,
        "portal_overview_ms_median": median,
        "peak_rss_mb": round(peak_rss, 1),
        "overview_vs_statement": ratio(statement_median, median),
        "statement_in_progress_http_ms_median": statement_median,
        "statement_in_progress_http_ms_p95": statement_p95,
        "page_bytes": len(page),
        "calls": repeat,
        "readings": readings,
        "vehicles": VEHICLES,
        "days": days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 days of readings, fewer calls")
    parser.add_argument("--serve", nargs=3, metavar=("URL", "PORT", "NOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        url, port, now = args.serve
        serve(url, int(port), now)
        return
    # A month: 100 vehicles, 6 trips a day of 40 min (80 readings), 30 days (the clock
    # an hour into the 31st): 1.4 M readings.
    days, trip_readings, repeat = (2, 20, 40) if args.quick else (30, 80, 200)
    backends = ["postgresql", "sqlite"] if postgres_server() else ["sqlite"]
    results = {}
    for kind in backends:
        results[kind] = run(kind, days, 6, trip_readings, repeat)
        print(f"{kind}: {json.dumps(results[kind])}", file=sys.stderr)
    headline = results[backends[0]]
    p95 = headline["portal_overview_ms_p95"]
    verdict = "meets" if p95 < GOAL_P95_MS else "misses"
    print(f"p95 {p95} ms {verdict} the goal of {GOAL_P95_MS} ms ({backends[0]})", file=sys.stderr)
    report({**headline, "database": backends[0], "details": results})


if __name__ == "__main__":
    main()
