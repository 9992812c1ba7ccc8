"""Usage rollups kept up to date as readings arrive: exact whatever the arrival order,
equal to a full recomputation, with anomalies held for operators."""

import datetime as dt
import json
import random
import uuid
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from billing.auth import SYSTEM
from billing.metering import rollups
from billing.metering.models import AnomalyRecord, TripRecord, UsageBucket, UsageDay
from billing.metering.rebuild import drift, expected_rollups, stored_rollups, verify_rollups
from billing.metering.rollups import update_rollups
from billing.mqtt import telemetry_topic
from billing.registry.vehicle_changes import register_vehicle
from billing.telemetry.models import MeteringQueue
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.conftest import NOW

PARIS = "Europe/Paris"
T0 = dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)


def reading(msg_id, minutes, odometer=None, energy=None, trip=None):
    document = {"msg_id": msg_id, "ts": (T0 + dt.timedelta(minutes=minutes)).isoformat()}
    if odometer is not None:
        document["odometer_m"] = odometer
    if energy is not None:
        document["energy_wh"] = energy
    if trip is not None:
        document["trip"] = {"id": trip[0], "event": trip[1]}
    return document


def ingest(session, vehicle_id, *documents):
    store_telemetry(
        session,
        [IncomingMessage(telemetry_topic(vehicle_id), json.dumps(list(documents)).encode())],
        NOW,
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=3600,
    )


def meter(session):
    while update_rollups(session, NOW, max_speed_kmh=60).vehicles:
        pass


def buckets(session, vehicle_id):
    rows = session.scalars(
        select(UsageBucket)
        .where(UsageBucket.vehicle_id == vehicle_id)
        .order_by(UsageBucket.bucket_start)
    )
    return [(b.bucket_start.strftime("%H:%M"), b.distance_m, b.energy_wh, b.readings) for b in rows]


def test_readings_in_order_fill_buckets_days_and_trips(session, registry):
    vehicle = registry.vehicle_id
    ingest(
        session,
        vehicle,
        reading("a", 0, 1000, 500, ("t1", "start")),
        reading("b", 10, 3000, 560),
        reading("c", 20, 5500, 640, ("t1", "end")),
    )
    meter(session)
    # 08:00 holds a (baseline only) and b (+2000 m at 08:10); 08:15 holds c (+2500 m).
    assert buckets(session, vehicle) == [("08:00", 2000, 60, 2), ("08:15", 2500, 80, 1)]
    [day] = session.scalars(select(UsageDay).where(UsageDay.vehicle_id == vehicle)).all()
    assert (day.day, day.timezone, day.distance_m, day.energy_wh) == (
        dt.date(2026, 11, 10), PARIS, 4500, 140,
    )  # fmt: skip
    [trip] = session.scalars(select(TripRecord)).all()
    assert (trip.trip_id, trip.seconds, trip.end_msg_id) == ("t1", 1200, "c")


def test_a_late_reading_in_between_moves_usage_to_its_own_bucket(session, registry):
    vehicle = registry.vehicle_id
    ingest(session, vehicle, reading("a", 0, 1000), reading("c", 40, 9000))
    meter(session)
    assert buckets(session, vehicle) == [("08:00", 0, 0, 1), ("08:30", 8000, 0, 1)]
    ingest(session, vehicle, reading("b", 20, 4000))
    meter(session)
    assert buckets(session, vehicle) == [
        ("08:00", 0, 0, 1), ("08:15", 3000, 0, 1), ("08:30", 5000, 0, 1),
    ]  # fmt: skip
    [day] = session.scalars(select(UsageDay)).all()
    assert day.distance_m == 8000


def test_readings_stored_while_a_pass_runs_stay_queued_for_the_next_pass(
    session, registry, monkeypatch
):
    vehicle = registry.vehicle_id
    ingest(session, vehicle, reading("a", 0, 1000), reading("b", 10, 3000))
    take_queue = rollups._take_queue

    def take_queue_then_ingest_meanwhile(*arguments, **options):
        taken = take_queue(*arguments, **options)
        ingest(session, vehicle, reading("c", 200, 9000))
        return taken

    monkeypatch.setattr(rollups, "_take_queue", take_queue_then_ingest_meanwhile)
    assert rollups.update_rollups(session, NOW, max_speed_kmh=60).vehicles == 1
    monkeypatch.undo()
    left = session.execute(select(MeteringQueue.since, MeteringQueue.until)).all()
    assert left == [(T0 + dt.timedelta(minutes=200), T0 + dt.timedelta(minutes=200))], (
        "only the row of the reading stored during the pass may stay, with its own window"
    )
    meter(session)
    assert buckets(session, vehicle) == [("08:00", 2000, 0, 2), ("11:15", 6000, 0, 1)]
    assert session.scalar(select(func.count()).select_from(MeteringQueue)) == 0


def test_a_counter_going_backwards_starts_a_new_baseline_and_is_flagged(session, registry):
    vehicle = registry.vehicle_id
    ingest(session, vehicle, reading("a", 0, 5000), reading("b", 10, 100), reading("c", 20, 600))
    meter(session)
    assert sum(b[1] for b in buckets(session, vehicle)) == 500
    [anomaly] = session.scalars(select(AnomalyRecord)).all()
    assert (anomaly.kind, anomaly.counter, anomaly.msg_id, anomaly.status) == (
        "counter_reset", "odometer", "b", "open",
    )  # fmt: skip


