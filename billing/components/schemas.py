"""Request and response shapes of the components API (docs/components.md).

A BOM body has the fields of config/bom/*.yaml; marshmallow takes only the envelope, and
`parse_bom` checks the content, so that every error comes back at once with its field path
and the API and `billing bom load` accept exactly the same BOMs. Quantities and amounts
leave as decimal strings.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from billing.components.bom import CODE_PATTERN, bom_to_dict
from billing.components.maintenance import MAX_HORIZON_DAYS
from billing.components.models import EVENT_KINDS, REMOVAL_REASONS
from billing.pricing.schemas import DecimalString, PeriodField
from billing.validators import MAX_INT32, BoundedDecimal, Text, UTCDateTime
from billing.web import PageArgs

ID: dict[str, Any] = {"validate": validate.Length(1, 64)}


class BomBodySchema(ma.Schema):
    """A BOM definition, as in config/bom/*.yaml; checked by `parse_bom`."""

    class Meta:
        unknown = ma.INCLUDE

    model = fields.Raw(metadata={"type": "string", "example": "s1"})
    name = fields.Raw(metadata={"type": "string"})
    currency = fields.Raw(metadata={"type": "string", "example": "EUR"})
    components = fields.Raw(metadata={"type": "array", "items": {"type": "object"}})


class BomSchema(ma.Schema):
    model = fields.String()
    version = fields.Integer()
    name = fields.String()
    description = fields.String()
    currency = fields.String()
    components = fields.List(fields.Dict())
    created_at = UTCDateTime()
    locked_at = UTCDateTime(
        allow_none=True, metadata={"description": "when a part was first made from it"}
    )

    @ma.pre_dump
    def from_version(self, version, **_kwargs):
        return {
            "name": "",
            "description": "",
            **bom_to_dict(version.to_bom()),
            "version": version.version,
            "created_at": version.created_at,
            "locked_at": version.locked_at,
        }


class BomQueryArgs(ma.Schema):
    version = fields.Integer(
        validate=validate.Range(min=1, max=MAX_INT32),
        metadata={"description": "default: the latest"},
    )


class DeriveRequestSchema(ma.Schema):
    km_per_month = BoundedDecimal(
        required=True, validate=validate.Range(min=0, min_inclusive=False)
    )
    margin = BoundedDecimal(
        load_default=None,
        validate=validate.Range(min=0, max=1, max_inclusive=False),
        metadata={"description": "share of the price (default 0.25)"},
    )
    kwh_per_km = BoundedDecimal(
        validate=validate.Range(min=0, min_inclusive=False), metadata={"description": "0.015"}
    )
    overhead_rate = BoundedDecimal(validate=validate.Range(min=0))
    overhead_per_month = BoundedDecimal(validate=validate.Range(min=0))
    vat_rate = BoundedDecimal(validate=validate.Range(min=0, max=100, max_inclusive=False))
    code = fields.String(validate=validate.Regexp(r"^[a-z0-9-]{1,40}$"))
    name = Text(validate=validate.Length(1, 200))
    version = fields.Integer(validate=validate.Range(min=1, max=MAX_INT32))


class ContributionSchema(ma.Schema):
    code = fields.String()
    name = fields.String()
    limiting_unit = fields.String(metadata={"description": "the unit that ends its life first"})
    basis = fields.String(metadata={"description": "per_km, per_kwh or per_month"})
    cost_per_unit = DecimalString(metadata={"description": "unit_cost ÷ lifetime, per basis"})
    months_of_life = DecimalString(metadata={"description": "at the expected use"})
    cost_per_month = DecimalString(metadata={"description": "at the expected use"})


class DerivedPlanSchema(ma.Schema):
    plan = fields.Dict(metadata={"description": "a plan definition, as config/plans/*.yaml"})
    breakdown = fields.List(fields.Nested(ContributionSchema), attribute="contributions")
    cost_per_km = DecimalString()
    cost_per_kwh = DecimalString()
    cost_per_month = DecimalString()
    expected_cost_per_month = DecimalString()
    expected_price_per_month = DecimalString()


# --- parts --------------------------------------------------------------------------------


class FitRequestSchema(ma.Schema):
    component_code = fields.String(validate=validate.Regexp(f"^{CODE_PATTERN.pattern}$"))
    serial = Text(validate=validate.Length(1, 64))
    part_id = fields.String(
        metadata={"description": "a spare part to fit instead of a new one"}, **ID
    )
    installed_at = UTCDateTime(metadata={"description": "default now"})

    @ma.validates_schema
    def one_of(self, data, **_kwargs):
        if ("part_id" in data) == ("component_code" in data):
            raise ma.ValidationError("give component_code (a new part) or part_id (a spare)")
        if "part_id" in data and "serial" in data:
            raise ma.ValidationError("a spare part keeps its serial", "serial")


class SwapRequestSchema(ma.Schema):
    reason = fields.String(required=True, validate=validate.OneOf(REMOVAL_REASONS))
    at = UTCDateTime(metadata={"description": "default now"})
    serial = Text(validate=validate.Length(1, 64), metadata={"description": "of the new part"})
    replacement_id = fields.String(metadata={"description": "a spare part to fit"}, **ID)

    @ma.validates_schema
    def not_both(self, data, **_kwargs):
        if "serial" in data and "replacement_id" in data:
            raise ma.ValidationError("a spare part keeps its serial", "serial")


class RemovalRequestSchema(ma.Schema):
    reason = fields.String(required=True, validate=validate.OneOf(REMOVAL_REASONS))
    at = UTCDateTime(metadata={"description": "default now"})


class EventRequestSchema(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(EVENT_KINDS))
    at = UTCDateTime(metadata={"description": "default now"})
    cost = BoundedDecimal(
        validate=validate.Range(min=0),
        metadata={"description": "default: the BOM's repair or refurbishment cost"},
    )
    notes = Text(multiline=True, allow_blank=True, validate=validate.Length(0, 2000))


class EventSchema(ma.Schema):
    id = fields.Integer()
    part_id = fields.String()
    vehicle_id = fields.String(allow_none=True)
    kind = fields.String()
    at = UTCDateTime()
    cost = DecimalString(allow_none=True)
    notes = fields.String()


class FittingSchema(ma.Schema):
    vehicle_id = fields.String()
    installed_at = UTCDateTime()
    installed_on = fields.Date()
    removed_at = UTCDateTime(allow_none=True)
    removed_on = fields.Date(allow_none=True)
    removal_reason = fields.String(allow_none=True)
    vehicle_km_at_install = DecimalString()
    vehicle_kwh_at_install = DecimalString()


class PartSchema(ma.Schema):
    id = fields.String()
    serial = fields.String()
    model = fields.String()
    bom_version = fields.Integer()
    component_code = fields.String()
    category = fields.String()
    status = fields.String(metadata={"description": "fitted, spare or scrapped"})
    service_since = UTCDateTime(metadata={"description": "last inspection, or first fitting"})


class ListPartsArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(["fitted", "spare", "scrapped"]))
    model = fields.String(validate=validate.Length(1, 64))


class UnitWearSchema(ma.Schema):
    unit = fields.String(metadata={"description": "km, kwh, cycles or months"})
    lifetime = DecimalString()
    used = DecimalString()
    remaining = DecimalString()
    fraction_used = DecimalString()
    projected_end = fields.Date(
        allow_none=True, metadata={"description": "null: too little history, or unused"}
    )


class ServiceDueSchema(ma.Schema):
    km_remaining = DecimalString(allow_none=True)
    days_remaining = fields.Integer(allow_none=True)
    due_on = fields.Date(allow_none=True)
    urgent = fields.Boolean()
    overdue = fields.Boolean()


class WearSchema(ma.Schema):
    units = fields.List(fields.Nested(UnitWearSchema))
    limiting_unit = fields.String(metadata={"description": "the unit that runs out first"})
    worn_out = fields.Boolean()
    projected_end_of_life = fields.Date(allow_none=True)
    history = fields.Method("_history", metadata={"description": "sufficient or insufficient"})
    service = fields.Nested(ServiceDueSchema, allow_none=True)

    def _history(self, wear):
        return "sufficient" if wear.history_sufficient else "insufficient"


class ComponentWearSchema(ma.Schema):
    part_id = fields.String(attribute="part.part_id")
    serial = fields.String()
    vehicle_id = fields.String(attribute="part.vehicle_id")
    fleet_id = fields.String(attribute="part.fleet_id")
    component_code = fields.String(attribute="part.component_code")
    name = fields.String(attribute="component.name")
    category = fields.String()
    bom_version = fields.Integer(attribute="part.bom_version")
    installed_at = UTCDateTime()
    as_of = fields.Date(attribute="part.today")
    wear = fields.Nested(WearSchema)


class PartDetailSchema(PartSchema):
    fittings = fields.List(fields.Nested(FittingSchema))
    events = fields.List(fields.Nested(EventSchema))
    wear = fields.Nested(ComponentWearSchema, allow_none=True)


class DueArgs(PageArgs):
    horizon_days = fields.Integer(
        load_default=30, validate=validate.Range(min=0, max=MAX_HORIZON_DAYS)
    )
    fleet_id = fields.String(**ID)
    category = fields.String(validate=validate.Regexp(f"^{CODE_PATTERN.pattern}$"))


class DueItemSchema(ma.Schema):
    due_on = fields.Date()
    reason = fields.String(metadata={"description": "end_of_life or service"})
    component = fields.Nested(ComponentWearSchema, attribute="part_wear")


class LearnedLifetimeSchema(ma.Schema):
    unit = fields.String()
    bom_lifetime = DecimalString(allow_none=True)
    count = fields.Integer()
    median = DecimalString()
    p10 = DecimalString()
    p90 = DecimalString()


class ComponentLifetimesSchema(ma.Schema):
    code = fields.String(attribute="component.code")
    name = fields.String(attribute="component.name")
    lifetimes = fields.List(fields.Nested(LearnedLifetimeSchema))


class ComponentCostSchema(ma.Schema):
    part_id = fields.String()
    serial = fields.String()
    component_code = fields.String()
    name = fields.String()
    km = DecimalString()
    kwh = DecimalString()
    days = fields.Integer(metadata={"description": "days fitted in the month"})
    life_share = DecimalString(metadata={"description": "share of its life the month took"})
    wear_cost = DecimalString(metadata={"description": "unit_cost × life_share, rounded"})


class VehicleCostSchema(ma.Schema):
    vehicle_id = fields.String()
    fleet_id = fields.String(allow_none=True)
    currency = fields.String()
    components = fields.List(fields.Nested(ComponentCostSchema))
    wear_cost = DecimalString(allow_none=True, metadata={"description": "null: no parts"})
    billed = DecimalString(allow_none=True, metadata={"description": "excluding VAT"})
    margin = DecimalString(allow_none=True)
    margin_rate = DecimalString(allow_none=True, metadata={"description": "margin ÷ billed"})


class CostTotalsSchema(ma.Schema):
    wear_cost = DecimalString()
    billed = DecimalString()
    margin = DecimalString(allow_none=True)
    margin_rate = DecimalString(allow_none=True)


class FleetCostSchema(ma.Schema):
    fleet_id = fields.String(allow_none=True)
    totals = fields.Nested(CostTotalsSchema)


class CustomerCostSchema(ma.Schema):
    customer_id = fields.String()
    period = fields.String()
    status = fields.String(metadata={"description": "closed or in_progress"})
    currency = fields.String()
    vehicles = fields.List(fields.Nested(VehicleCostSchema))
    fleets = fields.List(fields.Nested(FleetCostSchema))
    totals = fields.Nested(CostTotalsSchema)


class CostArgs(ma.Schema):
    period = PeriodField(metadata={"example": "2026-11", "description": "default: this month"})
    format = fields.String(validate=validate.OneOf(["json", "csv"]))


class ExportCostArgs(ma.Schema):
    period = PeriodField(required=True, metadata={"example": "2026-11"})
