"""`StripeGateway`: the one class that talks to Stripe, through the official `stripe` library.

Everything else deals in the plain data below, so that Stripe can be swapped or turned
off by a setting (`StripeSettings.enabled`) and tests run it against a local server that
speaks Stripe's API (`StripeSettings.api_base`).

Every call that creates or changes something in Stripe carries an idempotency key made of
our invoice's (credit note's, customer's) id and the step, never a random one: a retry
after a timeout or a crash, by this process or another, gets Stripe's saved answer instead
of a second object. Stripe keeps keys for at least 24 hours; the outbox retries within the
hour. Reads (an invoice's state, the credit notes of an invoice) carry none: Stripe ignores
keys on GET, and a read is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe

from billing.errors import DomainError
from billing.settings import StripeSettings

T = TypeVar("T")

# The statuses of a Stripe invoice that still asks for payment or was paid; the others are
# "draft" (never sent) and "void".
STRIPE_OPEN, STRIPE_UNCOLLECTIBLE, STRIPE_PAID = "open", "uncollectible", "paid"


class CollectionFailed(Exception):
    """Stripe refused a call or could not be reached; the outbox retries later."""


class InvalidWebhook(DomainError):
    """A webhook whose signature does not verify with our secret, or is not JSON."""

    code = "invalid_webhook"
    status = 400


@dataclass(frozen=True)
class CustomerDetails:
    """Who Stripe collects from: one of our customers."""

    customer_id: str
    name: str
    email: str
    language: str
    line1: str
    line2: str
    postal_code: str
    city: str
    country: str


@dataclass(frozen=True)
class MirroredItem:
    """One invoice item in Stripe, in the currency's minor units (cents)."""

    description: str
    amount: int


@dataclass(frozen=True)
class InvoiceMirror:
    """What Stripe is told of one of our finalized invoices."""

    invoice_id: str
    number: str
    period: str
    currency: str  # ISO 4217, as we store it ("EUR")
    days_until_due: int
    description: str
    items: tuple[MirroredItem, ...]


@dataclass(frozen=True)
class CreditNoteMirror:
    """What Stripe is told of one of our credit notes, to credit the invoice it corrects."""

    credit_note_id: str
    number: str
    invoice_id: str  # the credited invoice
    memo: str
    items: tuple[MirroredItem, ...]

    @property
    def total(self) -> int:
        """The credit note's total TTC, in minor units."""
        return sum(item.amount for item in self.items)


