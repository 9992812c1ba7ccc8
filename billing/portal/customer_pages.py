"""What the customer pages show, read through the API's service functions (statements,
invoicing, pricing, metering) with the signed-in principal: the same scopes, the same
figures to the cent.

Each function here answers one page; the views only pass the request in and render.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.devices.models import Customer, Vehicle
from billing.devices.services import get_customer, get_vehicle
from billing.errors import NotFound
from billing.invoicing import drafts
from billing.invoicing.models import CREDIT_NOTE, DRAFT, FINALIZED, INVOICE, PAID, VOID, Invoice
from billing.invoicing.services import get_invoice, list_invoices
from billing.metering import queries
from billing.metering.models import UsageDay
from billing.metering.services import vehicle_usage
from billing.metering.usage import quantities
from billing.money import ZERO
from billing.periods import Period
from billing.pricing.fees import Segment
from billing.pricing.services import list_plans, preview
from billing.statements.services import CustomerStatement, get_statement

MAX_LISTED = 500  # invoices on one page: years of monthly invoices and their credit notes
COMPARED_MONTHS = 3


@dataclass(frozen=True)
class VehicleRow:
    vehicle_id: str
    plans: tuple[str, ...]  # the plan codes of the month, in order; () with none
    distance_km: Decimal
    trips: int
    amount: Decimal | None


@dataclass(frozen=True)
class Overview:
    """The month in progress: amounts to date and projected, daily kilometres against
    the previous month, the amount against the previous month's invoice, the vehicles."""

    customer: Customer
    statement: CustomerStatement
    previous_period: Period
    daily_km: list[Decimal | None]  # this month, by day; None for days not reached yet
    previous_daily_km: list[Decimal | None]
    previous_invoice: Invoice | None  # the previous month's invoice, issued or draft
    vehicles: tuple[VehicleRow, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.customer.timezone)


def customer_overview(
    session: Session,
    principal: Principal,
    customer_id: str,
    now: dt.datetime,
    *,
    adjustment_months: int,
) -> Overview:
    """The overview page of `customer_id` as `principal` sees it (NotFound outside its
    scope; no amounts for a caller who sees no money).

    Its cost is the statement's and a few queries: the previous month's segments, its
    invoice, and the daily kilometres of both months over the daily rollups. (Pricing the
    previous month up to the same day would be a second statement: twice the page's time.)
    """
    result = get_statement(
        session,
        principal,
        customer_id,
        None,
        now,
        history=drafts,
        adjustment_months=adjustment_months,
    )
    customer = get_customer(session, principal, customer_id)
    zone = ZoneInfo(customer.timezone)
    period = result.statement.period
    previous = period.previous()
    start, end = previous.bounds(zone)
    previous_segments = queries.customer_segments(session, customer.id, start, end)
    previous_invoice = None
    if result.shows_money:
        previous_invoice = _invoice_of(session, principal, customer.id, previous)
    today = now.astimezone(zone).date()
    this_month = [item.segment for item in result.statement.segments]
    return Overview(
        customer=customer,
        statement=result,
        previous_period=previous,
        daily_km=daily_distance(session, this_month, period, zone, until=today),
        previous_daily_km=daily_distance(session, previous_segments, previous, zone),
        previous_invoice=previous_invoice,
        vehicles=vehicle_rows(result),
    )


def _invoice_of(
    session: Session, principal: Principal, customer_id: str, period: Period
) -> Invoice | None:
    found = list_invoices(session, principal, 1, 10, customer_id=customer_id, period=period)
    invoices = [i for i in found.items if i.kind == INVOICE and i.status != VOID]
    return invoices[0] if invoices else None


