"""Plan assignments: which version of which plan prices a vehicle, from when until when.

The one place assignments change: put on a plan or taken off it (the API, the demo), ended
when the vehicle retires (`end_at_retirement`, within the retirement's unit of work), and
moved to a plan's latest version by `migrate_plan_assignments`.

History is append-only and the assignments of one vehicle never overlap: a new assignment
ends the one in force. An assignment keeps the plan version it was made on (price
protection, as a contract would).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, Select, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from billing.auth import Principal
from billing.db import Base, UTCDateTime, utcnow
from billing.devices.models import Vehicle
from billing.devices.services import get_vehicle
from billing.errors import Conflict, Invalid
from billing.ids import new_id
from billing.pricing.services import assignable_plan_version, get_plan, get_plan_version


class PlanAssignment(Base):
    """A vehicle's pricing plan from `effective_at` until `ended_at` (open-ended when None).

    Assignments of one vehicle never overlap: a new assignment ends the previous one.
    """

    __tablename__ = "plan_assignments"
    __table_args__ = (
        Index("ix_plan_assignments_vehicle_start", "vehicle_id", "effective_at"),
        # An assignment names the version it was priced with (price protection: a new
        # version of the plan does not move existing assignments). Rows from before plans
        # were stored have no version and are not checked (a NULL column skips the key).
        ForeignKeyConstraint(
            ["plan_code", "plan_version"], ["plan_versions.plan_code", "plan_versions.version"]
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    plan_code: Mapped[str] = mapped_column(String(40))
    plan_version: Mapped[int | None]
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    vehicle: Mapped[Vehicle] = relationship()


def _assignments(vehicle_id: str) -> Select[PlanAssignment]:
    return (
        select(PlanAssignment)
        .where(PlanAssignment.vehicle_id == vehicle_id)
        .order_by(PlanAssignment.effective_at)
    )


def _current_assignment(session: Session, vehicle_id: str) -> PlanAssignment | None:
    return session.scalars(
        _assignments(vehicle_id).where(PlanAssignment.ended_at.is_(None))
    ).first()


def list_plan_assignments(
    session: Session, principal: Principal, vehicle_id: str
) -> list[PlanAssignment]:
    get_vehicle(session, principal, vehicle_id)
    return list(session.scalars(_assignments(vehicle_id)))


def assign_plan(
    session: Session,
    principal: Principal,
    vehicle_id: str,
    plan_code: str,
    effective_at: dt.datetime,
    plan_version: int | None = None,
) -> PlanAssignment:
    """Put a vehicle on a plan from `effective_at`, ending the assignment in force then.

    History is append-only: an assignment may start only after the latest one started.
    The assignment records the plan's version (`plan_version`, default the latest) and
    keeps it when the plan gets new versions; assigning the plan again takes the latest.
    Unknown and archived plans are refused (422 naming `plan_code`).
    """
    vehicle = get_vehicle(session, principal, vehicle_id)
    if vehicle.status != "active":
        raise Conflict(f"vehicle {vehicle_id} is retired")
    version = assignable_plan_version(session, plan_code, plan_version)
    latest = session.scalars(
        _assignments(vehicle_id).order_by(None).order_by(PlanAssignment.effective_at.desc())
    ).first()
    if latest is not None and effective_at <= latest.effective_at:
        raise Invalid(
            "assignment before the latest one",
            {
                "effective_at": [
                    f"must be after {latest.effective_at.isoformat()}, "
                    f"when plan {latest.plan_code} took effect"
                ]
            },
        )
    if latest is not None and (latest.ended_at is None or latest.ended_at > effective_at):
        latest.ended_at = effective_at
    assignment = PlanAssignment(
        id=new_id("asg"),
        vehicle=vehicle,
        plan_code=plan_code,
        plan_version=version.version,
        effective_at=effective_at,
    )
    session.add(assignment)
    session.commit()
    return assignment


def end_plan_assignment(
    session: Session, principal: Principal, vehicle_id: str, ended_at: dt.datetime
) -> PlanAssignment:
    """Take a vehicle off its plan from `ended_at`."""
    get_vehicle(session, principal, vehicle_id)
    current = _current_assignment(session, vehicle_id)
    if current is None:
        raise Conflict(f"vehicle {vehicle_id} has no plan in force")
    if ended_at <= current.effective_at:
        raise Invalid(
            "end before start",
            {"ended_at": [f"must be after {current.effective_at.isoformat()}"]},
        )
    current.ended_at = ended_at
    session.commit()
    return current


def end_at_retirement(session: Session, vehicle_id: str, now: dt.datetime) -> None:
    """End the plan in force of a vehicle retired at `now` (an assignment that starts later
    ends as it starts). Does not commit: it belongs to the retirement's unit of work."""
    current = _current_assignment(session, vehicle_id)
    if current is not None:
        current.ended_at = max(now, current.effective_at)


def migrate_plan_assignments(
    session: Session, code: str, effective_at: dt.datetime
) -> list[PlanAssignment]:
    """Move the vehicles on an older version of plan `code` to its latest from `effective_at`.

    Each vehicle whose plan in force is an older version of this plan, and began before
    `effective_at`, gets a new assignment to the latest version from `effective_at`, the
    old one ending then, exactly as assigning the plan again would. Vehicles already on
    the latest version, or whose assignment begins later, are left as they are. Returns
    the new assignments, by vehicle id.
    """
    plan = get_plan(session, code)
    if plan.archived_at is not None:
        raise Conflict(f"plan {code} is archived; assign its vehicles another plan")
    latest = get_plan_version(session, code)
    in_force = session.scalars(
        select(PlanAssignment)
        .where(
            PlanAssignment.plan_code == code,
            PlanAssignment.plan_version < latest.version,
            PlanAssignment.ended_at.is_(None),
            PlanAssignment.effective_at < effective_at,
        )
        .order_by(PlanAssignment.vehicle_id)
    ).all()
    moved = []
    for assignment in in_force:
        assignment.ended_at = effective_at
        moved.append(
            PlanAssignment(
                id=new_id("asg"),
                vehicle_id=assignment.vehicle_id,
                plan_code=code,
                plan_version=latest.version,
                effective_at=effective_at,
            )
        )
    session.add_all(moved)
    session.commit()
    return moved
