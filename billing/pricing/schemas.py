"""Request and response shapes of the plans API.

A plan body has the fields of the YAML files (docs/plans.md). Marshmallow only takes the
envelope, a JSON object; its content is checked by `parse_plan` alone, so that every error
comes back at once with its field path (`charges.1.tiers.2.up_to`), unknown fields included,
and the API and `billing plans load` accept exactly the same plans. The fields below are
declared for the OpenAPI document.

Amounts and quantities leave as decimal strings ("0.08"), never as JSON numbers.
"""

import dataclasses

import marshmallow as ma
from marshmallow import fields, validate

from billing.periods import Period
from billing.pricing.plans import METRICS, MODELS, SCOPES, Plan, plan_to_dict
from billing.pricing.rating import RatedLine
from billing.validators import MAX_INT32, BoundedDecimal, UTCDateTime
from billing.web import PageArgs

NUMBER = {"type": "string", "example": "0.08", "description": "a decimal, as a string"}


class DecimalString(fields.String):
    """A Decimal written in plain notation, never with an exponent: 1E+2 leaves as "100"."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata = {"format": "decimal", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", **self.metadata}

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(value, "f")


class PeriodField(fields.String):
    """A billing month, "YYYY-MM", from 1970-01 to 9998-12."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata = {"pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$", **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return Period.parse(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as error:
            raise ma.ValidationError(str(error)) from None


class TierSchema(ma.Schema):
    up_to = fields.String(
        allow_none=True,
        metadata={"description": "inclusive upper bound; null (last tier only) = no bound"},
    )
    unit_amount = fields.String(required=True, metadata=NUMBER)
    flat_amount = fields.String(metadata=NUMBER)


class ChargeSchema(ma.Schema):
    metric = fields.String(required=True, validate=validate.OneOf(METRICS))
    model = fields.String(required=True, validate=validate.OneOf(MODELS))
    scope = fields.String(validate=validate.OneOf(SCOPES), metadata={"default": "vehicle"})
    name = fields.String()
    amount = fields.String(metadata={**NUMBER, "description": "flat: per vehicle per period"})
    unit_amount = fields.String(metadata={**NUMBER, "description": "per_unit: price of a unit"})
    tiers = fields.List(fields.Nested(TierSchema), metadata={"description": "graduated, volume"})
    package_size = fields.String(metadata=NUMBER)
    package_amount = fields.String(metadata={**NUMBER, "description": "per started package"})
    included = fields.String(metadata={**NUMBER, "description": "free units per period"})
    minimum = fields.String(metadata={**NUMBER, "description": "floor of the charge's amount"})
    maximum = fields.String(metadata={**NUMBER, "description": "cap of the charge's amount"})


class PlanBodySchema(ma.Schema):
    """A plan definition, as in config/plans/*.yaml; checked by `parse_plan`."""

    class Meta:
        # Unknown fields go through to `parse_plan`, which refuses them at their path.
        unknown = ma.INCLUDE

    code = fields.Raw(metadata={"type": "string", "pattern": "^[a-z0-9-]{1,40}$"})
    name = fields.Raw(metadata={"type": "string"})
    description = fields.Raw(metadata={"type": "string"})
    currency = fields.Raw(metadata={"type": "string", "example": "EUR"})
    vat_rate = fields.Raw(metadata={**NUMBER, "example": "20.00", "description": "percent"})
    charges = fields.Raw(
        metadata={"type": "array", "items": {"$ref": "#/components/schemas/Charge"}}
    )


class PlanSchema(ma.Schema):
    """A version of a plan: its definition and where it stands."""

    code = fields.String()
    version = fields.Integer()
    name = fields.String()
    description = fields.String()
    currency = fields.String()
    vat_rate = fields.String()
    charges = fields.List(fields.Nested(ChargeSchema))
    status = fields.String(metadata={"description": "active, or archived (no new assignment)"})
    created_at = UTCDateTime(metadata={"description": "when this version's definition was set"})
    locked_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "when usage was first rated on it; immutable from then on"},
    )
    archived_at = UTCDateTime(allow_none=True)

    @ma.pre_dump
    def from_version(self, plan_version, **_kwargs):
        plan = plan_version.plan
        return {
            **plan_to_dict(plan_version.to_plan()),
            "version": plan_version.version,
            "status": "archived" if plan.archived_at else "active",
            "created_at": plan_version.created_at,
            "locked_at": plan_version.locked_at,
            "archived_at": plan.archived_at,
        }


