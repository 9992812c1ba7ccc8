"""What wear is computed from, summed in SQL from the metering rollups (`usage_days`).

Never from raw readings: the rollups are what billing reads, kept in step with late
readings by the metering pass and rebuilt by `billing usage rebuild`, so wear follows them
whatever happens to the readings. Nothing is cached: every call sums afresh.

A part's life is the sum, over its fittings, of its vehicle's usage days in
[installed_on, removed_on). Most parts have been in their vehicle since its first usage
day (they came with it), so their life is the vehicle's total: one grouped query over the
days gives every vehicle's total and recent use, and grouped queries sum only the
stretches that begin later or have ended (a part fitted since, a part moved, the days
since an inspection), each distinct stretch once. The number of queries grows with the
number of distinct days parts were fitted or removed on, not with the number of vehicles.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast, overload
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    BigInteger,
    Date,
    Integer,
    Select,
    String,
    and_,
    case,
    column,
    func,
    or_,
    select,
    type_coerce,
    values,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from billing.components import wear
from billing.components.models import ComponentFitting, ComponentPart
from billing.devices.models import Customer, Fleet, Vehicle
from billing.metering.models import UsageDay

THOUSAND = Decimal(1000)
ONE_DAY = dt.timedelta(days=1)


@dataclass(slots=True)
class FittedPart:
    """A part in a vehicle now, what its life summed to (metres, watt-hours, days), and
    the day it is all as of (`now` in the time zone of the vehicle's customer)."""

    part_id: str
    vehicle_id: str
    fleet_id: str
    model: str
    bom_version: int
    component_code: str
    today: dt.date
    distance_m: int = 0
    energy_wh: int = 0
    days: int = 0
    since_service_m: int = 0
    days_since_service: int = 0
    rate: wear.UsageRate | None = None

    def life(self) -> wear.LifeUsed:
        return wear.LifeUsed(
            km=Decimal(self.distance_m) / THOUSAND,
            kwh=Decimal(self.energy_wh) / THOUSAND,
            days=self.days,
            km_since_service=Decimal(self.since_service_m) / THOUSAND,
            days_since_service=self.days_since_service,
        )


@dataclass(frozen=True, slots=True)
class VehicleUsage:
    """A vehicle's usage days up to a day: the first one, the totals, and the recent use."""

    first_day: dt.date
    distance_m: int
    energy_wh: int
    rate: wear.UsageRate | None


@functools.lru_cache(maxsize=4096)
def _parse_day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _day(value: str | dt.date | None) -> dt.date | None:
    """A day as the driver returns it: SQLite's text (read as text: converting 100,000s of
    dates one by one costs more than the query), PostgreSQL's date."""
    return None if value is None else _known_day(value)


def _known_day(value: str | dt.date) -> dt.date:
    """A day of a column that is never null, as the driver returns it (see `_day`)."""
    return value if isinstance(value, dt.date) else _parse_day(value)


def _removal_day(value: str | dt.date | None) -> dt.date:
    """The removal day of an ended fitting, which the queries select only."""
    if value is None:
        raise ValueError("an ended fitting without its removal day")
    return _known_day(value)


@overload
def _raw_day(column: SQLColumnExpression[dt.date]) -> ColumnElement[str | dt.date]: ...
@overload
def _raw_day(
    column: SQLColumnExpression[dt.date | None],
) -> ColumnElement[str | dt.date | None]: ...
def _raw_day(column: SQLColumnExpression[dt.date | None]) -> ColumnElement[Any]:
    """A day column read as the driver returns it (see `_day`)."""
    return type_coerce(column, String)


def fitted_parts(session: Session, where: Iterable, now: dt.datetime) -> list[FittedPart]:
    """The parts fitted now to the vehicles `where` selects (conditions on ComponentPart,
    ComponentFitting, Vehicle or Fleet), by vehicle and component code, with their life
    summed over all their fittings."""
    where = list(where)
    # SQLAlchemy types a row of eight or more columns as open-ended, which cannot be unpacked.
    rows = cast(
        "Sequence[tuple[str, str, str, str, int, str, str | dt.date, str | dt.date]]",
        session.execute(
            _fitted(where)
            .with_only_columns(
                ComponentPart.id,
                ComponentFitting.vehicle_id,
                Vehicle.fleet_id,
                ComponentPart.model,
                ComponentPart.bom_version,
                ComponentPart.component_code,
                _raw_day(ComponentPart.service_since_on),
                _raw_day(ComponentFitting.installed_on),
            )
            .order_by(ComponentFitting.vehicle_id, ComponentPart.component_code, ComponentPart.id)
        ).all(),
    )
    if not rows:
        return []
    today_of_fleet = _fleet_days(session, {row[2] for row in rows}, now)
    parts = {}
    service_since: dict[str, dt.date] = {}
    fittings = []
    for part_id, vehicle_id, fleet_id, model, version, code, since, installed in rows:
        parts[part_id] = FittedPart(
            part_id, vehicle_id, fleet_id, model, version, code, today_of_fleet[fleet_id]
        )
        service_since[part_id] = _known_day(since)
        fittings.append((part_id, vehicle_id, installed, None))
    _add_lives(session, where, parts, service_since, fittings)
    return list(parts.values())


def _fitted(where: list) -> Select:
    return (
        select(ComponentPart.id)
        .join(ComponentFitting, ComponentFitting.part_id == ComponentPart.id)
        .join(Vehicle, Vehicle.id == ComponentFitting.vehicle_id)
        .join(Fleet, Fleet.id == Vehicle.fleet_id)
        .join(Customer, Customer.id == Fleet.customer_id)
        .where(ComponentFitting.removed_at.is_(None), *where)
    )


def _fleet_days(session: Session, fleet_ids: set[str], now: dt.datetime) -> dict[str, dt.date]:
    rows = session.execute(
        select(Fleet.id, Customer.timezone)
        .join(Customer, Customer.id == Fleet.customer_id)
        .where(Fleet.id.in_(fleet_ids))
    )
    zones: dict[str, dt.date] = {}
    found = {}
    for fleet_id, zone in rows:
        if zone not in zones:
            zones[zone] = now.astimezone(ZoneInfo(zone)).date()
        found[fleet_id] = zones[zone]
    return found


def _add_lives(
    session: Session,
    where: list,
    parts: dict[str, FittedPart],
    service_since: dict[str, dt.date],
    open_fittings: list[tuple],
) -> None:
    """Sum each part's life over its fittings: the open ones, and the ended ones of parts
    that were in another vehicle before (a part moved keeps its life)."""
    selected = _fitted(where)
    fittings: list[tuple[Any, ...]] = [
        *open_fittings,
        *session.execute(
            select(
                ComponentFitting.part_id,
                ComponentFitting.vehicle_id,
                _raw_day(ComponentFitting.installed_on),
                _raw_day(ComponentFitting.removed_on),
            ).where(
                ComponentFitting.part_id.in_(selected), ComponentFitting.removed_at.is_not(None)
            )
        ),
    ]
    days_by_today: dict[dt.date, set[str]] = {}
    for part in parts.values():
        days_by_today.setdefault(part.today, set()).add(part.vehicle_id)
    usage: dict[str, VehicleUsage] = {}
    for today, vehicle_ids in days_by_today.items():
        usage.update(vehicle_usage(session, _vehicles_of(selected), today, vehicle_ids))
    stays = [
        (parts[part_id], vehicle_id, _known_day(installed), _day(removed))
        for part_id, vehicle_id, installed, removed in fittings
    ]
    wanted: set[tuple[str, dt.date, dt.date | None]] = set()
    for part, vehicle_id, installed_on, removed_on in stays:
        vehicle = usage.get(vehicle_id)
        for start in (installed_on, max(installed_on, service_since[part.part_id])):
            if removed_on is not None or (vehicle is not None and start > vehicle.first_day):
                wanted.add((vehicle_id, start, removed_on))
    stretches = range_sums(session, wanted)
    for part, vehicle_id, installed_on, removed_on in stays:
        since = max(installed_on, service_since[part.part_id])
        vehicle = usage.get(vehicle_id)
        end = removed_on or part.today + ONE_DAY
        distance, energy = _sum(stretches, vehicle, vehicle_id, installed_on, removed_on)
        part.distance_m += distance
        part.energy_wh += energy
        part.days += max((end - installed_on).days, 0)
        if since < end:
            part.since_service_m += _sum(stretches, vehicle, vehicle_id, since, removed_on)[0]
    for part_id, part in parts.items():
        part.days_since_service = max((part.today - service_since[part_id]).days, 0)
        vehicle = usage.get(part.vehicle_id)
        part.rate = vehicle.rate if vehicle is not None else None


def _sum(
    stretches: dict[tuple, tuple[int, int]],
    vehicle: VehicleUsage | None,
    vehicle_id: str,
    start: dt.date,
    end: dt.date | None,
) -> tuple[int, int]:
    """The usage of [start, end): the vehicle's total when that covers all its days."""
    if end is None and vehicle is not None and start <= vehicle.first_day:
        return vehicle.distance_m, vehicle.energy_wh
    return stretches.get((vehicle_id, start, end), (0, 0))


def _vehicles_of(selected: Select) -> Select:
    return (
        select(ComponentFitting.vehicle_id)
        .where(ComponentFitting.part_id.in_(selected), ComponentFitting.removed_at.is_(None))
        .distinct()
    )


def vehicle_usage(
    session: Session, vehicles: Select, today: dt.date, only: set[str] | None = None
) -> dict[str, VehicleUsage]:
    """Each vehicle's usage days up to `today`: the first, the totals, and the rate over
    the RATE_WINDOW_DAYS days up to `today` (fewer when its rollups begin later; None when
    that is less than MIN_HISTORY_DAYS)."""
    cut = today - dt.timedelta(days=wear.RATE_WINDOW_DAYS - 1)
    recent = UsageDay.day >= cut
    # PostgreSQL sums integers as numeric.
    recent_distance: ColumnElement[int | Decimal] = func.sum(
        case((recent, UsageDay.distance_m), else_=0)
    )
    recent_energy: ColumnElement[int | Decimal] = func.sum(
        case((recent, UsageDay.energy_wh), else_=0)
    )
    rows = session.execute(
        select(
            UsageDay.vehicle_id,
            _raw_day(func.min(UsageDay.day)),
            func.sum(UsageDay.distance_m),
            func.sum(UsageDay.energy_wh),
            recent_distance,
            recent_energy,
        )
        .where(UsageDay.vehicle_id.in_(vehicles), UsageDay.day <= today)
        .group_by(UsageDay.vehicle_id)
    )
    found: dict[str, VehicleUsage] = {}
    for vehicle_id, first, distance, energy, recent_m, recent_wh in rows:
        if only is not None and vehicle_id not in only:
            continue
        first_day = _known_day(first)
        days = min(wear.RATE_WINDOW_DAYS, (today - first_day).days + 1)
        rate = wear.usage_rate(
            Decimal(recent_m or 0) / THOUSAND, Decimal(recent_wh or 0) / THOUSAND, days
        )
        found[vehicle_id] = VehicleUsage(first_day, int(distance or 0), int(energy or 0), rate)
    return found


def life_used(session: Session, part_ids: Select) -> dict[str, wear.LifeUsed]:
    """The life of parts no longer fitted (scrapped or spare), summed over their fittings,
    each distinct stretch of a vehicle's days once."""
    fittings = [
        (part_id, vehicle_id, _known_day(installed), _removal_day(removed))
        for part_id, vehicle_id, installed, removed in session.execute(
            select(
                ComponentFitting.part_id,
                ComponentFitting.vehicle_id,
                _raw_day(ComponentFitting.installed_on),
                _raw_day(ComponentFitting.removed_on),
            ).where(
                ComponentFitting.part_id.in_(part_ids), ComponentFitting.removed_on.is_not(None)
            )
        )
    ]
    sums = range_sums(session, {(vehicle_id, start, end) for _, vehicle_id, start, end in fittings})
    totals: dict[str, list[int]] = {}
    for part_id, vehicle_id, start, end in fittings:
        distance, energy = sums.get((vehicle_id, start, end), (0, 0))
        total = totals.setdefault(part_id, [0, 0, 0])
        total[0] += distance
        total[1] += energy
        total[2] += max((end - start).days, 0)
    return {
        part_id: wear.LifeUsed(
            km=Decimal(distance) / THOUSAND, kwh=Decimal(energy) / THOUSAND, days=days
        )
        for part_id, (distance, energy, days) in totals.items()
    }


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


def part_details(session: Session, part_ids: list[str]) -> dict[str, list[Any]]:
    """Serial, category and fitting instant of fitted parts, for the few that are shown."""
    found = {}
    for start in range(0, len(part_ids), 500):
        rows = session.execute(
            select(
                ComponentPart.id,
                ComponentPart.serial,
                ComponentPart.category,
                ComponentFitting.installed_at,
            )
            .join(ComponentFitting, ComponentFitting.part_id == ComponentPart.id)
            .where(
                ComponentPart.id.in_(part_ids[start : start + 500]),
                ComponentFitting.removed_at.is_(None),
            )
        )
        found.update({part_id: details for part_id, *details in rows})
    return found


# --- the fleet-wide due list ----------------------------------------------------------------

# A stretch of rate shorter than this counts as this many days in the SQL bound: a larger
# rate than any `vehicle_usage` gives, so the bound never skips a part it should keep.
_SHORTEST_RATE_DAYS = wear.MIN_HISTORY_DAYS
# Vehicles per query, well within SQLite's 32,766 bound variables.
RANGES_PER_QUERY = 5000


def due_candidates(
    session: Session,
    where: list,
    now: dt.datetime,
    horizon_days: int,
    bounds: dict[tuple[str, int, str], wear.DueBound],
) -> list[FittedPart]:
    """The fitted parts that may be due within `horizon_days`, with their life; the others
    are left in the database.

    Most parts have been in their vehicle since its first usage day and were never
    inspected: their life is the vehicle's totals, and SQL applies the bound of
    `wear.could_be_due` to them directly (in integers and dates, never tighter than it).
    The others (a part fitted since, moved, or inspected) are summed as `fitted_parts`
    does and bounded in Python."""
    found: list[FittedPart] = []
    for today, zones in _todays(session, where, now).items():
        zone_where = [*where, Customer.timezone.in_(zones)]
        found += _candidates_on(session, zone_where, today, now, horizon_days, bounds)
    return found


def _todays(session: Session, where: list, now: dt.datetime) -> dict[dt.date, list[str]]:
    zones = session.scalars(_fitted(where).with_only_columns(Customer.timezone).distinct())
    todays: dict[dt.date, list[str]] = {}
    for zone in zones:
        todays.setdefault(now.astimezone(ZoneInfo(zone)).date(), []).append(zone)
    return todays


# A fitted part that may be due: the part, its fitting and service days, whether its life is
# its vehicle's totals, whether it was moved, and the vehicle's first day, totals and recent
# use (PostgreSQL sums are numeric).
_CandidateRow = tuple[
    str, str, str, str, int, str, str | dt.date, str | dt.date, bool, bool,
    str | dt.date | None, int | Decimal, int | Decimal, int | Decimal, int | Decimal,
]  # fmt: skip


def _candidates_on(
    session: Session,
    where: list,
    today: dt.date,
    now: dt.datetime,
    horizon_days: int,
    bounds: dict[tuple[str, int, str], wear.DueBound],
) -> list[FittedPart]:
    reach = horizon_days + 2
    cut = today - dt.timedelta(days=wear.RATE_WINDOW_DAYS - 1)
    recent = UsageDay.day >= cut
    usage = (
        select(
            UsageDay.vehicle_id,
            func.min(UsageDay.day).label("first_day"),
            func.sum(UsageDay.distance_m).label("distance_m"),
            func.sum(UsageDay.energy_wh).label("energy_wh"),
            func.sum(case((recent, UsageDay.distance_m), else_=0)).label("recent_m"),
            func.sum(case((recent, UsageDay.energy_wh), else_=0)).label("recent_wh"),
        )
        .where(UsageDay.day <= today)
        .group_by(UsageDay.vehicle_id)
        .subquery()
    )
    limits = _limits(bounds, today, reach)
    moved = (
        select(ComponentFitting.part_id)
        .where(ComponentFitting.removed_at.is_not(None))
        .distinct()
        .subquery()
    )
    distance = func.coalesce(usage.c.distance_m, 0)
    energy = func.coalesce(usage.c.energy_wh, 0)
    recent_m = func.coalesce(usage.c.recent_m, 0)
    recent_wh = func.coalesce(usage.c.recent_wh, 0)
    rate_days = case((usage.c.first_day <= cut, wear.RATE_WINDOW_DAYS), else_=_SHORTEST_RATE_DAYS)
    simple = and_(
        moved.c.part_id.is_(None),
        or_(
            usage.c.first_day.is_(None),
            and_(
                ComponentFitting.installed_on <= usage.c.first_day,
                ComponentPart.service_since_on <= usage.c.first_day,
            ),
        ),
    )

    def running_out(
        limit: ColumnElement[Any], used: ColumnElement[Any], recent: ColumnElement[Any]
    ) -> ColumnElement[bool]:
        # limit − used ≤ max(recent ÷ rate_days × reach, 1), multiplied out in integers
        return and_(limit.is_not(None), (limit - used) * rate_days <= recent * reach + rate_days)

    bound = or_(
        running_out(limits.c.distance_m, distance, recent_m),
        running_out(limits.c.energy_wh, energy, recent_wh),
        ComponentFitting.installed_on <= limits.c.life_by,
        and_(
            limits.c.service_every_m.is_not(None),
            limits.c.service_every_m - distance <= limits.c.urgent_m + 1,
        ),
        running_out(limits.c.service_every_m, distance, recent_m),
        ComponentPart.service_since_on <= limits.c.service_by,
    )
    # SQLAlchemy types a row of eight or more columns as open-ended, which cannot be unpacked.
    rows = cast(
        "Sequence[_CandidateRow]",
        session.execute(
            _fitted(where)
            # Outer joins: SQLite keeps them after the tables they follow, so the plan runs
            # from the fittings to the bounds, not from the bounds to every vehicle.
            .outerjoin(
                limits,
                and_(
                    limits.c.model == ComponentPart.model,
                    limits.c.bom_version == ComponentPart.bom_version,
                    limits.c.code == ComponentPart.component_code,
                ),
            )
            .outerjoin(usage, usage.c.vehicle_id == ComponentFitting.vehicle_id)
            .outerjoin(moved, moved.c.part_id == ComponentPart.id)
            .where(or_(~simple, bound))
            .with_only_columns(
                ComponentPart.id,
                ComponentFitting.vehicle_id,
                Vehicle.fleet_id,
                ComponentPart.model,
                ComponentPart.bom_version,
                ComponentPart.component_code,
                _raw_day(ComponentFitting.installed_on),
                _raw_day(ComponentPart.service_since_on),
                simple.label("simple"),
                moved.c.part_id.is_not(None).label("moved"),
                _raw_day(usage.c.first_day),
                distance,
                energy,
                recent_m,
                recent_wh,
            )
        ).all(),
    )
    found: list[FittedPart] = []
    others: list[tuple[FittedPart, dt.date, dt.date, VehicleUsage | None]] = []
    moved_ids = []
    vehicles: dict[str, VehicleUsage] = {}
    for row in rows:
        (part_id, vehicle_id, fleet_id, model, version, code, installed, since, is_simple,
         was_moved, first, distance_m, energy_wh, recent_distance, recent_energy) = row  # fmt: skip
        distance_m, energy_wh = int(distance_m), int(energy_wh)  # PostgreSQL sums are numeric
        installed_on, service_since_on = _known_day(installed), _known_day(since)
        first_day = _day(first)
        vehicle = vehicles.get(vehicle_id)
        if vehicle is None and first_day is not None:
            days = min(wear.RATE_WINDOW_DAYS, (today - first_day).days + 1)
            rate = wear.usage_rate(
                Decimal(recent_distance) / THOUSAND, Decimal(recent_energy) / THOUSAND, days
            )
            vehicle = vehicles[vehicle_id] = VehicleUsage(first_day, distance_m, energy_wh, rate)
        part = FittedPart(
            part_id, vehicle_id, fleet_id, model, version, code, today,
            days=max((today - installed_on).days + 1, 0),
            days_since_service=max((today - service_since_on).days, 0),
            rate=vehicle.rate if vehicle is not None else None,
        )  # fmt: skip
        if is_simple:
            part.distance_m = part.since_service_m = distance_m
            part.energy_wh = energy_wh
            found.append(part)
            continue
        others.append((part, installed_on, service_since_on, vehicle))
        if was_moved:
            moved_ids.append(part_id)
    found += _sum_others(session, others, moved_ids)
    return found


def _sum_others(
    session: Session,
    others: list[tuple[FittedPart, dt.date, dt.date, VehicleUsage | None]],
    moved_ids: list[str],
) -> list[FittedPart]:
    """The life of parts that are not simply their vehicle's totals, from the stretches
    of days they need, each summed once."""
    earlier: dict[str, list[tuple[str, dt.date, dt.date]]] = {}
    for offset in range(0, len(moved_ids), RANGES_PER_QUERY):
        for part_id, vehicle_id, installed, removed in session.execute(
            select(
                ComponentFitting.part_id,
                ComponentFitting.vehicle_id,
                _raw_day(ComponentFitting.installed_on),
                _raw_day(ComponentFitting.removed_on),
            ).where(
                ComponentFitting.part_id.in_(moved_ids[offset : offset + RANGES_PER_QUERY]),
                ComponentFitting.removed_at.is_not(None),
            )
        ):
            stretch = (vehicle_id, _known_day(installed), _removal_day(removed))
            earlier.setdefault(part_id, []).append(stretch)
    wanted: set[tuple[str, dt.date, dt.date | None]] = set()
    for part, installed_on, since, vehicle in others:
        for start in (installed_on, max(installed_on, since)):
            if vehicle is not None and start > vehicle.first_day:
                wanted.add((part.vehicle_id, start, None))
        for vehicle_id, start, end in earlier.get(part.part_id, ()):
            wanted.add((vehicle_id, start, end))
            wanted.add((vehicle_id, max(start, since), end))
    sums = range_sums(session, wanted)
    for part, installed_on, since, vehicle in others:
        part.distance_m, part.energy_wh = _sum(sums, vehicle, part.vehicle_id, installed_on, None)
        from_service = max(installed_on, since)
        part.since_service_m = _sum(sums, vehicle, part.vehicle_id, from_service, None)[0]
        for vehicle_id, start, end in earlier.get(part.part_id, ()):
            distance, energy = sums.get((vehicle_id, start, end), (0, 0))
            part.distance_m += distance
            part.energy_wh += energy
            part.days += max((end - start).days, 0)
            if max(start, since) < end:
                part.since_service_m += sums.get((vehicle_id, max(start, since), end), (0, 0))[0]
    return [part for part, *_ in others]


def range_sums(
    session: Session, ranges: Iterable[tuple[str, dt.date, dt.date | None]]
) -> dict[tuple, tuple[int, int]]:
    """The distance and energy of each (vehicle, first day, end day or None) stretch: one
    grouped query per distinct (first day, end day), for all the vehicles that need it
    (parts are fitted on a few days, so there are a few such queries, each on the index)."""
    vehicles_of: dict[tuple[dt.date, dt.date | None], list[str]] = {}
    for vehicle_id, start, end in ranges:
        vehicles_of.setdefault((start, end), []).append(vehicle_id)
    found: dict[tuple, tuple[int, int]] = {}
    for (start, end), vehicle_ids in vehicles_of.items():
        for first in range(0, len(vehicle_ids), RANGES_PER_QUERY):
            query = (
                select(
                    UsageDay.vehicle_id,
                    func.sum(UsageDay.distance_m),
                    func.sum(UsageDay.energy_wh),
                )
                .where(
                    UsageDay.vehicle_id.in_(vehicle_ids[first : first + RANGES_PER_QUERY]),
                    UsageDay.day >= start,
                )
                .group_by(UsageDay.vehicle_id)
            )
            if end is not None:
                query = query.where(UsageDay.day < end)
            for vehicle_id, distance, energy in session.execute(query):
                found[(vehicle_id, start, end)] = (int(distance or 0), int(energy or 0))
    return found


def _limits(bounds: dict[tuple[str, int, str], wear.DueBound], today: dt.date, reach: int) -> CTE:
    """The bounds as a table: integer metres and watt-hours (rounded down, so never
    tighter), and the days on or before which a part's time or service may fall due."""

    def by(interval: float | None, margin: float) -> dt.date | None:
        if interval is None:
            return None
        days = int(margin) + 1 - math.floor(interval)
        days = max(min(days, (dt.date.max - today).days), (dt.date.min - today).days)
        return today + dt.timedelta(days=days)

    rows = [
        (
            model, version, code,
            None if b.distance_m is None else math.floor(b.distance_m),
            None if b.energy_wh is None else math.floor(b.energy_wh),
            by(b.life_days, reach),
            None if b.service_every_m is None else math.floor(b.service_every_m),
            math.ceil(b.urgent_m),
            by(b.service_every_days, max(reach, math.ceil(b.urgent_days))),
        )
        for (model, version, code), b in bounds.items()
    ]  # fmt: skip
    return (
        values(
            column("model", String), column("bom_version", Integer), column("code", String),
            column("distance_m", BigInteger), column("energy_wh", BigInteger),
            column("life_by", Date), column("service_every_m", BigInteger),
            column("urgent_m", BigInteger), column("service_by", Date),
            name="due_bounds",
        )
        .data(rows)
        .cte()
    )  # fmt: skip
