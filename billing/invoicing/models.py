"""Stored invoices and credit notes, their lines, and the numbering counters.

An invoice is a draft while its period is open to late telemetry: its lines follow the
customer's statement and are replaced at each refresh. Finalizing gives it a number and
freezes it, with the seller's and the customer's identity as they were that day; from
then on only its status moves (to paid or void). A credit note is born finalized.

The database holds the invariants it can: one invoice per customer and period, unique
numbers, a number exactly when the document is not a draft, a credit note always citing
an invoice. `_refuse_changes_to_issued_documents` below guards the rest in the ORM.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import Mapped, Session, UOWTransaction, mapped_column, relationship

from billing.db import Base, ExactDecimal, UTCDateTime
from billing.devices.models import Customer

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
KINDS = (INVOICE, CREDIT_NOTE)

DRAFT = "draft"
FINALIZED = "finalized"
PAID = "paid"
VOID = "void"
STATUSES = (DRAFT, FINALIZED, PAID, VOID)
# Issued documents whose content counts as billed (void ones were cancelled in full).
BILLED = (FINALIZED, PAID)
# The customer's identity as an issued document keeps it.
BUYER_COLUMNS = (
    "buyer_name", "buyer_email", "buyer_address_line1", "buyer_address_line2",
    "buyer_postal_code", "buyer_city", "buyer_country", "buyer_siren", "buyer_vat_number",
    "buyer_language",
)  # fmt: skip


class Invoice(Base):
    """An invoice (type 380) or a credit note (type 381) of one customer for one period.

    Amounts are exact decimals in the invoice's currency, positive on credit notes (the
    EN 16931 convention: the type gives the direction). The `buyer_*` columns and `seller`
    are empty on drafts and copied at finalization, so that a finalized document never
    changes when the customer or the seller settings do.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind_known"),
        CheckConstraint(f"status IN {STATUSES}", name="status_known"),
        # A number is given at finalization and never taken back.
        CheckConstraint("(status = 'draft') = (number IS NULL)", name="numbered_unless_draft"),
        CheckConstraint(
            "(kind = 'credit_note') = (credited_invoice_id IS NOT NULL)",
            name="credit_note_cites_invoice",
        ),
        # One invoice per customer and period (credit notes are as many as needed).
        Index(
            "uq_invoices_customer_period",
            "customer_id",
            "period",
            unique=True,
            sqlite_where=text("kind = 'invoice'"),
            postgresql_where=text("kind = 'invoice'"),
        ),
        Index("ix_invoices_status_period_ends_at", "status", "period_ends_at"),
        Index("ix_invoices_issue_date", "issue_date"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))  # "2026-11"
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    # The period on the customer's calendar (end inclusive), and the instant it closes.
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    period_ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    issue_date: Mapped[dt.date | None] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    total_net: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_vat: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_gross: Mapped[Decimal] = mapped_column(ExactDecimal)
    # JSON lists of exact decimal strings: [{"category", "rate", "base", "amount"}, ...]
    vat_breakdown: Mapped[str] = mapped_column(Text)
    # JSON {vehicle_id: {metric: quantity}}: the usage the PDF summarises per vehicle.
    usage_summary: Mapped[str] = mapped_column(Text, default="{}")
    payment_terms: Mapped[str | None] = mapped_column(Text)
    # JSON of the seller's identity and terms at finalization (billing.settings.SellerSettings).
    seller: Mapped[str | None] = mapped_column(Text)
    buyer_name: Mapped[str | None] = mapped_column(String(200))
    buyer_email: Mapped[str | None] = mapped_column(String(254))
    buyer_address_line1: Mapped[str | None] = mapped_column(String(200))
    buyer_address_line2: Mapped[str | None] = mapped_column(String(200))
    buyer_postal_code: Mapped[str | None] = mapped_column(String(20))
    buyer_city: Mapped[str | None] = mapped_column(String(100))
    buyer_country: Mapped[str | None] = mapped_column(String(2))
    buyer_siren: Mapped[str | None] = mapped_column(String(9))
    buyer_vat_number: Mapped[str | None] = mapped_column(String(20))
    buyer_language: Mapped[str | None] = mapped_column(String(2))
    credited_invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why a credit note or a void
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finalized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Collection through Stripe (billing.payments): the mirror's id, and what Stripe said
    # of the payment (None while not collected through Stripe; see PAYMENT_STATUSES there).
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    payment_status: Mapped[str | None] = mapped_column(String(16))
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # On a credit note: the Stripe credit note that mirrors it (None when it was mirrored by
    # voiding the Stripe invoice, or not at all).
    stripe_credit_note_id: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)

    customer: Mapped[Customer] = relationship()
    credited_invoice: Mapped[Invoice | None] = relationship(remote_side=[id])
    lines: Mapped[list[InvoiceLine]] = relationship(
        order_by="InvoiceLine.position", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_draft(self) -> bool:
        return self.status == DRAFT


class InvoiceLine(Base):
    """One priced line: a charge of a plan on a vehicle, or an adjustment, or a credit.

    `period` is the billing period the line belongs to: the invoice's own, or an earlier
    one for an adjustment line ("régularisation"). `quantity` is the measured usage,
    `billable_quantity` what was left after included units; `unit_price` is the single
    price per unit when the charge has one (None for tiers and packages); `tiers` is the
    JSON tier breakdown of the rating engine, exact decimal strings.
    """

    __tablename__ = "invoice_lines"

    invoice_id: Mapped[str] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    period: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    vehicle_id: Mapped[str | None] = mapped_column(String(64))
    plan_code: Mapped[str | None] = mapped_column(String(40))
    plan_version: Mapped[int | None] = mapped_column(Integer)
    charge_index: Mapped[int | None] = mapped_column(Integer)
    metric: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    billable_quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit_code: Mapped[str] = mapped_column(String(3))
    unit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat_category: Mapped[str] = mapped_column(String(2))
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    tiers: Mapped[str] = mapped_column(Text, default="[]")
    # On a credit note: the position of the invoice line it credits (None: a global credit).
    credited_position: Mapped[int | None] = mapped_column(Integer)


class NumberSeries(Base):
    """The last number given in one series ("F-2026", "AV-2026").

    French law wants invoice numbers continuous, without gaps, in chronological order.
    The row is locked while a number is taken (SELECT … FOR UPDATE on PostgreSQL; SQLite
    serialises writers with BEGIN IMMEDIATE) and the number is committed with the
    finalized invoice, so a rolled-back finalization gives its number back.
    """

    __tablename__ = "invoice_number_series"

    series: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)
    last_issue_date: Mapped[dt.date] = mapped_column(Date)