def daily_distance(
    session: Session,
    segments: Sequence[Segment],
    period: Period,
    zone: ZoneInfo,
    *,
    until: dt.date | None = None,
) -> list[Decimal | None]:
    """Kilometres of the vehicles of `segments` (a customer's in `period`) on each local
    day of `period` (None after `until`), from the daily rollups: one query, whatever the
    number of vehicles. A vehicle counts on the days of its segments.
    """
    first = dt.date(period.year, period.month, 1)
    days = [first + dt.timedelta(days=n) for n in range(period.days())]
    held: dict[str, list[tuple[dt.date, dt.date]]] = defaultdict(list)
    for segment in segments:
        held[segment.vehicle_id].append(
            (segment.start.astimezone(zone).date(), segment.end.astimezone(zone).date())
        )
    metres: dict[dt.date, int] = defaultdict(int)
    if held and all(_holds_whole_period(spans, days) for spans in held.values()):
        # Every vehicle was the customer's all month (the usual case): the database sums.
        metres.update(
            session.execute(
                select(UsageDay.day, func.sum(UsageDay.distance_m))
                .where(
                    UsageDay.vehicle_id.in_(sorted(held)),
                    UsageDay.day >= days[0],
                    UsageDay.day <= days[-1],
                )
                .group_by(UsageDay.day)
            ).all()
        )
    elif held:
        rows = session.execute(
            select(UsageDay.vehicle_id, UsageDay.day, UsageDay.distance_m).where(
                UsageDay.vehicle_id.in_(sorted(held)),
                UsageDay.day >= days[0],
                UsageDay.day <= days[-1],
            )
        )
        for vehicle_id, day, distance in rows:
            # A segment ending at local midnight does not hold that day.
            if any(lo <= day and (day < hi or lo == hi) for lo, hi in held[vehicle_id]):
                metres[day] += distance
    return [
        None if until is not None and day > until else Decimal(int(metres[day])).scaleb(-3)
        for day in days
    ]


def _holds_whole_period(spans: list[tuple[dt.date, dt.date]], days: list[dt.date]) -> bool:
    """Whether the local-day spans [lo, hi) cover every day of the period."""
    cursor = days[0]
    for lo, hi in sorted(spans):
        if lo > cursor:
            return False
        cursor = max(cursor, hi)
    return cursor > days[-1]


def vehicle_rows(result: CustomerStatement) -> tuple[VehicleRow, ...]:
    rows = []
    for vehicle in result.vehicles:
        plans = tuple(
            dict.fromkeys(s.segment.plan_code for s in vehicle.segments if s.segment.plan_code)
        )
        rows.append(
            VehicleRow(
                vehicle.vehicle_id,
                plans,
                vehicle.usage.distance_km,
                vehicle.usage.trips,
                vehicle.amount,
            )
        )
    return tuple(rows)


# --- past months ---------------------------------------------------------------------------


def customer_statement(
    session: Session,
    principal: Principal,
    customer_id: str,
    period: Period,
    now: dt.datetime,
    *,
    adjustment_months: int,
) -> CustomerStatement:
    """The statement of any month up to the current one (the API's, to the cent)."""
    return get_statement(
        session,
        principal,
        customer_id,
        period,
        now,
        history=drafts,
        adjustment_months=adjustment_months,
    )


def statement_months(customer: Customer, now: dt.datetime, count: int = 13) -> list[Period]:
    """The months a customer can pick a statement of: this one and the twelve before."""
    current = Period.containing(now, ZoneInfo(customer.timezone))
    months = [current]
    while len(months) < count and months[-1] > Period.containing(
        customer.created_at, ZoneInfo(customer.timezone)
    ):
        months.append(months[-1].previous())
    return months


# --- invoices ------------------------------------------------------------------------------

TO_PAY, OVERDUE = "to pay", "overdue"


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    status: str  # to pay, paid, overdue, voided, credited (a credit note), draft


@dataclass(frozen=True)
class CustomerInvoices:
    rows: tuple[InvoiceRow, ...]
    currency: str
    total_invoiced: Decimal
    total_overdue: Decimal


def customer_invoices(
    session: Session, principal: Principal, customer_id: str, today: dt.date
) -> CustomerInvoices:
    """The customer's issued invoices and credit notes (drafts are not shown to customers:
    they change until they are issued), with what was invoiced and what is overdue."""
    customer = get_customer(session, principal, customer_id)
    page = list_invoices(session, principal, 1, MAX_LISTED, customer_id=customer.id)
    rows = [InvoiceRow(i, invoice_status(i, today)) for i in page.items if i.status != DRAFT]
    zero = ZERO.quantize(Decimal("0.01"))
    invoiced = sum(
        (
            r.invoice.total_gross
            for r in rows
            if r.invoice.kind != CREDIT_NOTE and r.invoice.status != VOID
        ),
        zero,
    )
    credited = sum((r.invoice.total_gross for r in rows if r.invoice.kind == CREDIT_NOTE), zero)
    overdue = sum((r.invoice.total_gross for r in rows if r.status == OVERDUE), zero)
    return CustomerInvoices(tuple(rows), customer.currency, invoiced - credited, overdue)


def invoice_status(invoice: Invoice, today: dt.date) -> str:
    """How the customer reads an invoice's state: to pay, overdue (past its due date),
    paid; voided; a credit note is "credited"; a draft is "draft"."""
    if invoice.status == DRAFT:
        return "draft"
    if invoice.kind == CREDIT_NOTE:
        return "credited"
    if invoice.status == VOID:
        return "voided"
    if invoice.status == PAID:
        return "paid"
    if invoice.status == FINALIZED and invoice.due_date is not None and invoice.due_date < today:
        return OVERDUE
    return TO_PAY


