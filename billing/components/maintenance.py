"""Reading wear: the parts of a vehicle with their wear, the fleet-wide list of parts due
for service, and the lifetimes parts really had (docs/components.md).

Wear is computed when asked for, from the metering rollups (`queries`), with the pure rules
of `wear`; it is never stored, so a late reading or a rebuild of the rollups shows at the
next read. The due list sums every fitted part's life in a few grouped queries, whatever the
number of vehicles, and computes wear in one pass over the results.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.components import bom, queries, wear
from billing.components.models import SCRAPPED, BomVersion, ComponentFitting, ComponentPart
from billing.components.services import get_part, part_events
from billing.devices.models import Fleet, Vehicle
from billing.devices.services import get_fleet, get_vehicle, vehicle_scope
from billing.pagination import Page

MAX_HORIZON_DAYS = 3660


@dataclass(frozen=True)
class PartWear:
    part: queries.FittedPart
    component: bom.BomComponent
    life: wear.LifeUsed
    wear: wear.Wear


def vehicle_components(
    session: Session, principal: Principal, vehicle_id: str, now: dt.datetime
) -> list[PartWear]:
    """The parts fitted to a vehicle now, by component code, each with its wear."""
    get_vehicle(session, principal, vehicle_id)
    return _wear_of(session, [ComponentFitting.vehicle_id == vehicle_id], now)


def part_detail(session: Session, principal: Principal, part_id: str, now: dt.datetime) -> dict:
    """A part with its fittings (oldest first), its events, and its wear when it is fitted
    (a spare or a scrapped part has none)."""
    part = get_part(session, principal, part_id)
    found = _wear_of(session, [ComponentPart.id == part_id], now)
    columns = ("id", "serial", "model", "bom_version", "component_code", "category", "status",
               "service_since")  # fmt: skip
    return {
        **{column: getattr(part, column) for column in columns},
        "fittings": list(part.fittings),
        "events": part_events(session, part.id),
        "wear": found[0] if found else None,
    }


@dataclass(frozen=True)
class DueItem:
    part_wear: PartWear
    due_on: dt.date
    reason: str  # end_of_life | service


def due_list(
    session: Session,
    principal: Principal,
    now: dt.datetime,
    *,
    horizon_days: int = 30,
    fleet_id: str | None = None,
    category: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """The fitted parts due for service within `horizon_days`, by due date (then vehicle
    and component): those whose projected end of life or next service falls by then, and
    those worn out or whose service is urgent or overdue whatever their date. A part of a
    vehicle with too little history has no projected date for its distance and energy;
    it is listed when its months or service by time fall due, or once it is worn out."""
    where = [vehicle_scope(principal)]
    if fleet_id is not None:
        get_fleet(session, principal, fleet_id)
        where.append(Vehicle.fleet_id == fleet_id)
    if category is not None:
        where.append(ComponentPart.category == category)
    due: list[DueItem] = []
    for item in _wear_of(session, where, now):
        limit = item.part.today + dt.timedelta(days=horizon_days)
        due_on = item.wear.due_on
        if item.wear.needs_attention_now:
            due_on = min(due_on or item.part.today, item.part.today)
        elif due_on is None or due_on > limit:
            continue
        reason = "end_of_life" if due_on == item.wear.projected_end_of_life else "service"
        if item.wear.worn_out:
            reason = "end_of_life"
        due.append(DueItem(item, due_on, reason))
    due.sort(key=lambda d: (d.due_on, d.part_wear.part.vehicle_id, d.part_wear.part.component_code))
    start = (page - 1) * per_page
    return Page(items=due[start : start + per_page], page=page, per_page=per_page, total=len(due))


def _wear_of(session: Session, where: list, now: dt.datetime) -> list[PartWear]:
    fitted = queries.fitted_parts(session, where, now)
    if not fitted:
        return []
    part_ids = _fitted_ids(where)
    today_of = {p.part_id: p.today for p in fitted}
    lives = queries.life_used(session, part_ids, today_of)
    rates: dict[str, wear.UsageRate | None] = {}
    vehicles_by_day: dict[dt.date, set[str]] = defaultdict(set)
    for p in fitted:
        vehicles_by_day[p.today].add(p.vehicle_id)
    vehicles = _fitted_vehicles(where)
    for today in vehicles_by_day:
        rates.update(queries.recent_rates(session, vehicles, today))
    components = _components(session)
    found = []
    for p in fitted:
        component = components(p.model, p.bom_version, p.component_code)
        life = lives.get(p.part_id, wear.LifeUsed())
        found.append(
            PartWear(
                p,
                component,
                life,
                wear.compute_wear(component, life, rates.get(p.vehicle_id), p.today),
            )
        )
    return found


def _fitted_ids(where: list) -> Select:
    return (
        select(ComponentPart.id)
        .join(ComponentFitting, ComponentFitting.part_id == ComponentPart.id)
        .join(Vehicle, Vehicle.id == ComponentFitting.vehicle_id)
        .join(Fleet, Fleet.id == Vehicle.fleet_id)
        .where(ComponentFitting.removed_at.is_(None), *where)
    )


def _fitted_vehicles(where: list) -> Select:
    return _fitted_ids(where).with_only_columns(ComponentFitting.vehicle_id).distinct()


def _components(session: Session):
    """A lookup of BOM components by (model, version, code), reading each version once."""

    @functools.cache
    def version_bom(model: str, version: int) -> bom.Bom:
        return session.get(BomVersion, (model, version)).to_bom()  # type: ignore[union-attr]

    def component(model: str, version: int, code: str) -> bom.BomComponent:
        return version_bom(model, version).component(code)  # type: ignore[return-value]

    return component


# --- learned lifetimes ----------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentLifetimes:
    component: bom.BomComponent
    lifetimes: tuple[wear.LearnedLifetime, ...]


def learned_lifetimes(
    session: Session, model: str, version: BomVersion, now: dt.datetime
) -> list[ComponentLifetimes]:
    """For each component of `version` (the model's BOM), the real lifetimes of the parts of
    that code scrapped as worn (whatever BOM version they were made from), next to the BOM's
    figure, so the maker can correct it."""
    worn = select(ComponentPart.id).where(
        ComponentPart.model == model, ComponentPart.status == SCRAPPED
    )
    worn = worn.where(
        ComponentPart.id.in_(
            select(ComponentFitting.part_id).where(ComponentFitting.removal_reason == "worn")
        )
    )
    codes = dict(
        session.execute(
            worn.with_only_columns(ComponentPart.id, ComponentPart.component_code)
        ).all()
    )
    lives = queries.life_used(session, worn, now.date())
    by_code: dict[str, list[wear.LifeUsed]] = defaultdict(list)
    for part_id, life in lives.items():
        by_code[codes[part_id]].append(life)
    return [
        ComponentLifetimes(
            component, wear.learned_lifetimes(component, by_code.get(component.code, []))
        )
        for component in version.to_bom().components
    ]
