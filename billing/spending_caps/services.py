"""Setting, listing and looking up customers' spending caps.

A cap is set from a billing period on: the current one or a later one, never an earlier
one, because a period before the current one may already be invoiced and invoices do not
change when a contract does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.devices.models import Customer
from billing.devices.services import get_customer
from billing.errors import Invalid, NotFound
from billing.money import round_money
from billing.periods import Period
from billing.pricing.caps import SpendingCap
from billing.pricing.plans import NUMBER_LIMIT
from billing.spending_caps.models import SpendingCapRecord


def caps_in_force(
    session: Session, customer_ids: Sequence[str], period: Period
) -> dict[str, SpendingCap]:
    """The cap of each customer for `period`; customers without one are left out."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(SpendingCapRecord, Customer.currency)
        .join(Customer, Customer.id == SpendingCapRecord.customer_id)
        .where(
            SpendingCapRecord.customer_id.in_(customer_ids),
            SpendingCapRecord.effective_from <= str(period),
        )
        .order_by(SpendingCapRecord.effective_from)
    )
    latest = {row.customer_id: (row, currency) for row, currency in rows}  # the latest wins
    return {
        customer_id: SpendingCap(round_money(row.amount, currency), row.include_flat_fees)
        for customer_id, (row, currency) in latest.items()
        if row.amount is not None
    }


def list_spending_caps(
    session: Session, principal: Principal, customer_id: str
) -> list[SpendingCapRecord]:
    """The customer's cap records, oldest period first (NotFound outside the scope)."""
    customer = get_customer(session, principal, customer_id)
    return list(
        session.scalars(
            select(SpendingCapRecord)
            .where(SpendingCapRecord.customer_id == customer.id)
            .order_by(SpendingCapRecord.effective_from)
        )
    )


def set_spending_cap(
    session: Session,
    principal: Principal,
    customer_id: str,
    period: Period,
    fields: Mapping[str, Any],
    now: dt.datetime,
) -> SpendingCapRecord:
    """Set the customer's cap from `period` on: `amount` (None: no cap from then),
    `include_flat_fees`, `block_at_cap`. Replaces a record of the same period."""
    customer = get_customer(session, principal, customer_id)
    _check_period(customer, period, now)
    amount = fields.get("amount")
    if amount is not None:
        _check_amount(amount, customer.currency)
    record = _record(session, customer.id, period)
    if record is None:
        record = SpendingCapRecord(
            customer_id=customer.id, effective_from=str(period), created_at=now
        )
        session.add(record)
    record.amount = amount
    record.include_flat_fees = fields.get("include_flat_fees", False)
    record.block_at_cap = fields.get("block_at_cap", False)
    record.updated_at = now
    session.commit()
    return record


def delete_spending_cap(
    session: Session, principal: Principal, customer_id: str, period: Period, now: dt.datetime
) -> None:
    """Remove the record of `period`: the record before it applies again from then."""
    customer = get_customer(session, principal, customer_id)
    _check_period(customer, period, now)
    record = _record(session, customer.id, period)
    if record is None:
        raise NotFound("spending cap", f"{customer.id}/{period}")
    session.delete(record)
    session.commit()


def _record(session: Session, customer_id: str, period: Period) -> SpendingCapRecord | None:
    return session.scalar(
        select(SpendingCapRecord).where(
            SpendingCapRecord.customer_id == customer_id,
            SpendingCapRecord.effective_from == str(period),
        )
    )


def _check_period(customer: Customer, period: Period, now: dt.datetime) -> None:
    current = Period.containing(now, ZoneInfo(customer.timezone))
    if period < current:
        raise Invalid(
            f"period {period} is over",
            {"period": [f"caps change from the current period ({current}) on, not {period}"]},
        )


def _check_amount(amount: Decimal, currency: str) -> None:
    if amount < 0 or amount >= NUMBER_LIMIT:
        raise Invalid("amount out of range", {"amount": [f"must be within 0 and {NUMBER_LIMIT}"]})
    if round_money(amount, currency) != amount:
        raise Invalid(
            "amount not in the currency's minor unit",
            {"amount": [f"must be rounded to the minor unit of {currency}"]},
        )
