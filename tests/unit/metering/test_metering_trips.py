from datetime import UTC, datetime, timedelta

import pytest

from billing.metering.usage import (
    TRIP_DUPLICATE_EVENT,
    TRIP_END_BEFORE_START,
    TRIP_END_WITHOUT_START,
    TRIP_NEVER_ENDED,
    Reading,
    Trip,
    pair_trips,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
HOUR = 3600


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def start(msg_id: str, seconds: float, trip_id: str = "t1") -> Reading:
    return Reading(at(seconds), msg_id, trip_id=trip_id, trip_event="start")


def end(msg_id: str, seconds: float, trip_id: str = "t1") -> Reading:
    return Reading(at(seconds), msg_id, trip_id=trip_id, trip_event="end")


def kinds(anomalies) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.msg_id, a.previous_msg_id) for a in anomalies]


@pytest.mark.parametrize(
    ("readings", "expected_trips", "expected_anomalies"),
    [
        pytest.param(
            [start("s", 0), end("e", 754.9)],
            [Trip("t1", at(0), at(754.9))],
            [],
            id="a start and an end pair into one trip",
        ),
        pytest.param(
            [end("e", 600)],
            [Trip("t1", None, at(600))],
            [(TRIP_END_WITHOUT_START, "e", None)],
            id="an end without a start is still a trip",
        ),
        pytest.param(
            [start("s", 600), end("e", 0)],
            [Trip("t1", at(600), at(0))],
            [(TRIP_END_BEFORE_START, "e", "s")],
            id="an end before its start is flagged",
        ),
        pytest.param(
            [start("s1", 0), start("s2", 30), end("e", 600)],
            [Trip("t1", at(0), at(600))],
            [(TRIP_DUPLICATE_EVENT, "s2", "s1")],
            id="a repeated start keeps the first",
        ),
        pytest.param(
            [start("s", 0), end("e1", 600), end("e2", 900)],
            [Trip("t1", at(0), at(600))],
            [(TRIP_DUPLICATE_EVENT, "e2", "e1")],
            id="a repeated end keeps the first",
        ),
        pytest.param(
            [start("s", 0), start("s", 0), end("e", 600), end("e", 600)],
            [Trip("t1", at(0), at(600))],
            [],
            id="a redelivered message is not a repeated event",
        ),
        pytest.param(
            [start("s", 0)],
            [Trip("t1", at(0), None)],
            [],
            id="a trip still running is open and not flagged",
        ),
        pytest.param(
            [start("s1", 0, "t1"), start("s2", 600, "t2"), end("e2", 900, "t2")],
            [Trip("t1", at(0), None), Trip("t2", at(600), at(900))],
            [(TRIP_NEVER_ENDED, "s1", None)],
            id="a start is never ended once a later trip started",
        ),
        pytest.param(
            [start("s1", 0, "t1"), start("s2", 0, "t2")],
            [Trip("t1", at(0), None), Trip("t2", at(0), None)],
            [],
            id="trips starting at the same instant do not end each other",
        ),
        pytest.param(
            [start("s", 0), Reading(at(24 * HOUR + 1), "later", 1000)],
            [Trip("t1", at(0), None)],
            [(TRIP_NEVER_ENDED, "s", None)],
            id="a start older than 24 hours before the latest reading is never ended",
        ),
        pytest.param(
            [start("s", 0), Reading(at(24 * HOUR), "later", 1000)],
            [Trip("t1", at(0), None)],
            [],
            id="a start exactly 24 hours old may still end",
        ),
        pytest.param(
            [Reading(at(0), "x", 1000, trip_id="t1"), Reading(at(5), "y", trip_event="end")],
            [],
            [],
            id="readings without both a trip id and an event are no events",
        ),
    ],
)
def test_trip_pairing_rules(readings, expected_trips, expected_anomalies):
    trips, anomalies = pair_trips(readings)

    assert trips == expected_trips
    assert kinds(anomalies) == expected_anomalies


@pytest.mark.parametrize(
    ("trip", "seconds"),
    [
        (Trip("t", at(0), at(754.9)), 754),
        (Trip("t", at(0), at(0)), 0),
        (Trip("t", None, at(10)), 0),
        (Trip("t", at(10), None), 0),
        (Trip("t", at(10), at(0)), 0),
    ],
)
def test_a_trip_lasts_whole_seconds_from_start_to_end_and_never_less_than_zero(trip, seconds):
    assert trip.seconds == seconds


def test_a_late_start_turns_an_end_without_start_into_a_full_trip():
    _, before = pair_trips([end("e", 600)])
    trips, after = pair_trips([end("e", 600), start("s", 0)])

    assert kinds(before) == [(TRIP_END_WITHOUT_START, "e", None)]
    assert trips == [Trip("t1", at(0), at(600))] and after == []


def test_the_age_of_an_open_trip_can_be_judged_against_a_given_instant():
    trips, anomalies = pair_trips([start("s", 0)], latest_ts=at(30 * HOUR), max_trip_hours=24)

    assert trips == [Trip("t1", at(0), None)]
    assert anomalies[0].details == (
        "trip 't1' has no end and it is over 24 h old; not counted until it ends"
    )
    assert pair_trips([start("s", 0)], latest_ts=at(30 * HOUR), max_trip_hours=48)[1] == []


def test_trips_come_in_order_of_their_first_event_whatever_the_arrival_order():
    events = [start("a", 0, "t9"), end("b", 60, "t9"), end("c", 300, "t1"), start("d", 120, "t1")]

    trips, _ = pair_trips(reversed(events))

    assert [trip.trip_id for trip in trips] == ["t9", "t1"]
    assert pair_trips(events) == pair_trips(reversed(events))


def test_no_readings_give_no_trips():
    assert pair_trips([]) == ([], [])
