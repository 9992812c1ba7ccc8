"""Request and response shapes of the alerts API. Thresholds and values are decimal
strings."""

import marshmallow as ma
from marshmallow import fields, validate

from billing.alerts.models import MEASURES, SCOPES
from billing.alerts.services import plain
from billing.validators import BoundedDecimal, Text, UTCDateTime

DECIMAL = {"type": "string", "format": "decimal", "example": "500"}


class PlainDecimal(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else plain(value)


class AlertRuleRequestSchema(ma.Schema):
    name = Text(load_default="", allow_blank=True, validate=validate.Length(0, 200))
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    fleet_id = fields.String(
        validate=validate.Length(1, 32), metadata={"description": "scope fleet"}
    )
    vehicle_id = fields.String(
        validate=validate.Length(1, 64), metadata={"description": "scope vehicle"}
    )
    measure = fields.String(
        required=True,
        validate=validate.OneOf(MEASURES),
        metadata={"description": "amount (net, to date), cap_percent, or a usage metric"},
    )
    threshold = BoundedDecimal(required=True, metadata={"description": "more than 0"})
    enabled = fields.Boolean(load_default=True)


class AlertRuleUpdateSchema(ma.Schema):
    name = Text(allow_blank=True, validate=validate.Length(0, 200))
    threshold = BoundedDecimal()
    enabled = fields.Boolean()


class AlertRuleSchema(ma.Schema):
    id = fields.String()
    customer_id = fields.String()
    name = fields.String()
    scope = fields.String()
    fleet_id = fields.String(allow_none=True)
    vehicle_id = fields.String(allow_none=True)
    measure = fields.String()
    threshold = PlainDecimal(metadata=DECIMAL)
    enabled = fields.Boolean()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class AlertRuleListSchema(ma.Schema):
    items = fields.List(fields.Nested(AlertRuleSchema))


class AlertFiringSchema(ma.Schema):
    id = fields.Integer()
    rule_id = fields.String()
    period = fields.String(metadata={"description": "the billing period it fired for"})
    value = PlainDecimal(metadata={**DECIMAL, "description": "the measure when it fired"})
    threshold = PlainDecimal(metadata=DECIMAL)
    fired_at = UTCDateTime()
