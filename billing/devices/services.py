"""Registry services: every change to customers, fleets, vehicles and broker credentials.

Each function is one unit of work: it validates against the rules of the registry, writes,
and commits; the vehicle changes that have consequences elsewhere are the exception (see
below) and are committed by billing.registry.vehicle_changes. Reads take the caller's `Principal`
and see only what its scope allows; what lies outside it is reported as not found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.devices.credentials import (
    BrokerAccount,
    BrokerAccounts,
    mosquitto_hash,
    new_broker_password,
)
from billing.devices.membership import (
    MembershipRules,
    check_backdate,
    customer_of_fleet,
    membership_in_force,
)
from billing.devices.models import (
    BrokerCredential,
    Customer,
    Fleet,
    FleetMembership,
    Vehicle,
)
from billing.errors import Conflict, Invalid, NotFound
from billing.ids import new_id
from billing.pagination import Page, paginate

# --- visibility -------------------------------------------------------------------------


def _customer_scope(principal: Principal) -> ColumnElement[bool]:
    if principal.sees_everything:
        return true()
    if principal.role == "customer":
        return Customer.id == principal.customer_id
    operated = select(Fleet.customer_id).where(Fleet.id.in_(principal.fleet_ids))
    return Customer.id.in_(operated)


def _fleet_scope(principal: Principal) -> ColumnElement[bool]:
    if principal.sees_everything:
        return true()
    if principal.role == "customer":
        return Fleet.customer_id == principal.customer_id
    return Fleet.id.in_(principal.fleet_ids)


def _vehicle_scope(principal: Principal) -> ColumnElement[bool]:
    if principal.sees_everything:
        return true()
    if principal.role == "customer":
        owned = select(Fleet.id).where(Fleet.customer_id == principal.customer_id)
        return Vehicle.fleet_id.in_(owned)
    return Vehicle.fleet_id.in_(principal.fleet_ids)


def vehicle_scope(principal: Principal) -> ColumnElement[bool]:
    """The vehicles `principal` may see, as a condition on Vehicle, for the listings of
    other domains (components) to apply the registry's rule."""
    return _vehicle_scope(principal)


def get_customer(session: Session, principal: Principal, customer_id: str) -> Customer:
    customer = session.scalar(
        select(Customer).where(Customer.id == customer_id, _customer_scope(principal))
    )
    if customer is None:
        raise NotFound("customer", customer_id)
    return customer


def get_fleet(session: Session, principal: Principal, fleet_id: str) -> Fleet:
    fleet = session.scalar(select(Fleet).where(Fleet.id == fleet_id, _fleet_scope(principal)))
    if fleet is None:
        raise NotFound("fleet", fleet_id)
    return fleet


def get_vehicle(session: Session, principal: Principal, vehicle_id: str) -> Vehicle:
    vehicle = session.scalar(
        select(Vehicle).where(Vehicle.id == vehicle_id, _vehicle_scope(principal))
    )
    if vehicle is None:
        raise NotFound("vehicle", vehicle_id)
    return vehicle


def list_customers(
    session: Session, principal: Principal, page: int, per_page: int, status: str | None = None
) -> Page:
    query = select(Customer).where(_customer_scope(principal)).order_by(Customer.created_at)
    if status:
        query = query.where(Customer.status == status)
    return paginate(session, query.order_by(Customer.id), page, per_page)


def list_fleets(
    session: Session,
    principal: Principal,
    page: int,
    per_page: int,
    customer_id: str | None = None,
    status: str | None = None,
) -> Page:
    query = select(Fleet).where(_fleet_scope(principal))
    if customer_id:
        query = query.where(Fleet.customer_id == customer_id)
    if status:
        query = query.where(Fleet.status == status)
    return paginate(session, query.order_by(Fleet.created_at, Fleet.id), page, per_page)


