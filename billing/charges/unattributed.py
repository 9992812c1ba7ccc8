"""Usage billed to nobody: metered on a vehicle while it belonged to no customer, or to a
customer but no plan. It is never silent: listed by the API (`GET /unbilled-usage`), the
invoice run and `/metrics`, so that someone backdates the registration, assigns the plan
or decides it is not to be billed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.devices.models import Vehicle
from billing.metering.queries import UnattributedUsage, unattributed_usage
from billing.periods import Period


@dataclass(frozen=True)
class UnattributedReport:
    period: Period
    timezone: str
    start: dt.datetime
    end: dt.datetime
    stretches: tuple[UnattributedUsage, ...]

    @property
    def vehicle_ids(self) -> list[str]:
        return sorted({stretch.vehicle_id for stretch in self.stretches})

    @property
    def vehicle_count(self) -> int:
        return len(self.vehicle_ids)


def period_unattributed_usage(
    session: Session, period: Period, zone: ZoneInfo, *, principal: Principal | None = None
) -> UnattributedReport:
    """The unattributed usage of `period` cut in `zone`; an operator `principal` sees only
    the vehicles its fleets hold now."""
    start, end = period.bounds(zone)
    vehicles = None
    if principal is not None and not principal.sees_everything:
        vehicles = select(Vehicle.id).where(Vehicle.fleet_id.in_(principal.fleet_ids))
    found = unattributed_usage(session, start, end, vehicles=vehicles)
    return UnattributedReport(period, zone.key, start, end, tuple(found))


def list_unattributed_usage(
    session: Session, principal: Principal, period: Period | None, now: dt.datetime, zone: ZoneInfo
) -> UnattributedReport:
    """`period_unattributed_usage` for the API: the month of `now` by default. Reads only."""
    return period_unattributed_usage(
        session, period or Period.containing(now, zone), zone, principal=principal
    )
