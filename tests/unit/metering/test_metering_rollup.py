from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.metering.usage import (
    Bucket,
    Delta,
    Reading,
    Trip,
    Usage,
    bucket_start,
    derive_deltas,
    pair_trips,
    rollup,
    rollup_rows,
    usage_from_buckets,
)
from billing.periods import Period, local_days

PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
MICROSECOND = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "start"),
    [
        (utc(2026, 11, 2, 9, 15), utc(2026, 11, 2, 9, 15)),
        (utc(2026, 11, 2, 9, 15) - MICROSECOND, utc(2026, 11, 2, 9, 0)),
        (utc(2026, 11, 2, 9, 29, 59), utc(2026, 11, 2, 9, 15)),
        (datetime(2026, 11, 2, 10, 20, tzinfo=PARIS), utc(2026, 11, 2, 9, 15)),
        (datetime(2026, 11, 2, 15, 0, tzinfo=KATHMANDU), utc(2026, 11, 2, 9, 15)),
        (utc(1969, 12, 31, 23, 59), utc(1969, 12, 31, 23, 45)),
    ],
)
def test_a_bucket_starts_at_the_quarter_hour_in_utc_and_a_boundary_opens_its_bucket(ts, start):
    assert bucket_start(ts) == start
    assert bucket_start(ts).tzinfo is UTC


def test_bucket_start_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="ts must be timezone-aware"):
        bucket_start(datetime(2026, 11, 2, 9))


def test_usage_and_readings_go_to_the_bucket_of_their_reading_at_exact_boundaries():
    nine, quarter_past, half_past = (
        utc(2026, 11, 2, 9),
        utc(2026, 11, 2, 9, 15),
        utc(2026, 11, 2, 9, 30),
    )
    readings = [
        Reading(nine, "a", 1000, 10),
        Reading(quarter_past - MICROSECOND, "b", 1100, 12),
        Reading(quarter_past, "c", 1110, 13),
        Reading(half_past - MICROSECOND, "d", 1200, 13),
        Reading(half_past, "e", 1205, 15),
    ]
    deltas, _ = derive_deltas(readings)

    buckets = rollup(deltas, [], readings)

    assert buckets == {
        nine: Bucket(nine, distance_m=100, energy_wh=2, readings=2),
        quarter_past: Bucket(quarter_past, distance_m=100, energy_wh=1, readings=2),
        half_past: Bucket(half_past, distance_m=5, energy_wh=2, readings=1),
    }


def test_a_trip_counts_in_the_bucket_of_its_end_and_open_trips_not_at_all():
    trips = [
        Trip("t1", utc(2026, 11, 2, 8, 50), utc(2026, 11, 2, 9, 15)),
        Trip("t2", None, utc(2026, 11, 2, 9, 29)),
        Trip("t3", utc(2026, 11, 2, 9, 20), None),
    ]

    buckets = rollup([], trips, [])

    start = utc(2026, 11, 2, 9, 15)
    assert buckets == {start: Bucket(start, trips=2, trip_seconds=25 * 60)}


def test_a_repeated_reading_is_counted_once_and_nothing_gives_no_buckets():
    reading = Reading(utc(2026, 11, 2, 9), "a", 1000)

    assert rollup([], [], [reading, reading])[utc(2026, 11, 2, 9)].readings == 1
    assert rollup([], [], []) == {}


def test_buckets_come_in_chronological_order():
    deltas = [Delta(utc(2026, 11, 2, 12), "b", 5, 0), Delta(utc(2026, 11, 2, 9), "a", 5, 0)]

    assert list(rollup(deltas, [], [])) == [utc(2026, 11, 2, 9), utc(2026, 11, 2, 12)]


def test_rollup_rows_gives_the_same_buckets_and_anomalies_as_deltas_then_rollup():
    t0 = datetime(2026, 11, 2, 9, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1)))
    readings = [
        Reading(t0, "a", 1000, 10, "t1", "start"),
        Reading(t0 + timedelta(seconds=70), "b", 1500, 11),
        Reading(t0 + timedelta(seconds=80), "c", 9000, 12),
        Reading(t0 + timedelta(minutes=20), "d", 200, 2, "t1", "end"),
        Reading(t0 + timedelta(minutes=21), "e", 300, None),
    ]
    trips, _ = pair_trips(readings)
    deltas, anomalies = derive_deltas(readings, decisions={"c": "rejected"})
    rows = [(r.ts.timestamp(), r.msg_id, r.odometer_m, r.energy_wh) for r in reversed(readings)]

    assert rollup_rows(rows, trips, decisions={"c": "rejected"}) == (
        rollup(deltas, trips, readings),
        anomalies,
    )


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [
        (0, "0"),
        (90, "1.5"),
        (3600, "60"),
        (20, "0.333333"),
        (40, "0.666667"),
        (100, "1.666667"),
        (10**15 + 1, "16666666666666.683333"),
    ],
)
def test_trip_minutes_are_exact_when_seconds_divide_evenly_and_half_up_otherwise(seconds, minutes):
    start = utc(2026, 11, 2, 9)

    usage = usage_from_buckets(
        [Bucket(start, trips=1, trip_seconds=seconds)], start, start + timedelta(hours=1), PARIS
    )

    assert usage.trip_minutes == Decimal(minutes)


