"""Collection services: queue finalized invoices for Stripe, mirror the queue, and apply
Stripe's webhook events.

How an invoice looks in Stripe. Our invoice is the legal document (its lines, VAT
breakdown, PDF and Factur-X); Stripe only collects it, so the Stripe invoice carries our
number and our exact amounts rather than our lines: one item per VAT rate with the base
(HT), and one item with the VAT of that rate, amounts as we computed them (VAT per rate,
EN 16931), converted to the currency's minor units. Stripe's total is then our TTC to the
cent, which Stripe Tax or tax rates computed per line could not promise, and the number of
items stays far below Stripe's per-invoice limit whatever the size of the fleet. The
invoice is sent (`collection_method=send_invoice`), due the number of days our payment
terms give.

Mirroring an invoice takes several calls (customer, invoice, items, finalize, send); each
has an idempotency key made of our ids, and the Stripe ids are stored as soon as Stripe
returns them, so an attempt that fails anywhere is simply run again later, without ever
making a second customer or invoice in Stripe.

Credit notes (voids included: voiding issues the credit note of all that is left) go
through the same outbox, so that Stripe never asks a customer to pay what we cancelled.
They are queued when the invoice they credit is queued or mirrored, and mirrored after it,
by what a finance team expects of Stripe given where its invoice stands (asked of Stripe
at each attempt, since a payment may overtake its webhook):
- an invoice never mirrored (voided before its turn) is left out of Stripe: so are its
  credit notes;
- an open Stripe invoice that nothing was paid on, credited in full (a void): the Stripe
  invoice is voided, and our invoice's payment status becomes "void";
- otherwise a Stripe credit note with our amounts, one line per VAT rate for the base and
  one for the VAT, like the invoice's items. Stripe takes it off what is left to pay (a
  partial credit of an open invoice lowers its amount due), and the rest, all of it once
  the invoice is paid, goes to the customer's Stripe balance (`credit_amount`), deducted
  from their next invoice as our credit notes' payment terms say. Nothing is refunded
  automatically: a refund stays finance's decision, made in Stripe;
- a Stripe invoice still a draft (voided here while being mirrored, so never sent) or
  already void (by an earlier attempt whose answer was lost, or by hand) needs nothing.
Before making a Stripe credit note, the attempt looks for one it made already (its
metadata names our credit note), so that a lost answer never makes a second one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.devices.models import Customer
from billing.dunning.services import release_settled_blocks
from billing.invoicing.models import CREDIT_NOTE, FINALIZED, INVOICE, PAID, VOID, Invoice
from billing.money import MINOR_UNITS
from billing.payments.gateway import (
    STRIPE_OPEN,
    STRIPE_PAID,
    STRIPE_UNCOLLECTIBLE,
    CollectionFailed,
    CreditNoteMirror,
    CustomerDetails,
    InvoiceMirror,
    MirroredItem,
    StripeGateway,
    WebhookEvent,
)
from billing.payments.models import (
    PAYMENT_FAILED,
    PAYMENT_OPEN,
    PAYMENT_PAID,
    PAYMENT_VOID,
    StripeCustomer,
    StripeEvent,
    StripeOutboxEntry,
)
from billing.settings import StripeSettings
from billing.vat import REVERSE_CHARGE
from billing.webhooks.events import INVOICE_PAID, invoice_data
from billing.webhooks.services import emit_event
from billing.words import words

log = logging.getLogger(__name__)

# Retry delays double from a minute up to an hour: a Stripe outage is waited out without
# hammering it, and retries stay well within the 24 hours Stripe keeps idempotency keys.
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)

# Webhook outcomes.
APPLIED = "applied"
IGNORED = "ignored"  # an event type we do not act on, or an invoice that is not ours
DUPLICATE = "duplicate"  # already handled: Stripe redelivered or someone replayed it


# --- the outbox ---------------------------------------------------------------------------


class CreditedInvoiceNotMirrored(Exception):
    """A credit note's turn came while the invoice it credits still waits for Stripe."""


def enqueue_invoice(
    session: Session, invoice: Invoice, now: dt.datetime, settings: StripeSettings
) -> bool:
    """Queue a just-issued invoice or credit note for Stripe, in the caller's transaction,
    so that it is queued if and only if its issuing commits. False when nothing is queued:
    collection through Stripe is off (no API key), or a credit note's invoice is not
    collected through Stripe (there is nothing there to correct)."""
    if not settings.enabled:
        return False
    if invoice.kind == CREDIT_NOTE and _entry_of(session, invoice.credited_invoice_id) is None:
        return False
    session.add(
        StripeOutboxEntry(invoice_id=invoice.id, enqueued_at=now, attempts=0, next_attempt_at=now)
    )
    return True


