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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from billing.devices.models import Customer, Fleet, FleetMembership, Vehicle
from billing.metering import usage
from billing.metering.models import TripRecord, UsageBucket, UsageDay
from billing.periods import local_day_bounds, local_days, vehicle_days
from billing.pricing.assignments import PlanAssignment
from billing.pricing.fees import Segment
from billing.telemetry.models import MeteringQueue, Reading

ZERO = Decimal(0)


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
    return customers_segments(session, [customer_id], start, end)[customer_id]


def customers_segments(
    session: Session, customer_ids: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, list[Segment]]:
    """`customer_segments` of several customers in two queries (the invoice run's batches)."""
    memberships = session.execute(
        select(
            Fleet.customer_id,
            FleetMembership.vehicle_id,
            FleetMembership.started_at,
            FleetMembership.ended_at,
        )
        .join(Fleet, FleetMembership.fleet_id == Fleet.id)
        .where(Fleet.customer_id.in_(customer_ids))
        .where(FleetMembership.started_at < end)
        .where(or_(FleetMembership.ended_at.is_(None), FleetMembership.ended_at > start))
        .order_by(FleetMembership.vehicle_id, FleetMembership.started_at)
    ).all()
    segments: dict[str, list[Segment]] = {customer_id: [] for customer_id in customer_ids}
    if not memberships:
        return segments
    vehicle_ids = sorted({m.vehicle_id for m in memberships})
    assignments = defaultdict(list)
    # Columns, not entities (rows have the same attributes): thousands of vehicles a batch.
    for a in session.execute(
        select(
            PlanAssignment.id,
            PlanAssignment.vehicle_id,
            PlanAssignment.plan_code,
            PlanAssignment.plan_version,
            PlanAssignment.effective_at,
            PlanAssignment.ended_at,
        )
        .where(PlanAssignment.vehicle_id.in_(vehicle_ids), PlanAssignment.effective_at < end)
        .where(or_(PlanAssignment.ended_at.is_(None), PlanAssignment.ended_at > start))
        .order_by(PlanAssignment.effective_at)
    ):
        assignments[a.vehicle_id].append(a)
    for customer_id, vehicle_id, held_from, held_until in memberships:
        lo, hi = max(held_from, start), min(held_until or end, end)
        pieces = _plan_segments(vehicle_id, lo, hi, assignments[vehicle_id])
        segments[customer_id] += [s for s in pieces if s.start < s.end]
    return segments


class Assigned(Protocol):
    """What segments take of a plan assignment: a PlanAssignment, or a row of its columns."""

    @property
    def id(self) -> str: ...
    @property
    def plan_code(self) -> str: ...
    @property
    def plan_version(self) -> int | None: ...
    @property
    def effective_at(self) -> dt.datetime: ...
    @property
    def ended_at(self) -> dt.datetime | None: ...


def _plan_segments(
    vehicle_id: str, lo: dt.datetime, hi: dt.datetime, assignments: Sequence[Assigned]
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


def _whole_days(
    lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo
) -> tuple[dt.date, dt.date, tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]]:
    """The local days wholly inside [lo, hi) as [first, last), and the partial ends."""
    days = local_days(lo, hi, zone) if lo < hi else []
    whole = [day for day, a, b in days if (a, b) == local_day_bounds(day, zone)]
    if not whole:
        return lo, lo, (lo, hi), (hi, hi)  # no whole day: one partial stretch
    first, last = whole[0], whole[-1]
    start_first, _ = local_day_bounds(first, zone)
    _, end_last = local_day_bounds(last, zone)
    return first, last + dt.timedelta(days=1), (lo, start_first), (end_last, hi)


def _add_days(
    session: Session,
    segments: Sequence[Segment],
    whole: list[tuple[int, dt.date, dt.date]],
    totals: list[Totals],
    zone: ZoneInfo,
) -> list[tuple[int, dt.datetime, dt.datetime]]:
    """Add the daily rollups; days kept in another zone are returned to read as buckets."""
    if not whole:
        return []
    vehicle_ids = {segments[index].vehicle_id for index, _, _ in whole}
    lowest, highest = min(w[1] for w in whole), max(w[2] for w in whole)
    # Plain tuples, not entities: a month of 100 vehicles is 3,100 rows, and building ORM
    # objects for them cost more than the query.
    kept: defaultdict[str, list[tuple[dt.date, str, int, int]]] = defaultdict(list)
    for vehicle_id, day, timezone, distance_m, energy_wh in session.execute(
        select(
            UsageDay.vehicle_id, UsageDay.day, UsageDay.timezone, UsageDay.distance_m,
            UsageDay.energy_wh,
        ).where(
            UsageDay.vehicle_id.in_(vehicle_ids), UsageDay.day >= lowest, UsageDay.day < highest
        )
    ):  # fmt: skip
        kept[vehicle_id].append((day, timezone, distance_m, energy_wh))
    foreign = []
    for index, first, last in whole:
        total = totals[index]
        for day, timezone, distance_m, energy_wh in kept[segments[index].vehicle_id]:
            if not first <= day < last:
                continue
            if timezone != zone.key:
                foreign.append((index, *local_day_bounds(day, zone)))
                continue
            total.distance_m += distance_m
            total.energy_wh += energy_wh
            if distance_m > 0:
                total.active.add(day)
    return foreign


