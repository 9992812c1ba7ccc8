"""Putting parts in vehicles: the parts a vehicle gets from its model's BOM when it is
registered, and a part fitted by hand. Nothing here commits: the caller's unit of work
(the registration, a swap) commits or rolls back with it.

A registration (billing.registry.vehicle_changes) calls `fit_from_bom`; this module depends on the
registry's models only, never on its services.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing.components import bom, queries
from billing.components.models import FITTED, BomVersion, ComponentFitting, ComponentPart
from billing.devices.models import Customer, Fleet, Vehicle
from billing.errors import Conflict
from billing.ids import new_id


def latest_bom_version(session: Session, model: str) -> BomVersion | None:
    """The latest version of `model`'s BOM, or None when the model has none."""
    return session.scalars(
        select(BomVersion)
        .where(BomVersion.model == model)
        .order_by(BomVersion.version.desc())
        .limit(1)
    ).first()


def lock_bom_version(session: Session, version: BomVersion, now: dt.datetime) -> None:
    """Make `version` immutable (a part is made from it); commits with the caller.

    Conditional, as the plans' lock: an edit that lands first is what the part is made
    from, and one that lands after finds the version locked and adds a version."""
    if version.locked_at is None:
        session.execute(
            update(BomVersion)
            .where(
                BomVersion.model == version.model,
                BomVersion.version == version.version,
                BomVersion.locked_at.is_(None),
            )
            .values(locked_at=now),
            execution_options={"synchronize_session": False},
        )
        session.refresh(version)


def local_day(session: Session, vehicle: Vehicle, instant: dt.datetime) -> dt.date:
    """The day of `instant` in the time zone of the vehicle's customer, the days its usage
    rollups are kept in."""
    zone = session.scalar(
        select(Customer.timezone)
        .join(Fleet, Fleet.customer_id == Customer.id)
        .where(Fleet.id == vehicle.fleet_id)
    )
    return instant.astimezone(ZoneInfo(zone or "UTC")).date()


def fit_from_bom(
    session: Session, vehicle: Vehicle, at: dt.datetime, now: dt.datetime
) -> list[ComponentPart]:
    """A new part of every component of the latest BOM of the vehicle's model, fitted at
    `at`; none when the model has no BOM. Serials are "<vehicle serial>/<component code>"."""
    version = latest_bom_version(session, vehicle.model)
    if version is None:
        return []
    session.flush()
    lock_bom_version(session, version, now)
    parts = []
    day = local_day(session, vehicle, at)
    for component in version.to_bom().components:
        serial = f"{vehicle.serial}/{component.code}"[:64]
        if serial_taken(session, serial):
            serial = new_id("cmp")
        part = new_part(session, version, component, serial, at, day)
        fit_part(session, part, vehicle, at)
        parts.append(part)
    return parts


def serial_taken(session: Session, serial: str) -> bool:
    return (
        session.scalar(select(ComponentPart.id).where(ComponentPart.serial == serial)) is not None
    )


def new_part(
    session: Session,
    version: BomVersion,
    component: bom.BomComponent,
    serial: str,
    at: dt.datetime,
    day: dt.date,
) -> ComponentPart:
    """A new part of `component`, to be fitted at `at` (local `day`): its service clock
    starts then."""
    part = ComponentPart(
        id=new_id("cmp"),
        serial=serial,
        model=version.model,
        bom_version=version.version,
        component_code=component.code,
        category=component.category,
        status=FITTED,
        service_since=at,
        service_since_on=day,
        created_at=at,
    )
    session.add(part)
    return part


def fit_part(
    session: Session, part: ComponentPart, vehicle: Vehicle, at: dt.datetime
) -> ComponentFitting:
    """Fit `part` to `vehicle` from `at`. The vehicle takes one part per component code:
    Conflict when that place is taken (swap the part instead)."""
    taken = session.scalar(
        select(ComponentPart.serial)
        .join(ComponentFitting, ComponentFitting.part_id == ComponentPart.id)
        .where(
            ComponentFitting.vehicle_id == vehicle.id,
            ComponentFitting.removed_at.is_(None),
            ComponentPart.component_code == part.component_code,
        )
    )
    if taken is not None:
        raise Conflict(
            f"vehicle {vehicle.id} already has a {part.component_code} fitted ({taken}); "
            "swap it instead"
        )
    day = local_day(session, vehicle, at)
    km, kwh = queries.vehicle_totals_before(session, vehicle.id, day)
    fitting = ComponentFitting(
        part_id=part.id,
        vehicle_id=vehicle.id,
        installed_at=at,
        installed_on=day,
        vehicle_km_at_install=km,
        vehicle_kwh_at_install=kwh,
        created_at=at,
    )
    part.status = FITTED
    session.add(fitting)
    session.flush()
    return fitting
