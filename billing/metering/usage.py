"""Usage derivation: from one vehicle's raw telemetry readings to billable quantities.

Pure functions on plain data (standard library only), the rules of docs/telemetry.md
("From readings to usage"):

- Readings arrive late, out of order and repeated. They are deduplicated by `msg_id` (the
  first one seen is kept, as the store keeps the first; `rollup_rows` expects stored rows,
  already unique) and ordered by `(ts, msg_id)`, so the result is the same whatever the
  arrival order.
- `odometer_m` and `energy_wh` are cumulative counters, each with its own chain: usage is
  the difference between a reading and the last earlier reading carrying that counter, and
  is attributed to the later reading. A reading without a counter neither adds to nor
  breaks that counter's chain.
- A counter that goes backwards (controller swap) bills nothing, starts a new baseline and
  is reported as a `counter_reset` anomaly for that counter.
- An odometer rise faster than `max_speed_kmh` on average (time floored at 1 second) is an
  `implausible_jump`: held out of billing until an operator decides, keyed by the later
  reading's `msg_id`: "accepted" bills it, "rejected" drops it. The baseline moves to the
  later reading whatever the decision. Energy has no such check.
- A delta depends only on the previous reading of each counter, so a window of readings
  can be recomputed alone from a `Baseline` (the last reading with each counter before it)
  and gives the same deltas and anomalies as a recomputation of the whole history. For
  its buckets to be whole, a window starts on a bucket boundary (`bucket_start` of the
  earliest new reading) and comes with the trips that end in it.
- Trips are paired by `trip_id` (`pair_trips`, rules there) and count where they end.

Rollups are 15-minute UTC buckets: every IANA offset in use today is a multiple of 15
minutes (Asia/Kolkata +05:30, Asia/Kathmandu +05:45), so buckets add up to exact local days.
"""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import repeat
from operator import floordiv, itemgetter
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from billing.periods import as_utc

BUCKET_SECONDS = 900
DEFAULT_MAX_SPEED_KMH = 60
DEFAULT_MAX_TRIP_HOURS = 24

TRIP_START = "start"
TRIP_END = "end"
ACCEPTED = "accepted"
REJECTED = "rejected"
ODOMETER = "odometer"
ENERGY = "energy"

COUNTER_RESET = "counter_reset"
IMPLAUSIBLE_JUMP = "implausible_jump"
TRIP_END_WITHOUT_START = "trip_end_without_start"
TRIP_END_BEFORE_START = "trip_end_before_start"
TRIP_NEVER_ENDED = "trip_never_ended"
TRIP_DUPLICATE_EVENT = "trip_duplicate_event"

NO_DECISIONS: Mapping[str, str] = MappingProxyType({})

# (epoch seconds, msg_id, odometer_m, energy_wh): the shape `rollup_rows` takes, cheap to
# select straight from the readings table.
ReadingRow = tuple[float, str, int | None, int | None]

_ONE_SECOND = timedelta(seconds=1)
_MINUTE_PLACES = 6


@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry message of a vehicle (docs/telemetry.md)."""

    ts: datetime
    msg_id: str
    odometer_m: int | None = None
    energy_wh: int | None = None
    trip_id: str | None = None
    trip_event: str | None = None

    def __post_init__(self) -> None:
        as_utc(self.ts, f"ts of reading {self.msg_id!r}")
        if self.trip_event not in (None, TRIP_START, TRIP_END):
            raise ValueError(
                f"trip_event of reading {self.msg_id!r} must be 'start', 'end' or None, "
                f"not {self.trip_event!r}"
            )


@dataclass(frozen=True, slots=True)
class Baseline:
    """The last reading carrying each counter before a recomputation window.

    `odometer` must have an `odometer_m` and `energy` an `energy_wh`; they may be the same
    reading. `None` means the counter has no earlier value: its first reading in the window
    only sets the baseline.
    """

    odometer: Reading | None = None
    energy: Reading | None = None

    def __post_init__(self) -> None:
        if self.odometer is not None and self.odometer.odometer_m is None:
            raise ValueError(f"odometer baseline {self.odometer.msg_id!r} has no odometer_m")
        if self.energy is not None and self.energy.energy_wh is None:
            raise ValueError(f"energy baseline {self.energy.msg_id!r} has no energy_wh")


@dataclass(frozen=True, slots=True)
class Delta:
    """Billable usage attributed to one reading (only readings that add usage have one)."""

    ts: datetime
    msg_id: str
    distance_m: int
    energy_wh: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something an operator should see; `details` says it in one sentence.

    `counter` names the counter concerned ("odometer" or "energy"): a controller swap
    resetting both on one reading gives two distinct `counter_reset` anomalies; an
    `implausible_jump` is the odometer's. Trip anomalies have none. `decision`
    is the operator's decision on an `implausible_jump` (None while it is held).
    """

    kind: str
    ts: datetime
    msg_id: str
    previous_msg_id: str | None
    distance_m: int = 0
    details: str = ""
    counter: str | None = None
    decision: str | None = None


