"""Usage over any interval, read from the rollups: by vehicle, and by customer and month.

A customer's month is cut into segments: the stretches during which one vehicle was both
in one of the customer's fleets and on one plan assignment (or on none). Each segment's
usage comes from the daily rollups for its whole local days and from the 15-minute
buckets for the partial days at its ends. Cuts are made at the bucket containing the
change: usage is attributed to plans and owners at 15-minute resolution.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, column, func, or_, select, values
from sqlalchemy.orm import Session

from billing.db import UTCDateTime
from billing.devices.models import Fleet, FleetMembership, PlanAssignment
from billing.metering import usage
from billing.metering.models import MeteringQueue, Reading, TripRecord, UsageBucket, UsageDay
from billing.periods import local_day_bounds, local_days, vehicle_days

ZERO = Decimal(0)


@dataclass(frozen=True)
class Segment:
    """A vehicle, its plan (None: no plan) and the stretch [start, end) they cover."""

    vehicle_id: str
    plan_code: str | None
    plan_version: int | None
    start: dt.datetime
    end: dt.datetime
    assignment_id: str | None = None


@dataclass
class Totals:
    distance_m: int = 0
    energy_wh: int = 0
    trips: int = 0
    trip_seconds: int = 0
    active: set[dt.date] = field(default_factory=set)

    def usage(self) -> usage.Usage:
        return usage.Usage(
            distance_km=Decimal(self.distance_m).scaleb(-3),
            energy_kwh=Decimal(self.energy_wh).scaleb(-3),
            trips=self.trips,
            trip_minutes=usage.minutes(self.trip_seconds),
            active_days=len(self.active),
        )


@dataclass(frozen=True)
class SegmentUsage:
    segment: Segment
    usage: usage.Usage
    vehicle_days: Decimal


def _snap(instant: dt.datetime) -> dt.datetime:
    return usage.bucket_start(instant)


# --- segments ---------------------------------------------------------------------------


def customer_segments(
    session: Session, customer_id: str, start: dt.datetime, end: dt.datetime
) -> list[Segment]:
    """The customer's vehicles in [start, end), cut at fleet moves and plan changes."""
    memberships = session.execute(
        select(FleetMembership.vehicle_id, FleetMembership.started_at, FleetMembership.ended_at)
        .join(Fleet, FleetMembership.fleet_id == Fleet.id)
        .where(Fleet.customer_id == customer_id)
        .where(FleetMembership.started_at < end)
        .where(or_(FleetMembership.ended_at.is_(None), FleetMembership.ended_at > start))
        .order_by(FleetMembership.vehicle_id, FleetMembership.started_at)
    ).all()
    if not memberships:
        return []
    vehicle_ids = sorted({m.vehicle_id for m in memberships})
    assignments = defaultdict(list)
    for a in session.scalars(
        select(PlanAssignment)
        .where(PlanAssignment.vehicle_id.in_(vehicle_ids), PlanAssignment.effective_at < end)
        .where(or_(PlanAssignment.ended_at.is_(None), PlanAssignment.ended_at > start))
        .order_by(PlanAssignment.effective_at)
    ):
        assignments[a.vehicle_id].append(a)
    segments = []
    for vehicle_id, held_from, held_until in memberships:
        lo, hi = max(held_from, start), min(held_until or end, end)
        segments += _plan_segments(vehicle_id, lo, hi, assignments[vehicle_id])
    return [s for s in segments if s.start < s.end]


def _plan_segments(
    vehicle_id: str, lo: dt.datetime, hi: dt.datetime, assignments: Sequence[PlanAssignment]
) -> list[Segment]:
    segments, cursor = [], lo
    for a in assignments:
        a_lo, a_hi = max(a.effective_at, lo), min(a.ended_at or hi, hi)
        if a_lo >= a_hi:
            continue
        if cursor < a_lo:
            segments.append(Segment(vehicle_id, None, None, cursor, a_lo))
        segments.append(Segment(vehicle_id, a.plan_code, a.plan_version, a_lo, a_hi, a.id))
        cursor = a_hi
    if cursor < hi:
        segments.append(Segment(vehicle_id, None, None, cursor, hi))
    return segments


# --- usage of segments ------------------------------------------------------------------


