"""What wear is computed from, summed in SQL from the metering rollups (`usage_days`).

Never from raw readings: the rollups are what billing reads, kept in step with late
readings by the metering pass and rebuilt by `billing usage rebuild`, so wear follows them
whatever happens to the readings. Nothing is cached: every call sums afresh.

A part's life is the sum, over its fittings, of its vehicle's usage days in
[installed_on, removed_on); fittings that share a vehicle and a window (the parts fitted
at a registration) are summed once, by one grouped query over the days, whatever the
number of vehicles.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from billing.components import wear
from billing.components.models import ComponentFitting, ComponentPart
from billing.devices.models import Customer, Fleet, Vehicle
from billing.metering.models import UsageDay

THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class FittedPart:
    """A part in a vehicle now, with where it is and the day it is there as of."""

    part_id: str
    serial: str
    vehicle_id: str
    fleet_id: str
    model: str
    bom_version: int
    component_code: str
    category: str
    installed_at: dt.datetime
    today: dt.date


def fitted_parts(session: Session, where: Iterable, now: dt.datetime) -> list[FittedPart]:
    """The parts fitted now to the vehicles `where` selects (conditions on ComponentPart,
    ComponentFitting, Vehicle or Fleet), by vehicle and component code; `today` is `now`'s
    day in the time zone of the vehicle's customer."""
    rows = session.execute(
        select(
            ComponentPart.id,
            ComponentPart.serial,
            ComponentFitting.vehicle_id,
            Vehicle.fleet_id,
            ComponentPart.model,
            ComponentPart.bom_version,
            ComponentPart.component_code,
            ComponentPart.category,
            ComponentFitting.installed_at,
            Customer.timezone,
        )
        .join(ComponentFitting, ComponentFitting.part_id == ComponentPart.id)
        .join(Vehicle, Vehicle.id == ComponentFitting.vehicle_id)
        .join(Fleet, Fleet.id == Vehicle.fleet_id)
        .join(Customer, Customer.id == Fleet.customer_id)
        .where(ComponentFitting.removed_at.is_(None), *where)
        .order_by(ComponentFitting.vehicle_id, ComponentPart.component_code, ComponentPart.id)
    ).all()
    days = _local_days(now)
    return [FittedPart(*row[:9], today=days(row[9])) for row in rows]


def _local_days(now: dt.datetime):
    cache: dict[str, dt.date] = {}

    def day(zone: str) -> dt.date:
        if zone not in cache:
            cache[zone] = now.astimezone(ZoneInfo(zone)).date()
        return cache[zone]

    return day


def life_used(
    session: Session, part_ids: Select, today: dt.date | dict[str, dt.date]
) -> dict[str, wear.LifeUsed]:
    """The life each part of `part_ids` (a select of part ids) went through, over all its
    fittings, up to `today` (one day for every part, or a day per part id)."""
    service_from = case(
        (
            ComponentPart.service_since_on > ComponentFitting.installed_on,
            ComponentPart.service_since_on,
        ),
        else_=ComponentFitting.installed_on,
    ).label("service_from")
    fittings = (
        select(
            ComponentFitting.part_id,
            ComponentFitting.vehicle_id,
            ComponentFitting.installed_on,
            ComponentFitting.removed_on,
            service_from,
            ComponentPart.service_since_on,
        )
        .join(ComponentPart, ComponentPart.id == ComponentFitting.part_id)
        .where(ComponentFitting.part_id.in_(part_ids))
    )
    windows = (
        fittings.with_only_columns(
            ComponentFitting.vehicle_id,
            ComponentFitting.installed_on,
            ComponentFitting.removed_on,
            service_from,
        )
        .distinct()
        .subquery()
    )
    sums = {
        (vehicle_id, installed_on, removed_on, since): (distance, energy, distance_since)
        for vehicle_id, installed_on, removed_on, since, distance, energy, distance_since in (
            session.execute(
                select(
                    windows.c.vehicle_id,
                    windows.c.installed_on,
                    windows.c.removed_on,
                    windows.c.service_from,
                    func.sum(UsageDay.distance_m),
                    func.sum(UsageDay.energy_wh),
                    func.sum(
                        case((UsageDay.day >= windows.c.service_from, UsageDay.distance_m), else_=0)
                    ),
                )
                .join(
                    UsageDay,
                    and_(
                        UsageDay.vehicle_id == windows.c.vehicle_id,
                        UsageDay.day >= windows.c.installed_on,
                        or_(windows.c.removed_on.is_(None), UsageDay.day < windows.c.removed_on),
                    ),
                )
                .group_by(
                    windows.c.vehicle_id,
                    windows.c.installed_on,
                    windows.c.removed_on,
                    windows.c.service_from,
                )
            )
        )
    }
    totals: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for part_id, vehicle_id, installed_on, removed_on, since, service_since_on in session.execute(
        fittings
    ):
        day = today if isinstance(today, dt.date) else today[part_id]
        distance, energy, distance_since = sums.get(
            (vehicle_id, installed_on, removed_on, since), (0, 0, 0)
        )
        end = removed_on if removed_on is not None else day + dt.timedelta(days=1)
        total = totals[part_id]
        total[0] += distance or 0
        total[1] += energy or 0
        total[2] += max((end - installed_on).days, 0)
        total[3] += distance_since or 0
        total[4] = max((day - service_since_on).days, 0)
    return {
        part_id: wear.LifeUsed(
            km=Decimal(distance) / THOUSAND,
            kwh=Decimal(energy) / THOUSAND,
            days=days,
            km_since_service=Decimal(distance_since) / THOUSAND,
            days_since_service=days_since,
        )
        for part_id, (distance, energy, days, distance_since, days_since) in totals.items()
    }


def recent_rates(
    session: Session, vehicles: Select, today: dt.date
) -> dict[str, wear.UsageRate | None]:
    """Each vehicle's usage per day over the RATE_WINDOW_DAYS days up to `today` (fewer
    when its rollups begin later); None when that is less than MIN_HISTORY_DAYS."""
    cut = today - dt.timedelta(days=wear.RATE_WINDOW_DAYS - 1)
    recent = UsageDay.day >= cut
    rows = session.execute(
        select(
            UsageDay.vehicle_id,
            func.min(UsageDay.day),
            func.sum(case((recent, UsageDay.distance_m), else_=0)),
            func.sum(case((recent, UsageDay.energy_wh), else_=0)),
        )
        .where(UsageDay.vehicle_id.in_(vehicles), UsageDay.day <= today)
        .group_by(UsageDay.vehicle_id)
    )
    rates: dict[str, wear.UsageRate | None] = {}
    for vehicle_id, first_day, distance, energy in rows:
        days = min(wear.RATE_WINDOW_DAYS, (today - first_day).days + 1)
        rates[vehicle_id] = wear.usage_rate(
            Decimal(distance or 0) / THOUSAND, Decimal(energy or 0) / THOUSAND, days
        )
    return rates


def vehicle_totals_before(
    session: Session, vehicle_id: str, day: dt.date
) -> tuple[Decimal, Decimal]:
    """The vehicle's km and kWh over its usage days before `day`."""
    distance, energy = session.execute(
        select(func.sum(UsageDay.distance_m), func.sum(UsageDay.energy_wh)).where(
            UsageDay.vehicle_id == vehicle_id, UsageDay.day < day
        )
    ).one()
    return Decimal(distance or 0) / THOUSAND, Decimal(energy or 0) / THOUSAND
