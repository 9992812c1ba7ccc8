"""The unlock check's answer."""

import marshmallow as ma
from marshmallow import fields

from billing.access.models import BLOCK_CAUSES, VEHICLE_RETIRED
from billing.validators import UTCDateTime


class ReasonSchema(ma.Schema):
    code = fields.String(metadata={"description": ", ".join((VEHICLE_RETIRED, *BLOCK_CAUSES))})
    message = fields.String()
    since = UTCDateTime(allow_none=True)


class AccessSchema(ma.Schema):
    vehicle_id = fields.String()
    customer_id = fields.String()
    allowed = fields.Boolean()
    reasons = fields.List(
        fields.Nested(ReasonSchema), metadata={"description": "empty when allowed"}
    )
    checked_at = UTCDateTime()