class PlanQueryArgs(ma.Schema):
    version = fields.Integer(
        validate=validate.Range(min=1, max=MAX_INT32),
        metadata={"description": "default: the latest"},
    )


class ListPlansArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(["active", "archived"]))


class MigrateSchema(ma.Schema):
    effective_at = UTCDateTime(
        required=True, metadata={"description": "when the vehicles move to the latest version"}
    )


class PreviewRequestSchema(ma.Schema):
    usage = fields.Dict(
        keys=fields.String(
            validate=validate.OneOf(
                [metric for metric in METRICS if metric != "vehicle_days"],
                error="unknown metric {input}; known: {choices} (vehicle_days is `days`)",
            )
        ),
        values=BoundedDecimal(validate=validate.Range(min=0)),
        load_default=dict,
        metadata={"example": {"distance_km": "612.5", "trips": "40"}},
    )
    days = BoundedDecimal(
        validate=validate.Range(min=0),
        metadata={"description": "days on the plan in the period (default: all of them)"},
    )
    days_in_period = fields.Integer(
        validate=validate.Range(min=1, max=31), metadata={"description": "default 30"}
    )
    period = PeriodField(metadata={"example": "2026-11", "description": "sets days_in_period"})
    version = fields.Integer(
        validate=validate.Range(min=1, max=MAX_INT32),
        metadata={"description": "default: the latest"},
    )


class TierLineSchema(ma.Schema):
    tier = fields.Integer(metadata={"description": "1-based"})
    from_quantity = DecimalString()
    up_to = DecimalString(allow_none=True)
    quantity = DecimalString()
    unit_amount = DecimalString()
    flat_amount = DecimalString()
    amount = DecimalString(metadata={"description": "exact, before the line is rounded"})


class PreviewLineSchema(ma.Schema):
    charge = fields.Integer(metadata={"description": "index of the charge in the plan, 0-based"})
    name = fields.String(allow_none=True, metadata={"description": "the charge's name"})
    metric = fields.String()
    model = fields.String()
    scope = fields.String()
    quantity = DecimalString()
    billable_quantity = DecimalString(metadata={"description": "after included units"})
    unit_amount = DecimalString(allow_none=True)
    amount = DecimalString(metadata={"description": "rounded half-up to the currency"})
    minimum_applied = fields.Boolean()
    maximum_applied = fields.Boolean()
    tiers = fields.List(fields.Nested(TierLineSchema))
    pooled_quantity = DecimalString(metadata={"description": "pooled charges: the pool's"})
    pooled_billable_quantity = DecimalString()
    pooled_amount = DecimalString()


class PreviewSchema(ma.Schema):
    code = fields.String()
    version = fields.Integer()
    currency = fields.String()
    days = DecimalString()
    days_in_period = fields.Integer()
    lines = fields.List(fields.Nested(PreviewLineSchema))
    subtotal = DecimalString()
    vat_rate = DecimalString()
    vat = DecimalString()
    total = DecimalString()

    @ma.pre_dump
    def from_preview(self, plan_preview, **_kwargs):
        rated = plan_preview.preview
        plan = plan_preview.plan_version.to_plan()
        return {
            "code": plan_preview.plan_version.plan_code,
            "version": plan_preview.plan_version.version,
            "currency": rated.currency,
            "days": plan_preview.days,
            "days_in_period": plan_preview.days_in_period,
            "lines": [_line(line, plan) for line in rated.lines],
            "subtotal": rated.subtotal,
            "vat_rate": rated.vat_rate,
            "vat": rated.vat,
            "total": rated.total,
        }


def _line(line: RatedLine, plan: Plan) -> dict:
    """A rated line with its charge's name; the pool's figures only on pooled charges."""
    data = {field.name: getattr(line, field.name) for field in dataclasses.fields(line)}
    if line.scope != "pooled":
        for name in ("pooled_quantity", "pooled_billable_quantity", "pooled_amount"):
            del data[name]
    data["charge"] = line.charge_index
    data["name"] = plan.charges[line.charge_index].name
    return data
