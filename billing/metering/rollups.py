"""Keeping usage rollups in step with stored readings, incrementally, and rebuilding them.

The ingest marks each vehicle it stores readings for in `metering_queue` with the widest
[since, until] of those readings. A metering pass, run by the scheduler every few seconds,
recomputes for each queued vehicle only the 15-minute buckets whose usage can change:
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
    String,
    and_,
    column,
    delete,
    func,
    insert,
    select,
    tuple_,
    values,
)
from sqlalchemy.orm import Session

from billing.db import UTCDateTime
from billing.devices.models import Customer, Fleet, Vehicle
from billing.metering import usage
from billing.metering.models import (
    AnomalyRecord,
    MeteringQueue,
    Reading,
    TripRecord,
    UsageBucket,
    UsageDay,
)
from billing.periods import local_day_bounds

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
HELD, OPEN, ACCEPTED, REJECTED = "held", "open", usage.ACCEPTED, usage.REJECTED
READING_KINDS = (usage.COUNTER_RESET, usage.IMPLAUSIBLE_JUMP)
DEFAULT_BATCH = 500


@dataclass
class Window:
    """The part of one vehicle's history a pass recomputes: buckets in [lo, hi)."""

    vehicle_id: str
    version: int
    lo: dt.datetime
    hi: dt.datetime
    baseline: usage.Baseline = field(default_factory=usage.Baseline)
    readings: list[Reading] = field(default_factory=list)


@dataclass(frozen=True)
class PassResult:
    vehicles: int = 0
    readings: int = 0


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
    queued = (
        session.execute(select(MeteringQueue).order_by(MeteringQueue.enqueued_at).limit(batch))
        .scalars()
        .all()
    )
    if not queued:
        return PassResult()
    windows = _windows(session, queued)
    _load_readings(session, windows)
    decisions = _decisions(session, [w.vehicle_id for w in windows])
    zones = customer_zones(session, [w.vehicle_id for w in windows])
    for window in windows:
        _recompute(session, window, decisions, zones[window.vehicle_id], max_speed_kmh, now)
    _dequeue(session, queued)
    session.commit()
    return PassResult(vehicles=len(windows), readings=sum(len(w.readings) for w in windows))


def enqueue(
    session: Session, vehicle_id: str, since: dt.datetime, until: dt.datetime, now: dt.datetime
) -> None:
    """Ask for the usage of `vehicle_id` over [since, until] to be recomputed."""
    row = session.get(MeteringQueue, vehicle_id)
    if row is None:
        session.add(
            MeteringQueue(
                vehicle_id=vehicle_id, since=since, until=until, version=1, enqueued_at=now
            )
        )
    else:
        row.since, row.until, row.version = (
            min(row.since, since),
            max(row.until, until),
            row.version + 1,
        )


# --- windows ----------------------------------------------------------------------------


def _windows(session: Session, queued: Sequence[MeteringQueue]) -> list[Window]:
    """Each queued vehicle's window: from the bucket of `since` to the bucket after the
    first reading following `until` for each counter (whose difference changed)."""
    queue = values(
        column("vehicle_id", String), column("since", UTCDateTime), column("until", UTCDateTime),
        name="queue",
    ).data([(q.vehicle_id, q.since, q.until) for q in queued]).cte()  # fmt: skip
    rows = session.execute(
        select(
            queue.c.vehicle_id,
            _first_after(queue, Reading.odometer_m),
            _first_after(queue, Reading.energy_wh),
        )
    )
    successors = {vehicle_id: (odometer, energy) for vehicle_id, odometer, energy in rows}
    windows = []
    for row in queued:
        later = [ts for ts in successors.get(row.vehicle_id, ()) if ts is not None]
        last = max([row.until, *later])
        windows.append(
            Window(row.vehicle_id, row.version, usage.bucket_start(row.since),
                   usage.bucket_start(last) + BUCKET)
        )  # fmt: skip
    return windows


def _first_after(queue, counter):
    return (
        select(Reading.ts)
        .where(Reading.vehicle_id == queue.c.vehicle_id, Reading.ts > queue.c.until)
        .where(counter.is_not(None))
        .order_by(Reading.ts)
        .limit(1)
        .scalar_subquery()
    )


