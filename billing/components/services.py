"""Component services: bills of materials (load, create, read), the parts of the vehicles
(fitted at registration or by hand, swapped, removed, repaired, refurbished, inspected),
and their wear, due-for-service list and learned lifetimes (docs/components.md).

Versioning, as plans: a BOM version is immutable once a part was made from it
(`locked_at`). A changed definition replaces the latest version while it is unlocked and
adds version n+1 once it is locked; an unchanged one creates nothing, so loading the same
files twice is harmless.

Every function that changes something commits, as one unit of work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import ColumnElement, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.components import bom, derive
from billing.components.fitting import (
    fit_part,
    latest_bom_version,
    local_day,
    lock_bom_version,
    new_part,
    serial_taken,
)
from billing.components.models import (
    SCRAPPED,
    SPARE,
    BomVersion,
    ComponentEvent,
    ComponentFitting,
    ComponentPart,
    definition_text,
)
from billing.db import rows_changed
from billing.devices.models import Vehicle
from billing.devices.services import get_vehicle, vehicle_scope
from billing.errors import Conflict, Invalid, NotFound
from billing.ids import new_id
from billing.pagination import Page, paginate
from billing.pricing import plans
from billing.settings import PROJECT_ROOT

DEFAULT_BOM_DIRECTORY = PROJECT_ROOT / "config" / "bom"
BOM_FILE_SUFFIXES = (".yaml", ".yml")
CREATED, REPLACED, NEW_VERSION, UNCHANGED = "created", "replaced", "new version", "unchanged"


@dataclass(frozen=True)
class LoadedBom:
    path: Path
    model: str
    version: int
    outcome: str


# --- bills of materials -------------------------------------------------------------------


def parse_definition(data: Any) -> bom.Bom:
    """`parse_bom`, its errors turned into Invalid with their field paths (a 422)."""
    try:
        return bom.parse_bom(data)
    except bom.BomInvalid as error:
        raise Invalid(
            f"invalid bill of materials: {', '.join(error.errors)}", error.errors
        ) from None


def save_bom(session: Session, data: Mapping[str, Any], now: dt.datetime) -> BomVersion:
    """Save a BOM definition for its model: version 1, a replaced unlocked version, a new
    version after a locked one, or nothing when it did not change. Returns the version."""
    definition = parse_definition(data)
    version, outcome = _save(session, definition, now)
    if outcome != UNCHANGED:
        _commit(session, definition.model)
    return version


def get_bom_version(session: Session, model: str, version: int | None = None) -> BomVersion:
    """Version `version` of `model`'s BOM, or its latest; NotFound otherwise."""
    if version is None:
        found = latest_bom_version(session, model)
    else:
        found = session.get(BomVersion, (model, version))
    if found is None:
        raise NotFound("bill of materials", model if version is None else f"{model}/{version}")
    return found


def list_boms(session: Session) -> list[BomVersion]:
    """The latest version of every model's BOM, by model."""
    latest = (
        select(BomVersion.model, func.max(BomVersion.version).label("version"))
        .group_by(BomVersion.model)
        .subquery()
    )
    return list(
        session.scalars(
            select(BomVersion)
            .join(
                latest,
                (BomVersion.model == latest.c.model) & (BomVersion.version == latest.c.version),
            )
            .order_by(BomVersion.model)
        )
    )


def list_bom_versions(session: Session, model: str) -> list[BomVersion]:
    get_bom_version(session, model)
    return list(
        session.scalars(
            select(BomVersion).where(BomVersion.model == model).order_by(BomVersion.version)
        )
    )


def load_boms_from_directory(
    session: Session, directory: Path, now: dt.datetime
) -> list[LoadedBom]:
    """Load every `*.yaml` and `*.yml` BOM file of `directory`, in file name order.

    Every file is read and checked before anything is written, and all are saved in one
    transaction: one faulty file loads nothing. Raises Invalid with details keyed
    "<file name>: <field path>"."""
    files = sorted(p for p in directory.iterdir() if p.suffix in BOM_FILE_SUFFIXES)
    definitions: list[tuple[Path, bom.Bom]] = []
    errors: dict[str, list[str]] = {}
    first_file: dict[str, Path] = {}
    for path in files:
        try:
            definition = bom.parse_bom(_read_yaml(path))
        except bom.BomInvalid as error:
            errors.update({f"{path.name}: {field}": m for field, m in error.errors.items()})
            continue
        if definition.model in first_file:
            errors[f"{path.name}: model"] = [
                f"model {definition.model} is also defined in {first_file[definition.model].name}"
            ]
            continue
        first_file[definition.model] = path
        definitions.append((path, definition))
    if errors:
        raise Invalid(f"invalid bill of materials files in {directory}", errors)
    loaded = []
    for path, definition in definitions:
        version, outcome = _save(session, definition, now)
        session.flush()
        loaded.append(LoadedBom(path, definition.model, version.version, outcome))
    _commit(session, ", ".join(first_file))
    return loaded


