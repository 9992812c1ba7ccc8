"""Properties of usage derivation over random histories, arrivals and windows."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.metering.usage import (
    BUCKET_SECONDS,
    Reading,
    baseline_before,
    bucket_start,
    derive_deltas,
    pair_trips,
    rollup,
    rollup_rows,
    usage_from_buckets,
)
from billing.periods import Period, local_days

# Histories start just before the Paris DST changes and a month end, so that days of 23 and
# 25 hours and month cuts are crossed.
ANCHORS = [
    datetime(2026, 3, 28, 6, tzinfo=UTC),
    datetime(2026, 10, 24, 6, tzinfo=UTC),
    datetime(2026, 11, 29, 12, tzinfo=UTC),
]
ZONES = [ZoneInfo(name) for name in ("Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu", "UTC")]
TRIP_EVENTS = [None, None, None, ("t1", "start"), ("t1", "end"), ("t2", "start"), ("t2", "end")]


@dataclass(frozen=True)
class History:
    readings: list[Reading]
    decisions: dict[str, str]


# One reading's changes since the previous one: seconds and microseconds elapsed, odometer
# and energy steps (negative ones are controller swaps, 40 km may be a jump), whether each
# counter is present, and its trip event.
STEPS = st.tuples(
    st.sampled_from([0, 1, 30, 899, 900, 901, 3600, 20_000]),
    st.sampled_from([0, 0, 1, 999_999]),
    st.sampled_from([0, 5, 120, 900, 40_000, -5000]),
    st.sampled_from([0, 3, 60, -200]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(TRIP_EVENTS),
)
MSG_IDS = st.lists(st.text(alphabet="abcdef", min_size=1, max_size=3), max_size=25, unique=True)


@st.composite
def histories(draw: st.DrawFn) -> History:
    msg_ids = draw(MSG_IDS)
    ts = draw(st.sampled_from(ANCHORS))
    odometer, energy = draw(st.integers(0, 10**7)), draw(st.integers(0, 10**6))
    readings = []
    for msg_id in msg_ids:
        seconds, micros, odometer_step, energy_step, has_odometer, has_energy, trip = draw(STEPS)
        ts += timedelta(seconds=seconds, microseconds=micros)
        odometer, energy = max(0, odometer + odometer_step), max(0, energy + energy_step)
        readings.append(
            Reading(
                ts,
                msg_id,
                odometer if has_odometer else None,
                energy if has_energy else None,
                *(trip or (None, None)),
            )
        )
    decided = draw(st.lists(st.sampled_from(msg_ids), unique=True)) if msg_ids else []
    decisions = {m: draw(st.sampled_from(["accepted", "rejected"])) for m in decided}
    return History(readings, decisions)


def arrivals(history: History) -> st.SearchStrategy[list[Reading]]:
    if not history.readings:
        return st.just([])
    repeats = st.lists(st.sampled_from(history.readings), max_size=10)
    return repeats.flatmap(lambda extra: st.permutations(history.readings + extra))


def buckets_of(readings: list[Reading], decisions: dict[str, str]):
    deltas, anomalies = derive_deltas(readings, decisions=decisions)
    trips, _ = pair_trips(readings)
    return rollup(deltas, trips, readings), deltas, anomalies


@settings(deadline=None)
@given(st.data(), histories())
def test_any_arrival_order_with_any_duplicates_gives_the_same_usage(data, history):
    arrived = data.draw(arrivals(history))
    tz = data.draw(st.sampled_from(ZONES))

    assert derive_deltas(arrived, decisions=history.decisions) == derive_deltas(
        history.readings, decisions=history.decisions
    )
    assert pair_trips(arrived) == pair_trips(history.readings)
    buckets = buckets_of(arrived, history.decisions)[0]
    once_in_order = buckets_of(history.readings, history.decisions)[0]
    assert buckets == once_in_order
    year = Period(2026, 1).bounds(tz)[0], Period(2027, 1).bounds(tz)[0]
    assert usage_from_buckets(buckets.values(), *year, tz) == usage_from_buckets(
        once_in_order.values(), *year, tz
    )


@settings(deadline=None)
@given(st.data(), histories())
def test_recomputing_a_window_from_its_baseline_equals_recomputing_everything(data, history):
    offset = data.draw(st.integers(min_value=-2, max_value=120)) * BUCKET_SECONDS
    window_start = bucket_start(history.readings[0].ts if history.readings else ANCHORS[0])
    window_start += timedelta(seconds=offset)
    window = [r for r in history.readings if r.ts >= window_start]
    trips, _ = pair_trips(history.readings)

    full_buckets, full_deltas, full_anomalies = buckets_of(history.readings, history.decisions)
    baseline = baseline_before(history.readings, window_start)
    deltas, anomalies = derive_deltas(window, decisions=history.decisions, baseline=baseline)
    ended_in_window = [t for t in trips if t.end_ts is not None and t.end_ts >= window_start]

    assert deltas == [d for d in full_deltas if d.ts >= window_start]
    assert anomalies == [a for a in full_anomalies if a.ts >= window_start]
    assert rollup(deltas, ended_in_window, window) == {
        start: bucket for start, bucket in full_buckets.items() if start >= window_start
    }


@settings(deadline=None)
@given(st.data(), histories())
def test_the_fast_row_path_agrees_with_deltas_then_rollup(data, history):
    arrived = data.draw(st.permutations(history.readings))
    rows = [(r.ts.timestamp(), r.msg_id, r.odometer_m, r.energy_wh) for r in arrived]
    trips, _ = pair_trips(history.readings)
    split = data.draw(st.integers(min_value=0, max_value=len(rows)))
    window_start = bucket_start(arrived[split].ts) if split < len(rows) else ANCHORS[0]
    baseline = baseline_before(history.readings, window_start)
    window_rows = [row for row in rows if row[0] >= window_start.timestamp()]
    window = [r for r in history.readings if r.ts >= window_start]

    buckets, _, anomalies = buckets_of(history.readings, history.decisions)
    window_deltas, window_anomalies = derive_deltas(
        window, decisions=history.decisions, baseline=baseline
    )

    assert rollup_rows(rows, trips, decisions=history.decisions) == (buckets, anomalies)
    assert rollup_rows(window_rows, [], decisions=history.decisions, baseline=baseline) == (
        rollup(window_deltas, [], window),
        window_anomalies,
    )


@settings(deadline=None)
@given(histories())
def test_no_metric_is_ever_negative_and_buckets_add_up_to_the_deltas(history):
    buckets, deltas, _ = buckets_of(history.readings, history.decisions)
    trips, _ = pair_trips(history.readings)

    assert all(d.distance_m >= 0 and d.energy_wh >= 0 for d in deltas)
    assert all(d.distance_m > 0 or d.energy_wh > 0 for d in deltas)
    for b in buckets.values():
        assert min(b.distance_m, b.energy_wh, b.trips, b.trip_seconds, b.readings) >= 0
    assert sum(b.distance_m for b in buckets.values()) == sum(d.distance_m for d in deltas)
    assert sum(b.energy_wh for b in buckets.values()) == sum(d.energy_wh for d in deltas)
    assert sum(b.trips for b in buckets.values()) == sum(t.end_ts is not None for t in trips)
    assert sum(b.readings for b in buckets.values()) == len(history.readings)
    assert all(start == bucket_start(start) for start in buckets)


@settings(deadline=None)
@given(histories(), st.sampled_from(ZONES))
def test_usage_over_a_month_is_the_sum_of_usage_over_its_local_days(history, tz):
    buckets = buckets_of(history.readings, history.decisions)[0].values()
    first = history.readings[0].ts if history.readings else ANCHORS[0]
    start, end = Period.containing(first, tz).bounds(tz)

    month = usage_from_buckets(buckets, start, end, tz)
    days = [usage_from_buckets(buckets, a, b, tz) for _, a, b in local_days(start, end, tz)]

    assert month.distance_km == sum(day.distance_km for day in days) >= 0
    assert month.energy_kwh == sum(day.energy_kwh for day in days) >= 0
    assert month.trips == sum(day.trips for day in days) >= 0
    assert month.active_days == sum(day.active_days for day in days) >= 0
    assert month.trip_minutes >= 0


@settings(deadline=None)
@given(histories())
def test_each_bucket_holds_exactly_what_happened_in_its_quarter_hour(history):
    buckets, deltas, _ = buckets_of(history.readings, history.decisions)
    ended = [t for t in pair_trips(history.readings)[0] if t.end_ts is not None]

    def column(name: str) -> dict[datetime, int]:
        return {start: getattr(b, name) for start, b in buckets.items() if getattr(b, name)}

    assert column("distance_m") == by_bucket((d.ts, d.distance_m) for d in deltas)
    assert column("energy_wh") == by_bucket((d.ts, d.energy_wh) for d in deltas)
    assert column("trips") == by_bucket((t.end_ts, 1) for t in ended)
    assert column("trip_seconds") == by_bucket((t.end_ts, t.seconds) for t in ended)
    assert column("readings") == by_bucket((r.ts, 1) for r in history.readings)


def by_bucket(amounts: Iterable[tuple[datetime, int]]) -> dict[datetime, int]:
    """Reference rollup: each amount summed into the bucket its instant falls in."""
    totals: Counter[datetime] = Counter()
    for instant, amount in amounts:
        totals[bucket_start(instant)] += amount
    return {start: total for start, total in totals.items() if total}