def customer_invoice(
    session: Session, principal: Principal, customer_id: str, invoice_id: str
) -> Invoice:
    """An invoice of this customer account: NotFound when it belongs to another, even
    for staff who may read both (the URL names the account)."""
    invoice = get_invoice(session, principal, invoice_id)
    if invoice.customer_id != customer_id:
        raise NotFound("invoice", invoice_id)
    return invoice


# --- one vehicle ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VehicleHistory:
    vehicle: Vehicle
    customer: Customer
    plans: tuple[str, ...]
    by_day: list[tuple[dt.datetime, Decimal, int]]  # local day, km, trips: this month
    by_month: list[tuple[dt.datetime, Decimal, int]]  # the last 12 months


def vehicle_history(
    session: Session, principal: Principal, customer_id: str, vehicle_id: str, now: dt.datetime
) -> VehicleHistory:
    """A vehicle of this customer account with its usage by day (this month) and by
    month (a year back); NotFound when the vehicle is not the account's."""
    customer = get_customer(session, principal, customer_id)
    vehicle = get_vehicle(session, principal, vehicle_id)
    if vehicle.fleet.customer_id != customer.id:
        raise NotFound("vehicle", vehicle_id)
    zone = ZoneInfo(customer.timezone)
    current = Period.containing(now, zone)
    year_ago = current
    for _ in range(11):
        year_ago = year_ago.previous()
    daily = vehicle_usage(session, principal, vehicle_id, None, None, "day", now)
    monthly = vehicle_usage(
        session, principal, vehicle_id, year_ago.bounds(zone)[0], None, "month", now
    )
    start, end = current.bounds(zone)
    segments = queries.customer_segments(session, customer.id, start, end)
    plans = tuple(
        dict.fromkeys(s.plan_code for s in segments if s.vehicle_id == vehicle_id and s.plan_code)
    )
    return VehicleHistory(
        vehicle=vehicle,
        customer=customer,
        plans=plans,
        by_day=[(at, u.distance_km, u.trips) for at, u in daily.points],
        by_month=[(at, u.distance_km, u.trips) for at, u in monthly.points],
    )


# --- what would I have paid --------------------------------------------------------------


@dataclass(frozen=True)
class PlanComparison:
    months: tuple[Period, ...]
    current_plans: tuple[str, ...]
    # plan code → (its name, the amount of each month, their total); excluding VAT
    plans: tuple[tuple[str, str, tuple[Decimal, ...], Decimal], ...]
    currency: str


def compare_plans(
    session: Session, principal: Principal, customer_id: str, now: dt.datetime
) -> PlanComparison:
    """The customer's last three closed months priced on each public (active) plan by the
    preview engine, vehicle by vehicle: the same usage and days on each plan, so that the
    customer sees what each plan would have cost. Pooled charges are priced per vehicle
    here, as the preview does; the customer's own invoice is the reference for its plan."""
    customer = get_customer(session, principal, customer_id)
    zone = ZoneInfo(customer.timezone)
    months: list[Period] = []
    month = Period.containing(now, zone)
    for _ in range(COMPARED_MONTHS):
        month = month.previous()
        months.append(month)
    months.reverse()
    usage_of = {}
    current_plans: dict[str, None] = {}
    for period in months:
        start, end = period.bounds(zone)
        segments = queries.customer_segments(session, customer.id, start, end)
        usage_of[period] = queries.segments_usage(session, segments, zone)
        current_plans.update((s.plan_code, None) for s in segments if s.plan_code)
    plans = []
    public = list_plans(session, 1, 100, status="active").items
    for version in public:
        if version.plan.currency != customer.currency:
            continue
        amounts = tuple(
            _priced(session, version.plan_code, usage_of[period], period) for period in months
        )
        plans.append((version.plan_code, version.plan.name, amounts, sum(amounts, ZERO)))
    return PlanComparison(tuple(months), tuple(current_plans), tuple(plans), customer.currency)


def _priced(
    session: Session, code: str, segments: Sequence[queries.SegmentUsage], period: Period
) -> Decimal:
    total = ZERO
    for item in segments:
        if item.vehicle_days <= 0:
            continue
        priced = preview(
            session, code, quantities(item.usage), days=item.vehicle_days, period=period
        )
        total += priced.preview.subtotal
    return total
