"""What a draft invoice contains today: its period's statement and the adjustments of the
periods already billed. Reads only; `issuing` writes it into the invoice.

Adjustment rules, on top of those of `lines.adjustment_lines`:
- A period is re-examined while it is less than `adjustment_months` before the invoice's
  and its own invoice was issued and not voided (a voided period was cancelled in full:
  nothing more is billed for it).
- What was billed for a period is every line for it on the customer's issued invoices
  (finalized or paid): its own invoice's and the adjustments of later ones. Credit notes
  are not counted: they are decisions of finance, which the data must not undo.
- While an earlier invoice of the customer is still a draft, it carries the adjustments
  and later drafts carry none, so that no difference is billed twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from billing.charges.compute import Statement, compute_statements
from billing.charges.history import InvoicedPeriod
from billing.devices.models import Customer
from billing.invoicing.lines import (
    LINE_FIELDS,
    LineData,
    adjustment_lines,
    statement_lines,
    usage_summary,
)
from billing.invoicing.models import BILLED, DRAFT, INVOICE, Invoice, InvoiceLine
from billing.periods import Period
from billing.vat import Totals, compute_totals
from billing.words import LANGUAGES


@dataclass(frozen=True)
class DraftContent:
    currency: str
    period_start: dt.date
    period_end: dt.date  # inclusive
    period_ends_at: dt.datetime
    lines: tuple[LineData, ...]
    totals: Totals
    usage_summary: str  # JSON
    plan_versions: frozenset[tuple[str, int]]  # every version rated, adjustments included


def drafts_content(
    session: Session,
    customers: Sequence[Customer],
    period: Period,
    adjustment_months: int,
    *,
    with_history: Container[str] | None = None,
) -> list[DraftContent]:
    """The lines and totals each customer's invoice for `period` has if issued now, in
    order; the customers' statements, and those of the periods they may have to adjust,
    are computed together.

    `with_history`, when given, holds the only customers that may have earlier invoices
    to adjust (`invoices_in_window`); the others are not looked up.
    """
    first_day, last_day = period_days(period)
    statements = compute_statements(session, customers, period)
    adjustments = _adjustments(
        session,
        [c for c in customers if with_history is None or c.id in with_history],
        period,
        adjustment_months,
    )
    contents = []
    for customer, statement in zip(customers, statements, strict=True):
        adjusted_lines, adjusted_versions = adjustments.get(customer.id, ([], set()))
        lines = statement_lines(statement, document_language(customer)) + adjusted_lines
        contents.append(
            DraftContent(
                currency=customer.currency,
                period_start=first_day,
                period_end=last_day,
                period_ends_at=statement.end,
                lines=tuple(lines),
                totals=compute_totals(
                    [(line.vat_category, line.vat_rate, line.amount) for line in lines],
                    customer.currency,
                ),
                usage_summary=json.dumps(usage_summary(statement)),
                plan_versions=frozenset(statement.plan_versions) | adjusted_versions,
            )
        )
    return contents


def document_language(customer: Customer) -> str:
    return customer.language if customer.language in LANGUAGES else "fr"


def period_days(period: Period) -> tuple[dt.date, dt.date]:
    """The first and last days of the period (the end inclusive, as invoices print it)."""
    return period.first_day(), period.next().first_day() - dt.timedelta(days=1)


def adjustment_window(period: Period, months: int) -> list[str]:
    """The periods before `period` whose late usage its invoice may still bill."""
    window, earlier = [], period
    for _ in range(months):
        earlier = earlier.previous()
        window.append(str(earlier))
    return window


def invoices_in_window(session: Session, period: Period, months: int) -> set[str]:
    """Customers with an invoice (of any status) in the adjustment window of `period`:
    the only ones whose draft for it may carry adjustments."""
    return set(session.scalars(customers_invoiced_in_window(period, months)))


def customers_invoiced_in_window(period: Period, months: int) -> Select[str]:
    """The query of `invoices_in_window`, to use as a subquery."""
    return (
        select(Invoice.customer_id)
        .where(Invoice.kind == INVOICE, Invoice.period.in_(adjustment_window(period, months)))
        .distinct()
    )


def _adjustments(
    session: Session, customers: Sequence[Customer], period: Period, months: int
) -> dict[str, tuple[list[LineData], set[tuple[str, int]]]]:
    """The adjustment lines of each customer's invoice for `period`, and the plan versions
    they rate; customers with none are left out."""
    if not customers:
        return {}
    by_id = {customer.id: customer for customer in customers}
    earlier = session.execute(
        select(Invoice.customer_id, Invoice.period, Invoice.status).where(
            Invoice.customer_id.in_(by_id),
            Invoice.kind == INVOICE,
            Invoice.period.in_(adjustment_window(period, months)),
        )
    ).all()
    waiting = {customer_id for customer_id, _, status in earlier if status == DRAFT}
    to_adjust: dict[str, list[str]] = defaultdict(list)  # billed period → its customers
    for customer_id, billed_period, status in sorted(earlier, key=lambda row: row[1]):
        if status in BILLED and customer_id not in waiting:
            to_adjust[billed_period].append(customer_id)
    billed = _billed_lines(session, to_adjust)
    found: dict[str, tuple[list[LineData], set[tuple[str, int]]]] = {}
    for text, customer_ids in to_adjust.items():
        month = Period.parse(text)
        group = [by_id[customer_id] for customer_id in customer_ids]
        for customer, statement in zip(
            group, compute_statements(session, group, month), strict=True
        ):
            language = document_language(customer)
            lines, versions = found.setdefault(customer.id, ([], set()))
            versions |= set(statement.plan_versions)
            lines += adjustment_lines(
                month,
                period_days(month),
                statement_lines(statement, language),
                billed[(customer.id, text)],
                language,
            )
    return found


def _billed_lines(
    session: Session, periods: dict[str, list[str]]
) -> dict[tuple[str, str], list[LineData]]:
    """Every line issued for each (customer, period): its invoice's and adjustments."""
    customer_ids = {customer_id for ids in periods.values() for customer_id in ids}
    billed: dict[tuple[str, str], list[LineData]] = defaultdict(list)
    if not customer_ids:
        return billed
    # Columns, not entities: months of lines of many customers, read only.
    columns = [getattr(InvoiceLine, name) for name in LINE_FIELDS]
    rows = session.execute(
        select(Invoice.customer_id, *columns)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.customer_id.in_(customer_ids),
            Invoice.kind == INVOICE,
            Invoice.status.in_(BILLED),
            InvoiceLine.period.in_(periods),
        )
        .order_by(Invoice.period, InvoiceLine.invoice_id, InvoiceLine.position)
    )
    for row in rows:
        customer_id, values = cast(str, row[0]), row[1:]
        line = LineData(*values)
        billed[(customer_id, line.period)].append(line)
    return billed