def segments_usage(
    session: Session, segments: Sequence[Segment], zone: ZoneInfo
) -> list[SegmentUsage]:
    """Usage and vehicle days of each segment, in the local days of `zone`."""
    if not segments:
        return []
    totals = [Totals() for _ in segments]
    partial: list[tuple[int, dt.datetime, dt.datetime]] = []
    whole: list[tuple[int, dt.date, dt.date]] = []
    # Most segments of a month share their bounds: compute the calendar once per bounds.
    days_of = functools.cache(lambda lo, hi: _whole_days(lo, hi, zone))
    assigned = functools.cache(lambda lo, hi: vehicle_days([(lo, hi)], lo, hi, zone))
    for index, segment in enumerate(segments):
        first_day, last_day, head, tail = days_of(_snap(segment.start), _snap(segment.end))
        partial += [(index, a, b) for a, b in (head, tail) if a < b]
        if first_day < last_day:
            whole.append((index, first_day, last_day))
    partial += _add_days(session, segments, whole, totals, zone)
    _add_buckets(session, segments, partial, totals, zone)
    _add_trips(session, segments, totals)
    return [
        SegmentUsage(segment, total.usage(), assigned(segment.start, segment.end))
        for segment, total in zip(segments, totals, strict=True)
    ]


def _whole_days(lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo):
    """The local days wholly inside [lo, hi) as [first, last), and the partial ends."""
    days = local_days(lo, hi, zone) if lo < hi else []
    whole = [day for day, a, b in days if (a, b) == local_day_bounds(day, zone)]
    if not whole:
        return lo, lo, (lo, hi), (hi, hi)  # no whole day: one partial stretch
    first, last = whole[0], whole[-1]
    start_first, _ = local_day_bounds(first, zone)
    _, end_last = local_day_bounds(last, zone)
    return first, last + dt.timedelta(days=1), (lo, start_first), (end_last, hi)


def _add_days(session, segments, whole, totals, zone) -> list[tuple[int, dt.datetime, dt.datetime]]:
    """Add the daily rollups; days kept in another zone are returned to read as buckets."""
    if not whole:
        return []
    vehicle_ids = {segments[index].vehicle_id for index, _, _ in whole}
    lowest, highest = min(w[1] for w in whole), max(w[2] for w in whole)
    rows = defaultdict(dict)
    # Columns, not entities: a month of 100 vehicles is 3,100 rows, and building ORM
    # objects for them cost more than the query.
    for day in session.execute(
        select(
            UsageDay.vehicle_id, UsageDay.day, UsageDay.timezone, UsageDay.distance_m,
            UsageDay.energy_wh,
        ).where(
            UsageDay.vehicle_id.in_(vehicle_ids), UsageDay.day >= lowest, UsageDay.day < highest
        )
    ):  # fmt: skip
        rows[day.vehicle_id][day.day] = day
    foreign = []
    for index, first, last in whole:
        kept = rows[segments[index].vehicle_id]
        total = totals[index]
        day = first
        while day < last:
            row = kept.get(day)
            if row is not None and row.timezone != zone.key:
                foreign.append((index, *local_day_bounds(day, zone)))
            elif row is not None:
                total.distance_m += row.distance_m
                total.energy_wh += row.energy_wh
                if row.distance_m > 0:
                    total.active.add(day)
            day += dt.timedelta(days=1)
    return foreign


def _add_buckets(session, segments, stretches, totals, zone) -> None:
    if not stretches:
        return
    wanted = values(
        column("part", String), column("vehicle_id", String),
        column("lo", UTCDateTime), column("hi", UTCDateTime), name="stretches",
    ).data(
        [(str(i), segments[i].vehicle_id, lo, hi) for i, lo, hi in stretches]
    ).cte()  # fmt: skip
    rows = session.execute(
        select(
            wanted.c.part,
            UsageBucket.bucket_start,
            UsageBucket.distance_m,
            UsageBucket.energy_wh,
        ).join(
            wanted,
            and_(
                UsageBucket.vehicle_id == wanted.c.vehicle_id,
                UsageBucket.bucket_start >= wanted.c.lo,
                UsageBucket.bucket_start < wanted.c.hi,
            ),
        )
    )
    for part, start, distance, energy in rows:
        total = totals[int(part)]
        total.distance_m += distance
        total.energy_wh += energy
        if distance > 0:
            total.active.add(start.astimezone(zone).date())


