"""Request and response shapes of the telemetry and rejected-messages API."""

import base64

import marshmallow as ma
from marshmallow import fields, validate

from billing.metering.telemetry import REASONS
from billing.validators import UTCDateTime
from billing.web import PageArgs


class RejectionSchema(ma.Schema):
    id = fields.Integer(allow_none=True)
    reason = fields.String()
    message = fields.String()
    path = fields.String()


class TelemetryResultSchema(ma.Schema):
    stored = fields.Integer(metadata={"description": "new readings stored"})
    duplicates = fields.Integer(metadata={"description": "readings already stored, skipped"})
    rejected = fields.List(fields.Nested(RejectionSchema))


class RejectedMessageSchema(ma.Schema):
    id = fields.Integer()
    received_at = UTCDateTime()
    source = fields.String()
    topic = fields.String()
    vehicle_id = fields.String(allow_none=True)
    reason = fields.String()
    message = fields.String()
    path = fields.String()
    status = fields.String()
    replayed_at = UTCDateTime(allow_none=True)
    replay_count = fields.Integer()
    payload = fields.Method("payload_text", metadata={"description": "the raw payload as text"})
    payload_base64 = fields.Method("payload_bytes", metadata={"description": "exact bytes"})

    def payload_text(self, rejected) -> str:
        return rejected.payload.decode("utf-8", errors="replace")

    def payload_bytes(self, rejected) -> str:
        return base64.b64encode(rejected.payload).decode()


class RejectedMessageListArgs(PageArgs):
    vehicle_id = fields.String()
    reason = fields.String(validate=validate.OneOf(REASONS))
    status = fields.String(validate=validate.OneOf(["pending", "replayed"]))
    received_from = UTCDateTime()
    received_to = UTCDateTime()


class ReplayResultSchema(ma.Schema):
    rejected_message = fields.Nested(RejectedMessageSchema)
    result = fields.Nested(TelemetryResultSchema)
