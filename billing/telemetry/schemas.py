"""Request and response shapes of the telemetry and rejected-messages API."""

import base64

import marshmallow as ma
from marshmallow import fields, validate

from billing.telemetry.contract import REASONS
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
    """A rejected message; listings leave the payload out unless `include=payload`."""

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
    received_count = fields.Integer(
        metadata={"description": "times these bytes were rejected for this reason"}
    )
    last_received_at = UTCDateTime(allow_none=True)
    payload_size = fields.Integer(metadata={"description": "bytes of the payload received"})
    payload_sha256 = fields.String(metadata={"description": "SHA-256 of the payload received"})
    payload_truncated = fields.Boolean(
        metadata={"description": "only the first bytes of a payload too large were kept"}
    )
    payload_encoding = fields.Method(
        "encoding", metadata={"description": "utf-8, or base64 for bytes that are not UTF-8"}
    )
    payload = fields.Method(
        "payload_value", metadata={"description": "the payload kept, in payload_encoding"}
    )

    def encoding(self, rejected) -> str:
        return "utf-8" if _utf8(rejected.payload) is not None else "base64"

    def payload_value(self, rejected) -> str:
        text = _utf8(rejected.payload)
        return text if text is not None else base64.b64encode(rejected.payload).decode()


PAYLOAD_FIELDS = ("payload", "payload_encoding")


def _utf8(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


class RejectedMessageListArgs(PageArgs):
    include = fields.String(
        validate=validate.OneOf(["payload"]),
        metadata={"description": "`payload` to list the payloads too"},
    )
    vehicle_id = fields.String()
    reason = fields.String(validate=validate.OneOf(REASONS))
    status = fields.String(validate=validate.OneOf(["pending", "replayed"]))
    received_from = UTCDateTime()
    received_to = UTCDateTime()


class ReplayResultSchema(ma.Schema):
    rejected_message = fields.Nested(RejectedMessageSchema)
    result = fields.Nested(TelemetryResultSchema)