@dataclass(frozen=True, slots=True)
class Trip:
    """A trip paired from its start and end events; it counts where it ends."""

    trip_id: str
    start_ts: datetime | None
    end_ts: datetime | None

    @property
    def seconds(self) -> int:
        """Whole seconds from start to end, rounded down; 0 without a start or end, or if
        the end is not after the start."""
        if self.start_ts is None or self.end_ts is None or self.end_ts <= self.start_ts:
            return 0
        return (self.end_ts - self.start_ts) // _ONE_SECOND


@dataclass(frozen=True, slots=True)
class Bucket:
    """One vehicle's usage in the 15 minutes from `start` (UTC)."""

    start: datetime
    distance_m: int = 0
    energy_wh: int = 0
    trips: int = 0
    trip_seconds: int = 0
    readings: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Billable quantities over an interval. km and kWh are exact (meters and Wh / 1000);
    minutes are exact when the division terminates (seconds a multiple of 3), else rounded
    half-up to 6 decimals."""

    distance_km: Decimal
    energy_kwh: Decimal
    trips: int
    trip_minutes: Decimal
    active_days: int


def bucket_start(ts: datetime) -> datetime:
    """Start (UTC) of the 15-minute bucket containing `ts`; a boundary starts its bucket."""
    return _bucket_datetime(as_utc(ts, "ts").timestamp() // BUCKET_SECONDS)


def baseline_before(readings: Iterable[Reading], before: datetime) -> Baseline:
    """The baseline for a window starting at `before`: the last reading (by `(ts, msg_id)`)
    with an odometer and the last with an energy counter among those with `ts < before`."""
    before = as_utc(before, "before")
    earlier = [r for r in _unique_sorted(readings) if r.ts < before]
    odometer = next((r for r in reversed(earlier) if r.odometer_m is not None), None)
    energy = next((r for r in reversed(earlier) if r.energy_wh is not None), None)
    return Baseline(odometer, energy)


def derive_deltas(
    readings: Iterable[Reading],
    *,
    max_speed_kmh: Decimal | int = DEFAULT_MAX_SPEED_KMH,
    decisions: Mapping[str, str] = NO_DECISIONS,
    baseline: Baseline | None = None,
) -> tuple[list[Delta], list[Anomaly]]:
    """Deltas and anomalies of one vehicle's readings, by the rules in the module docstring.

    Deltas are in `(ts, msg_id)` order and only for readings that add distance or energy.
    With a `baseline`, `readings` are a window that must sort entirely after it; the result
    equals the window's part of a full recomputation. Hazard: a decision is keyed by the
    later reading only, so if a late reading lands inside a decided jump, the decision
    applies to the new, shorter pair; a caller may store `previous_msg_id` with the decision
    to notice.
    """
    unique = {reading.msg_id: reading for reading in _reversed(readings)}
    rows = sorted(
        (r.ts.timestamp(), r.msg_id, r.odometer_m, r.energy_wh, r) for r in unique.values()
    )
    changes, anomalies = _walk(rows, baseline, max_speed_kmh, decisions, _reading_ts)
    deltas = [
        Delta(row[4].ts, row[1], distance, energy)
        for row, distance, energy in zip(
            changes.rows, changes.distance_m, changes.energy_wh, strict=True
        )
    ]
    return deltas, anomalies


def pair_trips(
    readings: Iterable[Reading],
    *,
    latest_ts: datetime | None = None,
    max_trip_hours: int = DEFAULT_MAX_TRIP_HOURS,
) -> tuple[list[Trip], list[Anomaly]]:
    """Pair one vehicle's trip events into trips by `trip_id`, in order of first event.

    Events are the readings with both a `trip_id` and a `trip_event`, deduplicated and
    ordered like readings. Rules:
    - The first start and the first end of a trip are kept; a further start or end (a
      retransmission after a reboot, say) is a `trip_duplicate_event` and is ignored, so a
      trip is never counted twice nor lengthened.
    - A trip with an end counts once, at its end, for `Trip.seconds` (end minus start).
    - An end without a start still counts, for 0 seconds: `trip_end_without_start` (the
      start may arrive later; pairing is recomputed then).
    - An end earlier than its start counts for 0 seconds: `trip_end_before_start`.
    - A start without an end is an open trip (`end_ts` None) and does not count. It is
      `trip_never_ended` once another trip started strictly later, or once it started more
      than `max_trip_hours` before `latest_ts` (default: the latest reading given).
    """
    ordered = _unique_sorted(readings)
    if not ordered:
        return [], []
    latest = ordered[-1].ts if latest_ts is None else as_utc(latest_ts, "latest_ts")
    events: dict[str, list[Reading]] = {}
    for reading in ordered:
        if reading.trip_id is not None and reading.trip_event is not None:
            events.setdefault(reading.trip_id, []).append(reading)
    anomalies: list[Anomaly] = []
    paired = [_pair(trip_id, trip_events, anomalies) for trip_id, trip_events in events.items()]
    last_start = max((trip.start_ts for trip, _ in paired if trip.start_ts), default=None)
    too_old = timedelta(hours=max_trip_hours)
    for trip, start in paired:
        if trip.end_ts is not None or start is None:
            continue
        if last_start is not None and last_start > start.ts:
            anomalies.append(_never_ended(trip, start, "a later trip has started"))
        elif latest - start.ts > too_old:
            anomalies.append(_never_ended(trip, start, f"it is over {max_trip_hours} h old"))
    return [trip for trip, _ in paired], anomalies


def rollup(
    deltas: Iterable[Delta], trips: Iterable[Trip], readings: Iterable[Reading]
) -> dict[datetime, Bucket]:
    """15-minute buckets of one vehicle, keyed by their UTC start, in chronological order.

    A delta goes to the bucket of its reading, a trip to the bucket of its end (open trips
    are left out), and each reading (once per `msg_id`) is counted in the bucket of its `ts`.
    Only buckets with something non-zero are returned. Hazard: a bucket is only whole if
    everything of its 15 minutes was given; a trip ending before a window would yield a
    partial bucket that must not overwrite a stored one.
    """
    unique = {reading.msg_id: reading.ts for reading in _reversed(readings)}
    sums = _Sums([ts.timestamp() for ts in unique.values()])
    deltas = list(deltas)
    sums.add_usage(
        [delta.ts.timestamp() for delta in deltas],
        [delta.distance_m for delta in deltas],
        [delta.energy_wh for delta in deltas],
    )
    sums.add_trips(trips)
    return sums.buckets()


def rollup_rows(
    rows: Iterable[ReadingRow],
    trips: Iterable[Trip] = (),
    *,
    max_speed_kmh: Decimal | int = DEFAULT_MAX_SPEED_KMH,
    decisions: Mapping[str, str] = NO_DECISIONS,
    baseline: Baseline | None = None,
) -> tuple[dict[datetime, Bucket], list[Anomaly]]:
    """`derive_deltas` then `rollup`, on plain rows and without `Delta` objects: for rebuilds.

    Same rules and results, given rows `(epoch_seconds, msg_id, odometer_m, energy_wh)`
    (`ts.timestamp()` gives epoch seconds), in any order, but unique by `msg_id`: they are
    meant to come from the readings table, whose unique key already removed duplicates,
    and skipping deduplication saves a fifth of the time. Anomaly timestamps are rebuilt in
    UTC from the epoch seconds. As for `rollup`, pass only the trips ending in the window.
    Fastest when rows come ordered by `(ts, msg_id)`, as sorting is then linear.
    """
    ordered = sorted(rows)
    changes, anomalies = _walk(ordered, baseline, max_speed_kmh, decisions, _row_ts)
    sums = _Sums(map(itemgetter(0), ordered))
    sums.add_usage(map(itemgetter(0), changes.rows), changes.distance_m, changes.energy_wh)
    sums.add_trips(trips)
    return sums.buckets(), anomalies


def usage_from_buckets(
    buckets: Iterable[Bucket], start: datetime, end: datetime, tz: ZoneInfo
) -> Usage:
    """Usage of the buckets starting in [start, end); both ends must be bucket boundaries.

    `active_days` counts the local days of `tz` with some distance. Local midnights fall on
    bucket boundaries, so a bucket never straddles two local days.
    """
    lower, upper = _bucket_boundary(start, "start"), _bucket_boundary(end, "end")
    distance_m = energy_wh = trips = trip_seconds = 0
    active: set[date] = set()
    for bucket in buckets:
        if not lower <= bucket.start < upper:
            continue
        distance_m += bucket.distance_m
        energy_wh += bucket.energy_wh
        trips += bucket.trips
        trip_seconds += bucket.trip_seconds
        if bucket.distance_m > 0:
            active.add(bucket.start.astimezone(tz).date())
    return Usage(
        distance_km=Decimal(distance_m).scaleb(-3),
        energy_kwh=Decimal(energy_wh).scaleb(-3),
        trips=trips,
        trip_minutes=minutes(trip_seconds),
        active_days=len(active),
    )


def _walk(
    rows: Sequence[Any],
    baseline: Baseline | None,
    max_speed_kmh: Decimal | int,
    decisions: Mapping[str, str],
    ts_of: Callable[[Any], datetime],
) -> tuple["_Changes", list[Anomaly]]:
    """The counter chains over rows `(epoch seconds, msg_id, odometer_m, energy_wh, ...)`
    sorted by (epoch seconds, msg_id): the rows that add usage with their usage, and the
    anomalies. The hot loop of rebuilds: plain locals, rare cases in helpers.
    """
    odo, odo_t, odo_msg, energy, energy_msg = _start_state(rows, baseline)
    per_metre, per_second = _jump_factors(max_speed_kmh)
    changes = _Changes()
    changed, add_distance, add_energy = (
        changes.rows.append,
        changes.distance_m.append,
        changes.energy_wh.append,
    )
    anomalies: list[Anomaly] = []
    for row in rows:
        distance = used = 0
        new_odo = row[2]
        if new_odo is not None:
            if odo is not None and new_odo != odo:
                rise = new_odo - odo
                seconds = row[0] - odo_t
                if rise < 0:
                    anomalies.append(_reset(ts_of(row), row[1], odo_msg, ODOMETER, odo, new_odo))
                elif rise * per_metre <= per_second * (seconds if seconds > 1 else 1):
                    distance = rise
                else:
                    decision = decisions.get(row[1])
                    anomalies.append(
                        _jump(ts_of(row), row[1], odo_msg, rise, seconds, max_speed_kmh, decision)
                    )
                    if decision == ACCEPTED:
                        distance = rise
            odo, odo_t, odo_msg = new_odo, row[0], row[1]
        new_energy = row[3]
        if new_energy is not None:
            if energy is not None and new_energy != energy:
                if new_energy < energy:
                    anomalies.append(
                        _reset(ts_of(row), row[1], energy_msg, ENERGY, energy, new_energy)
                    )
                else:
                    used = new_energy - energy
            energy, energy_msg = new_energy, row[1]
        if distance or used:
            changed(row)
            add_distance(distance)
            add_energy(used)
    return changes, anomalies


def _start_state(
    rows: Sequence[Any], baseline: Baseline | None
) -> tuple[int | None, float, str | None, int | None, str | None]:
    odometer = baseline.odometer if baseline else None
    energy = baseline.energy if baseline else None
    if rows:
        _require_after(rows[0], odometer)
        _require_after(rows[0], energy)
    return (
        odometer.odometer_m if odometer else None,
        odometer.ts.timestamp() if odometer else 0.0,
        odometer.msg_id if odometer else None,
        energy.energy_wh if energy else None,
        energy.msg_id if energy else None,
    )


def _require_after(first: Any, before: Reading | None) -> None:
    # A window overlapping its baseline would bill the overlap twice.
    if before is not None and (first[0], first[1]) <= (before.ts.timestamp(), before.msg_id):
        raise ValueError(
            f"reading {first[1]!r} is not after baseline reading {before.msg_id!r}; "
            "a window must start after its baseline"
        )


def _jump_factors(max_speed_kmh: Decimal | int) -> tuple[int, int]:
    # rise_m / seconds * 3.6 > speed  <=>  rise_m * 3600 * den > num * 1000 * seconds, which
    # stays exact in integers (speed = num / den) for whole-second timestamps.
    speed = Fraction(max_speed_kmh)
    if speed <= 0:
        raise ValueError(f"max_speed_kmh must be positive, not {max_speed_kmh}")
    return 3600 * speed.denominator, 1000 * speed.numerator


def _reset(
    ts: datetime, msg_id: str, previous_msg_id: str | None, counter: str, before: int, after: int
) -> Anomaly:
    unit = "m" if counter == ODOMETER else "Wh"
    return Anomaly(
        kind=COUNTER_RESET,
        ts=ts,
        msg_id=msg_id,
        previous_msg_id=previous_msg_id,
        details=f"{counter} went from {before} {unit} to {after} {unit}; new baseline",
        counter=counter,
    )


def _jump(
    ts: datetime,
    msg_id: str,
    previous_msg_id: str | None,
    rise: int,
    seconds: float,
    max_speed_kmh: Decimal | int,
    decision: str | None,
) -> Anomaly:
    outcomes = {
        None: "held until an operator decides",
        ACCEPTED: "accepted by an operator and billed",
        REJECTED: "rejected by an operator and not billed",
    }
    if decision not in outcomes:
        raise ValueError(
            f"decision for reading {msg_id!r} must be 'accepted' or 'rejected', not {decision!r}"
        )
    speed = rise * 3.6 / max(seconds, 1)
    return Anomaly(
        kind=IMPLAUSIBLE_JUMP,
        ts=ts,
        msg_id=msg_id,
        previous_msg_id=previous_msg_id,
        distance_m=rise,
        counter=ODOMETER,
        details=(
            f"odometer rose {rise} m in {seconds:g} s ({speed:.0f} km/h, above "
            f"{max_speed_kmh} km/h); {outcomes[decision]}"
        ),
        decision=decision,
    )


def _pair(
    trip_id: str, events: list[Reading], anomalies: list[Anomaly]
) -> tuple[Trip, Reading | None]:
    """The trip of `events` (all of one trip, in order) and its kept start event."""
    kept: dict[str, Reading] = {}
    for event in events:
        first = kept.setdefault(event.trip_event or "", event)
        if first is not event:
            anomalies.append(
                Anomaly(
                    kind=TRIP_DUPLICATE_EVENT,
                    ts=event.ts,
                    msg_id=event.msg_id,
                    previous_msg_id=first.msg_id,
                    details=(
                        f"{event.trip_event} of trip {trip_id!r} repeated; the first one, "
                        f"at {first.ts.isoformat()}, is kept"
                    ),
                )
            )
    start, end = kept.get(TRIP_START), kept.get(TRIP_END)
    trip = Trip(trip_id, start.ts if start else None, end.ts if end else None)
    if end is not None and start is None:
        anomalies.append(
            Anomaly(
                kind=TRIP_END_WITHOUT_START,
                ts=end.ts,
                msg_id=end.msg_id,
                previous_msg_id=None,
                details=f"trip {trip_id!r} ended without a start; counted as 0 minutes",
            )
        )
    elif end is not None and start is not None and end.ts < start.ts:
        anomalies.append(
            Anomaly(
                kind=TRIP_END_BEFORE_START,
                ts=end.ts,
                msg_id=end.msg_id,
                previous_msg_id=start.msg_id,
                details=(
                    f"trip {trip_id!r} ended at {end.ts.isoformat()}, before its start at "
                    f"{start.ts.isoformat()}; counted as 0 minutes"
                ),
            )
        )
    return trip, start


def _never_ended(trip: Trip, start: Reading, reason: str) -> Anomaly:
    return Anomaly(
        kind=TRIP_NEVER_ENDED,
        ts=start.ts,
        msg_id=start.msg_id,
        previous_msg_id=None,
        details=f"trip {trip.trip_id!r} has no end and {reason}; not counted until it ends",
    )


def _reading_ts(row: tuple[float, str, int | None, int | None, Reading]) -> datetime:
    return row[4].ts


def _row_ts(row: ReadingRow) -> datetime:
    return datetime.fromtimestamp(row[0], UTC)


def _reversed(items: Iterable[Any]) -> Iterable[Any]:
    # Deduplication keeps the first occurrence, like the store: build the dict backwards.
    return reversed(items if isinstance(items, Sequence) else list(items))


def _unique_sorted(readings: Iterable[Reading]) -> list[Reading]:
    unique = {reading.msg_id: reading for reading in _reversed(readings)}
    return sorted(unique.values(), key=lambda reading: (reading.ts, reading.msg_id))


@dataclass(slots=True)
class _Changes:
    """Rows that add usage and their usage, as parallel lists rather than a tuple per row:
    fewer long-lived objects, so fewer garbage-collector passes over the caller's rows."""

    rows: list[Any] = field(default_factory=list)
    distance_m: list[int] = field(default_factory=list)
    energy_wh: list[int] = field(default_factory=list)


