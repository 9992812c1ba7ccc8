"""Request and response shapes of the registry API (marshmallow; unknown fields are refused)."""

import marshmallow as ma
from marshmallow import fields, validate

from billing.devices.models import VEHICLE_ID_PATTERN
from billing.mqtt import telemetry_topic
from billing.validators import (
    Text,
    UTCDateTime,
    validate_country,
    validate_currency,
    validate_siren,
    validate_timezone,
    validate_vat_number,
)
from billing.web import PageArgs


class AddressSchema(ma.Schema):
    line1 = Text(required=True, validate=validate.Length(1, 200))
    line2 = Text(load_default="", allow_blank=True, validate=validate.Length(0, 200))
    postal_code = Text(required=True, validate=validate.Length(1, 20))
    city = Text(required=True, validate=validate.Length(1, 100))
    country = fields.String(
        required=True,
        validate=validate_country,
        metadata={"pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2, e.g. FR"},
    )


class CustomerSchema(ma.Schema):
    id = fields.String(dump_only=True)
    name = Text(required=True, validate=validate.Length(1, 200))
    email = fields.Email(required=True, validate=validate.Length(1, 254))
    siren = fields.String(allow_none=True, validate=validate_siren)
    vat_number = fields.String(allow_none=True, validate=validate_vat_number)
    address = fields.Nested(AddressSchema, required=True)
    language = fields.String(load_default="fr", validate=validate.OneOf(["fr", "en"]))
    timezone = fields.String(load_default="Europe/Paris", validate=validate_timezone)
    currency = fields.String(load_default="EUR", validate=validate_currency)
    status = fields.String(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)
    archived_at = UTCDateTime(dump_only=True, allow_none=True)

    @ma.pre_dump
    def nest_address(self, customer, **_kwargs):
        return {
            **{c.key: getattr(customer, c.key) for c in customer.__table__.columns},
            "address": {
                "line1": customer.address_line1,
                "line2": customer.address_line2,
                "postal_code": customer.postal_code,
                "city": customer.city,
                "country": customer.country,
            },
        }


class CustomerUpdateSchema(CustomerSchema):
    """Loaded with partial=True: only the fields sent change, nested address included."""


class FleetSchema(ma.Schema):
    id = fields.String(dump_only=True)
    customer_id = fields.String(required=True)
    name = Text(required=True, validate=validate.Length(1, 200))
    status = fields.String(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)
    retired_at = UTCDateTime(dump_only=True, allow_none=True)


class FleetUpdateSchema(ma.Schema):
    name = Text(required=True, validate=validate.Length(1, 200))


VEHICLE_ID_ERROR = "letters, digits, '_' and '-' only, 1 to 64 characters"


class MembershipSchema(ma.Schema):
    fleet_id = fields.String()
    started_at = UTCDateTime()
    ended_at = UTCDateTime(allow_none=True)


class InvoicedMonthSchema(ma.Schema):
    customer_id = fields.String()
    period = fields.String(metadata={"description": "YYYY-MM"})
    invoice_number = fields.String()


class VehicleSchema(ma.Schema):
    id = fields.String(
        required=True, validate=validate.Regexp(VEHICLE_ID_PATTERN, error=VEHICLE_ID_ERROR)
    )
    fleet_id = fields.String(
        required=True, metadata={"description": "the fleet holding the vehicle now"}
    )
    effective_at = UTCDateTime(
        load_only=True,
        metadata={
            "description": "in the fleet since (default: now); up to max_backdate_days in the "
            "past, never in the future"
        },
    )
    memberships = fields.List(
        fields.Nested(MembershipSchema),
        dump_only=True,
        metadata={"description": "fleet history, oldest first; a future start is scheduled"},
    )
    model = Text(required=True, validate=validate.Length(1, 64))
    serial = Text(required=True, validate=validate.Length(1, 64))
    commissioned_on = fields.Date(allow_none=True)
    notes = Text(
        load_default="", multiline=True, allow_blank=True, validate=validate.Length(0, 2000)
    )
    status = fields.String(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)
    retired_at = UTCDateTime(dump_only=True, allow_none=True)


class VehicleChangeSchema(VehicleSchema):
    """A vehicle as registered or changed, with the invoiced months whose usage changes
    customer: the difference is billed as adjustment lines on their next invoices."""

    adjusted_invoices = fields.List(
        fields.Nested(InvoicedMonthSchema),
        dump_only=True,
        metadata={
            "description": "issued invoices whose month's usage this change re-attributes; "
            "the difference goes on the customers' next invoices as adjustment lines"
        },
    )

    @ma.pre_dump
    def flatten(self, change, **_kwargs):
        vehicle = change.vehicle
        return {
            **{c.key: getattr(vehicle, c.key) for c in vehicle.__table__.columns},
            "memberships": vehicle.memberships,
            "adjusted_invoices": change.invoiced_months,
        }


class VehicleUpdateSchema(ma.Schema):
    fleet_id = fields.String()
    effective_at = UTCDateTime(
        metadata={
            "description": "when a fleet change takes effect (default: now): in the past "
            "(up to max_backdate_days) it applies at once; in the future it is scheduled"
        }
    )
    model = Text(validate=validate.Length(1, 64))
    notes = Text(multiline=True, allow_blank=True, validate=validate.Length(0, 2000))


PLAN_CODE = r"^[a-z0-9-]{1,40}$"
PLAN_CODE_ERROR = "lower-case letters, digits and '-', 1 to 40 characters"


class PlanAssignmentSchema(ma.Schema):
    id = fields.String(dump_only=True)
    vehicle_id = fields.String(dump_only=True)
    plan_code = fields.String(
        required=True, validate=validate.Regexp(PLAN_CODE, error=PLAN_CODE_ERROR)
    )
    plan_version = fields.Integer(dump_only=True, allow_none=True)
    effective_at = UTCDateTime(required=True)
    ended_at = UTCDateTime(dump_only=True, allow_none=True)
    created_at = UTCDateTime(dump_only=True)


class PlanEndSchema(ma.Schema):
    ended_at = UTCDateTime(required=True)


class ListCustomersArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(["active", "archived"]))


class ListFleetsArgs(PageArgs):
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf(["active", "retired"]))


class ListVehiclesArgs(PageArgs):
    fleet_id = fields.String()
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf(["active", "retired"]))


class IssuedCredentialSchema(ma.Schema):
    """A broker login as issued: the only time its password is ever shown."""

    kind = fields.String(metadata={"description": "vehicle or gateway"})
    username = fields.String()
    password = fields.String(metadata={"description": "shown once; it is stored only hashed"})
    created_at = UTCDateTime()
    mqtt_topic = fields.String(
        metadata={
            "description": "where to publish telemetry; a gateway replaces {vehicle_id} "
            "with each vehicle of its fleet"
        }
    )

    @ma.pre_dump
    def from_issued(self, issued, **_kwargs):
        credential, password = issued["credential"], issued["password"]
        vehicle_id = credential.vehicle_id or "{vehicle_id}"
        return {
            "kind": credential.kind,
            "username": credential.username,
            "password": password,
            "created_at": credential.created_at,
            "mqtt_topic": telemetry_topic(vehicle_id),
        }