def read_bom_file(path: Path) -> bom.Bom:
    """The BOM of one YAML file; Invalid naming the faulty field paths."""
    try:
        return parse_definition(_read_yaml(path))
    except bom.BomInvalid as error:
        raise Invalid(f"invalid bill of materials {path.name}", error.errors) from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise bom.BomInvalid({"_schema": [f"not valid YAML: {error}"]}) from None
    except (OSError, UnicodeDecodeError) as error:
        raise bom.BomInvalid({"_schema": [f"cannot be read: {error}"]}) from None


def _save(session: Session, definition: bom.Bom, now: dt.datetime) -> tuple[BomVersion, str]:
    latest = latest_bom_version(session, definition.model)
    text = definition_text(definition)
    if latest is None:
        version = BomVersion(
            model=definition.model,
            version=1,
            currency=definition.currency,
            definition=text,
            created_at=now,
        )
        session.add(version)
        return version, CREATED
    if latest.definition == text:
        return latest, UNCHANGED
    if latest.currency != definition.currency:
        raise Invalid(
            "currency change",
            {"currency": [f"the BOM of {definition.model} is in {latest.currency}"]},
        )
    # Conditional on the lock, as plans: a part made meanwhile makes this a new version.
    replaced = rows_changed(
        session,
        update(BomVersion)
        .where(
            BomVersion.model == latest.model,
            BomVersion.version == latest.version,
            BomVersion.locked_at.is_(None),
        )
        .values(definition=text, created_at=now)
        .execution_options(synchronize_session=False),
    )
    if replaced:
        session.refresh(latest)
        return latest, REPLACED
    version = BomVersion(
        model=definition.model,
        version=latest.version + 1,
        currency=definition.currency,
        definition=text,
        created_at=now,
    )
    session.add(version)
    return version, NEW_VERSION


def _commit(session: Session, models: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"the bill of materials of {models} was changed concurrently; retry"
        ) from None


# --- parts ---------------------------------------------------------------------------------

# A part removed for one of these is kept to be repaired, refurbished or fitted elsewhere;
# a worn part is scrapped (and counts in the learned lifetimes).
KEPT_REASONS = ("failed", "damaged", "upgrade", "refurbishment", "moved")