def list_vehicles(
    session: Session,
    principal: Principal,
    page: int,
    per_page: int,
    fleet_id: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
) -> Page:
    query = select(Vehicle).where(_vehicle_scope(principal))
    if fleet_id:
        query = query.where(Vehicle.fleet_id == fleet_id)
    if customer_id:
        query = query.where(
            Vehicle.fleet_id.in_(select(Fleet.id).where(Fleet.customer_id == customer_id))
        )
    if status:
        query = query.where(Vehicle.status == status)
    return paginate(session, query.order_by(Vehicle.id), page, per_page)


# --- customers ---------------------------------------------------------------------------

ADDRESS_COLUMNS = {
    "line1": "address_line1",
    "line2": "address_line2",
    "postal_code": "postal_code",
    "city": "city",
    "country": "country",
}


def _customer_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    columns = {key: value for key, value in data.items() if key != "address"}
    for key, value in data.get("address", {}).items():
        columns[ADDRESS_COLUMNS[key]] = value
    return columns


def create_customer(session: Session, data: Mapping[str, Any], now: dt.datetime) -> Customer:
    customer = Customer(id=new_id("cus"), created_at=now, updated_at=now, **_customer_columns(data))
    session.add(customer)
    session.commit()
    return customer


def update_customer(
    session: Session, principal: Principal, customer_id: str, changes: Mapping[str, Any]
) -> Customer:
    customer = get_customer(session, principal, customer_id)
    _refuse_changes_when_retired(customer.status, "customer", customer_id)
    for column, value in _customer_columns(changes).items():
        setattr(customer, column, value)
    session.commit()
    return customer


def archive_customer(
    session: Session, principal: Principal, customer_id: str, now: dt.datetime
) -> Customer:
    """Archive a customer whose fleets are all retired. Its history and invoices remain."""
    customer = get_customer(session, principal, customer_id)
    active = session.scalar(
        select(Fleet.id).where(Fleet.customer_id == customer_id, Fleet.status == "active")
    )
    if active is not None:
        raise Conflict(f"customer {customer_id} still has active fleet {active}; retire it first")
    if customer.status != "archived":
        customer.status, customer.archived_at = "archived", now
        session.commit()
    return customer


# --- fleets ------------------------------------------------------------------------------


def create_fleet(
    session: Session, principal: Principal, data: Mapping[str, Any], now: dt.datetime
) -> Fleet:
    customer = _referenced_customer(session, principal, data["customer_id"])
    fleet = Fleet(id=new_id("flt"), customer_id=customer.id, name=data["name"], created_at=now)
    session.add(fleet)
    session.commit()
    return fleet


def update_fleet(
    session: Session, principal: Principal, fleet_id: str, changes: Mapping[str, Any]
) -> Fleet:
    fleet = get_fleet(session, principal, fleet_id)
    _refuse_changes_when_retired(fleet.status, "fleet", fleet_id)
    for column, value in changes.items():
        setattr(fleet, column, value)
    session.commit()
    return fleet


def retire_fleet(session: Session, principal: Principal, fleet_id: str, now: dt.datetime) -> Fleet:
    """Retire a fleet that holds no active vehicle."""
    fleet = get_fleet(session, principal, fleet_id)
    active = session.scalar(
        select(Vehicle.id).where(Vehicle.fleet_id == fleet_id, Vehicle.status == "active")
    )
    if active is not None:
        raise Conflict(f"fleet {fleet_id} still holds active vehicle {active}; move or retire it")
    if fleet.status != "retired":
        fleet.status, fleet.retired_at = "retired", now
        session.commit()
    return fleet


def _referenced_customer(session: Session, principal: Principal, customer_id: str) -> Customer:
    customer = session.scalar(
        select(Customer).where(Customer.id == customer_id, _customer_scope(principal))
    )
    if customer is None:
        raise Invalid("unknown customer", {"customer_id": [f"customer {customer_id} not found"]})
    if customer.status != "active":
        raise Invalid("archived customer", {"customer_id": [f"customer {customer_id} is archived"]})
    return customer