def _add_trips(session, segments, totals) -> None:
    """Count each trip in the segment of its vehicle where it ended.

    Counted by the database, one row per segment: a month of a busy fleet has tens of
    thousands of trips. A vehicle's segments do not overlap, so each trip counts once.
    """
    wanted = values(
        column("part", String), column("vehicle_id", String),
        column("lo", UTCDateTime), column("hi", UTCDateTime), name="segments",
    ).data(
        [(str(i), s.vehicle_id, _snap(s.start), _snap(s.end)) for i, s in enumerate(segments)]
    ).cte()  # fmt: skip
    rows = session.execute(
        select(wanted.c.part, func.count(), func.coalesce(func.sum(TripRecord.seconds), 0))
        .select_from(TripRecord)
        .join(
            wanted,
            and_(
                TripRecord.vehicle_id == wanted.c.vehicle_id,
                TripRecord.end_ts >= wanted.c.lo,
                TripRecord.end_ts < wanted.c.hi,
            ),
        )
        .group_by(wanted.c.part)
    )
    for part, trips, seconds in rows:
        totals[int(part)].trips += trips
        totals[int(part)].trip_seconds += int(seconds)


# --- freshness --------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How current the usage is: the latest reading stored, and whether all of it is in
    the rollups yet (`pending_since`: the earliest reading still to meter)."""

    latest_reading_at: dt.datetime | None
    pending_since: dt.datetime | None


def freshness(session: Session, vehicle_ids: Iterable[str], end: dt.datetime) -> Freshness:
    ids = list(vehicle_ids)
    if not ids:
        return Freshness(None, None)
    vehicles = (
        values(column("vehicle_id", String), name="vehicles")
        .data([(vehicle_id,) for vehicle_id in ids])
        .cte()
    )
    # One index probe per vehicle: the latest reading of each, before `end`.
    last_of_each = (
        select(Reading.ts)
        .where(Reading.vehicle_id == vehicles.c.vehicle_id, Reading.ts < end)
        .order_by(Reading.ts.desc())
        .limit(1)
        .scalar_subquery()
    )
    latest = session.scalar(select(func.max(last_of_each)).select_from(vehicles))
    pending = session.scalar(
        select(func.min(MeteringQueue.since)).where(MeteringQueue.vehicle_id.in_(ids))
    )
    return Freshness(latest, pending)


# --- one vehicle over any interval ------------------------------------------------------

GRANULARITIES = ("hour", "day", "month")


def vehicle_usage_series(
    session: Session,
    vehicle_id: str,
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
    zone: ZoneInfo,
) -> list[tuple[dt.datetime, usage.Usage]]:
    """Usage of one vehicle in [start, end), per local hour, day or month of `zone`.

    Each entry is keyed by the local start of its hour, day or month; only periods with
    readings appear. The ends are snapped to the 15-minute buckets.
    """
    lo, hi = _snap(start), _snap(end)
    totals: dict[dt.datetime, Totals] = defaultdict(Totals)
    for bucket_start, distance, energy in session.execute(
        select(UsageBucket.bucket_start, UsageBucket.distance_m, UsageBucket.energy_wh).where(
            UsageBucket.vehicle_id == vehicle_id,
            UsageBucket.bucket_start >= lo,
            UsageBucket.bucket_start < hi,
        )
    ):
        local = bucket_start.astimezone(zone)
        total = totals[_period_key(local, granularity)]
        total.distance_m += distance
        total.energy_wh += energy
        if distance > 0:
            total.active.add(local.date())
    for end_ts, seconds in session.execute(
        select(TripRecord.end_ts, TripRecord.seconds).where(
            TripRecord.vehicle_id == vehicle_id, TripRecord.end_ts >= lo, TripRecord.end_ts < hi
        )
    ):
        total = totals[_period_key(end_ts.astimezone(zone), granularity)]
        total.trips += 1
        total.trip_seconds += seconds
    return [(key, totals[key].usage()) for key in sorted(totals)]


def _period_key(local: dt.datetime, granularity: str) -> dt.datetime:
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    # ZoneInfo derives the offset from the wall time: midnight gets its own offset.
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    return day.replace(day=1) if granularity == "month" else day
