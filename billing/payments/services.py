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

Credit notes are not mirrored yet: finance settles them with the customer in Stripe.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.devices.models import Customer
from billing.invoicing.models import FINALIZED, INVOICE, PAID, VOID, Invoice
from billing.money import MINOR_UNITS
from billing.payments.gateway import (
    CollectionFailed,
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
    StripeCustomer,
    StripeEvent,
    StripeOutboxEntry,
)
from billing.settings import StripeSettings

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


def enqueue_invoice(
    session: Session, invoice: Invoice, now: dt.datetime, settings: StripeSettings
) -> bool:
    """Queue a just-finalized invoice for Stripe, in the caller's transaction, so that it
    is queued if and only if its finalization commits. False when collection through
    Stripe is off (no API key): nothing is queued then."""
    if not settings.enabled or invoice.kind != INVOICE:
        return False
    session.add(
        StripeOutboxEntry(invoice_id=invoice.id, enqueued_at=now, attempts=0, next_attempt_at=now)
    )
    return True


@dataclass
class SyncReport:
    """What a pass over the outbox did: the invoices done with (mirrored, or no longer
    due), and the error of each failure."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        """How many invoices the pass attempted."""
        return len(self.done) + len(self.failed)


def mirror_due_invoices(
    session: Session, gateway: StripeGateway, now: dt.datetime, *, limit: int = 20
) -> SyncReport:
    """Mirror to Stripe up to `limit` queued invoices whose attempt is due, oldest first.

    Each invoice is its own transaction. One that fails keeps its place in the queue with
    the error recorded, and is tried again after a delay that doubles with each failure;
    the others go on. Callers run one pass at a time (the scheduler's job lease).
    """
    report = SyncReport()
    due = session.scalars(
        select(StripeOutboxEntry.invoice_id)
        .where(StripeOutboxEntry.done_at.is_(None), StripeOutboxEntry.next_attempt_at <= now)
        .order_by(StripeOutboxEntry.next_attempt_at, StripeOutboxEntry.invoice_id)
        .limit(limit)
    ).all()
    for invoice_id in due:
        try:
            mirror_invoice(session, gateway, invoice_id, now)
            report.done.append(invoice_id)
        except Exception as error:
            session.rollback()
            if isinstance(error, CollectionFailed):
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
    """Mirror one queued invoice to Stripe and mark its queue entry done. An invoice that
    is no longer due (voided, or paid otherwise, before its turn came) is not sent: the
    entry is simply done. Raises CollectionFailed when Stripe refuses or cannot be
    reached."""
    entry = session.get(StripeOutboxEntry, invoice_id)
    invoice = session.get(Invoice, invoice_id)
    if entry is None or invoice is None:
        raise LookupError(f"invoice {invoice_id} is not queued for Stripe")
    if invoice.status != FINALIZED:
        _done(entry, now)
        session.commit()
        return
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
    _done(entry, now)
    session.commit()


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

_WORDS = {
    "fr": {"invoice": "Facture {number} — usage {period}",
           "base": "Usage {period} — montant HT, TVA {rate} %",
           "reverse_charge": "Usage {period} — montant HT, autoliquidation",
           "vat": "TVA {rate} %"},
    "en": {"invoice": "Invoice {number} — usage {period}",
           "base": "Usage {period} — net amount, VAT {rate}%",
           "reverse_charge": "Usage {period} — net amount, reverse charge",
           "vat": "VAT {rate}%"},
}  # fmt: skip
REVERSE_CHARGE = "AE"  # EN 16931 VAT category


class AmountsDisagree(ValueError):
    """The items would not add up to the invoice's total: a bug, never sent to Stripe."""


def invoice_mirror(invoice: Invoice) -> InvoiceMirror:
    """What Stripe is told of a finalized invoice: per VAT rate, the base and the VAT,
    adding up exactly to its total TTC."""
    words = _WORDS.get(invoice.buyer_language or "fr", _WORDS["fr"])
    currency = invoice.currency
    items = []
    for group in json.loads(invoice.vat_breakdown):
        rate, vat = Decimal(group["rate"]), Decimal(group["amount"])
        label = "reverse_charge" if group["category"] == REVERSE_CHARGE else "base"
        text_rate = _format_rate(rate, invoice.buyer_language)
        items.append(
            MirroredItem(
                words[label].format(period=invoice.period, rate=text_rate),
                minor_units(Decimal(group["base"]), currency),
            )
        )
        if vat:
            items.append(
                MirroredItem(words["vat"].format(rate=text_rate), minor_units(vat, currency))
            )
    total = minor_units(invoice.total_gross, currency)
    if sum(item.amount for item in items) != total:
        raise AmountsDisagree(
            f"invoice {invoice.number}: the VAT breakdown adds up to "
            f"{sum(item.amount for item in items)}, not {total} minor units"
        )
    return InvoiceMirror(
        invoice_id=invoice.id,
        number=invoice.number or "",
        period=invoice.period,
        currency=currency,
        days_until_due=(invoice.due_date - invoice.issue_date).days,
        description=words["invoice"].format(number=invoice.number, period=invoice.period),
        items=tuple(items),
    )


def minor_units(amount: Decimal, currency: str) -> int:
    """An amount already rounded to its currency, in minor units: 12.34 EUR → 1234.
    Refuses an unrounded amount rather than rounding it a second time."""
    scaled = amount.scaleb(MINOR_UNITS[currency])
    if scaled != scaled.to_integral_value():
        raise AmountsDisagree(f"{amount} {currency} is not rounded to the currency")
    return int(scaled)


def _format_rate(rate: Decimal, language: str | None) -> str:
    text = format(rate.normalize(), "f")
    return text.replace(".", ",") if language != "en" else text


# --- webhooks ----------------------------------------------------------------------------


def record_webhook_event(session: Session, event: WebhookEvent, now: dt.datetime) -> str:
    """Apply a verified Stripe event, once: APPLIED, IGNORED or DUPLICATE.

    `invoice.paid` marks our invoice paid (on Stripe's payment date); a voided invoice
    stays void, the payment recorded for finance to refund. `invoice.payment_failed`
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
        outcome = _mark_paid(invoice, event.object, now)
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
    paid_at = (stripe_invoice.get("status_transitions") or {}).get("paid_at")
    invoice.payment_status = PAYMENT_PAID
    invoice.paid_at = dt.datetime.fromtimestamp(paid_at, dt.UTC) if paid_at else now
    if invoice.status == FINALIZED:
        invoice.status = PAID
    elif invoice.status == VOID:
        log.warning("voided invoice %s was paid in Stripe: refund it", invoice.number)
    return APPLIED


def _mark_failed(invoice: Invoice) -> str:
    if invoice.status != FINALIZED or invoice.payment_status == PAYMENT_PAID:
        return IGNORED
    invoice.payment_status = PAYMENT_FAILED
    return APPLIED
