"""The validate-and-store function behind MQTT and HTTP: every reading once, every bad
input kept with a reason that names what is wrong."""

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from billing.devices import services as devices
from billing.mqtt import telemetry_topic
from billing.registry import vehicle_changes
from billing.telemetry.models import MeteringQueue, Reading, RejectedMessage
from billing.telemetry.services import (
    IncomingMessage,
    VehicleDirectory,
    replay_rejected_message,
    store_telemetry,
)
from tests.conftest import NOW

SYSTEM = devices.Principal(key_id="test", role="admin")


def reading(msg_id: str, minutes: int = 0, **fields) -> dict:
    ts = NOW - dt.timedelta(hours=1) + dt.timedelta(minutes=minutes)
    return {"msg_id": msg_id, "ts": ts.isoformat().replace("+00:00", "Z"), **fields}


def message(vehicle_id: str, document) -> IncomingMessage:
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    return IncomingMessage(topic=telemetry_topic(vehicle_id), payload=payload)


def store(session, *messages, directory=None):
    return store_telemetry(
        session,
        list(messages),
        NOW,
        directory=directory or VehicleDirectory(max_age=0),
        max_future_seconds=3600,
    )


def stored_msg_ids(session, vehicle_id):
    return set(session.scalars(select(Reading.msg_id).where(Reading.vehicle_id == vehicle_id)))


def test_each_distinct_reading_is_stored_once_and_repeats_count_as_duplicates(session, registry):
    vehicle = registry.vehicle_id
    first = store(
        session,
        message(vehicle, reading("a", 0, odometer_m=1000)),
        message(vehicle, [reading("b", 1, odometer_m=1200), reading("a", 0, odometer_m=1000)]),
    )
    second = store(session, message(vehicle, reading("b", 1, odometer_m=1200)))
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (2, 1, 0, 1)
    assert stored_msg_ids(session, vehicle) == {"a", "b"}


def test_a_reading_keeps_its_fields_and_unknown_fields_are_kept_aside(session, registry):
    vehicle = registry.vehicle_id
    document = reading(
        "m1", 5, odometer_m=1234567, energy_wh=152340, battery_pct=81,
        trip={"id": "t-1", "event": "start"}, firmware="2.1.0",
    )  # fmt: skip
    store(session, message(vehicle, document))
    row = session.get(Reading, (vehicle, "m1"))
    assert (row.odometer_m, row.energy_wh, row.battery_pct) == (1234567, 152340, 81.0)
    assert (row.trip_id, row.trip_event) == ("t-1", "start")
    assert row.ts == NOW - dt.timedelta(minutes=55)
    assert json.loads(row.extra) == {"firmware": "2.1.0"}


def test_epoch_milliseconds_are_accepted_as_timestamps(session, registry):
    epoch_ms = int((NOW - dt.timedelta(minutes=3)).timestamp() * 1000)
    store(session, message(registry.vehicle_id, {"msg_id": "e1", "ts": epoch_ms}))
    assert session.get(Reading, (registry.vehicle_id, "e1")).ts == NOW - dt.timedelta(minutes=3)


def test_each_stored_batch_queues_the_window_of_its_readings_for_metering(session, registry):
    vehicle = registry.vehicle_id
    store(session, message(vehicle, [reading("a", 10), reading("b", 20)]))
    store(session, message(vehicle, reading("c", 5)))
    queued = session.scalars(
        select(MeteringQueue).where(MeteringQueue.vehicle_id == vehicle).order_by(MeteringQueue.id)
    ).all()
    assert [(row.since, row.until) for row in queued] == [
        (NOW - dt.timedelta(minutes=50), NOW - dt.timedelta(minutes=40)),
        (NOW - dt.timedelta(minutes=55), NOW - dt.timedelta(minutes=55)),
    ]


BAD_INPUTS = [
    pytest.param(b'{"msg_id": "x", "ts": ', "malformed_json", "malformed JSON", id="malformed"),
    pytest.param(
        {"ts": "2026-11-15T09:00:00Z"}, "schema_violation", "missing required field `msg_id`",
        id="missing-field",
    ),
    pytest.param(
        {"msg_id": "x", "ts": "2026-11-15T09:00:00Z", "odometer_m": "12"},
        "schema_violation", "Expected `int | null`, got `str` - at `$.odometer_m`", id="wrong-type",
    ),
    pytest.param(
        {"msg_id": "x", "ts": "2026-11-15T09:00:00"},
        "schema_violation", "timezone component - at `$.ts`", id="naive-timestamp",
    ),
    pytest.param(
        {"msg_id": "x", "ts": "2026-11-15T09:00:00Z", "trip": {"id": "t", "event": "pause"}},
        "schema_violation", "Invalid enum value 'pause' - at `$.trip.event`", id="trip-event",
    ),
    pytest.param(
        {"msg_id": "x", "ts": "2027-11-15T09:00:00Z"}, "future_timestamp", "in the future",
        id="future",
    ),
    pytest.param([], "empty_batch", "empty array", id="empty-array"),
    pytest.param(
        [{"msg_id": str(n), "ts": "2026-11-15T09:00:00Z"} for n in range(501)],
        "batch_too_large", "501 readings in one message; at most 500", id="batch-over-500",
    ),
    pytest.param(42, "schema_violation", "got a number", id="not-an-object"),
]  # fmt: skip


