"""The invoiced months a change of fleet membership reaches into.

A registration or a move effective in the past re-attributes the usage of the months since
then: those already invoiced are corrected by adjustment lines on the customers' next
invoices, within the adjustment window; a change reaching further back is refused
(see billing.devices.membership for the membership rules).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.devices.membership import MembershipRules
from billing.devices.models import Customer
from billing.errors import Invalid
from billing.invoicing.models import BILLED, INVOICE, Invoice
from billing.periods import Period


@dataclass(frozen=True)
class InvoicedMonth:
    """An issued invoice whose month a membership change re-attributes usage of."""

    customer_id: str
    period: str
    invoice_number: str


def invoiced_months_reached(
    session: Session,
    customer_ids: list[str],
    since: dt.datetime,
    now: dt.datetime,
    rules: MembershipRules,
) -> list[InvoicedMonth]:
    """The issued invoices of these customers whose month ends after `since`: a change of
    membership from `since` re-attributes their usage. Refuses (422 `effective_at`) when
    one of them is older than the adjustment window."""
    rows = session.execute(
        select(Invoice.customer_id, Invoice.period, Invoice.number, Customer.timezone)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.customer_id.in_(customer_ids),
            Invoice.kind == INVOICE,
            Invoice.status.in_(BILLED),
            Invoice.period_ends_at > since,
        )
        .order_by(Invoice.period, Invoice.customer_id)
    ).all()
    reached = []
    for customer_id, period, number, timezone in rows:
        current = Period.containing(now, ZoneInfo(timezone))
        oldest = current
        for _ in range(rules.adjustment_months):
            oldest = oldest.previous()
        if Period.parse(period) < oldest:
            raise Invalid(
                "invoiced month out of the adjustment window",
                {
                    "effective_at": [
                        f"reaches into {period}, invoiced as {number} and older than the "
                        f"{rules.adjustment_months} months whose usage can still be adjusted"
                    ]
                },
            )
        # An issued invoice has its number (a number exactly when not a draft).
        reached.append(InvoicedMonth(customer_id, period, cast(str, number)))
    return reached
