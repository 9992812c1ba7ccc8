"""Anomalies found in telemetry, and operators' decisions on held jumps."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from billing.devices.models import Vehicle
from billing.errors import Conflict, Invalid, NotFound
from billing.metering import usage
from billing.metering.models import AnomalyRecord
from billing.metering.rollups import ACCEPTED, REJECTED, enqueue
from billing.pagination import Page, paginate

DECISIONS = (ACCEPTED, REJECTED)


def _scoped(
    query: Select[AnomalyRecord], fleet_ids: frozenset[str] | None
) -> Select[AnomalyRecord]:
    if fleet_ids is None:
        return query
    in_fleets = select(Vehicle.id).where(Vehicle.fleet_id.in_(fleet_ids))
    return query.where(AnomalyRecord.vehicle_id.in_(in_fleets))


def list_anomalies(
    session: Session,
    page: int,
    per_page: int,
    *,
    fleet_ids: frozenset[str] | None = None,
    vehicle_id: str | None = None,
    kind: str | None = None,
    status: str | None = None,
) -> Page:
    """Anomalies, newest reading first; `fleet_ids` limits them to an operator's fleets."""
    query = _scoped(select(AnomalyRecord), fleet_ids).order_by(
        AnomalyRecord.ts.desc(), AnomalyRecord.id.desc()
    )
    for column, value in (
        (AnomalyRecord.vehicle_id, vehicle_id),
        (AnomalyRecord.kind, kind),
        (AnomalyRecord.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    return paginate(session, query, page, per_page)


def get_anomaly(
    session: Session, anomaly_id: int, fleet_ids: frozenset[str] | None = None
) -> AnomalyRecord:
    anomaly = session.scalar(
        _scoped(select(AnomalyRecord).where(AnomalyRecord.id == anomaly_id), fleet_ids)
    )
    if anomaly is None:
        raise NotFound("anomaly", str(anomaly_id))
    return anomaly


def decide_anomaly(
    session: Session,
    anomaly_id: int,
    decision: str,
    now: dt.datetime,
    *,
    decided_by: str,
    fleet_ids: frozenset[str] | None = None,
) -> AnomalyRecord:
    """Accept (bill) or reject (never bill) the distance of a held jump.

    A decision can be changed; each change re-meters the vehicle around the jump, so
    statements and draft invoices follow. Other kinds of anomaly are informative only.
    """
    if decision not in DECISIONS:
        raise Invalid("unknown decision", {"decision": [f"must be one of {DECISIONS}"]})
    anomaly = get_anomaly(session, anomaly_id, fleet_ids)
    if anomaly.kind != usage.IMPLAUSIBLE_JUMP:
        raise Conflict(f"anomaly {anomaly_id} is a {anomaly.kind}: only jumps are decided")
    anomaly.status, anomaly.decided_at, anomaly.decided_by = decision, now, decided_by
    enqueue(session, anomaly.vehicle_id, anomaly.ts, anomaly.ts, now)
    session.commit()
    return anomaly
