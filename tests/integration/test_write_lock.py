"""The embedded database has one write lock, taken by a session from its start. Reading
sessions, the planning of a metering pass and the web's GET requests must not wait for it:
the ingest commits all the time, a metering pass over a backlog reads for seconds, and a
statement page for a tenth of one. A read-only session refuses to write."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import func, select, update

from billing import create_app
from billing.api_keys import create_api_key
from billing.db import WAL_CHECKPOINT_BYTES, Database, ReadOnlyViolation
from billing.devices.models import Vehicle
from billing.metering.models import UsageBucket
from billing.metering.rollups import plan_pass, write_pass
from billing.settings import load_settings
from billing.telemetry.models import MeteringQueue
from tests.conftest import NOW, auth
from tests.databases import readings_locked, seed_fleet
from tests.integration.test_rollups import T0, ingest, reading

T = TypeVar("T")
VEHICLE = "LCK-1"
# The write lock's busy timeout is 30 s: a session waiting for it is still waiting here.
WITHIN_S = 10


def without_waiting(work: Callable[[], T], what: str) -> T:
    """`work`'s result, which must come while the write lock is held elsewhere."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WITHIN_S)
    assert not thread.is_alive(), f"{what} waited for the write lock held by another process"
    if errors:
        raise errors[0]
    return result[0]


def test_a_reading_session_reads_while_another_process_holds_the_write_lock(fresh_db, fresh_url):
    seed_fleet(fresh_db, [VEHICLE])

    def count_vehicles() -> int | None:
        with fresh_db.reading() as session:
            return session.scalar(select(func.count()).select_from(Vehicle))

    with readings_locked(fresh_url):
        assert without_waiting(count_vehicles, "a reading session") == 1


def test_a_get_request_answers_while_another_process_holds_the_write_lock(
    tmp_path, fresh_db, fresh_url
):
    seed_fleet(fresh_db, [VEHICLE])
    with fresh_db.session() as session:
        key = create_api_key(session, "admin")[1]
    client = create_app(load_settings(data_dir=tmp_path), fresh_db).test_client()

    def list_vehicles():
        return client.get("/api/v1/vehicles", headers=auth(key))

    changed = []
    change = threading.Thread(
        target=lambda: changed.append(
            client.patch(f"/api/v1/vehicles/{VEHICLE}", json={"notes": "x"}, headers=auth(key))
        )
    )
    with readings_locked(fresh_url):
        answer = without_waiting(list_vehicles, "GET /api/v1/vehicles")
        assert answer.status_code == 200, answer.get_json()
        assert [v["id"] for v in answer.get_json()["items"]] == [VEHICLE]
        change.start()
    # A request that writes waits for the lock, and goes through once it is released.
    change.join(WITHIN_S)
    assert changed and changed[0].status_code == 200, changed and changed[0].get_json()


def test_a_read_only_session_refuses_to_write(fresh_db):
    seed_fleet(fresh_db, [VEHICLE])
    with fresh_db.reading() as session:
        session.get(Vehicle, VEHICLE).notes = "changed"
        with pytest.raises(ReadOnlyViolation, match=r"\['Vehicle'\]"):
            session.flush()
        session.rollback()
        with pytest.raises(ReadOnlyViolation, match="UPDATE vehicles"):
            session.execute(update(Vehicle).values(notes="changed"))
        session.get(Vehicle, VEHICLE).notes = session.get(Vehicle, VEHICLE).notes
        session.commit()  # setting a value to itself writes nothing: allowed
    with fresh_db.reading() as session:
        assert session.get(Vehicle, VEHICLE).notes == ""


def test_a_metering_pass_is_planned_under_a_held_write_lock_and_written_after(fresh_db, fresh_url):
    seed_fleet(fresh_db, [VEHICLE])
    with fresh_db.session() as session:
        ingest(session, VEHICLE, reading("a", 0, 1000, 500), reading("b", 10, 3000, 560))

    def plan():
        with fresh_db.reading() as session:
            return plan_pass(session, max_speed_kmh=60)

    with readings_locked(fresh_url):
        planned = without_waiting(plan, "planning a metering pass")
    assert planned is not None
    assert [(b.distance_m, b.energy_wh) for b in planned.buckets[VEHICLE].values()] == [(2000, 60)]
    with fresh_db.session() as session:
        assert write_pass(session, planned, NOW).readings == 2
    with fresh_db.reading() as session:
        stored = session.execute(
            select(UsageBucket.bucket_start, UsageBucket.distance_m, UsageBucket.readings)
        ).all()
        assert stored == [(T0, 2000, 2)]
        assert session.scalar(select(func.count()).select_from(MeteringQueue)) == 0


def test_the_embedded_database_checkpoints_its_wal_at_64_mib(tmp_path):
    """Checkpointing at 4 MiB (SQLite's default) rewrote the same index pages over and
    over: the ingest's inserts ran 1.5x faster at 64 MiB."""
    database = Database.from_url(f"sqlite:///{tmp_path / 'wal.db'}")
    with database.reading() as session:
        pragma = session.connection().exec_driver_sql
        pages = pragma("PRAGMA wal_autocheckpoint").scalar_one()
        page_size = pragma("PRAGMA page_size").scalar_one()
        assert (pages * page_size, pragma("PRAGMA journal_size_limit").scalar_one()) == (
            WAL_CHECKPOINT_BYTES, WAL_CHECKPOINT_BYTES,
        )  # fmt: skip
        assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
    database.engine.dispose()
    assert WAL_CHECKPOINT_BYTES == 64 * 1024 * 1024
