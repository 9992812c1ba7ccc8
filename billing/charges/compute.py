"""The priced period: the statement of one customer for one month, the single computation
behind usage statements and invoices, so that a closed period's statement and its invoice
agree to the cent.

Usage comes from the rollups, cut into segments at plan and owner changes (see
billing.metering.queries). Segments are grouped by plan version and rated together
(`billing.pricing.fees`), so pooled charges see the customer's whole pool on that version.
VAT follows the customer: French VAT at the plan's rate, or reverse charge (category AE,
0 %) for a business in another EU country with a VAT number.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from billing.devices.models import Customer
from billing.errors import Invalid
from billing.metering import queries
from billing.metering.usage import BUCKET_SECONDS, Usage, bucket_start, quantities
from billing.periods import Period
from billing.pricing.caps import CapOutcome
from billing.pricing.fees import (
    Segment,
    SegmentQuantities,
    StatementLine,
    apply_cap,
    rate_version,
    statement_totals,
)
from billing.pricing.models import Plan as PlanModel
from billing.pricing.models import PlanVersion
from billing.pricing.services import get_plan, get_plan_version
from billing.spending_caps.services import caps_in_force
from billing.vat import Totals, VatTreatment, vat_treatment

CLOSED = "closed"
IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class VehicleSegment:
    """Usage of one vehicle on one plan (or none) for part of the month."""

    segment: Segment
    usage: Usage
    vehicle_days: Decimal


@dataclass(frozen=True)
class Statement:
    customer_id: str
    period: Period
    timezone: str
    currency: str
    start: dt.datetime
    end: dt.datetime
    vat: VatTreatment
    segments: tuple[VehicleSegment, ...]
    lines: tuple[StatementLine, ...]
    totals: Totals | None  # None only in a statement shown without money
    freshness: queries.Freshness
    plan_versions: tuple[tuple[str, int], ...]  # every version rated here
    # The customer's spending cap on these lines (None without a cap for the period);
    # `totals` include its discount.
    cap: CapOutcome | None = None

    def lines_of(self, vehicle_id: str) -> list[StatementLine]:
        return [line for line in self.lines if line.vehicle_id == vehicle_id]


@dataclass(frozen=True)
class StatementAsOf:
    """A period's statement as it stands at `as_of`: `CLOSED` (priced whole, `as_of` its
    end) or `IN_PROGRESS` (priced up to `as_of`)."""

    statement: Statement
    status: str
    as_of: dt.datetime


def statement_as_of(
    session: Session, customer: Customer, period: Period | None, now: dt.datetime
) -> StatementAsOf:
    """The statement of `period` (default: the month of `now` in the customer's time zone)
    as it stands at `now`.

    A past month is closed: priced whole, as its invoice is. The current month is in
    progress: priced up to now, the 15-minute bucket in progress included. A future month
    is refused (Invalid naming `period`). Reads only.
    """
    current = Period.containing(now, ZoneInfo(customer.timezone))
    period = period or current
    if period > current:
        raise Invalid(
            f"period {period} has not started",
            {"period": [f"{period} is in the future; the current period is {current}"]},
        )
    if period < current:
        statement = compute_statement(session, customer, period)
        return StatementAsOf(statement, CLOSED, statement.end)
    statement = compute_statement(session, customer, period, until=in_progress_until(now))
    return StatementAsOf(statement, IN_PROGRESS, now)


def in_progress_until(now: dt.datetime) -> dt.datetime:
    """Where usage to date stops: the end of the 15-minute bucket in progress, so that
    readings stored in it count at once, as they do in the customer's usage."""
    start = bucket_start(now)
    return now if start == now else start + dt.timedelta(seconds=BUCKET_SECONDS)


def compute_statement(
    session: Session, customer: Customer, period: Period, *, until: dt.datetime | None = None
) -> Statement:
    """Rate the customer's usage of `period`, up to `until` when given (a period in progress).

    Reads only: plan versions are not locked here (invoicing locks those it rates).
    """
    return compute_statements(session, [customer], period, until=until)[0]


def compute_statements(
    session: Session,
    customers: Sequence[Customer],
    period: Period,
    *,
    until: dt.datetime | None = None,
) -> list[Statement]:
    """`compute_statement` of each customer, in order, reading the segments and usage of
    all of them in a few queries per time zone (the invoice run of a month)."""
    by_zone: dict[str, list[Customer]] = defaultdict(list)
    for customer in customers:
        by_zone[customer.timezone].append(customer)
    statements: dict[str, Statement] = {}
    for timezone, group in by_zone.items():
        zone = ZoneInfo(timezone)
        start, end = period.bounds(zone)
        usage_end = min(end, until) if until else end
        segments = queries.customers_segments(session, [c.id for c in group], start, usage_end)
        measured = iter(
            queries.segments_usage(session, [s for c in group for s in segments[c.id]], zone)
        )
        vehicles = {c.id: {s.vehicle_id for s in segments[c.id]} for c in group}
        freshness = queries.groups_freshness(session, vehicles, usage_end)
        # Held while rating, so that each customer's lookups find them in the session,
        # which keeps loaded objects only as long as something refers to them.
        plan_versions = _loaded_plan_versions(session, segments.values())
        caps = caps_in_force(session, [c.id for c in group], period)
        for customer in group:
            mine = [next(measured) for _ in segments[customer.id]]
            vat = vat_treatment(customer.country, customer.vat_number)
            lines, versions = rate_segments(
                session,
                [SegmentQuantities(i.segment, quantities(i.usage), i.vehicle_days) for i in mine],
                period,
                vat,
            )
            cap = apply_cap(caps.get(customer.id), lines, customer.currency)
            statements[customer.id] = Statement(
                customer_id=customer.id,
                period=period,
                timezone=customer.timezone,
                currency=customer.currency,
                start=start,
                end=end,
                vat=vat,
                segments=tuple(VehicleSegment(i.segment, i.usage, i.vehicle_days) for i in mine),
                lines=tuple(lines),
                totals=statement_totals(lines, customer.currency, cap),
                freshness=freshness[customer.id],
                plan_versions=versions,
                cap=cap,
            )
        del plan_versions
    return [statements[customer.id] for customer in customers]


def _loaded_plan_versions(
    session: Session, segments: Iterable[Sequence[Segment]]
) -> list[tuple[PlanModel, PlanVersion]]:
    assigned = {(s.plan_code, s.plan_version) for group in segments for s in group if s.plan_code}
    return [
        (get_plan(session, code), get_plan_version(session, code, version))
        for code, version in assigned
    ]


def rate_segments(
    session: Session, items: Sequence[SegmentQuantities], period: Period, vat: VatTreatment
) -> tuple[list[StatementLine], tuple[tuple[str, int], ...]]:
    """Rate segments grouped by plan version, so that pooled charges see the whole pool;
    segments without a plan are not rated. Returns the lines and the versions rated."""
    versions: dict[tuple[str, int], PlanVersion] = {}
    by_version: dict[tuple[str, int], list[SegmentQuantities]] = defaultdict(list)
    # One lookup per assigned version, not per segment: each lookup also reads the plan,
    # which the session does not keep (its identity map holds objects weakly).
    found: dict[tuple[str, int | None], PlanVersion] = {}
    for item in items:
        if item.segment.plan_code is not None:
            assigned = (item.segment.plan_code, item.segment.plan_version)
            if assigned not in found:
                found[assigned] = get_plan_version(session, *assigned)
            version = found[assigned]
            key = (version.plan_code, version.version)
            versions[key] = version
            by_version[key].append(item)
    lines: list[StatementLine] = []
    for key in sorted(by_version):
        lines += rate_version(versions[key].to_plan(), key, by_version[key], period, vat)
    return lines, tuple(sorted(versions))