class InvoiceFile(Base):
    """A rendered file of an issued document (its PDF, its Factur-X PDF), rendered once
    soon after issue (see `document_files`) and returned, byte for byte, by every
    download: what was sent stays what was sent, whatever the renderer becomes."""

    __tablename__ = "invoice_files"

    invoice_id: Mapped[str] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[str] = mapped_column(String(16), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class IssuedDocumentChanged(RuntimeError):
    """A finalized invoice or credit note was about to change: a bug, never a user error."""


# Once issued, only these columns of an invoice may change: its status, and its collection.
_STATUS_COLUMNS = frozenset(
    {
        "status",
        "voided_at",
        "stripe_invoice_id",
        "payment_status",
        "paid_at",
        "stripe_credit_note_id",
    }
)


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_issued_documents(
    session: Session, _context: UOWTransaction, _instances: Sequence[object] | None
) -> None:
    """The ORM's half of immutability: services check statuses first, this catches the
    mistakes they would miss (a line edited through a relationship, a stray assignment).
    Bulk UPDATE and DELETE statements bypass it; the services use them on drafts only."""
    for instance in session.dirty:
        if isinstance(instance, Invoice) and _was_issued(instance):
            changed = {
                attribute.key
                for attribute in inspect(instance).attrs
                if attribute.history.has_changes()
            }
            if changed - _STATUS_COLUMNS:
                raise IssuedDocumentChanged(
                    f"{instance.number} is issued; refusing to change {sorted(changed)}"
                )
        elif isinstance(instance, InvoiceLine) and session.is_modified(instance):
            _refuse_line_change(session, instance)
    for instance in session.deleted:
        if isinstance(instance, Invoice) and _was_issued(instance):
            raise IssuedDocumentChanged(f"{instance.number} is issued and is never deleted")
        if isinstance(instance, InvoiceLine):
            _refuse_line_change(session, instance)


def _was_issued(invoice: Invoice) -> bool:
    history = inspect(invoice).attrs.status.history
    before = history.deleted[0] if history.deleted else invoice.status
    return before != DRAFT


def _refuse_line_change(session: Session, line: InvoiceLine) -> None:
    invoice = session.get(Invoice, line.invoice_id)
    if invoice is not None and _was_issued(invoice):
        raise IssuedDocumentChanged(f"{invoice.number} is issued; its lines never change")
