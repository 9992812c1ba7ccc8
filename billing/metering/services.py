"""Usage reads: a customer's month per vehicle and plan, a vehicle's series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.devices.services import get_customer, get_vehicle
from billing.metering import queries, usage
from billing.periods import Period


@dataclass(frozen=True)
class CustomerUsage:
    customer_id: str
    period: Period
    timezone: str
    start: dt.datetime
    end: dt.datetime
    segments: list[queries.SegmentUsage]
    total: usage.Usage
    freshness: queries.Freshness


def customer_usage(
    session: Session,
    principal: Principal,
    customer_id: str,
    period: Period | None,
    now: dt.datetime,
) -> CustomerUsage:
    """The customer's usage in a calendar month of its time zone (default: the current
    one), per vehicle and plan."""
    customer = get_customer(session, principal, customer_id)
    zone = ZoneInfo(customer.timezone)
    period = period or Period.containing(now, zone)
    start, end = period.bounds(zone)
    segments = queries.segments_usage(
        session, queries.customer_segments(session, customer_id, start, end), zone
    )
    return CustomerUsage(
        customer_id=customer_id,
        period=period,
        timezone=customer.timezone,
        start=start,
        end=end,
        segments=segments,
        total=sum_usage(s.usage for s in segments),
        freshness=queries.freshness(session, {s.segment.vehicle_id for s in segments}, end),
    )


def sum_usage(usages: Iterable[usage.Usage]) -> usage.Usage:
    """Usage added up; active days add up too (a day active on two vehicles counts twice:
    they are vehicle-days, as plans price them)."""
    items = list(usages)
    return usage.Usage(
        distance_km=sum((u.distance_km for u in items), Decimal(0)),
        energy_kwh=sum((u.energy_kwh for u in items), Decimal(0)),
        trips=sum(u.trips for u in items),
        trip_minutes=sum((u.trip_minutes for u in items), Decimal(0)),
        active_days=sum(u.active_days for u in items),
    )


def vehicle_usage(
    session: Session,
    principal: Principal,
    vehicle_id: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    granularity: str,
    now: dt.datetime,
) -> VehicleUsage:
    """A vehicle's usage per local hour, day or month of its customer's time zone, from
    `start` (default: the start of the current local month) to `end` (default: now, the
    15-minute bucket in progress included), with how fresh it is."""
    vehicle = get_vehicle(session, principal, vehicle_id)
    zone = ZoneInfo(vehicle.fleet.customer.timezone)
    start = start or Period.containing(now, zone).bounds(zone)[0]
    if end is None:
        end = usage.bucket_start(now) + dt.timedelta(seconds=usage.BUCKET_SECONDS)
    series = queries.vehicle_usage_series(session, vehicle_id, start, end, granularity, zone)
    return VehicleUsage(
        vehicle_id, zone.key, granularity, start, end, series,
        queries.freshness(session, [vehicle_id], end),
    )  # fmt: skip


@dataclass(frozen=True)
class VehicleUsage:
    vehicle_id: str
    timezone: str
    granularity: str
    start: dt.datetime
    end: dt.datetime
    points: list[tuple[dt.datetime, usage.Usage]]
    freshness: queries.Freshness
