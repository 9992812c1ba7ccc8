"""Request and response shapes of the usage and anomalies API."""

from decimal import Decimal

import marshmallow as ma
from marshmallow import fields, validate

from billing.metering.queries import GRANULARITIES
from billing.pricing.schemas import DecimalString, PeriodField
from billing.validators import UTCDateTime
from billing.web import PageArgs


class UsageSchema(ma.Schema):
    distance_km = DecimalString()
    energy_kwh = DecimalString()
    trips = fields.Integer()
    trip_minutes = DecimalString()
    active_days = fields.Integer()


class VehicleUsageArgs(ma.Schema):
    from_ = UTCDateTime(
        data_key="from",
        metadata={"description": "default: start of the month in the customer's time zone"},
    )
    to = UTCDateTime(
        metadata={"description": "exclusive; default: now, the 15-minute bucket in progress in"}
    )
    granularity = fields.String(load_default="day", validate=validate.OneOf(GRANULARITIES))

    @ma.validates_schema
    def check_range(self, data, **_kwargs):
        if "from_" in data and "to" in data and data["from_"] >= data["to"]:
            raise ma.ValidationError("must be after `from`", "to")


class UsagePointSchema(ma.Schema):
    start = fields.String(metadata={"description": "local start of the hour, day or month"})
    usage = fields.Nested(UsageSchema)


class VehicleUsageSchema(ma.Schema):
    vehicle_id = fields.String()
    timezone = fields.String()
    granularity = fields.String()
    start = UTCDateTime()
    end = UTCDateTime(metadata={"description": "exclusive; by default the bucket in progress"})
    points = fields.List(fields.Nested(UsagePointSchema))
    freshness = fields.Nested(lambda: FreshnessSchema())


class PeriodArgs(ma.Schema):
    period = PeriodField(
        metadata={"description": "YYYY-MM; default: the current month in the customer's zone"},
    )


class SegmentSchema(ma.Schema):
    plan_code = fields.String(allow_none=True)
    plan_version = fields.Integer(allow_none=True)
    start = UTCDateTime()
    end = UTCDateTime()
    vehicle_days = DecimalString()
    usage = fields.Nested(UsageSchema)


class VehicleSegmentsSchema(ma.Schema):
    vehicle_id = fields.String()
    usage = fields.Nested(UsageSchema)
    segments = fields.List(fields.Nested(SegmentSchema))


class FreshnessSchema(ma.Schema):
    latest_reading_at = UTCDateTime(allow_none=True)
    pending_since = UTCDateTime(
        allow_none=True, metadata={"description": "earliest reading not yet in the usage"}
    )


class CustomerUsageSchema(ma.Schema):
    customer_id = fields.String()
    period = fields.String()
    timezone = fields.String()
    start = UTCDateTime()
    end = UTCDateTime()
    vehicles = fields.List(fields.Nested(VehicleSegmentsSchema))
    total = fields.Nested(UsageSchema)
    freshness = fields.Nested(FreshnessSchema)


class AnomalySchema(ma.Schema):
    id = fields.Integer()
    vehicle_id = fields.String()
    kind = fields.String()
    counter = fields.String()
    msg_id = fields.String()
    previous_msg_id = fields.String(allow_none=True)
    ts = UTCDateTime()
    distance_km = fields.Method("km")
    details = fields.String()
    status = fields.String()
    detected_at = UTCDateTime()
    decided_at = UTCDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)

    def km(self, anomaly) -> str:
        return str(Decimal(anomaly.distance_m).scaleb(-3))


class AnomalyListArgs(PageArgs):
    vehicle_id = fields.String()
    kind = fields.String()
    status = fields.String(validate=validate.OneOf(["held", "open", "accepted", "rejected"]))
