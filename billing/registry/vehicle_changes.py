"""Changes to the registry with their consequences beyond it, each one unit of work.

The registry (billing.devices) checks and writes its own part; this module adds what the
other packages own, before the one commit:
- a registration fits the parts of the vehicle model's bill of materials (components);
- a registration or a move effective in the past reaches into invoiced months: their
  usage is adjusted on the next invoices, or the change is refused when a month is older
  than the adjustment window (invoicing);
- a retirement ends the vehicle's plan (pricing) and locks it out from now (access).
The API and the commands call these, never the registry's uncommitted steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from billing.access.state import announce_vehicle
from billing.auth import Principal
from billing.components.fitting import fit_from_bom
from billing.devices import services as registry
from billing.devices.membership import MembershipRules
from billing.devices.models import Vehicle
from billing.invoicing.reattribution import InvoicedMonth, invoiced_months_reached
from billing.pricing.assignments import end_at_retirement


@dataclass(frozen=True)
class VehicleChange:
    """A vehicle after a registration or a change, and the invoiced months whose usage it
    re-attributes (billed as adjustments on the next invoices)."""

    vehicle: Vehicle
    invoiced_months: tuple[InvoicedMonth, ...] = ()


def register_vehicle(
    session: Session, principal: Principal, data: Mapping[str, Any], now: dt.datetime
) -> Vehicle:
    """`enroll_vehicle` under the default rules, for callers that want the vehicle only."""
    return enroll_vehicle(session, principal, data, now).vehicle


def enroll_vehicle(
    session: Session,
    principal: Principal,
    data: Mapping[str, Any],
    now: dt.datetime,
    rules: MembershipRules = registry.DEFAULT_RULES,
) -> VehicleChange:
    """Register a vehicle in a fleet, member from `effective_at` (default now), with the
    parts of its model's bill of materials, if it has one.

    A past `effective_at` ("in the fleet since") lets the fleet's history be billed; it is
    bounded by `rules.max_backdate`. A registration cannot be scheduled: register now and
    schedule a move instead.
    """
    enrollment = registry.check_enrollment(session, principal, data, now, rules)
    reached = invoiced_months_reached(
        session, [enrollment.fleet.customer_id], enrollment.since, now, rules
    )
    vehicle = registry.add_vehicle(session, data, enrollment, now)
    fit_from_bom(session, vehicle, enrollment.since, now)
    session.commit()
    return VehicleChange(vehicle, tuple(reached))


def update_vehicle(
    session: Session,
    principal: Principal,
    vehicle_id: str,
    changes: Mapping[str, Any],
    now: dt.datetime,
    rules: MembershipRules = registry.DEFAULT_RULES,
) -> VehicleChange:
    """Change a vehicle's details; a new `fleet_id` moves it from `effective_at` (default
    now): at once when that instant has come, as a scheduled move otherwise (see
    billing.devices.membership)."""
    edit = registry.check_vehicle_edit(session, principal, vehicle_id, changes, now, rules)
    reached: list[InvoicedMonth] = []
    if edit.move is not None and edit.move.reattributed_customers:
        customers = list(edit.move.reattributed_customers)
        reached = invoiced_months_reached(session, customers, edit.move.at, now, rules)
    registry.apply_vehicle_edit(session, edit, now)
    session.commit()
    return VehicleChange(edit.vehicle, tuple(reached))


def retire_vehicle(
    session: Session, principal: Principal, vehicle_id: str, now: dt.datetime
) -> Vehicle:
    """Retire a vehicle: its telemetry is refused from now on, its plan assignment ends and
    its broker credential is revoked."""
    vehicle = registry.get_vehicle(session, principal, vehicle_id)
    if vehicle.status == "retired":
        return vehicle
    registry.mark_retired(session, vehicle, now)
    end_at_retirement(session, vehicle_id, now)
    announce_vehicle(session, vehicle, vehicle.fleet.customer_id, now)  # locked from now
    session.commit()
    return vehicle
