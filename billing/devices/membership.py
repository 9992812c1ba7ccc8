"""Fleet membership over time: which fleet (hence which customer) holds a vehicle when.

Rules:
- A vehicle's memberships never overlap and are append-only: a registration opens the
  first one, each move ends the one open and opens the next at the move's instant.
- That instant may be in the past, within `max_backdate` of now (onboarding a fleet that
  already rides: "in this fleet since 1 October"), or in the future (a scheduled move).
- Billing reads the memberships themselves, at each reading's timestamp
  (billing.metering.queries). Access (API scopes, broker logins) reads `Vehicle.fleet_id`,
  the fleet of the membership in force now: it changes at once for a move in the past,
  and for a scheduled move when `apply_due_fleet_moves` runs after its instant (the
  scheduler does so every few seconds and the broker's logins follow).
- A move or a registration that reaches into a month already invoiced changes who that
  month's usage belongs to: the difference goes through the adjustment path (adjustment
  lines on the customers' next invoices, a new invoice for a customer who had none), and
  the caller is told which invoices it touches. Months older than the adjustment window
  could no longer be corrected that way, so such a change is refused
  (billing.invoicing.reattribution, applied by billing.registry.vehicle_changes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billing.devices.models import Fleet, FleetMembership, Vehicle
from billing.errors import Invalid
from billing.settings import Settings


@dataclass(frozen=True)
class MembershipRules:
    """How far back a membership may start, and how many invoiced months back its usage
    can still be adjusted."""

    max_backdate: dt.timedelta = dt.timedelta(days=400)
    adjustment_months: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> MembershipRules:
        return cls(
            dt.timedelta(days=settings.devices.max_backdate_days),
            settings.invoicing.adjustment_months,
        )


def check_backdate(at: dt.datetime, now: dt.datetime, rules: MembershipRules) -> None:
    """Refuse an effective instant further back than the rules allow (422 `effective_at`)."""
    earliest = now - rules.max_backdate
    if at < earliest:
        raise Invalid(
            "effective instant too far back",
            {
                "effective_at": [
                    f"must be on or after {earliest.isoformat()} "
                    f"({rules.max_backdate.days} days back at most)"
                ]
            },
        )


def customer_of_fleet(session: Session, fleet_id: str) -> str:
    return session.scalars(select(Fleet.customer_id).where(Fleet.id == fleet_id)).one()


def membership_in_force(
    session: Session, vehicle_id: str, at: dt.datetime
) -> FleetMembership | None:
    """The vehicle's membership at instant `at`, if any."""
    return session.scalar(
        select(FleetMembership).where(
            FleetMembership.vehicle_id == vehicle_id,
            FleetMembership.started_at <= at,
            or_(FleetMembership.ended_at.is_(None), FleetMembership.ended_at > at),
        )
    )


def apply_due_fleet_moves(session: Session, now: dt.datetime) -> list[str]:
    """Give every active vehicle the fleet of its membership in force at `now`, and commit:
    scheduled moves whose instant has come take effect for access. Returns the ids of the
    vehicles moved, so that the caller reloads the broker's logins when there are some."""
    due = session.execute(
        select(Vehicle, FleetMembership.fleet_id)
        .join(FleetMembership, FleetMembership.vehicle_id == Vehicle.id)
        .where(
            Vehicle.status == "active",
            FleetMembership.started_at <= now,
            or_(FleetMembership.ended_at.is_(None), FleetMembership.ended_at > now),
            FleetMembership.fleet_id != Vehicle.fleet_id,
        )
        .order_by(Vehicle.id)
    ).all()
    for vehicle, fleet_id in due:
        vehicle.fleet_id = fleet_id
    session.commit()
    return [vehicle.id for vehicle, _ in due]