@pytest.mark.parametrize(("document", "reason", "text"), BAD_INPUTS)
def test_bad_input_is_kept_with_a_reason_that_names_the_problem(
    session, registry, document, reason, text
):
    outcome = store(session, message(registry.vehicle_id, document))
    assert outcome.stored == 0
    [(_index, rejection)] = outcome.rejections
    assert rejection.reason == reason
    assert text in rejection.message
    row = session.get(RejectedMessage, outcome.rejected_ids[0])
    assert (row.reason, row.vehicle_id, row.status, row.source) == (
        reason, registry.vehicle_id, "pending", "mqtt",
    )  # fmt: skip
    expected = document if isinstance(document, bytes) else json.dumps(document).encode()
    assert row.payload == expected


def test_one_bad_reading_in_an_array_rejects_only_itself(session, registry):
    document = [reading("ok-1", 1), {"msg_id": "bad", "ts": "yesterday"}, reading("ok-2", 2)]
    outcome = store(session, message(registry.vehicle_id, document))
    assert outcome.stored == 2
    [(_index, rejection)] = outcome.rejections
    assert rejection.path == "$[1]"
    assert "at `$[1].ts`" in rejection.message
    assert json.loads(rejection.payload) == {"msg_id": "bad", "ts": "yesterday"}


def test_telemetry_of_an_unknown_vehicle_is_kept_and_replayed_once_registered(session, registry):
    outcome = store(session, message("NEW-7", [reading("a", 1), reading("b", 2)]))
    assert outcome.rejections[0][1].reason == "unknown_vehicle"
    rejected_id = outcome.rejected_ids[0]
    directory = VehicleDirectory(max_age=0)
    still, again = replay_rejected_message(
        session, rejected_id, NOW, directory=directory, max_future_seconds=3600
    )
    assert (still.status, still.replay_count, again.stored) == ("pending", 1, 0)
    vehicle = {"id": "NEW-7", "fleet_id": registry.fleet_id, "model": "s1", "serial": "N7"}
    vehicle_changes.register_vehicle(session, SYSTEM, vehicle, NOW)
    replayed, outcome = replay_rejected_message(
        session, rejected_id, NOW, directory=directory, max_future_seconds=3600
    )
    assert (replayed.status, replayed.replay_count, outcome.stored) == ("replayed", 2, 2)
    assert stored_msg_ids(session, "NEW-7") == {"a", "b"}


def test_readings_after_retirement_are_refused_and_earlier_ones_kept(session, registry):
    vehicle_changes.retire_vehicle(
        session, SYSTEM, registry.vehicle_id, NOW - dt.timedelta(minutes=30)
    )
    document = [reading("before", 10), reading("after", 45)]
    outcome = store(session, message(registry.vehicle_id, document))
    assert outcome.stored == 1
    assert [r.reason for _i, r in outcome.rejections] == ["retired_vehicle"]
    assert stored_msg_ids(session, registry.vehicle_id) == {"before"}


def test_a_topic_that_names_no_vehicle_is_rejected(session):
    bad = IncomingMessage(topic="billing/v1/vehicles/a b/telemetry", payload=b"{}")
    outcome = store(session, bad)
    assert outcome.rejections[0][1].reason == "bad_topic"
    assert session.scalar(select(func.count()).select_from(RejectedMessage)) == 1


def test_text_with_tabs_and_backslashes_is_stored_exactly(session, registry):
    awkward = "m\t1\\n\n2\r"
    extra = {"note": "a\tb\\c"}
    store(
        session,
        message(
            registry.vehicle_id, reading(awkward, 1, trip={"id": "t\\x", "event": "end"}, **extra)
        ),
    )
    row = session.get(Reading, (registry.vehicle_id, awkward))
    assert (row.msg_id, row.trip_id) == (awkward, "t\\x")
    assert json.loads(row.extra) == extra


def test_a_msg_id_resent_with_other_counters_keeps_the_first_and_is_flagged(session, registry):
    vehicle = registry.vehicle_id
    store(session, message(vehicle, reading("m1", 0, odometer_m=1000)))
    conflicting = message(vehicle, [reading("m2", 1), reading("m1", 0, odometer_m=1200)])
    outcome = store(session, conflicting)
    again = store(session, conflicting)
    assert (outcome.stored, outcome.duplicates, again.duplicates) == (1, 0, 1)
    [(_index, rejection)] = outcome.rejections
    assert rejection.reason == "conflicting_duplicate"
    assert rejection.path == "$[1]"
    assert "odometer_m 1200 (kept: 1000); the first reading is kept" in rejection.message
    assert session.get(Reading, (vehicle, "m1")).odometer_m == 1000
    row = session.get(RejectedMessage, outcome.rejected_ids[0])
    assert again.rejected_ids == outcome.rejected_ids
    assert (row.reason, row.received_count) == ("conflicting_duplicate", 2)
    assert json.loads(row.payload)["odometer_m"] == 1200


def test_a_repeat_within_one_batch_that_says_otherwise_is_flagged_too(session, registry):
    document = [reading("m1", 0, odometer_m=1000), reading("m1", 0, odometer_m=999)]
    outcome = store(session, message(registry.vehicle_id, document))
    assert (outcome.stored, outcome.duplicates) == (1, 0)
    assert [r.reason for _i, r in outcome.rejections] == ["conflicting_duplicate"]


def test_an_identical_repeat_is_a_plain_duplicate(session, registry):
    same = message(registry.vehicle_id, reading("m1", 0, odometer_m=1000, battery_pct=50))
    store(session, same)
    outcome = store(session, same)
    assert (outcome.duplicates, outcome.rejections) == (1, [])
