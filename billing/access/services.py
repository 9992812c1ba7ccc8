"""The unlock check, and the watch that blocks customers at their spending cap.

`vehicle_access` is what a fleet's unlock service calls before each ride: it reads the
vehicle (its status and fleet) and the blocks of the fleet's customer, nothing else, so
it costs one indexed query (bench/access.py). The causes are kept in `access_blocks` by the services
that change them: dunning's block step (billing.dunning) and `refresh_cap_blocks` below,
which the scheduler runs every few seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.access.models import SPENDING_CAP, AccessBlock
from billing.access.state import Reason, block_customer, reasons_of, unblock_customer
from billing.auth import Principal
from billing.charges.compute import compute_statement
from billing.devices.models import Customer, Fleet, Vehicle
from billing.errors import NotFound
from billing.money import round_money
from billing.periods import Period
from billing.spending_caps.models import SpendingCapRecord


@dataclass(frozen=True)
class AccessAnswer:
    vehicle_id: str
    customer_id: str
    reasons: list[Reason]
    checked_at: dt.datetime

    @property
    def allowed(self) -> bool:
        return not self.reasons


def vehicle_access(
    session: Session, principal: Principal, vehicle_id: str, now: dt.datetime
) -> AccessAnswer:
    """Whether the vehicle may be unlocked now for its current customer, or the reasons
    why not (NotFound outside the key's scope)."""
    rows = session.execute(
        select(
            Vehicle.status, Vehicle.retired_at, Vehicle.fleet_id, Fleet.customer_id,
            AccessBlock.cause, AccessBlock.message, AccessBlock.since,
        )
        .join(Fleet, Fleet.id == Vehicle.fleet_id)
        .outerjoin(AccessBlock, AccessBlock.customer_id == Fleet.customer_id)
        .where(Vehicle.id == vehicle_id)
        .order_by(AccessBlock.cause)
    ).all()  # fmt: skip
    if not rows or not _sees(principal, rows[0].fleet_id, rows[0].customer_id):
        raise NotFound("vehicle", vehicle_id)
    first = rows[0]
    blocks = [(row.cause, row.message, row.since) for row in rows if row.cause is not None]
    reasons = reasons_of(vehicle_id, first.status, first.retired_at, blocks)
    return AccessAnswer(vehicle_id, first.customer_id, reasons, now)


def _sees(principal: Principal, fleet_id: str, customer_id: str) -> bool:
    """The registry's scope of a vehicle (billing.devices.services), on the row already
    read: one query per check instead of three."""
    if principal.sees_everything:
        return True
    if principal.role == "customer":
        return customer_id == principal.customer_id
    return fleet_id in principal.fleet_ids


def refresh_cap_blocks(session: Session, now: dt.datetime) -> list[str]:
    """Block the customers whose cap of the current period is reached and says
    `block_at_cap`, and lift the block of the others; commits. The customers whose
    answer changed."""
    watched = set(
        session.scalars(
            select(SpendingCapRecord.customer_id).where(SpendingCapRecord.block_at_cap.is_(True))
        )
    ) | set(
        session.scalars(select(AccessBlock.customer_id).where(AccessBlock.cause == SPENDING_CAP))
    )
    changed = []
    for customer in session.scalars(
        select(Customer).where(Customer.id.in_(watched)).order_by(Customer.id)
    ):
        message = _cap_reached(session, customer, now)
        if message is not None:
            moved = block_customer(session, customer.id, SPENDING_CAP, message, now)
        else:
            moved = unblock_customer(session, customer.id, SPENDING_CAP, now)
        if moved:
            changed.append(customer.id)
    session.commit()
    return changed


def _cap_reached(session: Session, customer: Customer, now: dt.datetime) -> str | None:
    """Why the customer is blocked at its cap now, or None when it is not."""
    period = Period.containing(now, ZoneInfo(customer.timezone))
    record = session.scalar(
        select(SpendingCapRecord)
        .where(
            SpendingCapRecord.customer_id == customer.id,
            SpendingCapRecord.effective_from <= str(period),
        )
        .order_by(SpendingCapRecord.effective_from.desc())
        .limit(1)
    )
    if record is None or record.amount is None or not record.block_at_cap:
        return None
    cap = compute_statement(session, customer, period, until=now).cap
    if cap is None or not cap.reached:
        return None
    amount = round_money(cap.cap.amount, customer.currency)
    return f"the spending cap of {amount} {customer.currency} for {period} is reached"