def test_an_implausible_jump_is_held_until_an_operator_accepts_it(session, registry):
    vehicle = registry.vehicle_id
    # 50 km in 10 minutes is 300 km/h: held.
    ingest(session, vehicle, reading("a", 0, 1000), reading("b", 10, 51_000))
    meter(session)
    [jump] = session.scalars(select(AnomalyRecord)).all()
    assert (jump.kind, jump.status, jump.distance_m) == ("implausible_jump", "held", 50_000)
    assert sum(b[1] for b in buckets(session, vehicle)) == 0
    from billing.metering.anomalies import decide_anomaly

    decide_anomaly(session, jump.id, "accepted", NOW, decided_by="key_test")
    meter(session)
    assert sum(b[1] for b in buckets(session, vehicle)) == 50_000
    decide_anomaly(session, jump.id, "rejected", NOW, decided_by="key_test")
    meter(session)
    assert sum(b[1] for b in buckets(session, vehicle)) == 0


def test_a_trip_end_without_start_is_flagged_until_its_start_arrives(session, registry):
    vehicle = registry.vehicle_id
    ingest(session, vehicle, reading("e", 30, trip=("t9", "end")))
    meter(session)
    [anomaly] = session.scalars(select(AnomalyRecord)).all()
    assert anomaly.kind == "trip_end_without_start"
    ingest(session, vehicle, reading("s", 5, trip=("t9", "start")))
    meter(session)
    assert session.scalars(select(AnomalyRecord)).all() == []
    [trip] = session.scalars(select(TripRecord)).all()
    assert trip.seconds == 25 * 60


def test_verify_reports_no_drift_after_passes_and_names_a_tampered_bucket(session, registry):
    vehicle = registry.vehicle_id
    ingest(session, vehicle, reading("a", 0, 1000, 10), reading("b", 10, 3000, 70))
    meter(session)
    assert verify_rollups(session, max_speed_kmh=60).drifts == 0
    session.scalars(select(UsageBucket)).first().distance_m += 1
    session.flush()
    lines = []
    report = verify_rollups(session, max_speed_kmh=60, on_drift=lambda v, line: lines.append(line))
    assert report.drifts == 1
    assert lines[0].startswith("buckets 2026-11-10 08:00:00+00:00: expected (2000, 60, 2)")


SEQUENCES = st.lists(
    st.tuples(st.integers(0, 600), st.integers(0, 3000), st.integers(0, 50)),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=SEQUENCES, seed=st.integers(0, 1000), passes=st.integers(1, 4))
def test_rollups_equal_a_full_recomputation_whatever_the_arrival_order(
    session, registry, steps, seed, passes
):
    """Random readings (some going backwards, some jumping) arrive shuffled, duplicated and
    in several batches metered in between; the rollups equal a recomputation from scratch."""
    vehicle = new_vehicle(session, registry)
    odometer, energy, documents = 0, 0, []
    for index, (minutes, metres, wh) in enumerate(steps):
        odometer = odometer + metres if index % 7 else max(0, odometer - metres)
        energy += wh
        documents.append(reading(f"m{index}", minutes * 3 + index, odometer, energy))
    shuffled = documents + random.Random(seed).sample(documents, len(documents) // 3)
    random.Random(seed + 1).shuffle(shuffled)
    size = max(1, len(shuffled) // passes)
    for start in range(0, len(shuffled), size):
        ingest(session, vehicle, *shuffled[start : start + size])
        meter(session)
    expected = expected_rollups(session, vehicle, ZoneInfo(PARIS), 60)
    assert drift(expected, stored_rollups(session, vehicle)) == []
    assert all(values[0] >= 0 and values[1] >= 0 for values in expected.buckets.values())


def new_vehicle(session, registry) -> str:
    """A vehicle of its own for each generated example (they share one transaction)."""
    vehicle_id = f"P-{uuid.uuid4().hex[:12]}"
    register_vehicle(
        session,
        SYSTEM,
        {"id": vehicle_id, "fleet_id": registry.fleet_id, "model": "s1", "serial": vehicle_id},
        T0 - dt.timedelta(days=30),
    )
    return vehicle_id


def test_a_pass_written_after_readings_arrived_since_its_planning_is_fixed_by_the_next(
    session, registry
):
    """The metering pass plans without the write lock and writes in a later transaction:
    readings committed in between must end up in the usage as if they had come first."""
    vehicle = registry.vehicle_id
    ingest(session, vehicle, reading("a", 0, 1000), reading("c", 40, 9000))
    planned = rollups.plan_pass(session, max_speed_kmh=60)
    assert planned is not None
    ingest(session, vehicle, reading("b", 20, 4000), reading("d", 50, 9500))
    rollups.write_pass(session, planned, NOW)
    assert buckets(session, vehicle) == [("08:00", 0, 0, 1), ("08:30", 8000, 0, 1)], (
        "the pass writes what it planned, without the readings stored since"
    )
    meter(session)
    assert buckets(session, vehicle) == [
        ("08:00", 0, 0, 1), ("08:15", 3000, 0, 1), ("08:30", 5000, 0, 1), ("08:45", 500, 0, 1),
    ]  # fmt: skip
    assert verify_rollups(session, max_speed_kmh=60).drifts == 0
