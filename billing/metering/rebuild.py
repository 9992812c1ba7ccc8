"""`billing usage rebuild` and `billing usage verify`: rollups from all raw readings.

The full recomputation is the reference the incremental passes must equal: `verify`
compares stored rollups with it and reports every difference, `rebuild` replaces them.
Readings are streamed vehicle by vehicle as plain rows (the ORM would cost more than the
arithmetic), so a rebuild handles hundreds of thousands of readings per second.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from billing.db import bulk_insert, table_of
from billing.metering import usage
from billing.metering.models import AnomalyRecord, TripRecord, UsageBucket, UsageDay
from billing.metering.rollup_store import HELD, OPEN, anomaly_row
from billing.metering.rollups import ACCEPTED, REJECTED, customer_zones
from billing.telemetry.models import MeteringQueue

UTC = dt.UTC


@dataclass
class Expected:
    """What the rollups of one vehicle should hold."""

    buckets: dict[dt.datetime, tuple[int, int, int]]  # start -> distance, energy, readings
    days: dict[dt.date, tuple[int, int, int]]
    trips: dict[str, tuple]  # trip_id -> start_ts, start_msg, end_ts, end_msg, seconds
    anomalies: dict[tuple[str, str, str], usage.Anomaly]
    readings: int


def _rows_sql(dialect: str) -> str:
    # Epoch seconds computed by the database: exact for integer seconds on both engines.
    if dialect == "postgresql":
        epoch = "extract(epoch from ts)::float8"
    else:
        epoch = "CAST(strftime('%s', ts) AS INTEGER) + CAST(substr(ts, 21, 6) AS INTEGER) / 1e6"
    return (
        f"SELECT {epoch}, msg_id, odometer_m, energy_wh, trip_id, trip_event "
        "FROM readings WHERE vehicle_id = :vehicle ORDER BY ts, msg_id"
    )


def expected_rollups(
    session: Session, vehicle_id: str, zone: ZoneInfo, max_speed_kmh: int
) -> Expected:
    """The rollups of `vehicle_id` recomputed from every stored reading."""
    rows = session.execute(
        text(_rows_sql(session.get_bind().dialect.name)), {"vehicle": vehicle_id}
    ).all()
    decisions = dict(
        session.execute(
            select(AnomalyRecord.msg_id, AnomalyRecord.status).where(
                AnomalyRecord.vehicle_id == vehicle_id,
                AnomalyRecord.kind == usage.IMPLAUSIBLE_JUMP,
                AnomalyRecord.status.in_((ACCEPTED, REJECTED)),
            )
        ).all()
    )
    buckets, anomalies = usage.rollup_rows(
        [row[:4] for row in rows], max_speed_kmh=max_speed_kmh, decisions=decisions
    )
    events = [
        usage.Reading(dt.datetime.fromtimestamp(row[0], UTC), row[1], trip_id=row[4],
                      trip_event=row[5])
        for row in rows if row[4] and row[5]
    ]  # fmt: skip
    trips, trip_anomalies = usage.pair_trips(events)
    bucket_totals = {start: (b.distance_m, b.energy_wh, b.readings) for start, b in buckets.items()}
    return Expected(
        buckets=bucket_totals,
        days=_days(bucket_totals, zone),
        trips=_trip_rows(trips, events),
        anomalies={(a.kind, a.counter or "", a.msg_id): a for a in [*anomalies, *trip_anomalies]},
        readings=len(rows),
    )


def _days(buckets: dict[dt.datetime, tuple[int, int, int]], zone: ZoneInfo) -> dict:
    days: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for start, values in buckets.items():
        day = days[start.astimezone(zone).date()]
        for index, value in enumerate(values):
            day[index] += value
    return {day: tuple(values) for day, values in days.items()}


def _trip_rows(trips: list[usage.Trip], events: list[usage.Reading]) -> dict[str, tuple]:
    kept: dict[tuple[str | None, str | None], usage.Reading] = {}
    for event in sorted(events, key=lambda e: (e.ts, e.msg_id)):
        kept.setdefault((event.trip_id, event.trip_event), event)
    rows = {}
    for trip in trips:
        start = kept.get((trip.trip_id, usage.TRIP_START))
        end = kept.get((trip.trip_id, usage.TRIP_END))
        rows[trip.trip_id] = (
            start.ts if start else None,
            start.msg_id if start else None,
            end.ts if end else None,
            end.msg_id if end else None,
            trip.seconds,
        )
    return rows


# --- stored state -----------------------------------------------------------------------


def stored_rollups(session: Session, vehicle_id: str) -> Expected:
    buckets = {
        start: (distance, energy, readings)
        for start, distance, energy, readings in session.execute(
            select(
                UsageBucket.bucket_start,
                UsageBucket.distance_m,
                UsageBucket.energy_wh,
                UsageBucket.readings,
            ).where(UsageBucket.vehicle_id == vehicle_id)
        )
        if distance or energy or readings
    }
    days = {
        day.day: (day.distance_m, day.energy_wh, day.readings)
        for day in session.scalars(select(UsageDay).where(UsageDay.vehicle_id == vehicle_id))
        if day.distance_m or day.energy_wh or day.readings
    }
    trips = {
        t.trip_id: (t.start_ts, t.start_msg_id, t.end_ts, t.end_msg_id, t.seconds)
        for t in session.scalars(select(TripRecord).where(TripRecord.vehicle_id == vehicle_id))
    }
    return Expected(buckets, days, trips, anomalies={}, readings=0)


def drift(expected: Expected, stored: Expected) -> list[str]:
    """Human-readable differences between expected and stored rollups of one vehicle."""
    lines = []
    for name in ("buckets", "days", "trips"):
        want, have = getattr(expected, name), getattr(stored, name)
        for key in sorted(set(want) | set(have), key=str):
            if want.get(key) != have.get(key):
                lines.append(f"{name} {key}: expected {want.get(key)}, stored {have.get(key)}")
    return lines


# --- commands ---------------------------------------------------------------------------


@dataclass
class Report:
    vehicles: int = 0
    readings: int = 0
    drifts: int = 0


def vehicles_with_readings(session: Session) -> list[str]:
    return list(session.scalars(text("SELECT DISTINCT vehicle_id FROM readings ORDER BY 1")))


def rebuild_rollups(
    session: Session,
    now: dt.datetime,
    *,
    max_speed_kmh: int,
    vehicle_ids: list[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Report:
    """Replace every rollup of these vehicles (default: all) by a full recomputation.

    Operators' decisions on jumps are kept; undecided anomalies are found afresh. Vehicles
    are written and committed in groups, each group in one transaction.
    """
    report = Report()
    group: list[tuple[str, ZoneInfo, Expected]] = []
    for vehicle_id, zone in _vehicles(session, vehicle_ids):
        expected = expected_rollups(session, vehicle_id, zone, max_speed_kmh)
        group.append((vehicle_id, zone, expected))
        report.vehicles += 1
        report.readings += expected.readings
        if progress:
            progress(vehicle_id, expected.readings)
        if sum(len(e.buckets) for _, _, e in group) >= REBUILD_GROUP_ROWS:
            _replace(session, group, now)
            group = []
    if group:
        _replace(session, group, now)
    return report


REBUILD_GROUP_ROWS = 20_000


def verify_rollups(
    session: Session,
    *,
    max_speed_kmh: int,
    vehicle_ids: list[str] | None = None,
    on_drift: Callable[[str, str], None] | None = None,
) -> Report:
    """Compare the stored rollups with a full recomputation; count the differences."""
    report = Report()
    for vehicle_id, zone in _vehicles(session, vehicle_ids):
        expected = expected_rollups(session, vehicle_id, zone, max_speed_kmh)
        lines = drift(expected, stored_rollups(session, vehicle_id))
        report.vehicles += 1
        report.readings += expected.readings
        report.drifts += len(lines)
        for line in lines:
            if on_drift:
                on_drift(vehicle_id, line)
    return report


def _vehicles(session: Session, vehicle_ids: list[str] | None) -> Iterator[tuple[str, ZoneInfo]]:
    ids = vehicle_ids if vehicle_ids is not None else vehicles_with_readings(session)
    zones = customer_zones(session, ids)
    for vehicle_id in ids:
        yield vehicle_id, zones.get(vehicle_id, ZoneInfo("UTC"))


def _replace(
    session: Session, group: list[tuple[str, ZoneInfo, Expected]], now: dt.datetime
) -> None:
    ids = [vehicle_id for vehicle_id, _, _ in group]
    for model in (UsageBucket, UsageDay, TripRecord, MeteringQueue):
        session.execute(
            delete(model)
            .execution_options(synchronize_session=False)
            .where(model.vehicle_id.in_(ids))
        )
    buckets, days, trips = [], [], []
    for vehicle_id, zone, expected in group:
        buckets += [
            {"vehicle_id": vehicle_id, "bucket_start": start, "distance_m": d,
             "energy_wh": e, "readings": r}
            for start, (d, e, r) in expected.buckets.items()
        ]  # fmt: skip
        days += [
            {"vehicle_id": vehicle_id, "day": day, "timezone": zone.key, "distance_m": d,
             "energy_wh": e, "readings": r}
            for day, (d, e, r) in expected.days.items()
        ]  # fmt: skip
        trips += [
            {"vehicle_id": vehicle_id, "trip_id": trip_id, "start_ts": s, "start_msg_id": sm,
             "end_ts": e, "end_msg_id": em, "seconds": seconds}
            for trip_id, (s, sm, e, em, seconds) in expected.trips.items()
        ]  # fmt: skip
        _replace_anomalies(session, vehicle_id, expected, now)
    for model, rows in ((UsageBucket, buckets), (UsageDay, days), (TripRecord, trips)):
        bulk_insert(session, model, rows)
    session.commit()


def _replace_anomalies(
    session: Session, vehicle_id: str, expected: Expected, now: dt.datetime
) -> None:
    session.execute(
        delete(AnomalyRecord).where(
            AnomalyRecord.vehicle_id == vehicle_id, AnomalyRecord.status.in_((OPEN, HELD))
        )
    )
    decided = set(
        session.execute(
            select(AnomalyRecord.kind, AnomalyRecord.counter, AnomalyRecord.msg_id).where(
                AnomalyRecord.vehicle_id == vehicle_id
            )
        ).all()
    )
    for key, anomaly in expected.anomalies.items():
        if key not in decided:
            session.execute(
                table_of(AnomalyRecord).insert(), [anomaly_row(vehicle_id, anomaly, now)]
            )