def _referenced_fleet(session: Session, principal: Principal, fleet_id: str) -> Fleet:
    fleet = session.scalar(select(Fleet).where(Fleet.id == fleet_id, _fleet_scope(principal)))
    if fleet is None:
        raise Invalid("unknown fleet", {"fleet_id": [f"fleet {fleet_id} not found"]})
    if fleet.status != "active":
        raise Invalid("retired fleet", {"fleet_id": [f"fleet {fleet_id} is retired"]})
    return fleet


def _refuse_changes_when_retired(status: str, kind: str, identifier: str) -> None:
    if status != "active":
        raise Conflict(f"{kind} {identifier} is {status} and can no longer be changed")


# --- vehicles ----------------------------------------------------------------------------
#
# A vehicle's registration, change and retirement have consequences outside the registry
# (its parts fitted, its plan ended, access told, invoiced months adjusted): the functions
# below check and write the registry's part without committing, and
# billing.registry.vehicle_changes composes them with those consequences into one unit of work.


DEFAULT_RULES = MembershipRules()


@dataclass(frozen=True)
class Enrollment:
    """A registration checked against the registry's rules, not written yet: the vehicle
    joins `fleet` from `since`."""

    fleet: Fleet
    since: dt.datetime


def check_enrollment(
    session: Session,
    principal: Principal,
    data: Mapping[str, Any],
    now: dt.datetime,
    rules: MembershipRules = DEFAULT_RULES,
) -> Enrollment:
    """Check the registration of a vehicle in a fleet, member from `effective_at` (default
    now).

    A past `effective_at` ("in the fleet since") lets the fleet's history be billed; it is
    bounded by `rules.max_backdate`. A registration cannot be scheduled: register now and
    schedule a move instead.
    """
    fleet = _referenced_fleet(session, principal, data["fleet_id"])
    if session.get(Vehicle, data["id"]) is not None:
        raise Conflict(f"vehicle {data['id']} already exists")
    serial_owner = session.scalar(select(Vehicle.id).where(Vehicle.serial == data["serial"]))
    if serial_owner is not None:
        raise Conflict(f"serial {data['serial']} is already registered to vehicle {serial_owner}")
    since = data.get("effective_at") or now
    if since > now:
        raise Invalid(
            "registration in the future",
            {"effective_at": ["must not be in the future; register now and schedule a move"]},
        )
    check_backdate(since, now, rules)
    return Enrollment(fleet, since)


def add_vehicle(
    session: Session, data: Mapping[str, Any], enrollment: Enrollment, now: dt.datetime
) -> Vehicle:
    """Add the vehicle of a checked registration and its first membership; no commit."""
    vehicle = Vehicle(
        id=data["id"],
        fleet_id=enrollment.fleet.id,
        model=data["model"],
        serial=data["serial"],
        commissioned_on=data.get("commissioned_on") or enrollment.since.date(),
        notes=data.get("notes", ""),
        created_at=now,
        updated_at=now,
    )
    session.add(vehicle)
    session.add(
        FleetMembership(vehicle=vehicle, fleet_id=enrollment.fleet.id, started_at=enrollment.since)
    )
    return vehicle


@dataclass(frozen=True)
class FleetMove:
    """A checked move of a vehicle to `fleet` from `at`, ending its open membership
    `latest`. `reattributed_customers` are the customers whose past usage it moves (the
    old fleet's and the new one's), empty for a move from now or later."""

    fleet: Fleet
    latest: FleetMembership
    at: dt.datetime
    reattributed_customers: tuple[str, ...]


@dataclass(frozen=True)
class VehicleEdit:
    """A checked change of a vehicle: its new column values and the move, if any."""

    vehicle: Vehicle
    columns: Mapping[str, Any]
    move: FleetMove | None