def test_usage_sums_the_buckets_of_an_interval_exactly_and_leaves_out_the_rest():
    start, end = utc(2026, 11, 2), utc(2026, 11, 3)
    buckets = [
        Bucket(start - timedelta(minutes=15), distance_m=999, energy_wh=999, trips=9),
        Bucket(start, distance_m=1500, energy_wh=250, readings=4),
        Bucket(utc(2026, 11, 2, 23, 45), distance_m=1, energy_wh=1, trips=1, trip_seconds=90),
        Bucket(end, distance_m=999, energy_wh=999, trips=9),
    ]

    assert usage_from_buckets(buckets, start, end, ZoneInfo("UTC")) == Usage(
        distance_km=Decimal("1.501"),
        energy_kwh=Decimal("0.251"),
        trips=1,
        trip_minutes=Decimal("1.5"),
        active_days=1,
    )


def test_usage_of_no_buckets_is_zero():
    start = utc(2026, 11, 1)

    assert usage_from_buckets([], start, start, PARIS) == Usage(
        Decimal(0), Decimal(0), 0, Decimal(0), 0
    )


def test_usage_bounds_must_fall_on_bucket_boundaries():
    with pytest.raises(ValueError, match="start 2026-11-02T09:05:00\\+00:00 is not on a 15-min"):
        usage_from_buckets([], utc(2026, 11, 2, 9, 5), utc(2026, 11, 3), PARIS)


@pytest.mark.parametrize(
    ("tz", "moving_buckets", "active_days"),
    [
        # 22:45 and 23:00 UTC are two local days in Paris in winter (UTC+1), one in UTC.
        (PARIS, [utc(2026, 11, 2, 22, 45), utc(2026, 11, 2, 23)], 2),
        (ZoneInfo("UTC"), [utc(2026, 11, 2, 22, 45), utc(2026, 11, 2, 23)], 1),
        # Local midnight is 18:30 UTC in Kolkata and 18:15 UTC in Kathmandu.
        (KOLKATA, [utc(2026, 11, 2, 18, 15), utc(2026, 11, 2, 18, 30)], 2),
        (KOLKATA, [utc(2026, 11, 2, 18), utc(2026, 11, 2, 18, 15)], 1),
        (KATHMANDU, [utc(2026, 11, 2, 18), utc(2026, 11, 2, 18, 15)], 2),
        (KATHMANDU, [utc(2026, 11, 2, 18, 15), utc(2026, 11, 2, 18, 30)], 1),
        # The 25-hour day of Paris: 22:00 UTC on the 24th to 23:00 UTC on the 25th.
        (PARIS, [utc(2026, 10, 24, 22), utc(2026, 10, 25, 22, 45)], 1),
        (PARIS, [utc(2026, 10, 24, 21, 45), utc(2026, 10, 24, 22)], 2),
        # The 23-hour day: 23:00 UTC on the 28th of March to 22:00 UTC on the 29th.
        (PARIS, [utc(2026, 3, 28, 23), utc(2026, 3, 29, 21, 45)], 1),
        (PARIS, [utc(2026, 3, 29, 21, 45), utc(2026, 3, 29, 22)], 2),
    ],
)
def test_active_days_are_local_days_with_some_distance(tz, moving_buckets, active_days):
    buckets = [Bucket(start, distance_m=10) for start in moving_buckets]
    buckets.append(Bucket(utc(2026, 1, 10), energy_wh=50, readings=3))  # energy alone: idle
    start, end = utc(2026, 1, 1), utc(2027, 1, 1)

    assert usage_from_buckets(buckets, start, end, tz).active_days == active_days


@pytest.mark.parametrize(
    ("tz", "period"),
    [(PARIS, Period(2026, 3)), (PARIS, Period(2026, 10)), (KOLKATA, Period(2026, 11))],
)
def test_a_month_of_usage_is_the_sum_of_its_local_days(tz, period):
    start, end = period.bounds(tz)
    buckets = [
        Bucket(start + timedelta(minutes=15 * i), distance_m=i % 7, energy_wh=i % 3, trips=i % 2)
        for i in range(-8, int((end - start).total_seconds()) // 900 + 8)
    ]

    month = usage_from_buckets(buckets, start, end, tz)
    days = [usage_from_buckets(buckets, a, b, tz) for _, a, b in local_days(start, end, tz)]

    assert month.distance_km == sum(day.distance_km for day in days)
    assert month.energy_kwh == sum(day.energy_kwh for day in days)
    assert month.trips == sum(day.trips for day in days)
    assert month.active_days == sum(day.active_days for day in days) == period.days()
