"""Request and response shapes of the webhook endpoints API."""

import json

import marshmallow as ma
from marshmallow import fields, validate

from billing.validators import Text, UTCDateTime
from billing.webhooks.events import EVENT_TYPES
from billing.webhooks.models import DELIVERY_STATUSES

MAX_URL_LENGTH = 2048


class EndpointRequestSchema(ma.Schema):
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=MAX_URL_LENGTH),
        metadata={"example": "https://fleet.example/hooks/billing"},
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(1, len(EVENT_TYPES)),
        metadata={"description": f"among {', '.join(EVENT_TYPES)}"},
    )
    description = Text(load_default="", allow_blank=True, validate=validate.Length(0, 200))
    enabled = fields.Boolean(load_default=True)
    customer_id = fields.String(
        load_default=None,
        validate=validate.Length(1, 32),
        metadata={"description": "the account (admins only; a customer key: its own); "
                  "none: every account's events"},
    )  # fmt: skip


class EndpointUpdateSchema(EndpointRequestSchema):
    """What PATCH may change (the account of an endpoint never changes)."""

    class Meta:
        exclude = ("customer_id",)


class EndpointSchema(ma.Schema):
    id = fields.String()
    customer_id = fields.String(allow_none=True)
    url = fields.String()
    description = fields.String()
    events = fields.Function(lambda endpoint: json.loads(endpoint.events))
    enabled = fields.Boolean()
    previous_secret_expires_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "until then deliveries are signed with the previous secret too"},
    )
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class EndpointWithSecretSchema(EndpointSchema):
    secret = fields.String(
        metadata={"description": "the signing secret, shown on creation and rotation only"}
    )


class AttemptSchema(ma.Schema):
    attempted_at = UTCDateTime()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class DeliverySchema(ma.Schema):
    id = fields.Integer()
    event_id = fields.String()
    event_type = fields.String(attribute="event.type")
    status = fields.String(metadata={"description": ", ".join(DELIVERY_STATUSES)})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = UTCDateTime()
    give_up_at = UTCDateTime(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


class DeliveryDetailSchema(DeliverySchema):
    payload = fields.Function(lambda delivery: json.loads(delivery.event.body))
    attempt_log = fields.List(fields.Nested(AttemptSchema))


class DeliveryListArgs(ma.Schema):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
