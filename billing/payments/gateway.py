"""`StripeGateway`: the one class that talks to Stripe, through the official `stripe` library.

Everything else deals in the plain data below, so that Stripe can be swapped or turned
off by a setting (`StripeSettings.enabled`) and tests run it against a local server that
speaks Stripe's API (`StripeSettings.api_base`).

Every call that creates or changes something in Stripe carries an idempotency key made of
our invoice's (or customer's) id and the step, never a random one: a retry after a timeout
or a crash, by this process or another, gets Stripe's saved answer instead of a second
object. Stripe keeps keys for at least 24 hours; the outbox retries within the hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from billing.errors import DomainError
from billing.settings import StripeSettings


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
class WebhookEvent:
    """A verified webhook event: its id, type and the object it is about, as plain JSON."""

    id: str
    type: str
    object: dict[str, Any]


class StripeGateway:
    """Creates customers and invoices in Stripe, and verifies Stripe's webhooks."""

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
            status = f"HTTP {error.http_status}" if error.http_status else "no response"
            message = error.user_message or str(error)
            raise CollectionFailed(f"Stripe {type(error).__name__} ({status}): {message}") from None
