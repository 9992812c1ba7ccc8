"""What a statement tells of its period's invoices, as statements read it: invoicing
writes the invoices and answers these reads, statements show them.

Statements and invoicing import neither the other: `InvoiceHistory` is what statements ask
of invoicing, and the composition roots (`create_app`, the `billing` command) install
invoicing's answer under `INVOICE_HISTORY` in their extensions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from sqlalchemy.orm import Session

from billing.charges.compute import Statement
from billing.devices.models import Customer
from billing.periods import Period
from billing.vat import Totals, compute_totals

INVOICE_HISTORY = "billing.invoice_history"


@dataclass(frozen=True)
class InvoicedPeriod:
    """A closed month already invoiced, as its statement shows it.

    `billed` totals every line issued for the month (its invoice's and the adjustments of
    later invoices); the statement itself holds the figures measured since; `pending` is
    the adjustment the customer's next invoice bills to bring the first to the second —
    none once the month is out of the adjustment window (`adjustable` False).
    """

    invoice_numbers: tuple[str, ...]
    billed: Totals
    pending: Totals
    adjustable: bool


class InvoiceHistory(Protocol):
    """The reads of issued invoices a statement needs."""

    def invoiced_period(
        self,
        session: Session,
        customer: Customer,
        statement: Statement,
        now: dt.datetime,
        adjustment_months: int,
    ) -> InvoicedPeriod | None:
        """What was invoiced for the statement's month and what is pending; None when the
        month has no issued invoice."""
        ...

    def pending_adjustments(
        self, session: Session, customer: Customer, period: Period, adjustment_months: int
    ) -> Totals | None:
        """The adjustments the customer's invoice for `period` would bill if issued now
        (None when there are none)."""
        ...


def invoice_history(extensions: Mapping[str, object]) -> InvoiceHistory:
    """The history a composition root installed in its extensions."""
    return cast(InvoiceHistory, extensions[INVOICE_HISTORY])


def with_adjustments(totals: Totals, pending: Totals | None) -> Totals | None:
    """A month's totals plus the pending adjustments, VAT per rate across both as the
    invoice computes it; None without adjustments."""
    if pending is None:
        return None
    items = [(s.category, s.rate, s.base) for s in (*totals.subtotals, *pending.subtotals)]
    return compute_totals(items, totals.currency)
