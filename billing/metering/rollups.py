"""Keeping usage rollups in step with stored readings, incrementally, and rebuilding them.

The ingest adds a row to `metering_queue` for each vehicle it stores readings for, with the
[since, until] of those readings. A metering pass, run by the scheduler every few seconds,
merges the rows of each queued vehicle and recomputes only the 15-minute buckets whose
usage can change:
from the bucket of `since` to the bucket of the first reading after `until` for each
counter (its difference from its predecessor changed). Usage is derived by the pure
functions of billing.metering.usage from the window's readings and the last reading of each
counter before it, so the rollups always equal a full recomputation whatever the arrival
order — `billing usage verify` checks exactly that.

Trips live in their own table (one row per trip, by the event that ends it) and anomalies
in theirs; local days are maintained by adding each bucket's change to its day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    ColumnElement,
    ScalarSelect,
    String,
    and_,
    column,
    select,
    tuple_,
    values,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute, Session

from billing.db import UNCACHED, Database, UTCDateTime, utcnow
from billing.devices.models import Customer, Fleet, Vehicle
from billing.metering import rollup_store as store
from billing.metering import usage
from billing.metering.models import AnomalyRecord
from billing.settings import Settings
from billing.telemetry.models import MeteringQueue, Reading

BUCKET = dt.timedelta(seconds=usage.BUCKET_SECONDS)
READING_COLUMNS = (
    Reading.vehicle_id,
    Reading.msg_id,
    Reading.ts,
    Reading.odometer_m,
    Reading.energy_wh,
    Reading.trip_id,
    Reading.trip_event,
)
# A reading as READING_COLUMNS selects it.
ReadingRow = Row[str, str, dt.datetime, int | None, int | None, str | None, str | None]
ACCEPTED, REJECTED = usage.ACCEPTED, usage.REJECTED
DEFAULT_BATCH = 500


@dataclass(frozen=True)
class Queued:
    """The queue rows of one vehicle a pass took, merged: their widest [since, until]."""

    vehicle_id: str
    since: dt.datetime
    until: dt.datetime
    row_ids: tuple[int, ...]


@dataclass
class Window:
    """The part of one vehicle's history a pass recomputes: buckets in [lo, hi)."""

    vehicle_id: str
    lo: dt.datetime
    hi: dt.datetime
    baseline: usage.Baseline = field(default_factory=usage.Baseline)
    readings: list[ReadingRow] = field(default_factory=list)


@dataclass(frozen=True)
class PassResult:
    vehicles: int = 0
    readings: int = 0


@dataclass
class PlannedPass:
    """A metering pass computed from what is stored, not yet written."""

    queued: list[Queued]
    windows: list[Window]
    zones: dict[str, ZoneInfo]
    buckets: dict[str, dict[dt.datetime, usage.Bucket]] = field(default_factory=dict)
    anomalies: dict[str, list[usage.Anomaly]] = field(default_factory=dict)
    trip_events: dict[str, list[usage.Reading]] = field(default_factory=dict)


def update_rollups(
    session: Session,
    now: dt.datetime,
    *,
    max_speed_kmh: int = usage.DEFAULT_MAX_SPEED_KMH,
    batch: int = DEFAULT_BATCH,
) -> PassResult:
    """Recompute the usage of up to `batch` queued vehicles, in one transaction, and commit.

    Returns what was done; call again while it reports vehicles (the queue may be longer).
    """
    planned = plan_pass(session, max_speed_kmh=max_speed_kmh, batch=batch)
    if planned is None:
        return PassResult()
    return write_pass(session, planned, now)


def plan_pass(
    session: Session,
    *,
    max_speed_kmh: int = usage.DEFAULT_MAX_SPEED_KMH,
    batch: int = DEFAULT_BATCH,
) -> PlannedPass | None:
    """Read up to `batch` queued vehicles' windows and compute their usage; only reads, so
    that it can run without holding the write lock; None when the queue is empty."""
    queued = _take_queue(session, batch)
    if not queued:
        return None
    windows = _windows(session, queued)
    _load_readings(session, windows)
    decisions = _decisions(session, [w.vehicle_id for w in windows])
    planned = PlannedPass(queued, windows, customer_zones(session, [w.vehicle_id for w in windows]))
    for w in windows:
        planned.buckets[w.vehicle_id], planned.anomalies[w.vehicle_id] = usage.rollup_rows(
            [(r.ts.timestamp(), r.msg_id, r.odometer_m, r.energy_wh) for r in w.readings],
            max_speed_kmh=max_speed_kmh,
            decisions=decisions.get(w.vehicle_id, {}),
            baseline=w.baseline,
        )
        events = [_as_usage(r) for r in w.readings if r.trip_id and r.trip_event]
        if events:
            planned.trip_events[w.vehicle_id] = events
    return planned