def line_data(row: InvoiceLine) -> LineData:
    """The content of a stored line, to compare with freshly computed ones."""
    return LineData(*(getattr(row, name) for name in LINE_FIELDS))


# --- what statements tell of invoiced months (charges.history.InvoiceHistory) ----------


def invoiced_period(
    session: Session,
    customer: Customer,
    statement: Statement,
    now: dt.datetime,
    adjustment_months: int,
) -> InvoicedPeriod | None:
    """What was invoiced for the statement's month and what is pending; None when the
    month has no issued invoice. Reads only."""
    text = str(statement.period)
    billed = _billed_lines(session, {text: [customer.id]})[(customer.id, text)]
    if not billed:
        return None
    numbers = session.scalars(
        select(Invoice.number)
        .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
        .where(
            Invoice.customer_id == customer.id,
            Invoice.kind == INVOICE,
            Invoice.status.in_(BILLED),
            InvoiceLine.period == text,
        )
        .distinct()
        .order_by(Invoice.number)
    ).all()
    current = Period.containing(now, ZoneInfo(customer.timezone))
    adjustable = text in adjustment_window(current, adjustment_months)
    language = document_language(customer)
    pending = (
        adjustment_lines(
            statement.period,
            period_days(statement.period),
            statement_lines(statement, language),
            billed,
            language,
        )
        if adjustable
        else []
    )
    return InvoicedPeriod(
        invoice_numbers=tuple(number for number in numbers if number is not None),  # issued
        billed=_totals(billed, customer.currency),
        pending=_totals(pending, customer.currency),
        adjustable=adjustable,
    )


def pending_adjustments(
    session: Session, customer: Customer, period: Period, adjustment_months: int
) -> Totals | None:
    """The adjustments the customer's invoice for `period` would bill if issued now (None
    when there are none), for the projection of the month in progress."""
    lines, _versions = _adjustments(session, [customer], period, adjustment_months).get(
        customer.id, ([], set())
    )
    return _totals(lines, customer.currency) if lines else None


def _totals(lines: Sequence[LineData], currency: str) -> Totals:
    return compute_totals(
        [(line.vat_category, line.vat_rate, line.amount) for line in lines], currency
    )
