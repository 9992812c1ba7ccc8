"""Changing what blocks a customer's vehicles, and telling of each change.

Every change of a vehicle's answer emits `vehicle.access_changed` (one event per vehicle,
in the transaction of the change), so that an unlock service can cache the answers and
drop one when told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.access.models import VEHICLE_RETIRED, AccessBlock
from billing.devices.models import Fleet, Vehicle
from billing.webhooks.events import VEHICLE_ACCESS_CHANGED
from billing.webhooks.services import Occurrence, emit_events


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    since: dt.datetime | None


def reasons_of(
    vehicle_id: str,
    status: str,
    retired_at: dt.datetime | None,
    blocks: Iterable[tuple[str, str, dt.datetime]],
) -> list[Reason]:
    """Why the vehicle may not be unlocked, from its status and its customer's blocks
    (cause, message, since); empty when it may."""
    reasons = []
    if status == "retired":
        reasons.append(Reason(VEHICLE_RETIRED, f"vehicle {vehicle_id} is retired", retired_at))
    reasons += [Reason(cause, message, since) for cause, message, since in blocks]
    return reasons


def _reasons(vehicle: Vehicle, blocks: Sequence[AccessBlock]) -> list[Reason]:
    rows = [(block.cause, block.message, block.since) for block in blocks]
    return reasons_of(vehicle.id, vehicle.status, vehicle.retired_at, rows)


def block_customer(
    session: Session, customer_id: str, cause: str, message: str, now: dt.datetime
) -> bool:
    """Block the customer's vehicles for `cause`, in the caller's transaction; False when
    that cause blocked them already (its message is brought up to date)."""
    block = session.get(AccessBlock, (customer_id, cause))
    if block is not None:
        block.message = message
        return False
    session.add(AccessBlock(customer_id=customer_id, cause=cause, since=now, message=message))
    session.flush()
    _announce_customer(session, customer_id, now)
    return True


def unblock_customer(session: Session, customer_id: str, cause: str, now: dt.datetime) -> bool:
    """Lift `cause` from the customer's vehicles, in the caller's transaction; False when
    it did not block them."""
    block = session.get(AccessBlock, (customer_id, cause))
    if block is None:
        return False
    session.delete(block)
    session.flush()
    _announce_customer(session, customer_id, now)
    return True


def customer_blocks(session: Session, customer_id: str) -> list[AccessBlock]:
    return list(
        session.scalars(
            select(AccessBlock)
            .where(AccessBlock.customer_id == customer_id)
            .order_by(AccessBlock.cause)
        )
    )


def announce_vehicle(
    session: Session, vehicle: Vehicle, customer_id: str, now: dt.datetime
) -> None:
    """Emit the vehicle's answer as it is now (after a change of its own, e.g. retirement)."""
    reasons = _reasons(vehicle, customer_blocks(session, customer_id))
    emit_events(
        session, VEHICLE_ACCESS_CHANGED, [Occurrence(customer_id, _data(vehicle, reasons))], now
    )


def _announce_customer(session: Session, customer_id: str, now: dt.datetime) -> None:
    blocks = customer_blocks(session, customer_id)
    vehicles = session.scalars(
        select(Vehicle)
        .join(Fleet, Fleet.id == Vehicle.fleet_id)
        .where(Fleet.customer_id == customer_id, Vehicle.status != "retired")
        .order_by(Vehicle.id)
    )
    occurrences = [
        Occurrence(customer_id, _data(vehicle, _reasons(vehicle, blocks))) for vehicle in vehicles
    ]
    emit_events(session, VEHICLE_ACCESS_CHANGED, occurrences, now)


def _data(vehicle: Vehicle, reasons: Sequence[Reason]) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle.id,
        "allowed": not reasons,
        "reasons": [
            {"code": r.code, "message": r.message, "since": _instant(r.since)} for r in reasons
        ],
    }


def _instant(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None
