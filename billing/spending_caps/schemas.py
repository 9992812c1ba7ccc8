"""Request and response shapes of the spending caps API. Amounts are decimal strings."""

import marshmallow as ma
from marshmallow import fields

from billing.pricing.schemas import DecimalString
from billing.validators import BoundedDecimal, UTCDateTime

NUMBER = {"type": "string", "example": "250.00", "description": "a decimal, as a string"}


class SpendingCapRequestSchema(ma.Schema):
    amount = BoundedDecimal(
        required=True,
        allow_none=True,
        metadata={**NUMBER, "description": "net of VAT per period; null: no cap from then"},
    )
    include_flat_fees = fields.Boolean(
        load_default=False,
        metadata={"description": "whether flat fees count towards the cap (default: not)"},
    )
    block_at_cap = fields.Boolean(
        load_default=False,
        metadata={"description": "lock the customer's vehicles once the cap is reached"},
    )


class SpendingCapSchema(ma.Schema):
    customer_id = fields.String()
    effective_from = fields.String(metadata={"description": "the first period, YYYY-MM"})
    amount = DecimalString(attribute="cap_amount", allow_none=True)
    include_flat_fees = fields.Boolean()
    block_at_cap = fields.Boolean()
    updated_at = UTCDateTime()


class SpendingCapListSchema(ma.Schema):
    items = fields.List(fields.Nested(SpendingCapSchema))