def _last_before(bounds, counter):
    return (
        select(Reading.msg_id)
        .where(Reading.vehicle_id == bounds.c.vehicle_id, Reading.ts < bounds.c.lo)
        .where(counter.is_not(None))
        .order_by(Reading.ts.desc(), Reading.msg_id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _window_values(windows: Iterable[Window]):
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
    for reading in session.execute(select(*READING_COLUMNS).join(bounds, inside)):
        by_vehicle[reading.vehicle_id].readings.append(reading)
    previous = session.execute(
        select(
            bounds.c.vehicle_id,
            _last_before(bounds, Reading.odometer_m),
            _last_before(bounds, Reading.energy_wh),
        )
    ).all()
    keys = {(vid, msg) for vid, *msgs in previous for msg in msgs if msg is not None}
    found = {}
    if keys:
        query = select(*READING_COLUMNS).where(tuple_(Reading.vehicle_id, Reading.msg_id).in_(keys))
        found = {(r.vehicle_id, r.msg_id): r for r in session.execute(query)}
    for vehicle_id, odometer_msg, energy_msg in previous:
        by_vehicle[vehicle_id].baseline = usage.Baseline(
            odometer=_as_usage(found.get((vehicle_id, odometer_msg))),
            energy=_as_usage(found.get((vehicle_id, energy_msg))),
        )


def _as_usage(reading: Reading | None) -> usage.Reading | None:
    if reading is None:
        return None
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


# --- recomputation ----------------------------------------------------------------------


def _recompute(
    session: Session,
    window: Window,
    decisions: dict[str, dict[str, str]],
    zone: ZoneInfo,
    max_speed_kmh: int,
    now: dt.datetime,
) -> None:
    rows = [(r.ts.timestamp(), r.msg_id, r.odometer_m, r.energy_wh) for r in window.readings]
    buckets, anomalies = usage.rollup_rows(
        rows,
        max_speed_kmh=max_speed_kmh,
        decisions=decisions.get(window.vehicle_id, {}),
        baseline=window.baseline,
    )
    _replace_buckets(session, window, buckets, zone)
    _record_anomalies(session, window, anomalies, _update_trips(session, window), now)


def _replace_buckets(
    session: Session, window: Window, buckets: dict[dt.datetime, usage.Bucket], zone: ZoneInfo
) -> None:
    """Swap the window's buckets for the recomputed ones and carry the change to the days."""
    old = session.execute(
        delete(UsageBucket)
        .execution_options(synchronize_session=False)  # nothing of it is loaded
        .where(
            UsageBucket.vehicle_id == window.vehicle_id,
            UsageBucket.bucket_start >= window.lo,
            UsageBucket.bucket_start < window.hi,
        )
        .returning(
            UsageBucket.bucket_start,
            UsageBucket.distance_m,
            UsageBucket.energy_wh,
            UsageBucket.readings,
        )
    ).all()
    new = [b for b in buckets.values() if b.distance_m or b.energy_wh or b.readings]
    if new:
        session.execute(
            insert(UsageBucket),
            [
                {"vehicle_id": window.vehicle_id, "bucket_start": b.start,
                 "distance_m": b.distance_m, "energy_wh": b.energy_wh, "readings": b.readings}
                for b in new
            ],
        )  # fmt: skip
    changes: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for start, distance, energy, readings in old:
        change = changes[start.astimezone(zone).date()]
        change[0] -= distance
        change[1] -= energy
        change[2] -= readings
    for b in new:
        change = changes[b.start.astimezone(zone).date()]
        change[0] += b.distance_m
        change[1] += b.energy_wh
        change[2] += b.readings
    _apply_day_changes(session, window.vehicle_id, zone, changes)


def _apply_day_changes(
    session: Session, vehicle_id: str, zone: ZoneInfo, changes: dict[dt.date, list[int]]
) -> None:
    """Add each day's change to its total; a day kept in another zone, or not kept yet, is
    summed afresh from its buckets instead."""
    stored = {
        row.day: row
        for row in session.scalars(
            select(UsageDay).where(UsageDay.vehicle_id == vehicle_id, UsageDay.day.in_(changes))
        )
    }
    for day, (distance, energy, readings) in changes.items():
        row = stored.get(day)
        if row is not None and row.timezone == zone.key:
            if distance or energy or readings:
                row.distance_m += distance
                row.energy_wh += energy
                row.readings += readings
            continue
        totals = day_totals_from_buckets(session, vehicle_id, day, zone)
        if row is None:
            session.add(UsageDay(vehicle_id=vehicle_id, day=day, timezone=zone.key, **totals))
        else:
            row.timezone = zone.key
            for name, value in totals.items():
                setattr(row, name, value)
    session.flush()


def day_totals_from_buckets(
    session: Session, vehicle_id: str, day: dt.date, zone: ZoneInfo
) -> dict[str, int]:
    start, end = local_day_bounds(day, zone)
    distance, energy, readings = session.execute(
        select(
            func.coalesce(func.sum(UsageBucket.distance_m), 0),
            func.coalesce(func.sum(UsageBucket.energy_wh), 0),
            func.coalesce(func.sum(UsageBucket.readings), 0),
        ).where(
            UsageBucket.vehicle_id == vehicle_id,
            UsageBucket.bucket_start >= start,
            UsageBucket.bucket_start < end,
        )
    ).one()
    return {"distance_m": int(distance), "energy_wh": int(energy), "readings": int(readings)}


def _update_trips(session: Session, window: Window) -> tuple[list[usage.Anomaly], set[str]]:
    """Merge the window's trip events into the trips they belong to.

    Returns the trip anomalies and the msg_ids of every event considered (the scope in
    which stale trip anomalies are cleared).
    """
    events = [_as_usage(r) for r in window.readings if r.trip_id and r.trip_event]
    if not events:
        return [], set()
    trip_ids = {e.trip_id for e in events}
    stored = session.scalars(
        select(TripRecord).where(
            TripRecord.vehicle_id == window.vehicle_id, TripRecord.trip_id.in_(trip_ids)
        )
    ).all()
    events += [event for trip in stored for event in _stored_events(trip)]
    trips, anomalies = usage.pair_trips(events, latest_ts=max(e.ts for e in events))
    kept = _kept_events(events)
    rows = {trip.trip_id: trip for trip in stored}
    for trip in trips:
        start, end = (
            kept.get((trip.trip_id, usage.TRIP_START)),
            kept.get((trip.trip_id, usage.TRIP_END)),
        )
        row = rows.get(trip.trip_id)
        if row is None:
            row = TripRecord(vehicle_id=window.vehicle_id, trip_id=trip.trip_id)
            session.add(row)
        row.start_ts, row.start_msg_id = (start.ts, start.msg_id) if start else (None, None)
        row.end_ts, row.end_msg_id = (end.ts, end.msg_id) if end else (None, None)
        row.seconds = trip.seconds
    return anomalies, {e.msg_id for e in events}


def _stored_events(trip: TripRecord) -> list[usage.Reading]:
    events = []
    if trip.start_ts is not None:
        events.append(usage.Reading(trip.start_ts, trip.start_msg_id, trip_id=trip.trip_id,
                                    trip_event=usage.TRIP_START))  # fmt: skip
    if trip.end_ts is not None:
        events.append(usage.Reading(trip.end_ts, trip.end_msg_id, trip_id=trip.trip_id,
                                    trip_event=usage.TRIP_END))  # fmt: skip
    return events


def _kept_events(events: list[usage.Reading]) -> dict[tuple[str, str], usage.Reading]:
    """The first start and first end of each trip, by (ts, msg_id), as pair_trips keeps."""
    kept: dict[tuple[str, str], usage.Reading] = {}
    for event in sorted(events, key=lambda e: (e.ts, e.msg_id)):
        kept.setdefault((event.trip_id, event.trip_event), event)
    return kept


def _record_anomalies(
    session: Session,
    window: Window,
    found: list[usage.Anomaly],
    trips: tuple[list[usage.Anomaly], set[str]],
    now: dt.datetime,
) -> None:
    """Store new anomalies and drop undecided ones the recomputation no longer finds
    (a late reading can make an apparent jump plausible, a late start pair a trip end)."""
    trip_anomalies, trip_msgs = trips
    found = found + trip_anomalies
    in_scope = (
        (AnomalyRecord.kind.in_(READING_KINDS)
         & (AnomalyRecord.ts >= window.lo) & (AnomalyRecord.ts < window.hi))
        | (AnomalyRecord.kind.not_in(READING_KINDS) & AnomalyRecord.msg_id.in_(trip_msgs))
    )  # fmt: skip
    existing = {
        (a.kind, a.counter, a.msg_id): a
        for a in session.scalars(
            select(AnomalyRecord).where(AnomalyRecord.vehicle_id == window.vehicle_id, in_scope)
        )
    }
    current = {(a.kind, a.counter or "", a.msg_id): a for a in found}
    for key, record in existing.items():
        if key not in current and record.status in (OPEN, HELD):
            session.delete(record)
    for key, anomaly in current.items():
        if key not in existing:
            session.add(anomaly_record(window.vehicle_id, anomaly, now))


def anomaly_record(vehicle_id: str, anomaly: usage.Anomaly, now: dt.datetime) -> AnomalyRecord:
    return AnomalyRecord(
        vehicle_id=vehicle_id,
        kind=anomaly.kind,
        counter=anomaly.counter or "",
        msg_id=anomaly.msg_id,
        previous_msg_id=anomaly.previous_msg_id,
        ts=anomaly.ts,
        distance_m=anomaly.distance_m,
        details=anomaly.details,
        status=HELD if anomaly.kind == usage.IMPLAUSIBLE_JUMP else OPEN,
        detected_at=now,
    )


def _dequeue(session: Session, queued: Sequence[MeteringQueue]) -> None:
    """Remove the queue rows just processed, unless the ingest widened them meanwhile."""
    for row in queued:
        session.execute(
            delete(MeteringQueue)
            .execution_options(synchronize_session=False)
            .where(MeteringQueue.vehicle_id == row.vehicle_id, MeteringQueue.version == row.version)
        )
