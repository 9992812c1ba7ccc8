"""What the finance pages show and do, through the invoicing and statements services the
API uses (the same role checks happen in the views, the same scopes in the services)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.devices.models import Customer
from billing.invoicing.models import CREDIT_NOTE, DRAFT, Invoice, NumberSeries
from billing.invoicing.services import list_invoices
from billing.money import round_money
from billing.pagination import Page
from billing.payments.models import StripeOutboxEntry
from billing.periods import Period
from billing.portal.customer_pages import invoice_status

PER_PAGE = 100


@dataclass(frozen=True)
class RateTotal:
    currency: str
    category: str
    rate: Decimal
    base: Decimal
    vat: Decimal


@dataclass(frozen=True)
class InvoiceListing:
    page: Page
    statuses: dict[str, str]  # invoice id → how it reads: to pay, overdue, paid…
    customers: dict[str, str]  # customer id → name, for the filter and the rows
    by_rate: tuple[RateTotal, ...]  # of the invoices on the page


def invoice_listing(
    session: Session,
    principal: Principal,
    today: dt.date,
    *,
    page: int = 1,
    period: Period | None = None,
    status: str | None = None,
    customer_id: str | None = None,
) -> InvoiceListing:
    """Invoices and credit notes by period, status and customer, with their totals by
    VAT rate (credit notes count negative, as they are issued)."""
    found = list_invoices(
        session, principal, page, PER_PAGE, customer_id=customer_id, period=period, status=status
    )
    names = dict(session.execute(select(Customer.id, Customer.name).order_by(Customer.name)).all())
    sums: dict[tuple[str, str, Decimal], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0)]
    )
    for invoice in found.items:
        # A credit note stores positive totals; it takes them back.
        sign = -1 if invoice.kind == CREDIT_NOTE else 1
        for group in json.loads(invoice.vat_breakdown):
            key = (invoice.currency, group["category"], Decimal(group["rate"]))
            sums[key][0] += sign * Decimal(group["base"])
            sums[key][1] += sign * Decimal(group["amount"])
    by_rate = tuple(
        RateTotal(currency, category, rate, round_money(base, currency), round_money(vat, currency))
        for (currency, category, rate), (base, vat) in sorted(sums.items())
    )
    statuses = {i.id: invoice_status(i, today) for i in found.items}
    return InvoiceListing(found, statuses, names, by_rate)


def drafts(session: Session, principal: Principal) -> list[Invoice]:
    """Drafts waiting for their grace period, oldest period first."""
    page = list_invoices(session, principal, 1, PER_PAGE, status=DRAFT)
    return sorted(page.items, key=lambda invoice: (invoice.period, invoice.customer_id))


@dataclass(frozen=True)
class SyncFailure:
    invoice: Invoice
    attempts: int
    last_error: str
    next_attempt_at: dt.datetime


@dataclass(frozen=True)
class Collection:
    """The numbering series and how collection through Stripe goes."""

    series: list[NumberSeries]
    failures: list[SyncFailure]  # documents Stripe does not hold yet, with their last error
    payment_statuses: dict[str, int]  # what Stripe said of the issued invoices


def collection(session: Session) -> Collection:
    """The numbering series (each with its last number and date) and the Stripe mirror's
    pending failures; for finance, who sees everything."""
    series = list(session.scalars(select(NumberSeries).order_by(NumberSeries.series)))
    failing = session.execute(
        select(StripeOutboxEntry, Invoice)
        .join(Invoice, Invoice.id == StripeOutboxEntry.invoice_id)
        .where(StripeOutboxEntry.done_at.is_(None), StripeOutboxEntry.last_error.is_not(None))
        .order_by(StripeOutboxEntry.next_attempt_at)
        .limit(PER_PAGE)
    ).all()
    statuses = {
        status: count
        for status, count in session.execute(
            select(Invoice.payment_status, func.count())
            .where(Invoice.payment_status.is_not(None))
            .group_by(Invoice.payment_status)
        )
        if status is not None
    }
    return Collection(
        series,
        [SyncFailure(i, e.attempts, e.last_error or "", e.next_attempt_at) for e, i in failing],
        statuses,
    )