def _entry_of(session: Session, invoice_id: str | None) -> StripeOutboxEntry | None:
    return session.get(StripeOutboxEntry, invoice_id) if invoice_id else None


@dataclass
class SyncReport:
    """What a pass over the outbox did: the invoices and credit notes done with (mirrored,
    or with nothing to do), and the error of each failure."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        """How many invoices the pass attempted."""
        return len(self.done) + len(self.failed)


def mirror_due_invoices(
    session: Session, gateway: StripeGateway, now: dt.datetime, *, limit: int = 20
) -> SyncReport:
    """Mirror to Stripe up to `limit` queued invoices and credit notes whose attempt is
    due: invoices first, then credit notes, each oldest first, so that a credit note finds
    the invoice it credits mirrored by the same pass.

    Each one is its own transaction. One that fails keeps its place in the queue with the
    error recorded, and is tried again after a delay that doubles with each failure; the
    others go on. Callers run one pass at a time (the scheduler's job lease).
    """
    report = SyncReport()
    due = session.scalars(
        select(StripeOutboxEntry.invoice_id)
        .join(Invoice, Invoice.id == StripeOutboxEntry.invoice_id)
        .where(StripeOutboxEntry.done_at.is_(None), StripeOutboxEntry.next_attempt_at <= now)
        .order_by(
            Invoice.kind == CREDIT_NOTE,
            StripeOutboxEntry.next_attempt_at,
            StripeOutboxEntry.invoice_id,
        )
        .limit(limit)
    ).all()
    for invoice_id in due:
        try:
            mirror_invoice(session, gateway, invoice_id, now)
            report.done.append(invoice_id)
        except Exception as error:
            session.rollback()
            if isinstance(error, (CollectionFailed, CreditedInvoiceNotMirrored)):
                log.warning("mirroring %s to Stripe failed: %s", invoice_id, error)
                message = str(error)
            else:  # a bug: kept out of the way of the other invoices, and loud in the logs
                log.exception("mirroring %s to Stripe failed", invoice_id)
                message = f"{type(error).__name__}: {error}"
            _record_failure(session, invoice_id, message, now)
            report.failed[invoice_id] = message
    return report


def mirror_invoice(
    session: Session, gateway: StripeGateway, invoice_id: str, now: dt.datetime
) -> None:
    """Mirror one queued invoice or credit note to Stripe and mark its queue entry done.

    An invoice that is no longer due (voided, or paid otherwise, before its turn came) is
    not sent: the entry is simply done. A credit note is mirrored as the module docstring
    says. Raises CollectionFailed when Stripe refuses or cannot be reached, and
    CreditedInvoiceNotMirrored when a credit note must wait for its invoice.
    """
    entry = session.get(StripeOutboxEntry, invoice_id)
    document = session.get(Invoice, invoice_id)
    if entry is None or document is None:
        raise LookupError(f"invoice {invoice_id} is not queued for Stripe")
    if document.kind == CREDIT_NOTE:
        _mirror_credit_note(session, gateway, document)
    elif document.status == FINALIZED:
        _mirror_invoice(session, gateway, document, now)
    _done(entry, now)
    session.commit()


def _mirror_invoice(
    session: Session, gateway: StripeGateway, invoice: Invoice, now: dt.datetime
) -> None:
    mirror = invoice_mirror(invoice)
    stripe_customer_id = _stripe_customer_id(session, gateway, invoice.customer, now)
    if invoice.stripe_invoice_id is None:
        invoice.stripe_invoice_id = gateway.create_invoice(mirror, stripe_customer_id)
        # Stored at once: whatever fails next, later attempts complete this Stripe
        # invoice and never create another, even after Stripe forgot the idempotency key.
        session.commit()
    gateway.complete_invoice(invoice.stripe_invoice_id, mirror, stripe_customer_id)
    if invoice.payment_status is None:  # a webhook may have told us more already
        invoice.payment_status = PAYMENT_OPEN


def _mirror_credit_note(session: Session, gateway: StripeGateway, note: Invoice) -> None:
    invoice = note.credited_invoice
    if invoice is None:
        raise LookupError(f"credit note {note.number} cites no invoice")
    invoice_entry = _entry_of(session, invoice.id)
    if invoice_entry is not None and invoice_entry.done_at is None:
        raise CreditedInvoiceNotMirrored(
            f"{note.number} waits for {invoice.number} to be mirrored to Stripe first"
        )
    if invoice.stripe_invoice_id is None:
        return  # never mirrored: nothing in Stripe to correct
    mirror = credit_note_mirror(note)
    stripe_invoice_id = invoice.stripe_invoice_id
    state = gateway.invoice_state(stripe_invoice_id)
    if state.status not in (STRIPE_OPEN, STRIPE_UNCOLLECTIBLE, STRIPE_PAID):
        return  # a draft never sent, or voided already: nothing is asked of the customer
    made = gateway.find_credit_note(stripe_invoice_id, note.id)
    if made is not None:  # by an earlier attempt whose answer was lost
        note.stripe_credit_note_id = made
    elif state.status != STRIPE_PAID and state.amount_paid == 0 and mirror.total == state.total:
        gateway.void_invoice(stripe_invoice_id, note.id)
        invoice.payment_status = PAYMENT_VOID
    else:
        beyond_due = max(mirror.total - state.amount_remaining, 0)
        note.stripe_credit_note_id = gateway.create_credit_note(
            mirror, stripe_invoice_id, credit_amount=beyond_due
        )


def _done(entry: StripeOutboxEntry, now: dt.datetime) -> None:
    entry.attempts += 1
    entry.done_at, entry.last_error = now, None


def retry_delay(failures: int) -> dt.timedelta:
    """How long to wait after the `failures`-th failure in a row: 1, 2, 4… minutes, at
    most an hour."""
    doublings = min(failures - 1, 6)  # 2**6 minutes already exceed the longest delay
    return min(FIRST_RETRY * 2**doublings, LONGEST_RETRY)


def _record_failure(session: Session, invoice_id: str, message: str, now: dt.datetime) -> None:
    entry = session.get(StripeOutboxEntry, invoice_id)
    if entry is None:
        return
    entry.attempts += 1
    entry.last_error = message
    entry.next_attempt_at = now + retry_delay(entry.attempts)
    session.commit()


def _stripe_customer_id(
    session: Session, gateway: StripeGateway, customer: Customer, now: dt.datetime
) -> str:
    """The Stripe customer of `customer`, created the first time and stored at once."""
    known = session.get(StripeCustomer, customer.id)
    if known is not None:
        return known.stripe_customer_id
    stripe_customer_id = gateway.create_customer(
        CustomerDetails(
            customer_id=customer.id,
            name=customer.name,
            email=customer.email,
            language=customer.language,
            line1=customer.address_line1,
            line2=customer.address_line2,
            postal_code=customer.postal_code,
            city=customer.city,
            country=customer.country,
        )
    )
    session.add(
        StripeCustomer(
            customer_id=customer.id, stripe_customer_id=stripe_customer_id, created_at=now
        )
    )
    session.commit()
    return stripe_customer_id


# --- what Stripe is told -----------------------------------------------------------------


class AmountsDisagree(ValueError):
    """The items would not add up to the invoice's total: a bug, never sent to Stripe."""


def invoice_mirror(invoice: Invoice) -> InvoiceMirror:
    """What Stripe is told of a finalized invoice: per VAT rate, the base and the VAT,
    adding up exactly to its total TTC."""
    words = _words(invoice)
    if invoice.issue_date is None or invoice.due_date is None:
        raise ValueError(f"invoice {invoice.id} is a draft: it is not collected")
    return InvoiceMirror(
        invoice_id=invoice.id,
        number=invoice.number or "",
        period=invoice.period,
        currency=invoice.currency,
        days_until_due=(invoice.due_date - invoice.issue_date).days,
        description=words["invoice"].format(number=invoice.number, period=invoice.period),
        items=_vat_items(invoice),
    )


def credit_note_mirror(note: Invoice) -> CreditNoteMirror:
    """What Stripe is told of a credit note: per VAT rate, the base and the VAT credited,
    adding up exactly to its total TTC, and a memo citing our numbers and the reason."""
    credited = note.credited_invoice
    invoice_number = credited.number if credited is not None else ""
    return CreditNoteMirror(
        credit_note_id=note.id,
        number=note.number or "",
        invoice_id=note.credited_invoice_id or "",
        memo=_words(note)["credit_note"].format(
            number=note.number, invoice=invoice_number, reason=note.reason or ""
        ),
        items=_vat_items(note),
    )


def _words(document: Invoice) -> Mapping[str, str]:
    return words(document.buyer_language).stripe


def _vat_items(document: Invoice) -> tuple[MirroredItem, ...]:
    """Per VAT rate of an invoice or credit note, its base and its VAT (no item for an
    amount of 0: a zero-rated or reverse-charged base has no VAT), in minor units; refused
    unless they add up to its total TTC."""
    words, currency = _words(document), document.currency
    items = []
    for group in json.loads(document.vat_breakdown):
        base, vat = Decimal(group["base"]), Decimal(group["amount"])
        label = "reverse_charge" if group["category"] == REVERSE_CHARGE else "base"
        text_rate = _format_rate(Decimal(group["rate"]), document.buyer_language)
        if base:
            text = words[label].format(period=document.period, rate=text_rate)
            items.append(MirroredItem(text, minor_units(base, currency)))
        if vat:
            text = words["vat"].format(rate=text_rate)
            items.append(MirroredItem(text, minor_units(vat, currency)))
    added, total = sum(item.amount for item in items), minor_units(document.total_gross, currency)
    if added != total:
        raise AmountsDisagree(
            f"{document.number}: the VAT breakdown adds up to {added}, not {total} minor units"
        )
    return tuple(items)


def minor_units(amount: Decimal, currency: str) -> int:
    """An amount already rounded to its currency, in minor units: 12.34 EUR → 1234.
    Refuses an unrounded amount rather than rounding it a second time."""
    scaled = amount.scaleb(MINOR_UNITS[currency])
    if scaled != scaled.to_integral_value():
        raise AmountsDisagree(f"{amount} {currency} is not rounded to the currency")
    return int(scaled)


def _format_rate(rate: Decimal, language: str | None) -> str:
    return format(rate.normalize(), "f").replace(".", words(language).decimal_point)


# --- webhooks ----------------------------------------------------------------------------


def record_webhook_event(session: Session, event: WebhookEvent, now: dt.datetime) -> str:
    """Apply a verified Stripe event, once: APPLIED, IGNORED or DUPLICATE.

    `invoice.paid` marks our invoice paid (on Stripe's payment date). A voided invoice
    stays void: the payment is recorded (its credit note credits the customer's Stripe
    balance, from which finance may refund), or, when nothing was paid (the credit notes
    mirrored to it closed it), its payment status becomes "void". `invoice.payment_failed`
    records the failure and leaves the invoice finalized and due, unless it was paid
    meanwhile (events may arrive out of order). Other types are recorded and ignored.
    """
    if session.get(StripeEvent, event.id) is not None:
        return DUPLICATE
    invoice = None
    if event.type in ("invoice.paid", "invoice.payment_failed"):
        invoice = _our_invoice(session, event.object)
    outcome = IGNORED
    if invoice is not None and event.type == "invoice.paid":
        was_paid = invoice.status == PAID
        outcome = _mark_paid(invoice, event.object, now)
        if invoice.status == PAID and not was_paid:
            emit_event(session, INVOICE_PAID, invoice.customer_id, invoice_data(invoice), now)
            release_settled_blocks(session, invoice.customer_id, now)  # unlock at once
    elif invoice is not None and event.type == "invoice.payment_failed":
        outcome = _mark_failed(invoice)
    session.add(
        StripeEvent(
            id=event.id,
            type=event.type,
            outcome=outcome,
            invoice_id=invoice.id if invoice is not None else None,
            received_at=now,
        )
    )
    try:
        session.commit()
    except IntegrityError:
        # The same event, delivered twice at once, was handled by the other delivery.
        session.rollback()
        return DUPLICATE
    return outcome


def _our_invoice(session: Session, stripe_invoice: dict) -> Invoice | None:
    """Our invoice that a Stripe invoice mirrors, locked; None when it is not one of ours."""
    invoice_id = (stripe_invoice.get("metadata") or {}).get("invoice_id")
    if not invoice_id:
        return None
    invoice = session.scalars(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.kind == INVOICE)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if invoice is None or invoice.stripe_invoice_id not in (None, stripe_invoice.get("id")):
        return None  # not the Stripe invoice we mirrored it to
    # The event may overtake the storing of the mirror's id after a failed attempt.
    invoice.stripe_invoice_id = stripe_invoice.get("id")
    return invoice


def _mark_paid(invoice: Invoice, stripe_invoice: dict, now: dt.datetime) -> str:
    if invoice.status == VOID and not stripe_invoice.get("amount_paid"):
        invoice.payment_status = PAYMENT_VOID  # no money moved: nothing to refund
        return APPLIED
    paid_at = (stripe_invoice.get("status_transitions") or {}).get("paid_at")
    invoice.payment_status = PAYMENT_PAID
    invoice.paid_at = dt.datetime.fromtimestamp(paid_at, dt.UTC) if paid_at else now
    if invoice.status == FINALIZED:
        invoice.status = PAID
    elif invoice.status == VOID:
        log.warning(
            "voided invoice %s was paid in Stripe: its credit note credits the customer's "
            "Stripe balance, to refund if finance so decides",
            invoice.number,
        )
    return APPLIED


def _mark_failed(invoice: Invoice) -> str:
    if invoice.status != FINALIZED or invoice.payment_status == PAYMENT_PAID:
        return IGNORED
    invoice.payment_status = PAYMENT_FAILED
    return APPLIED
