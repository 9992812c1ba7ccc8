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
from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import itemgetter

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.components import bom, queries, wear
from billing.components.models import SCRAPPED, BomVersion, ComponentFitting, ComponentPart
from billing.components.services import get_part, part_events
from billing.devices.models import Vehicle
from billing.devices.services import get_fleet, get_vehicle, vehicle_scope
from billing.pagination import Page

MAX_HORIZON_DAYS = 3660


@dataclass(frozen=True)
class PartWear:
    part: queries.FittedPart
    component: bom.BomComponent
    life: wear.LifeUsed
    wear: wear.Wear
    serial: str = ""
    category: str = ""
    installed_at: dt.datetime | None = None


def vehicle_components(
    session: Session, principal: Principal, vehicle_id: str, now: dt.datetime
) -> list[PartWear]:
    """The parts fitted to a vehicle now, by component code, each with its wear."""
    get_vehicle(session, principal, vehicle_id)
    return _with_details(
        session, _wear_of(session, [ComponentFitting.vehicle_id == vehicle_id], now)
    )


def part_detail(session: Session, principal: Principal, part_id: str, now: dt.datetime) -> dict:
    """A part with its fittings (oldest first), its events, and its wear when it is fitted
    (a spare or a scrapped part has none)."""
    part = get_part(session, principal, part_id)
    found = _with_details(session, _wear_of(session, [ComponentPart.id == part_id], now))
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
    it is listed when its months or service by time fall due, or once it is worn out.

    Fast for a whole fleet: the life of every part is summed in a few grouped queries, a
    bound in floats (`wear.could_be_due`) skips the parts that cannot be due, and only the
    others get their exact wear; only the page shown reads serials and instants."""
    where = [vehicle_scope(principal)]
    if fleet_id is not None:
        get_fleet(session, principal, fleet_id)
        where.append(Vehicle.fleet_id == fleet_id)
    if category is not None:
        where.append(ComponentPart.category == category)
    components = _components(session)
    due: list[tuple] = []
    candidates = queries.due_candidates(session, where, now, horizon_days, _bounds(session))
    for part in candidates:
        component, bound = components(part.model, part.bom_version, part.component_code)
        if not wear.could_be_due(
            bound, part.distance_m, part.energy_wh, part.days, part.since_service_m,
            part.days_since_service, part.rate, horizon_days,
        ):  # fmt: skip
            continue
        life = part.life()
        found = wear.due_of(component, life, part.rate, part.today)
        limit = part.today + dt.timedelta(days=horizon_days)
        due_on = found.due_on
        if found.needs_attention_now:
            due_on = min(due_on or part.today, part.today)
        elif due_on is None or due_on > limit:
            continue
        worn = found.worn_out or due_on == found.projected_end_of_life
        due.append((due_on, part.vehicle_id, part.component_code, worn, part, component, life))
    due.sort(key=itemgetter(0, 1, 2))
    start = (page - 1) * per_page
    # Only the page shown gets its whole wear, serials and instants.
    shown = [
        PartWear(part, component, life, wear.compute_wear(component, life, part.rate, part.today))
        for *_, part, component, life in due[start : start + per_page]
    ]
    items = [
        DueItem(w, due_on, "end_of_life" if worn else "service")
        for (due_on, _, _, worn, *_), w in zip(
            due[start : start + per_page], _with_details(session, shown), strict=True
        )
    ]
    return Page(items=items, page=page, per_page=per_page, total=len(due))


def _wear_of(session: Session, where: list, now: dt.datetime) -> list[PartWear]:
    components = _components(session)
    found = []
    for part in queries.fitted_parts(session, where, now):
        component, _bound = components(part.model, part.bom_version, part.component_code)
        life = part.life()
        found.append(
            PartWear(
                part, component, life, wear.compute_wear(component, life, part.rate, part.today)
            )
        )
    return found


def _with_details(session: Session, items: list[PartWear]) -> list[PartWear]:
    details = queries.part_details(session, [item.part.part_id for item in items])
    return [
        replace(item, serial=serial, category=category, installed_at=installed_at)
        for item in items
        for serial, category, installed_at in [details[item.part.part_id]]
    ]


def _bounds(session: Session) -> dict[tuple[str, int, str], wear.DueBound]:
    """The due bound of every component of every BOM version (there are a few)."""
    versions = session.scalars(select(BomVersion)).all()
    return {
        (version.model, version.version, component.code): wear.DueBound.of(component)
        for version in versions
        for component in version.to_bom().components
    }


def _components(
    session: Session,
) -> Callable[[str, int, str], tuple[bom.BomComponent, wear.DueBound]]:
    """A lookup of BOM components and their due bounds by (model, version, code), reading
    each BOM version once."""

    @functools.cache
    def version_bom(model: str, version: int) -> bom.Bom:
        return session.get_one(BomVersion, (model, version)).to_bom()

    @functools.cache
    def component(model: str, version: int, code: str) -> tuple[bom.BomComponent, wear.DueBound]:
        found = version_bom(model, version).component_of_part(code)
        return found, wear.DueBound.of(found)

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
    lives = queries.life_used(session, worn)
    by_code: dict[str, list[wear.LifeUsed]] = defaultdict(list)
    for part_id, life in lives.items():
        by_code[codes[part_id]].append(life)
    return [
        ComponentLifetimes(
            component, wear.learned_lifetimes(component, by_code.get(component.code, []))
        )
        for component in version.to_bom().components
    ]
