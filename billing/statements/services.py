"""Usage statements: what a customer owes for a month, per vehicle, plan and charge, at any
time (issue 7). The API, the CSV export and `billing statement` all read `get_statement`.

A closed month is priced by `billing.charges.compute`, the computation invoices use, so
the two agree to the cent; what its invoices billed is read through the `InvoiceHistory`
the caller passes (`billing.charges.history`). The month in progress is priced up to
`now` (flat fees for the days so far, usage so far), and projected to its end by the rule
of `billing.statements.projection`, priced by the same engine.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.charges.compute import (
    CLOSED,
    Statement,
    StatementAsOf,
    rate_segments,
    statement_as_of,
)
from billing.charges.history import InvoicedPeriod, InvoiceHistory, with_adjustments
from billing.devices.services import get_customer
from billing.metering import queries
from billing.metering.services import sum_usage
from billing.metering.usage import Usage, quantities
from billing.money import ZERO, round_money
from billing.periods import Period
from billing.pricing.caps import CapOutcome
from billing.pricing.fees import (
    Segment,
    SegmentQuantities,
    StatementLine,
    apply_cap,
    statement_totals,
    vehicle_amounts,
)
from billing.pricing.rating import TierLine
from billing.statements import projection
from billing.vat import Totals

DEFAULT_ADJUSTMENT_MONTHS = 3  # settings.invoicing.adjustment_months


@dataclass(frozen=True)
class SegmentStatement:
    """One vehicle on one plan (or none) for part of the month, with its priced lines."""

    segment: Segment
    usage: Usage
    vehicle_days: Decimal
    lines: tuple[StatementLine, ...]
    amount: Decimal | None  # None for a caller who sees no money (`usage_only`)


@dataclass(frozen=True)
class VehicleStatement:
    vehicle_id: str
    usage: Usage
    segments: tuple[SegmentStatement, ...]
    amount: Decimal | None  # None for a caller who sees no money (`usage_only`)


@dataclass(frozen=True)
class PoolShare:
    vehicle_id: str
    segment_start: dt.datetime
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Pool:
    """A pooled charge of one plan version: priced on the pool, split over its vehicles."""

    plan_code: str
    plan_version: int
    charge_index: int
    charge_name: str | None
    metric: str
    model: str
    quantity: Decimal
    billable_quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal
    tiers: tuple[TierLine, ...]
    minimum_applied: bool
    maximum_applied: bool
    shares: tuple[PoolShare, ...]


@dataclass(frozen=True)
class VehicleProjection:
    vehicle_id: str
    quantities: dict[str, Decimal]
    vehicle_days: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Projection:
    """The month in progress projected to its end, and how; `pending_adjustments` are the
    differences on months already invoiced that this month's invoice will bill, and
    `totals_with_adjustments` what that invoice comes to with them."""

    method: str
    note: str | None
    as_of: dt.datetime
    end: dt.datetime
    elapsed_days: Decimal
    period_days: int
    usage_extrapolated: bool
    vehicles_not_extrapolated: tuple[str, ...]
    vehicles: tuple[VehicleProjection, ...]
    totals: Totals
    pending_adjustments: Totals | None = None
    totals_with_adjustments: Totals | None = None


@dataclass(frozen=True)
class CustomerStatement:
    """A statement as customers read it: by vehicle, with its pools and, for the month in
    progress, its projection. `statement.totals` are to date when in progress."""

    statement: Statement
    status: str
    as_of: dt.datetime
    vehicles: tuple[VehicleStatement, ...]
    pools: tuple[Pool, ...]
    projection: Projection | None
    # A closed month already invoiced: what was billed, and the adjustment pending.
    invoiced: InvoicedPeriod | None = None
    # False for a caller who sees usage but no money (operators): amounts are left out.
    shows_money: bool = True
    # The optional section asked for with ?cost_of_use=true (billing.components.costs).
    cost_of_use: object | None = None

    @property
    def metering_pending(self) -> bool:
        """Whether some readings are still waiting to be metered into the usage."""
        return self.statement.freshness.pending_since is not None


def get_statement(
    session: Session,
    principal: Principal,
    customer_id: str,
    period: Period | None,
    now: dt.datetime,
    *,
    history: InvoiceHistory,
    adjustment_months: int = DEFAULT_ADJUSTMENT_MONTHS,
) -> CustomerStatement:
    """The statement of `customer_id` for `period` (default: the month of `now` in the
    customer's time zone), as `principal` may see it (NotFound outside its scope; usage
    without amounts for a caller who may not see money).

    A past month is closed: priced whole, as its invoice is; once invoiced, `invoiced`
    tells what was billed and the adjustment the next invoice bills for the usage measured
    since, as `history` reads them. The current month is in progress: priced up to now,
    the 15-minute bucket in progress included, with a projection to its end that includes
    the adjustments pending on earlier months. A future month is refused (Invalid naming
    `period`). Reads only.
    """
    customer = get_customer(session, principal, customer_id)
    found = statement_as_of(session, customer, period, now)
    statement = found.statement
    if found.status == CLOSED:
        result = _customer_statement(found, None)
        invoiced = history.invoiced_period(session, customer, statement, now, adjustment_months)
        result = replace(result, invoiced=invoiced)
    else:
        pending = history.pending_adjustments(
            session, customer, statement.period, adjustment_months
        )
        result = _customer_statement(found, _project(session, statement, now, pending))
    return result if principal.sees_money else usage_only(result)


def usage_only(result: CustomerStatement) -> CustomerStatement:
    """The statement without money — no line, price, amount, total or projection — for a
    caller who may see usage only (see `Principal.sees_money`)."""
    vehicles = tuple(
        replace(
            vehicle,
            amount=None,
            segments=tuple(replace(s, lines=(), amount=None) for s in vehicle.segments),
        )
        for vehicle in result.vehicles
    )
    return replace(
        result,
        statement=replace(result.statement, lines=(), totals=None, cap=None),
        vehicles=vehicles,
        pools=(),
        projection=None,
        invoiced=None,
        shows_money=False,
    )


def _customer_statement(found: StatementAsOf, projected: Projection | None) -> CustomerStatement:
    return CustomerStatement(
        statement=found.statement,
        status=found.status,
        as_of=found.as_of,
        vehicles=_vehicles(found.statement),
        pools=_pools(found.statement.lines),
        projection=projected,
    )


def _vehicles(statement: Statement) -> tuple[VehicleStatement, ...]:
    zero = round_money(ZERO, statement.currency)
    lines_of = defaultdict(list)
    for line in statement.lines:
        lines_of[(line.vehicle_id, line.segment_start)].append(line)
    segments_of: dict[str, list[SegmentStatement]] = defaultdict(list)
    for item in sorted(statement.segments, key=lambda s: (s.segment.vehicle_id, s.segment.start)):
        lines = tuple(lines_of[(item.segment.vehicle_id, item.segment.start)])
        segments_of[item.segment.vehicle_id].append(
            SegmentStatement(item.segment, item.usage, item.vehicle_days, lines, _sum(lines, zero))
        )
    amounts = vehicle_amounts(statement.lines, segments_of, statement.currency)
    return tuple(
        VehicleStatement(
            vehicle_id=vehicle_id,
            usage=sum_usage(s.usage for s in segments),
            segments=tuple(segments),
            amount=amounts[vehicle_id],
        )
        for vehicle_id, segments in segments_of.items()
    )


def _pools(lines: Sequence[StatementLine]) -> tuple[Pool, ...]:
    shares_of: dict[tuple[str, int, int], list[StatementLine]] = defaultdict(list)
    for line in lines:
        if line.rated.scope == "pooled":
            shares_of[(line.plan_code, line.plan_version, line.charge_index)].append(line)
    pools = []
    for (code, version, index), shares in sorted(shares_of.items()):
        # Every share carries the pool's figures; only pooled lines have them.
        rated = shares[0].rated
        pools.append(
            Pool(
                plan_code=code,
                plan_version=version,
                charge_index=index,
                charge_name=shares[0].charge_name,
                metric=rated.metric,
                model=rated.model,
                quantity=cast(Decimal, rated.pooled_quantity),
                billable_quantity=cast(Decimal, rated.pooled_billable_quantity),
                unit_amount=rated.unit_amount,
                amount=cast(Decimal, rated.pooled_amount),
                tiers=rated.tiers,
                minimum_applied=rated.minimum_applied,
                maximum_applied=rated.maximum_applied,
                shares=tuple(
                    PoolShare(s.vehicle_id, s.segment_start, s.rated.quantity, s.amount)
                    for s in shares
                ),
            )
        )
    return tuple(pools)


def _project(
    session: Session, statement: Statement, now: dt.datetime, pending: Totals | None
) -> Projection:
    zone = ZoneInfo(statement.timezone)
    planned = queries.customer_segments(
        session, statement.customer_id, statement.start, statement.end
    )
    measured = [
        SegmentQuantities(item.segment, quantities(item.usage), item.vehicle_days)
        for item in statement.segments
    ]
    usage = projection.project_usage(measured, planned, statement.start, now, zone)
    lines, _versions = rate_segments(session, usage.segments, statement.period, statement.vat)
    totals = statement_totals(lines, statement.currency, _projected_cap(statement, lines))
    return Projection(
        method=projection.METHOD,
        note=None if usage.extrapolated else projection.NOT_ENOUGH_DATA,
        as_of=now,
        end=statement.end,
        elapsed_days=usage.elapsed_days,
        period_days=statement.period.days(),
        usage_extrapolated=usage.extrapolated,
        vehicles_not_extrapolated=usage.not_extrapolated,
        vehicles=_projected_vehicles(usage.segments, lines, statement.currency),
        totals=totals,
        pending_adjustments=pending,
        totals_with_adjustments=with_adjustments(totals, pending),
    )


def _projected_cap(statement: Statement, lines: Sequence[StatementLine]) -> CapOutcome | None:
    """The statement's spending cap on the projected lines: the month's cap, projected."""
    cap = statement.cap.cap if statement.cap is not None else None
    return apply_cap(cap, lines, statement.currency)


def _projected_vehicles(
    segments: Sequence[SegmentQuantities], lines: Sequence[StatementLine], currency: str
) -> tuple[VehicleProjection, ...]:
    totals: dict[str, dict[str, Decimal]] = {}
    days: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for item in segments:
        vehicle = item.segment.vehicle_id
        total = totals.setdefault(vehicle, dict.fromkeys(projection.USAGE_METRICS, ZERO))
        for metric in projection.USAGE_METRICS:
            total[metric] += item.quantities[metric]
        days[vehicle] += item.vehicle_days
    amounts = vehicle_amounts(lines, totals, currency)
    return tuple(
        VehicleProjection(vehicle, totals[vehicle], days[vehicle], amounts[vehicle])
        for vehicle in sorted(totals)
    )


def _sum(items: Sequence[StatementLine], zero: Decimal) -> Decimal:
    return sum((item.amount for item in items), zero)