def _add_buckets(
    session: Session,
    segments: Sequence[Segment],
    stretches: list[tuple[int, dt.datetime, dt.datetime]],
    totals: list[Totals],
    zone: ZoneInfo,
) -> None:
    """Add the 15-minute buckets of the partial days, one query per distinct bounds (see
    `_add_trips`): most stretches are the same partial day of every vehicle."""
    by_bounds: dict[tuple[dt.datetime, dt.datetime], dict[str, int]] = defaultdict(dict)
    for index, lo, hi in stretches:
        by_bounds[(lo, hi)][segments[index].vehicle_id] = index
    for (lo, hi), indexes in by_bounds.items():
        rows = session.execute(
            select(
                UsageBucket.vehicle_id,
                UsageBucket.bucket_start,
                UsageBucket.distance_m,
                UsageBucket.energy_wh,
            ).where(
                UsageBucket.vehicle_id.in_(indexes),
                UsageBucket.bucket_start >= lo,
                UsageBucket.bucket_start < hi,
            )
        )
        for vehicle_id, start, distance, energy in rows:
            total = totals[indexes[vehicle_id]]
            total.distance_m += distance
            total.energy_wh += energy
            if distance > 0:
                total.active.add(start.astimezone(zone).date())


def _add_trips(session: Session, segments: Sequence[Segment], totals: list[Totals]) -> None:
    """Count each trip in the segment of its vehicle where it ended.

    The database counts them (a busy month has tens of thousands of trips), per vehicle,
    one query per distinct segment bounds: most segments of a month share theirs. The
    statement is cached, where a VALUES list of the segments would be compiled anew each
    time (7 ms for 100 segments). A vehicle's segments do not overlap: it has at most one
    with given bounds, and each trip counts once.
    """
    by_bounds: dict[tuple[dt.datetime, dt.datetime], dict[str, int]] = defaultdict(dict)
    for index, segment in enumerate(segments):
        by_bounds[(_snap(segment.start), _snap(segment.end))][segment.vehicle_id] = index
    for (lo, hi), indexes in by_bounds.items():
        rows = session.execute(
            select(TripRecord.vehicle_id, func.count(), func.sum(TripRecord.seconds))
            .where(
                TripRecord.vehicle_id.in_(indexes),
                TripRecord.end_ts >= lo,
                TripRecord.end_ts < hi,
            )
            .group_by(TripRecord.vehicle_id)
        )
        for vehicle_id, trips, seconds in rows:
            total = totals[indexes[vehicle_id]]
            total.trips += trips
            total.trip_seconds += int(seconds)