def check_vehicle_edit(
    session: Session,
    principal: Principal,
    vehicle_id: str,
    changes: Mapping[str, Any],
    now: dt.datetime,
    rules: MembershipRules = DEFAULT_RULES,
) -> VehicleEdit:
    """Check a change of a vehicle's details; a new `fleet_id` moves it from `effective_at`
    (default now): at once when that instant has come, as a scheduled move otherwise (see
    billing.devices.membership)."""
    vehicle = get_vehicle(session, principal, vehicle_id)
    _refuse_changes_when_retired(vehicle.status, "vehicle", vehicle_id)
    columns = dict(changes)
    effective_at = columns.pop("effective_at", None) or now
    new_fleet_id = columns.pop("fleet_id", None)
    latest = _latest_membership(session, vehicle_id)
    move = None
    if new_fleet_id is not None and new_fleet_id != latest.fleet_id:
        move = _check_move(session, principal, latest, new_fleet_id, effective_at, now, rules)
    return VehicleEdit(vehicle, columns, move)


def _check_move(
    session: Session,
    principal: Principal,
    latest: FleetMembership,
    fleet_id: str,
    at: dt.datetime,
    now: dt.datetime,
    rules: MembershipRules,
) -> FleetMove:
    fleet = _referenced_fleet(session, principal, fleet_id)
    if at <= latest.started_at:
        raise Invalid(
            "move before the latest membership",
            {"effective_at": [f"must be after {latest.started_at.isoformat()}"]},
        )
    check_backdate(at, now, rules)
    customers: tuple[str, ...] = ()
    if at < now:
        customers = tuple(sorted({customer_of_fleet(session, latest.fleet_id), fleet.customer_id}))
    return FleetMove(fleet, latest, at, customers)


def apply_vehicle_edit(session: Session, edit: VehicleEdit, now: dt.datetime) -> None:
    """Write a checked change: the move's memberships, then the columns; no commit."""
    vehicle, move = edit.vehicle, edit.move
    if move is not None:
        move.latest.ended_at = move.at
        session.add(
            FleetMembership(vehicle_id=vehicle.id, fleet_id=move.fleet.id, started_at=move.at)
        )
        if move.at <= now:
            vehicle.fleet_id = move.fleet.id
    for column, value in edit.columns.items():
        setattr(vehicle, column, value)


def _latest_membership(session: Session, vehicle_id: str) -> FleetMembership:
    """The open membership: the one in force, or the last move scheduled."""
    return session.scalars(
        select(FleetMembership)
        .where(FleetMembership.vehicle_id == vehicle_id, FleetMembership.ended_at.is_(None))
        .order_by(FleetMembership.started_at.desc())
    ).one()


def mark_retired(session: Session, vehicle: Vehicle, now: dt.datetime) -> None:
    """Retire an active vehicle in the registry: it leaves its fleet now (a move scheduled
    later will not happen) and its broker credentials are revoked; no commit."""
    vehicle.status, vehicle.retired_at = "retired", now
    for scheduled in session.scalars(
        select(FleetMembership).where(
            FleetMembership.vehicle_id == vehicle.id, FleetMembership.started_at > now
        )
    ):
        session.delete(scheduled)
    session.flush()
    in_force = membership_in_force(session, vehicle.id, now)
    if in_force is not None:
        in_force.ended_at = now
    _revoke_active_credentials(session, BrokerCredential.vehicle_id == vehicle.id, now)


# --- broker credentials ------------------------------------------------------------------

GATEWAY_PREFIX = "gw-"


def gateway_username(fleet_id: str) -> str:
    return f"{GATEWAY_PREFIX}{fleet_id}"


def issue_vehicle_credential(
    session: Session, principal: Principal, vehicle_id: str, now: dt.datetime
) -> tuple[BrokerCredential, str]:
    """Give a vehicle a new broker password (username = vehicle id), revoking the previous one.

    The plain password is returned once and stored nowhere. The broker learns of the change
    when its files are exported again (`billing broker export`, or the embedded broker's reload).
    """
    vehicle = get_vehicle(session, principal, vehicle_id)
    if vehicle.status != "active":
        raise Conflict(f"vehicle {vehicle_id} is retired and cannot get broker credentials")
    if vehicle_id.startswith(GATEWAY_PREFIX):
        # Such a login would take the name of a fleet gateway's.
        raise Conflict(f"vehicle ids starting with {GATEWAY_PREFIX!r} are reserved for gateways")
    return _issue_credential(session, "vehicle", vehicle_id, now, vehicle_id=vehicle_id)