def part_scope(principal: Principal) -> ColumnElement[bool]:
    """The parts `principal` may see: those whose latest vehicle it may see (a spare stays
    with the fleet it was taken from)."""
    if principal.sees_everything:
        return true()
    latest = (
        select(ComponentFitting.vehicle_id)
        .where(ComponentFitting.part_id == ComponentPart.id)
        .order_by(ComponentFitting.installed_at.desc(), ComponentFitting.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return latest.in_(select(Vehicle.id).where(vehicle_scope(principal)))


def get_part(session: Session, principal: Principal, part_id: str) -> ComponentPart:
    part = session.scalar(
        select(ComponentPart).where(ComponentPart.id == part_id, part_scope(principal))
    )
    if part is None:
        raise NotFound("component", part_id)
    return part


def list_parts(
    session: Session,
    principal: Principal,
    page: int,
    per_page: int,
    status: str | None = None,
    model: str | None = None,
) -> Page:
    """Parts by serial, optionally only those of a `status` (fitted, spare, scrapped) or
    vehicle `model`."""
    query = select(ComponentPart).where(part_scope(principal))
    if status is not None:
        query = query.where(ComponentPart.status == status)
    if model is not None:
        query = query.where(ComponentPart.model == model)
    return paginate(session, query.order_by(ComponentPart.serial), page, per_page)


def part_events(session: Session, part_id: str) -> list[ComponentEvent]:
    return list(
        session.scalars(
            select(ComponentEvent)
            .where(ComponentEvent.part_id == part_id)
            .order_by(ComponentEvent.at, ComponentEvent.id)
        )
    )


def fit_component(
    session: Session,
    principal: Principal,
    vehicle_id: str,
    data: Mapping[str, Any],
    now: dt.datetime,
) -> ComponentPart:
    """Fit a part to a vehicle by hand, from `installed_at` (default now): a new part of
    `component_code` of the latest BOM of the vehicle's model (with `serial`, or one made
    up), or the spare part `part_id` (a refurbished part keeps the life it used)."""
    vehicle = get_vehicle(session, principal, vehicle_id)
    at = _instant(data.get("installed_at"), now, "installed_at")
    if data.get("part_id"):
        part = _spare_part(session, principal, data["part_id"], vehicle, "part_id")
    else:
        part = _new_part(session, vehicle, data, at, now)
    fit_part(session, part, vehicle, at)
    _commit_parts(session)
    return part


def swap_component(
    session: Session, principal: Principal, part_id: str, data: Mapping[str, Any], now: dt.datetime
) -> ComponentPart:
    """Replace a fitted part at `at` (default now) for `reason`: by the spare part
    `replacement_id`, or by a new part of the same component (`serial` optional) from the
    latest BOM of the vehicle's model. Returns the part fitted."""
    part = get_part(session, principal, part_id)
    fitting = _open_fitting(session, part)
    vehicle = session.get_one(Vehicle, fitting.vehicle_id)
    at = _instant(data.get("at"), now, "at")
    _close_fitting(session, part, fitting, vehicle, data["reason"], at)
    if data.get("replacement_id"):
        replacement = _spare_part(
            session, principal, data["replacement_id"], vehicle, "replacement_id"
        )
        if replacement.component_code != part.component_code:
            raise Invalid(
                "replacement of another component",
                {
                    "replacement_id": [
                        f"is a {replacement.component_code}, not a {part.component_code}"
                    ]
                },
            )
    else:
        replacement = _new_part(
            session,
            vehicle,
            {"component_code": part.component_code, "serial": data.get("serial")},
            at,
            now,
        )
    fit_part(session, replacement, vehicle, at)
    _commit_parts(session)
    return replacement


def remove_component(
    session: Session, principal: Principal, part_id: str, data: Mapping[str, Any], now: dt.datetime
) -> ComponentPart:
    """Take a fitted part out at `at` (default now) for `reason`: scrapped when worn, kept
    as a spare otherwise (to be repaired, refurbished or fitted to another vehicle)."""
    part = get_part(session, principal, part_id)
    fitting = _open_fitting(session, part)
    vehicle = session.get_one(Vehicle, fitting.vehicle_id)
    at = _instant(data.get("at"), now, "at")
    _close_fitting(session, part, fitting, vehicle, data["reason"], at)
    _commit_parts(session)
    return part


def record_event(
    session: Session, principal: Principal, part_id: str, data: Mapping[str, Any], now: dt.datetime
) -> ComponentEvent:
    """Record a repair, refurbishment or inspection of a part at `at` (default now), with
    its cost. The part keeps the life it used (a part renewed as new is a swap); an
    inspection restarts its service interval from its day."""
    part = get_part(session, principal, part_id)
    at = _instant(data.get("at"), now, "at")
    first = part.fittings[0].installed_at if part.fittings else part.created_at
    if at < first:
        raise Invalid(
            "before the part's first fitting", {"at": [f"must not be before {first.isoformat()}"]}
        )
    kind = data["kind"]
    component = _bom_component(session, part)
    if data.get("cost") is None:
        cost = {"repair": component.repair_cost, "refurbishment": component.refurbish_cost}.get(
            kind
        )
    else:
        cost = data["cost"]
    fitting = _current_fitting(session, part)
    event = ComponentEvent(
        part_id=part.id,
        vehicle_id=fitting.vehicle_id if fitting is not None else None,
        kind=kind,
        at=at,
        cost=cost,
        notes=data.get("notes", ""),
        created_at=now,
    )
    session.add(event)
    if kind == "inspection" and at > part.service_since:
        vehicle = session.get_one(Vehicle, (fitting or part.fittings[-1]).vehicle_id)
        part.service_since, part.service_since_on = at, local_day(session, vehicle, at)
    session.commit()
    return event


def bom_component_of(session: Session, part: ComponentPart) -> bom.BomComponent:
    """The BOM component a part was made from (in the version it was made from)."""
    return _bom_component(session, part)


def _bom_component(session: Session, part: ComponentPart) -> bom.BomComponent:
    version = session.get_one(BomVersion, (part.model, part.bom_version))
    return version.to_bom().component_of_part(part.component_code)


def _new_part(
    session: Session, vehicle: Vehicle, data: Mapping[str, Any], at: dt.datetime, now: dt.datetime
) -> ComponentPart:
    version = latest_bom_version(session, vehicle.model)
    if version is None:
        raise Invalid(
            "no bill of materials", {"component_code": [f"model {vehicle.model} has no BOM"]}
        )
    code = data.get("component_code")
    if code is None:
        raise Invalid("component_code required", {"component_code": ["required without part_id"]})
    component = version.to_bom().component(code)
    if component is None:
        known = ", ".join(c.code for c in version.to_bom().components)
        raise Invalid(
            "unknown component",
            {"component_code": [f"{code!r} is not in the BOM of {vehicle.model}; known: {known}"]},
        )
    serial = data.get("serial") or new_id("cmp")
    if serial_taken(session, serial):
        raise Conflict(f"serial {serial} is already a part")
    lock_bom_version(session, version, now)
    return new_part(session, version, component, serial, at, local_day(session, vehicle, at))


def _spare_part(
    session: Session, principal: Principal, part_id: str, vehicle: Vehicle, field: str
) -> ComponentPart:
    part = session.scalar(
        select(ComponentPart).where(ComponentPart.id == part_id, part_scope(principal))
    )
    if part is None:
        raise Invalid("unknown part", {field: [f"component {part_id} not found"]})
    if part.status != SPARE:
        raise Invalid("part not available", {field: [f"component {part_id} is {part.status}"]})
    if part.model != vehicle.model:
        raise Invalid(
            "part of another model",
            {field: [f"component {part_id} is a part of model {part.model}, not {vehicle.model}"]},
        )
    return part


def _open_fitting(session: Session, part: ComponentPart) -> ComponentFitting:
    fitting = _current_fitting(session, part)
    if fitting is None:
        raise Conflict(f"component {part.id} is not fitted to any vehicle ({part.status})")
    return fitting


def _current_fitting(session: Session, part: ComponentPart) -> ComponentFitting | None:
    return session.scalar(
        select(ComponentFitting).where(
            ComponentFitting.part_id == part.id, ComponentFitting.removed_at.is_(None)
        )
    )


def _close_fitting(
    session: Session,
    part: ComponentPart,
    fitting: ComponentFitting,
    vehicle: Vehicle,
    reason: str,
    at: dt.datetime,
) -> None:
    if at < fitting.installed_at:
        raise Invalid(
            "removal before fitting",
            {"at": [f"must not be before the fitting at {fitting.installed_at.isoformat()}"]},
        )
    fitting.removed_at, fitting.removed_on = at, local_day(session, vehicle, at)
    fitting.removal_reason = reason
    part.status = SPARE if reason in KEPT_REASONS else SCRAPPED
    session.flush()


def _instant(value: dt.datetime | None, now: dt.datetime, field: str) -> dt.datetime:
    if value is None:
        return now
    if value > now:
        raise Invalid("in the future", {field: ["must not be in the future"]})
    return value


def _commit_parts(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError:
        # The open-fitting index: the same part fitted twice at the same time.
        session.rollback()
        raise Conflict("the part was fitted or removed concurrently; retry") from None


# --- the price of use ----------------------------------------------------------------------


def derive_plan_from_bom(definition: bom.Bom, options: derive.DeriveOptions) -> derive.DerivedPlan:
    """`derive_plan`, checked by the pricing engine's own validation: the plan it returns
    is one `billing plans load` and the API accept. Invalid naming the faulty option or
    plan field otherwise."""
    try:
        derived = derive.derive_plan(definition, options)
    except derive.DeriveInvalid as error:
        raise Invalid(f"invalid options: {', '.join(error.errors)}", error.errors) from None
    try:
        plans.parse_plan(derived.plan)
    except plans.PlanInvalid as error:
        details = {f"plan.{path}": messages for path, messages in error.errors.items()}
        raise Invalid("the derived plan is not a valid plan", details) from None
    return derived


def derive_plan_for_model(
    session: Session, model: str, data: Mapping[str, Any]
) -> derive.DerivedPlan:
    """The plan derived from `model`'s BOM (its latest version, or `version`)."""
    version = get_bom_version(session, model, data.get("version"))
    fields = {k: v for k, v in data.items() if k != "version" and v is not None}
    return derive_plan_from_bom(version.to_bom(), derive.DeriveOptions(**fields))