def write_pass(session: Session, planned: PlannedPass, now: dt.datetime) -> PassResult:
    """Write a planned pass — buckets, days, trips, anomalies — dequeue the rows it was
    planned from, and commit.

    It may be written in a later transaction than the one it was planned in: a reading
    committed in between comes with a queue row the pass did not take, so the next pass
    recomputes the buckets that reading changes, from a view that includes it.
    """
    windows, anomalies = planned.windows, planned.anomalies
    store.replace_buckets(session, windows, planned.buckets, planned.zones)
    trip_anomalies, trip_scopes = store.update_trips(session, planned.trip_events)
    for vehicle_id, found in trip_anomalies.items():
        anomalies[vehicle_id] += found
    store.record_anomalies(session, windows, anomalies, trip_scopes, now)
    store.dequeue(session, [row_id for entry in planned.queued for row_id in entry.row_ids])
    session.commit()
    return PassResult(vehicles=len(windows), readings=sum(len(w.readings) for w in windows))


def meter(database: Database, settings: Settings) -> int:
    """The metering pass: bring the usage rollups up to date with every stored reading
    (the scheduler runs it every few seconds); returns the vehicle windows metered.

    Each batch is read and computed in a read-only transaction and written in a short
    one: on SQLite, the ingest's commits wait only for the writing.
    """
    total = 0
    while True:
        with database.reading() as session:
            planned = plan_pass(session, max_speed_kmh=settings.metering.max_speed_kmh)
        if planned is None:
            return total
        with database.session() as session:
            total += write_pass(session, planned, utcnow()).vehicles


def enqueue(
    session: Session, vehicle_id: str, since: dt.datetime, until: dt.datetime, now: dt.datetime
) -> None:
    """Ask for the usage of `vehicle_id` over [since, until] to be recomputed."""
    session.add(MeteringQueue(vehicle_id=vehicle_id, since=since, until=until, enqueued_at=now))


# --- windows ----------------------------------------------------------------------------

# The oldest rows a pass looks at to choose its vehicles: enough to find `batch` distinct
# vehicles when each has a few rows, without scanning a long backlog.
ROWS_PER_VEHICLE_LOOKED_AT = 8


def _take_queue(session: Session, batch: int) -> list[Queued]:
    """The vehicles of the oldest queue rows (up to `batch`), each with all its rows.

    The rows are those visible now; rows committed later stay for the next pass, and
    `dequeue` deletes exactly these ids, so no concurrent batch is ever dropped.
    """
    oldest = (
        select(MeteringQueue.vehicle_id)
        .order_by(MeteringQueue.id)
        .limit(batch * ROWS_PER_VEHICLE_LOOKED_AT)
        .subquery()
    )
    vehicles = select(oldest.c.vehicle_id).distinct().limit(batch)
    rows = session.execute(
        select(MeteringQueue.vehicle_id, MeteringQueue.id, MeteringQueue.since, MeteringQueue.until)
        .where(MeteringQueue.vehicle_id.in_(vehicles))
        .order_by(MeteringQueue.id)
    )
    merged: dict[str, list] = {}
    for vehicle_id, row_id, since, until in rows:
        entry = merged.get(vehicle_id)
        if entry is None:
            merged[vehicle_id] = [since, until, [row_id]]
        else:
            entry[0], entry[1] = min(entry[0], since), max(entry[1], until)
            entry[2].append(row_id)
    return [
        Queued(vehicle_id, since, until, tuple(row_ids))
        for vehicle_id, (since, until, row_ids) in merged.items()
    ]


def _windows(session: Session, queued: Sequence[Queued]) -> list[Window]:
    """Each queued vehicle's window: from the bucket of `since` to the bucket after the
    first reading following `until` for each counter (whose difference changed)."""
    queue = values(
        column("vehicle_id", String), column("since", UTCDateTime), column("until", UTCDateTime),
        name="queue",
    ).data([(q.vehicle_id, q.since, q.until) for q in queued]).cte()  # fmt: skip
    # Typed, for the rows to unpack as (vehicle_id, instants).
    vehicle_column: ColumnElement[str] = queue.c.vehicle_id
    rows = session.execute(
        select(
            vehicle_column,
            _first_after(queue, Reading.odometer_m),
            _first_after(queue, Reading.energy_wh),
        ),
        execution_options=UNCACHED,
    )
    successors = {vehicle_id: (odometer, energy) for vehicle_id, odometer, energy in rows}
    windows = []
    for row in queued:
        later = [ts for ts in successors.get(row.vehicle_id, ()) if ts is not None]
        last = max([row.until, *later])
        windows.append(
            Window(row.vehicle_id, usage.bucket_start(row.since),
                   usage.bucket_start(last) + BUCKET)
        )  # fmt: skip
    return windows


