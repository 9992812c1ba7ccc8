"""Issuing invoices and credit notes with what it sets going beyond invoicing.

Invoicing numbers and freezes its documents and knows neither payments nor dunning, which
sit above it: its issuing functions take an `on_issued` hook (`invoicing.issuing.OnIssued`),
run in the transaction that issues, and this module composes them with it:
- an issued invoice or credit note is queued for Stripe (`enqueue_invoice`), so that it is
  collected, or Stripe stops asking for what it cancels, if and only if the issuing commits;
- a credit note lifts the customer's overdue block at once when it settles what was due
  (`release_settled_blocks`), not at the next dunning pass.
The API, the portal, the commands and the scheduler issue through these functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.orm import Session

from billing.dunning.services import release_settled_blocks
from billing.invoicing import credit_notes, services
from billing.invoicing.credit_notes import CreditedLine
from billing.invoicing.issuing import IssuingHooks
from billing.invoicing.models import Invoice
from billing.invoicing.services import Progress, RunReport
from billing.payments.services import enqueue_invoice
from billing.periods import Period
from billing.settings import Settings


def collect_issued(
    session: Session, documents: Sequence[Invoice], now: dt.datetime, settings: Settings
) -> None:
    """Queue just-issued invoices or credit notes for Stripe, in the issuing transaction."""
    for document in documents:
        enqueue_invoice(session, document, now, settings.stripe)


def credit_note_issued(
    session: Session, notes: Sequence[Invoice], now: dt.datetime, settings: Settings
) -> None:
    """Queue a just-issued credit note for Stripe, then lift its customer's overdue block
    if nothing that reached the block step is due any more."""
    collect_issued(session, notes, now, settings)
    for note in notes:
        release_settled_blocks(session, note.customer_id, now)


# What the API and the commands issue with (`billing.wiring` gives it to them).
HOOKS = IssuingHooks(invoices=collect_issued, credit_notes=credit_note_issued)


def finalize_invoice(
    session: Session, invoice_id: str, now: dt.datetime, *, settings: Settings
) -> Invoice:
    """`invoicing.services.finalize_invoice`, the invoice queued for Stripe."""
    return services.finalize_invoice(
        session, invoice_id, now, settings=settings, on_issued=collect_issued
    )


def finalize_due_invoices(
    session: Session,
    now: dt.datetime,
    *,
    settings: Settings,
    period: Period | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """`invoicing.services.finalize_due_invoices`, each invoice queued for Stripe."""
    return services.finalize_due_invoices(
        session, now, settings=settings, on_issued=collect_issued, period=period, progress=progress
    )


def invoice_closed_periods(session: Session, now: dt.datetime, *, settings: Settings) -> RunReport:
    """`invoicing.services.invoice_closed_periods` (the scheduler's invoicing), each invoice
    it finalizes queued for Stripe."""
    return services.invoice_closed_periods(
        session, now, settings=settings, on_issued=collect_issued
    )


def issue_credit_note(
    session: Session,
    invoice_id: str,
    reason: str,
    now: dt.datetime,
    *,
    settings: Settings,
    lines: Sequence[CreditedLine] = (),
    amount: Decimal | None = None,
) -> Invoice:
    """`invoicing.credit_notes.issue_credit_note`, then queued and blocks lifted (above)."""
    return credit_notes.issue_credit_note(
        session,
        invoice_id,
        reason,
        now,
        settings=settings,
        on_issued=credit_note_issued,
        lines=lines,
        amount=amount,
    )


def void_invoice(
    session: Session, invoice_id: str, reason: str, now: dt.datetime, *, settings: Settings
) -> Invoice:
    """`invoicing.credit_notes.void_invoice`, its credit note queued and blocks lifted."""
    return credit_notes.void_invoice(
        session, invoice_id, reason, now, settings=settings, on_issued=credit_note_issued
    )