@dataclass(frozen=True)
class StripeInvoiceState:
    """Where a Stripe invoice stands, in minor units: what crediting it may do."""

    status: str | None  # draft, open, paid, uncollectible or void
    total: int
    amount_paid: int
    amount_remaining: int


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook event: its id, type and the object it is about, as plain JSON."""

    id: str
    type: str
    object: dict[str, Any]


class StripeGateway:
    """Creates customers, invoices and credit notes in Stripe, voids invoices there, and
    verifies Stripe's webhooks."""

    def __init__(self, settings: StripeSettings) -> None:
        self._webhook_secret = settings.webhook_secret
        self._client = stripe.StripeClient(
            settings.api_key,
            base_addresses={"api": settings.api_base} if settings.api_base else None,
            # The outbox is the retry mechanism, with backoff across runs; retrying inside
            # a call as well would only hold the job's lease longer.
            max_network_retries=0,
        )

    def create_customer(self, customer: CustomerDetails) -> str:
        """A new Stripe customer for `customer`; its Stripe id."""
        params: dict[str, Any] = {
            "name": customer.name,
            "email": customer.email,
            "preferred_locales": [customer.language],
            "address": {
                "line1": customer.line1,
                "line2": customer.line2,
                "postal_code": customer.postal_code,
                "city": customer.city,
                "country": customer.country,
            },
            "metadata": {"customer_id": customer.customer_id},
        }
        created = self._call(
            self._client.v1.customers.create, params, key=f"customer:{customer.customer_id}"
        )
        return created.id

    def create_invoice(self, mirror: InvoiceMirror, stripe_customer_id: str) -> str:
        """A draft Stripe invoice bearing our number, to be paid on receipt of the
        invoice Stripe sends (not charged automatically); its Stripe id."""
        params: dict[str, Any] = {
            "customer": stripe_customer_id,
            "currency": mirror.currency.lower(),
            "collection_method": "send_invoice",
            "days_until_due": mirror.days_until_due,
            "number": mirror.number,
            "description": mirror.description,
            # We finalize and send it ourselves once its items are in.
            "auto_advance": False,
            # Only the items attached below, never others pending on the customer.
            "pending_invoice_items_behavior": "exclude",
            "metadata": {
                "invoice_id": mirror.invoice_id,
                "number": mirror.number,
                "period": mirror.period,
            },
        }
        created = self._call(
            self._client.v1.invoices.create, params, key=f"invoice:{mirror.invoice_id}:create"
        )
        return created.id

    def complete_invoice(
        self, stripe_invoice_id: str, mirror: InvoiceMirror, stripe_customer_id: str
    ) -> None:
        """Add the items to the draft, finalize it and have Stripe send it."""
        for position, item in enumerate(mirror.items, start=1):
            params: dict[str, Any] = {
                "customer": stripe_customer_id,
                "invoice": stripe_invoice_id,
                "currency": mirror.currency.lower(),
                "amount": item.amount,
                "description": item.description,
                "metadata": {"invoice_id": mirror.invoice_id, "position": str(position)},
            }
            self._call(
                self._client.v1.invoice_items.create,
                params,
                key=f"invoice:{mirror.invoice_id}:item:{position}",
            )
        invoices = self._client.v1.invoices
        self._call(
            lambda params, options: invoices.finalize_invoice(stripe_invoice_id, params, options),
            {"auto_advance": False},
            key=f"invoice:{mirror.invoice_id}:finalize",
        )
        self._call(
            lambda params, options: invoices.send_invoice(stripe_invoice_id, params, options),
            {},
            key=f"invoice:{mirror.invoice_id}:send",
        )

    def invoice_state(self, stripe_invoice_id: str) -> StripeInvoiceState:
        """The Stripe invoice as Stripe has it now."""
        found = self._read(lambda: self._client.v1.invoices.retrieve(stripe_invoice_id))
        return StripeInvoiceState(
            status=found.status,
            total=found.total,
            amount_paid=found.amount_paid,
            amount_remaining=found.amount_remaining,
        )

    def find_credit_note(self, stripe_invoice_id: str, credit_note_id: str) -> str | None:
        """The Stripe id of the credit note made on the Stripe invoice for our credit note
        `credit_note_id` (by its metadata), None when there is none yet."""

        def search() -> str | None:
            listed = self._client.v1.credit_notes.list({"invoice": stripe_invoice_id, "limit": 100})
            for note in listed.auto_paging_iter():
                if (
                    note.metadata
                    and note.metadata.to_dict().get("credit_note_id") == credit_note_id
                ):
                    return note.id
            return None

        return self._read(search)

    def void_invoice(self, stripe_invoice_id: str, credit_note_id: str) -> None:
        """Void the Stripe invoice (open or uncollectible ones only): our credit note
        `credit_note_id` cancels all it asks for."""
        invoices = self._client.v1.invoices
        self._call(
            lambda params, options: invoices.void_invoice(stripe_invoice_id, params, options),
            {},
            key=f"credit_note:{credit_note_id}:void",
        )

    def create_credit_note(
        self, mirror: CreditNoteMirror, stripe_invoice_id: str, credit_amount: int
    ) -> str:
        """A Stripe credit note of the Stripe invoice, one line per item; its Stripe id.

        Stripe first takes it off what is left to pay on the invoice; `credit_amount`, the
        part beyond that, goes to the customer's Stripe balance, which Stripe deducts from
        their next invoice. Nothing is refunded: refunds are finance's decision. The key
        names the split too: should the invoice be paid between two attempts, the credit
        note split anew is another request, which a reused key would have Stripe refuse
        for good.
        """
        params: dict[str, Any] = {
            "invoice": stripe_invoice_id,
            "lines": [
                {
                    "type": "custom_line_item",
                    "description": item.description,
                    "quantity": 1,
                    "unit_amount": item.amount,
                }
                for item in mirror.items
            ],
            "memo": mirror.memo,
            "metadata": {
                "credit_note_id": mirror.credit_note_id,
                "number": mirror.number,
                "invoice_id": mirror.invoice_id,
            },
        }
        if credit_amount:
            params["credit_amount"] = credit_amount
        created = self._call(
            self._client.v1.credit_notes.create,
            params,
            key=f"credit_note:{mirror.credit_note_id}:create:{credit_amount}",
        )
        return created.id

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """The event of a webhook request, once its `Stripe-Signature` header is verified
        with our webhook secret (and its timestamp is recent: replays of old captures are
        refused). Raises InvalidWebhook otherwise."""
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._webhook_secret)
            return WebhookEvent(id=event.id, type=event.type, object=event.data.object.to_dict())
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook(f"invalid Stripe signature: {error.user_message}") from None
        except ValueError:
            raise InvalidWebhook("the webhook body is not JSON") from None
        except AttributeError:  # signed, yet not shaped like an event
            raise InvalidWebhook("the webhook body is not a Stripe event") from None

    @staticmethod
    def _call(method: Any, params: dict[str, Any], *, key: str) -> Any:
        try:
            return method(params, {"idempotency_key": f"billing:{key}"})
        except stripe.StripeError as error:
            raise _failure(error) from None

    @staticmethod
    def _read(read: Callable[[], T]) -> T:
        try:
            return read()
        except stripe.StripeError as error:
            raise _failure(error) from None


def _failure(error: stripe.StripeError) -> CollectionFailed:
    status = f"HTTP {error.http_status}" if error.http_status else "no response"
    message = error.user_message or str(error)
    return CollectionFailed(f"Stripe {type(error).__name__} ({status}): {message}")
