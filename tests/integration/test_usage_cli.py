"""`billing usage meter|verify|rebuild` and the scheduler's metering job, on a committed
database shared with the command line."""

import datetime as dt
import json
import signal
import threading
import time

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import select, update

from billing.jobs import JobLease, new_holder, take_lease
from billing.metering.models import UsageBucket
from billing.mqtt import telemetry_topic
from billing.scheduler import jobs, run_under_lease, stop_on_signal
from billing.settings import load_settings
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.databases import seed_fleet

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def store(database, vehicle_id, *points):
    documents = [
        {"msg_id": f"{vehicle_id}-{n}", "ts": (NOW - dt.timedelta(minutes=m)).isoformat(),
         "odometer_m": odometer}
        for n, (m, odometer) in enumerate(points)
    ]  # fmt: skip
    with database.session() as session:
        store_telemetry(
            session,
            [IncomingMessage(telemetry_topic(vehicle_id), json.dumps(documents).encode())],
            NOW,
            directory=VehicleDirectory(max_age=0),
            max_future_seconds=60,
        )


def test_verify_finds_drift_and_rebuild_repairs_it(cli, fresh_db, fresh_url):
    seed_fleet(fresh_db, ["CLI-1", "CLI-2"])
    store(fresh_db, "CLI-1", (50, 1000), (40, 4000), (30, 9000))
    store(fresh_db, "CLI-2", (20, 0), (10, 2500))
    assert cli("usage", "meter").exit_code == 0
    clean = cli("usage", "verify")
    assert clean.exit_code == 0, clean.output
    assert "checked 2 vehicles, 5 readings: 0 difference(s)" in clean.stderr
    with fresh_db.session() as session:
        session.execute(update(UsageBucket).values(distance_m=UsageBucket.distance_m + 7))
        session.commit()
    drifted = cli("usage", "verify")
    assert drifted.exit_code == 1
    assert "CLI-1: buckets" in drifted.stdout
    rebuilt = cli("usage", "rebuild")
    assert "rebuilt 2 vehicles, 5 readings" in rebuilt.stderr
    assert cli("usage", "verify").exit_code == 0
    with fresh_db.session() as session:
        total = sum(session.scalars(select(UsageBucket.distance_m)))
    assert total == 8000 + 2500


def test_only_one_scheduler_at_a_time_runs_the_metering_job(fresh_db, tmp_path):
    seed_fleet(fresh_db, ["JOB-1"])
    store(fresh_db, "JOB-1", (30, 0), (20, 1500))
    settings = load_settings(data_dir=tmp_path)
    [meter] = [job for job in jobs(settings) if job.name == "meter"]
    other = new_holder()
    with fresh_db.session() as session:
        assert take_lease(session, "meter", other, dt.datetime.now(dt.UTC), dt.timedelta(minutes=5))
    assert run_under_lease(fresh_db, settings, meter, new_holder()) is False
    with fresh_db.session() as session:
        assert session.scalars(select(UsageBucket)).all() == []
        # The other holder crashed: its lease expires and the job runs again.
        expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.execute(update(JobLease).values(expires_at=expired))
        session.commit()
    assert run_under_lease(fresh_db, settings, meter, new_holder()) is True
    with fresh_db.session() as session:
        assert sum(session.scalars(select(UsageBucket.distance_m))) == 1500


def test_a_scheduler_stopped_by_two_signals_stops_once_without_error():
    """Ctrl-C on `billing run`: the terminal's SIGINT, then the supervisor's SIGTERM."""
    scheduler = BlockingScheduler(timezone=dt.UTC)
    stop = stop_on_signal(scheduler)
    thread = threading.Thread(target=scheduler.start)
    thread.start()
    while not scheduler.running:
        time.sleep(0.01)
    stop(signal.SIGINT, None)
    stop(signal.SIGTERM, None)
    thread.join(10)
    assert not thread.is_alive() and not scheduler.running
