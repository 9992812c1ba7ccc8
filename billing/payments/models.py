"""What we keep of Stripe: our customers' Stripe ids, the outbox of invoices and credit notes
to mirror, and the webhook events already handled. The Stripe ids and payment status of each
invoice or credit note are columns of `invoices` (billing.invoicing.models)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, UTCDateTime

# Invoice.payment_status: None while an invoice is not collected through Stripe.
PAYMENT_OPEN = "open"  # in Stripe, awaiting payment
PAYMENT_FAILED = "failed"  # a payment attempt failed; the invoice stays due
PAYMENT_PAID = "paid"
# Nothing left to collect, nothing paid: the Stripe invoice was voided, or closed by the
# credit notes mirrored to it.
PAYMENT_VOID = "void"
PAYMENT_STATUSES = (PAYMENT_OPEN, PAYMENT_FAILED, PAYMENT_PAID, PAYMENT_VOID)


class StripeCustomer(Base):
    """The Stripe customer that collects for one of our customers, made once and reused."""

    __tablename__ = "stripe_customers"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class StripeOutboxEntry(Base):
    """An invoice or a credit note to mirror to Stripe (`invoice_id` is either: both are
    rows of `invoices`), written in the transaction that issues it, so that no issued
    document is forgotten and none is queued unless its issuing committed. `done_at` is set
    once Stripe holds it (the invoice finalized and sent; the credit note made, or the
    Stripe invoice voided) or once nothing is left to do; until then each failed attempt
    pushes `next_attempt_at` back and records the error."""

    __tablename__ = "stripe_outbox"
    __table_args__ = (
        # The job's question: which entries are due? Done ones are never looked at again.
        Index(
            "ix_stripe_outbox_due",
            "next_attempt_at",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )

    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    enqueued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StripeEvent(Base):
    """A webhook event already handled: Stripe delivers at least once, and a replayed or
    redelivered event must change nothing."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    # What handling it did: "applied" or "ignored" (a type or an invoice that is not ours).
    outcome: Mapped[str] = mapped_column(String(16))
    invoice_id: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