def issue_gateway_credential(
    session: Session, principal: Principal, fleet_id: str, now: dt.datetime
) -> tuple[BrokerCredential, str]:
    """Give a fleet gateway a new broker password (username `gw-<fleet id>`), revoking the
    previous one. The gateway may publish for every active vehicle the fleet holds when the
    broker's files are exported."""
    fleet = get_fleet(session, principal, fleet_id)
    if fleet.status != "active":
        raise Conflict(f"fleet {fleet_id} is retired and cannot get broker credentials")
    return _issue_credential(session, "gateway", gateway_username(fleet_id), now, fleet_id=fleet_id)


def revoke_vehicle_credential(
    session: Session, principal: Principal, vehicle_id: str, now: dt.datetime
) -> None:
    """Revoke the vehicle's broker password, if it has one (revoking twice is harmless)."""
    get_vehicle(session, principal, vehicle_id)
    _revoke_active_credentials(session, BrokerCredential.vehicle_id == vehicle_id, now)
    session.commit()


def revoke_gateway_credential(
    session: Session, principal: Principal, fleet_id: str, now: dt.datetime
) -> None:
    """Revoke the fleet gateway's broker password, if it has one."""
    get_fleet(session, principal, fleet_id)
    _revoke_active_credentials(session, BrokerCredential.fleet_id == fleet_id, now)
    session.commit()


def broker_accounts(session: Session) -> BrokerAccounts:
    """Every active broker login with the vehicles it may publish for, for the broker's files."""
    credentials = session.scalars(
        select(BrokerCredential)
        .where(BrokerCredential.revoked_at.is_(None))
        .order_by(BrokerCredential.username)
    ).all()
    fleet_ids = {c.fleet_id for c in credentials if c.fleet_id is not None}
    fleet_vehicles: dict[str, list[str]] = {}
    for fleet_id, vehicle_id in session.execute(
        select(Vehicle.fleet_id, Vehicle.id)
        .where(Vehicle.fleet_id.in_(fleet_ids), Vehicle.status == "active")
        .order_by(Vehicle.id)
    ):
        fleet_vehicles.setdefault(fleet_id, []).append(vehicle_id)
    return BrokerAccounts(
        tuple(
            BrokerAccount(
                kind=c.kind,
                username=c.username,
                password_hash=c.password_hash,
                # A gateway's credential (no vehicle) names its fleet (kind_matches_owner).
                vehicle_ids=(
                    (c.vehicle_id,)
                    if c.vehicle_id
                    else tuple(fleet_vehicles.get(c.fleet_id or "", ()))
                ),
            )
            for c in credentials
        )
    )


def _issue_credential(
    session: Session, kind: str, username: str, now: dt.datetime, **owner: str
) -> tuple[BrokerCredential, str]:
    _revoke_active_credentials(session, BrokerCredential.username == username, now)
    password = new_broker_password()
    credential = BrokerCredential(
        id=new_id("crd"),
        kind=kind,
        username=username,
        password_hash=mosquitto_hash(password),
        created_at=now,
        **owner,
    )
    session.add(credential)
    try:
        session.commit()
    except IntegrityError:
        # The unique index on active usernames: another request issued one at the same time.
        session.rollback()
        raise Conflict(f"a credential for {username} was issued concurrently; retry") from None
    return credential, password


def _revoke_active_credentials(
    session: Session, which: ColumnElement[bool], now: dt.datetime
) -> None:
    for credential in session.scalars(
        select(BrokerCredential).where(which, BrokerCredential.revoked_at.is_(None))
    ):
        credential.revoked_at = now
    # Revocations reach the database before any new credential of the same username, which
    # the partial unique index would otherwise refuse.
    session.flush()
