"""What the fleet operators' pages show: whether each vehicle's telemetry arrives, what
was rejected and held, and the broker credentials. Usage only: operators see no money
(`Principal.sees_money`), and nothing here reads an amount.

Scopes are the registry's (`get_fleet`, `list_fleets`): a fleet outside the operator's
answers 404. Each figure of the vehicle table is one grouped query for the whole fleet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from billing.auth import Principal
from billing.devices.models import BrokerCredential, Fleet, Vehicle
from billing.devices.services import gateway_username, get_fleet, list_fleets
from billing.metering import anomalies
from billing.metering.models import AnomalyRecord
from billing.telemetry.models import Reading, RejectedMessage
from billing.telemetry.services import list_rejected_messages

HELD = "held"
LISTED = 50


@dataclass(frozen=True)
class VehicleTelemetry:
    vehicle: Vehicle
    last_reading_at: dt.datetime | None
    odometer_km: float | None
    battery_pct: float | None
    readings_last_hour: int
    open_anomalies: int
    credential_since: dt.datetime | None  # its active broker credential, if any


@dataclass(frozen=True)
class FleetTelemetry:
    fleet: Fleet
    vehicles: tuple[VehicleTelemetry, ...]
    rejected_by_reason: tuple[tuple[str, int], ...]  # the last 24 hours
    gateway_since: dt.datetime | None


def fleets(session: Session, principal: Principal) -> list[Fleet]:
    """The fleets the principal operates (every fleet for an admin)."""
    return list(list_fleets(session, principal, 1, 500).items)


def fleet_telemetry(
    session: Session, principal: Principal, fleet_id: str, now: dt.datetime
) -> FleetTelemetry:
    fleet = get_fleet(session, principal, fleet_id)
    vehicles = list(
        session.scalars(select(Vehicle).where(Vehicle.fleet_id == fleet.id).order_by(Vehicle.id))
    )
    ids = [vehicle.id for vehicle in vehicles]
    last = _last_readings(session, ids)
    hour_ago = now - dt.timedelta(hours=1)
    per_hour = dict(
        session.execute(
            select(Reading.vehicle_id, func.count())
            .where(Reading.vehicle_id.in_(ids), Reading.ts >= hour_ago, Reading.ts < now)
            .group_by(Reading.vehicle_id)
        ).all()
    )
    held = dict(
        session.execute(
            select(AnomalyRecord.vehicle_id, func.count())
            .where(AnomalyRecord.vehicle_id.in_(ids), AnomalyRecord.status == HELD)
            .group_by(AnomalyRecord.vehicle_id)
        ).all()
    )
    credentials = dict(
        session.execute(
            select(BrokerCredential.vehicle_id, BrokerCredential.created_at).where(
                BrokerCredential.vehicle_id.in_(ids), BrokerCredential.revoked_at.is_(None)
            )
        ).all()
    )
    rejected = session.execute(
        select(RejectedMessage.reason, func.count())
        .where(
            RejectedMessage.vehicle_id.in_(ids),
            RejectedMessage.received_at >= now - dt.timedelta(hours=24),
        )
        .group_by(RejectedMessage.reason)
        .order_by(func.count().desc(), RejectedMessage.reason)
    ).all()
    gateway = session.scalar(
        select(BrokerCredential.created_at).where(
            BrokerCredential.username == gateway_username(fleet.id),
            BrokerCredential.revoked_at.is_(None),
        )
    )
    return FleetTelemetry(
        fleet=fleet,
        vehicles=tuple(
            VehicleTelemetry(
                vehicle=vehicle,
                last_reading_at=last.get(vehicle.id, (None, None, None))[0],
                odometer_km=_km(last.get(vehicle.id, (None, None, None))[1]),
                battery_pct=last.get(vehicle.id, (None, None, None))[2],
                readings_last_hour=per_hour.get(vehicle.id, 0),
                open_anomalies=held.get(vehicle.id, 0),
                credential_since=credentials.get(vehicle.id),
            )
            for vehicle in vehicles
        ),
        rejected_by_reason=tuple((reason, count) for reason, count in rejected),
        gateway_since=gateway,
    )


def _km(odometer_m: int | None) -> float | None:
    return None if odometer_m is None else odometer_m / 1000


def _last_readings(
    session: Session, vehicle_ids: list[str]
) -> dict[str, tuple[dt.datetime, int | None, float | None]]:
    """Each vehicle's latest reading (instant, odometer, battery): one index probe each,
    as `billing.metering.queries.groups_freshness` reads them."""
    if not vehicle_ids:
        return {}
    newest = aliased(Reading)
    latest = (
        select(newest.msg_id)
        .where(newest.vehicle_id == Vehicle.id)
        .order_by(newest.ts.desc())
        .limit(1)
        .correlate(Vehicle)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Reading.vehicle_id, Reading.ts, Reading.odometer_m, Reading.battery_pct)
        .join(Vehicle, Vehicle.id == Reading.vehicle_id)
        .where(Vehicle.id.in_(vehicle_ids), Reading.msg_id == latest)
    ).all()
    return {vehicle_id: (ts, odometer, battery) for vehicle_id, ts, odometer, battery in rows}


@dataclass(frozen=True)
class TelemetryReview:
    rejected: list[RejectedMessage]
    held: list[AnomalyRecord]


def telemetry_review(session: Session, principal: Principal) -> TelemetryReview:
    """The latest rejected messages and the jumps held for a decision, in the principal's
    fleets (all of them for an admin), as the API lists them."""
    scope = principal.fleet_ids if principal.role == "operator" else None
    rejected = list_rejected_messages(session, 1, LISTED, fleet_ids=scope).items
    held = anomalies.list_anomalies(session, 1, LISTED, fleet_ids=scope, status=HELD).items
    return TelemetryReview(list(rejected), list(held))