def _first_after(
    queue: CTE, counter: InstrumentedAttribute[int | None]
) -> ScalarSelect[dt.datetime]:
    return (
        select(Reading.ts)
        .where(Reading.vehicle_id == queue.c.vehicle_id, Reading.ts > queue.c.until)
        .where(counter.is_not(None))
        .order_by(Reading.ts)
        .limit(1)
        .scalar_subquery()
    )


def _last_before(bounds: CTE, counter: InstrumentedAttribute[int | None]) -> ScalarSelect[str]:
    return (
        select(Reading.msg_id)
        .where(Reading.vehicle_id == bounds.c.vehicle_id, Reading.ts < bounds.c.lo)
        .where(counter.is_not(None))
        .order_by(Reading.ts.desc(), Reading.msg_id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _window_values(windows: Iterable[Window]) -> CTE:
    return values(
        column("vehicle_id", String), column("lo", UTCDateTime), column("hi", UTCDateTime),
        name="windows",
    ).data([(w.vehicle_id, w.lo, w.hi) for w in windows]).cte()  # fmt: skip


def _load_readings(session: Session, windows: list[Window]) -> None:
    """Each window's readings, and the last reading of each counter before it."""
    by_vehicle = {w.vehicle_id: w for w in windows}
    bounds = _window_values(windows)
    inside = and_(
        Reading.vehicle_id == bounds.c.vehicle_id,
        Reading.ts >= bounds.c.lo,
        Reading.ts < bounds.c.hi,
    )
    # Plain rows, not ORM objects: a pass may read tens of thousands of readings.
    rows = session.execute(
        select(*READING_COLUMNS).join(bounds, inside), execution_options=UNCACHED
    )
    for reading in rows:
        by_vehicle[reading.vehicle_id].readings.append(reading)
    # Typed, for the rows to unpack as (vehicle_id, msg_ids).
    vehicle_column: ColumnElement[str] = bounds.c.vehicle_id
    previous = session.execute(
        select(
            vehicle_column,
            _last_before(bounds, Reading.odometer_m),
            _last_before(bounds, Reading.energy_wh),
        ),
        execution_options=UNCACHED,
    ).all()
    keys = {(vid, msg) for vid, *msgs in previous for msg in msgs if msg is not None}
    found = {}
    if keys:
        query = select(*READING_COLUMNS).where(tuple_(Reading.vehicle_id, Reading.msg_id).in_(keys))
        found = {(r.vehicle_id, r.msg_id): r for r in session.execute(query)}
    for vehicle_id, odometer_msg, energy_msg in previous:
        odometer = found.get((vehicle_id, odometer_msg))
        energy = found.get((vehicle_id, energy_msg))
        by_vehicle[vehicle_id].baseline = usage.Baseline(
            odometer=None if odometer is None else _as_usage(odometer),
            energy=None if energy is None else _as_usage(energy),
        )


def _as_usage(reading: ReadingRow) -> usage.Reading:
    return usage.Reading(
        reading.ts, reading.msg_id, reading.odometer_m, reading.energy_wh,
        reading.trip_id, reading.trip_event,
    )  # fmt: skip


def _decisions(session: Session, vehicle_ids: list[str]) -> dict[str, dict[str, str]]:
    """Operators' decisions on held jumps: {vehicle: {msg_id of the later reading: status}}."""
    rows = session.execute(
        select(AnomalyRecord.vehicle_id, AnomalyRecord.msg_id, AnomalyRecord.status).where(
            AnomalyRecord.vehicle_id.in_(vehicle_ids),
            AnomalyRecord.kind == usage.IMPLAUSIBLE_JUMP,
            AnomalyRecord.status.in_((ACCEPTED, REJECTED)),
        )
    )
    decided: dict[str, dict[str, str]] = defaultdict(dict)
    for vehicle_id, msg_id, status in rows:
        decided[vehicle_id][msg_id] = status
    return decided


def customer_zones(session: Session, vehicle_ids: Iterable[str]) -> dict[str, ZoneInfo]:
    """The time zone of each vehicle's current customer."""
    rows = session.execute(
        select(Vehicle.id, Customer.timezone)
        .join(Fleet, Vehicle.fleet_id == Fleet.id)
        .join(Customer, Fleet.customer_id == Customer.id)
        .where(Vehicle.id.in_(list(vehicle_ids)))
    )
    return {vehicle_id: ZoneInfo(name) for vehicle_id, name in rows}