class _Sums:
    """Bucket totals keyed by bucket index (epoch seconds // 900).

    One dict of plain ints per field rather than a list per bucket: a rebuild then
    allocates no tracked object per bucket, which spares the garbage collector passes over
    the caller's rows (a third of the time otherwise). Float epochs give float indexes,
    which equal and hash like int ones, so both kinds of key meet in one dict.
    """

    __slots__ = ("distance_m", "energy_wh", "readings", "trip_seconds", "trips")

    def __init__(self, reading_epochs: Iterable[float]) -> None:
        self.readings = Counter(map(floordiv, reading_epochs, repeat(BUCKET_SECONDS)))
        self.distance_m: dict[float, int] = {}
        self.energy_wh: dict[float, int] = {}
        self.trips: dict[float, int] = {}
        self.trip_seconds: dict[float, int] = {}

    def add_usage(
        self, epochs: Iterable[float], distances: Iterable[int], energies: Iterable[int]
    ) -> None:
        distance_m, energy_wh = self.distance_m, self.energy_wh
        for epoch, distance, energy in zip(epochs, distances, energies, strict=True):
            index = epoch // BUCKET_SECONDS
            distance_m[index] = distance_m.get(index, 0) + distance
            energy_wh[index] = energy_wh.get(index, 0) + energy

    def add_trips(self, trips: Iterable[Trip]) -> None:
        for trip in trips:
            if trip.end_ts is not None:
                index = trip.end_ts.timestamp() // BUCKET_SECONDS
                self.trips[index] = self.trips.get(index, 0) + 1
                self.trip_seconds[index] = self.trip_seconds.get(index, 0) + trip.seconds

    def buckets(self) -> dict[datetime, Bucket]:
        columns = (self.distance_m, self.energy_wh, self.trips, self.trip_seconds, self.readings)
        buckets = {}
        for index in sorted(set().union(*columns)):
            totals = [column.get(index, 0) for column in columns]
            if any(totals):
                start = _bucket_datetime(index)
                buckets[start] = Bucket(start, *totals)
        return buckets


def _bucket_datetime(index: float) -> datetime:
    return datetime.fromtimestamp(int(index) * BUCKET_SECONDS, UTC)


def _bucket_boundary(instant: datetime, name: str) -> datetime:
    instant = as_utc(instant, name)
    if instant.timestamp() % BUCKET_SECONDS:
        raise ValueError(f"{name} {instant.isoformat()} is not on a 15-minute bucket boundary")
    return instant


def minutes(seconds: int) -> Decimal:
    # seconds / 60 terminates (within 2 decimals) when seconds is a multiple of 3; 6 places
    # keep those exact and round the others (thirds of a minute) half-up.
    scaled, remainder = divmod(seconds * 10**_MINUTE_PLACES, 60)
    if 2 * remainder >= 60:
        scaled += 1
    return Decimal(scaled).scaleb(-_MINUTE_PLACES)


def quantities(usage: Usage) -> dict[str, Decimal]:
    """The usage metrics a plan can price (vehicle_days comes from the segment)."""
    return {
        "distance_km": usage.distance_km,
        "energy_kwh": usage.energy_kwh,
        "trips": Decimal(usage.trips),
        "trip_minutes": usage.trip_minutes,
        "active_days": Decimal(usage.active_days),
    }