# --- freshness --------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How current the usage is: the latest reading stored, and whether all of it is in
    the rollups yet (`pending_since`: the earliest reading still to meter)."""

    latest_reading_at: dt.datetime | None
    pending_since: dt.datetime | None


def freshness(session: Session, vehicle_ids: Iterable[str], end: dt.datetime) -> Freshness:
    return groups_freshness(session, {"": vehicle_ids}, end)[""]


def groups_freshness(
    session: Session, groups: Mapping[str, Iterable[str]], end: dt.datetime
) -> dict[str, Freshness]:
    """`freshness` of several groups of vehicles (each customer's) in two queries."""
    members = {group: list(vehicle_ids) for group, vehicle_ids in groups.items()}
    ids = sorted({vehicle_id for vehicle_ids in members.values() for vehicle_id in vehicle_ids})
    if not ids:
        return {group: Freshness(None, None) for group in members}
    # One index probe per vehicle: the latest reading of each, before `end`. The vehicles
    # come from their table through an IN list, which keeps the statement cached.
    last_of_each = (
        select(Reading.ts)
        .where(Reading.vehicle_id == Vehicle.id, Reading.ts < end)
        .order_by(Reading.ts.desc())
        .limit(1)
        .scalar_subquery()
    )
    latest = dict(
        session.execute(select(Vehicle.id, last_of_each).where(Vehicle.id.in_(ids))).all()
    )
    queued = select(MeteringQueue.vehicle_id, func.min(MeteringQueue.since))
    pending = dict(
        session.execute(
            queued.where(MeteringQueue.vehicle_id.in_(ids)).group_by(MeteringQueue.vehicle_id)
        ).all()
    )
    return {
        group: Freshness(
            max((latest[v] for v in vehicle_ids if latest.get(v)), default=None),
            min((pending[v] for v in vehicle_ids if v in pending), default=None),
        )
        for group, vehicle_ids in members.items()
    }


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
        if end_ts is None:
            raise ValueError(f"a trip of {vehicle_id} selected by its end has none")
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


# --- usage billed to nobody -------------------------------------------------------------

NO_CUSTOMER, NO_PLAN = "no_customer", "no_plan"


@dataclass(frozen=True)
class UnattributedUsage:
    """Usage metered on a vehicle over [start, end) while it belonged to no customer
    (`no_customer`: before its registration's effective instant, say) or to a customer but
    no plan (`no_plan`, with that customer). No invoice bills it: it must be seen."""

    vehicle_id: str
    reason: str
    customer_id: str | None
    start: dt.datetime
    end: dt.datetime
    usage: usage.Usage


def unattributed_usage(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    *,
    vehicles: Select | None = None,
) -> list[UnattributedUsage]:
    """The usage of [start, end) that no customer's plan prices, by vehicle and stretch,
    cut at 15-minute resolution like billing. `vehicles` (a query of vehicle ids) limits
    the vehicles looked at. Stretches without usage are left out."""
    lo, hi = _snap(start), _snap(end)
    metered = (
        select(UsageBucket.vehicle_id)
        .where(UsageBucket.bucket_start >= lo, UsageBucket.bucket_start < hi)
        .where(or_(UsageBucket.distance_m != 0, UsageBucket.energy_wh != 0))
        .union(select(TripRecord.vehicle_id).where(TripRecord.end_ts >= lo, TripRecord.end_ts < hi))
        .subquery()
    )
    query = select(metered.c.vehicle_id)
    if vehicles is not None:
        query = query.where(metered.c.vehicle_id.in_(vehicles))
    vehicle_ids: list[str] = sorted(session.scalars(query))
    if not vehicle_ids:
        return []
    held = defaultdict(list)
    for vehicle_id, customer_id, timezone, held_from, held_until in session.execute(
        select(
            FleetMembership.vehicle_id, Fleet.customer_id, Customer.timezone,
            FleetMembership.started_at, FleetMembership.ended_at,
        )
        .join(Fleet, FleetMembership.fleet_id == Fleet.id)
        .join(Customer, Fleet.customer_id == Customer.id)
        .where(FleetMembership.vehicle_id.in_(vehicle_ids), FleetMembership.started_at < hi)
        .where(or_(FleetMembership.ended_at.is_(None), FleetMembership.ended_at > lo))
        .order_by(FleetMembership.started_at)
    ):  # fmt: skip
        held[vehicle_id].append((customer_id, timezone, held_from, held_until))
    assignments = defaultdict(list)
    for assignment in session.scalars(
        select(PlanAssignment)
        .where(PlanAssignment.vehicle_id.in_(vehicle_ids), PlanAssignment.effective_at < hi)
        .where(or_(PlanAssignment.ended_at.is_(None), PlanAssignment.ended_at > lo))
        .order_by(PlanAssignment.effective_at)
    ):
        assignments[assignment.vehicle_id].append(assignment)
    # (segment, reason, customer) by the zone its local days are cut in.
    found: dict[str, list[tuple[Segment, str, str | None]]] = defaultdict(list)
    for vehicle_id in vehicle_ids:
        cursor = lo
        for customer_id, timezone, held_from, held_until in held[vehicle_id]:
            a, b = max(held_from, lo), min(held_until or hi, hi)
            if cursor < a:
                found["UTC"].append((Segment(vehicle_id, None, None, cursor, a), NO_CUSTOMER, None))
            for piece in _plan_segments(vehicle_id, a, b, assignments[vehicle_id]):
                if piece.plan_code is None and piece.start < piece.end:
                    found[timezone].append((piece, NO_PLAN, customer_id))
            cursor = max(cursor, b)
        if cursor < hi:
            found["UTC"].append((Segment(vehicle_id, None, None, cursor, hi), NO_CUSTOMER, None))
    stretches = []
    for timezone, items in found.items():
        measured = segments_usage(session, [segment for segment, _, _ in items], ZoneInfo(timezone))
        for (segment, reason, owner_id), each in zip(items, measured, strict=True):
            if _has_usage(each.usage):
                stretches.append(
                    UnattributedUsage(
                        segment.vehicle_id, reason, owner_id, segment.start, segment.end,
                        each.usage,
                    )
                )  # fmt: skip
    return sorted(stretches, key=lambda s: (s.vehicle_id, s.start))


def _has_usage(measured: usage.Usage) -> bool:
    return bool(measured.distance_km or measured.energy_kwh or measured.trips)
