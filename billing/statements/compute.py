"""The priced statement of one customer for one month: the single computation behind
usage statements and invoices, so that a closed period's statement and its invoice agree
to the cent (issue 7).

Usage comes from the rollups, cut into segments at plan and owner changes (see
billing.metering.queries). Segments are grouped by plan version and rated together, so
pooled charges see the customer's whole pool on that version. VAT follows the customer:
French VAT at the plan's rate, or reverse charge (category AE, 0 %) for a business in
another EU country with a VAT number.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from billing.devices.models import Customer
from billing.metering import queries
from billing.metering.usage import Usage
from billing.periods import Period
from billing.pricing import rating
from billing.pricing.caps import CapOutcome, PricedLine, SpendingCap, apply_spending_cap
from billing.pricing.models import Plan as PlanModel
from billing.pricing.models import PlanVersion
from billing.pricing.plans import Plan
from billing.pricing.services import get_plan, get_plan_version
from billing.spending_caps.services import caps_in_force
from billing.vat import Totals, VatTreatment, compute_totals, line_vat, vat_treatment


@dataclass(frozen=True)
class StatementLine:
    """One charge of one plan on one vehicle's segment of the month."""

    vehicle_id: str
    plan_code: str
    plan_version: int
    segment_start: dt.datetime
    segment_end: dt.datetime
    charge_index: int
    charge_name: str | None
    rated: rating.RatedLine
    vat_category: str
    vat_rate: Decimal

    @property
    def amount(self) -> Decimal:
        return self.rated.amount


@dataclass(frozen=True)
class VehicleSegment:
    """Usage of one vehicle on one plan (or none) for part of the month."""

    segment: queries.Segment
    usage: Usage
    vehicle_days: Decimal


@dataclass(frozen=True)
class SegmentQuantities:
    """What rating needs of a segment: the quantities a plan can price and its vehicle days.

    Measured usage for a statement or an invoice; projected usage for a forecast.
    """

    segment: queries.Segment
    quantities: Mapping[str, Decimal]
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
    totals: Totals
    freshness: queries.Freshness
    plan_versions: tuple[tuple[str, int], ...]  # every version rated here
    # The customer's spending cap on these lines (None without a cap for the period);
    # `totals` include its discount.
    cap: CapOutcome | None = None

    def lines_of(self, vehicle_id: str) -> list[StatementLine]:
        return [line for line in self.lines if line.vehicle_id == vehicle_id]


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
    session: Session, segments: Iterable[Sequence[queries.Segment]]
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
        lines += _rate(versions[key].to_plan(), key, by_version[key], period, vat)
    return lines, tuple(sorted(versions))


def statement_totals(
    lines: Sequence[StatementLine], currency: str, cap: CapOutcome | None = None
) -> Totals:
    """The VAT breakdown and totals of rated lines, with the discount of `cap` if any."""
    items = [(line.vat_category, line.vat_rate, line.amount) for line in lines]
    if cap is not None:
        items += [(d.vat_category, d.vat_rate, d.amount) for d in cap.discounts]
    return compute_totals(items, currency)


def apply_cap(
    cap: SpendingCap | None, lines: Sequence[StatementLine], currency: str
) -> CapOutcome | None:
    """The spending cap on a customer's priced lines of a period (None without a cap)."""
    if cap is None:
        return None
    priced = (PricedLine(i.amount, i.rated.model, i.vat_category, i.vat_rate) for i in lines)
    return apply_spending_cap(cap, priced, currency)


def _rate(
    plan: Plan,
    key: tuple[str, int],
    items: Sequence[SegmentQuantities],
    period: Period,
    vat: VatTreatment,
) -> list[StatementLine]:
    vehicles = [
        rating.VehicleUsage(
            vehicle_id=item.segment.vehicle_id,
            quantities=item.quantities,
            days_on_plan=item.vehicle_days,
        )
        for item in items
    ]
    rated = rating.rate_vehicles(plan, vehicles, period.days())
    category, rate = line_vat(vat, plan.vat_rate)
    per_vehicle = len(plan.charges)
    return [
        StatementLine(
            vehicle_id=line.vehicle_id,
            plan_code=key[0],
            plan_version=key[1],
            segment_start=items[index // per_vehicle].segment.start,
            segment_end=items[index // per_vehicle].segment.end,
            charge_index=line.charge_index,
            charge_name=plan.charges[line.charge_index].name,
            rated=line,
            vat_category=category,
            vat_rate=rate,
        )
        for index, line in enumerate(rated)
    ]


def quantities(usage: Usage) -> dict[str, Decimal]:
    """The usage metrics a plan can price (vehicle_days comes from the segment)."""
    return {
        "distance_km": usage.distance_km,
        "energy_kwh": usage.energy_kwh,
        "trips": Decimal(usage.trips),
        "trip_minutes": usage.trip_minutes,
        "active_days": Decimal(usage.active_days),
    }
