"""Stripe's webhook: events about the invoices Stripe collects for us.

Not authenticated with an API key (Stripe has none of ours) but by the `Stripe-Signature`
header, an HMAC of the body with the endpoint's signing secret.
"""

import marshmallow as ma
from flask import current_app, request
from flask.views import MethodView

from billing.db import utcnow
from billing.errors import DomainError
from billing.payments import services
from billing.payments.gateway import StripeGateway
from billing.web import Blueprint, db_session, request_body

blp = Blueprint("payments", __name__, url_prefix="/api/v1", description="Collection through Stripe")

STRIPE_EVENT_BODY = {
    "required": True,
    "description": "A Stripe event, exactly as Stripe sent it (the signature covers the bytes).",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


class StripeNotConfigured(DomainError):
    code = "not_found"
    status = 404


class WebhookReceiptSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The Stripe event id."})
    type = ma.fields.String(metadata={"example": "invoice.paid"})
    outcome = ma.fields.String(
        metadata={
            "description": "applied; ignored (a type or an invoice that is not ours); "
            "duplicate (already handled)."
        }
    )


@blp.route("/stripe/webhook")
class StripeWebhook(MethodView):
    @blp.doc(security=[], requestBody=STRIPE_EVENT_BODY)
    @blp.response(200, WebhookReceiptSchema)
    def post(self):
        """Receive a Stripe event (`invoice.paid`, `invoice.payment_failed`).

        Verified with the `Stripe-Signature` header (400 when it does not match, and
        nothing changes). Each event is applied once: a redelivered or replayed event
        changes nothing. Other event types are acknowledged and ignored. 404 when
        collection through Stripe is not configured.
        """
        event = _gateway().parse_webhook(request_body(), request.headers.get("Stripe-Signature"))
        outcome = services.record_webhook_event(db_session(), event, utcnow())
        return {"id": event.id, "type": event.type, "outcome": outcome}


def _gateway() -> StripeGateway:
    """The application's gateway, made on first use (only when Stripe is configured)."""
    extensions = current_app.extensions
    if "billing.stripe_gateway" not in extensions:
        settings = extensions["billing.settings"].stripe
        if not settings.enabled:
            raise StripeNotConfigured("collection through Stripe is not configured")
        extensions["billing.stripe_gateway"] = StripeGateway(settings)
    return extensions["billing.stripe_gateway"]
