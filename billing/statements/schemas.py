"""Request and response shapes of the statements API.

Amounts and quantities leave as exact decimal strings ("19.00", "1617.000"), never as JSON
numbers.
"""

import marshmallow as ma
from marshmallow import fields, validate

from billing.components.schemas import CustomerCostSchema
from billing.metering.schemas import FreshnessSchema, UsageSchema
from billing.pricing.fees import StatementLine
from billing.pricing.schemas import DecimalString, PeriodField, PreviewLineSchema, TierLineSchema
from billing.validators import UTCDateTime
from billing.vat import REVERSE_CHARGE

FORMATS = ("json", "csv")
RATED_FIELDS = (
    "metric", "model", "scope", "quantity", "billable_quantity", "unit_amount", "amount",
    "minimum_applied", "maximum_applied", "tiers",
)  # fmt: skip
# Pooled lines also show the pool they are a share of.
POOL_FIELDS = ("pooled_quantity", "pooled_billable_quantity", "pooled_amount")


class StatementArgs(ma.Schema):
    period = PeriodField(
        metadata={
            "example": "2026-11",
            "description": "YYYY-MM; default: the current month in the customer's time zone",
        }
    )
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "csv for a CSV file; default: by the Accept header, else json"},
    )
    cost_of_use = fields.Boolean(
        load_default=False,
        metadata={"description": "JSON: add the wear cost of the vehicles' parts (money keys)"},
    )


class StatementLineSchema(PreviewLineSchema):
    vat_category = fields.String(
        metadata={"description": "UNTDID 5305: S, Z (a plan at 0 %), or AE (reverse)"}
    )
    vat_rate = DecimalString(metadata={"description": "percent"})

    @ma.pre_dump
    def from_line(self, line: StatementLine, **_kwargs) -> dict:
        rated = line.rated
        shown = RATED_FIELDS + POOL_FIELDS if rated.scope == "pooled" else RATED_FIELDS
        return {
            "charge": line.charge_index,
            "name": line.charge_name,
            **{name: getattr(rated, name) for name in shown},
            "vat_category": line.vat_category,
            "vat_rate": line.vat_rate,
        }


class SegmentStatementSchema(ma.Schema):
    plan_code = fields.String(allow_none=True, attribute="segment.plan_code")
    plan_version = fields.Integer(allow_none=True, attribute="segment.plan_version")
    start = UTCDateTime(attribute="segment.start")
    end = UTCDateTime(attribute="segment.end")
    vehicle_days = DecimalString(metadata={"description": "days on the plan, for flat fees"})
    usage = fields.Nested(UsageSchema)
    lines = fields.List(fields.Nested(StatementLineSchema))
    amount = DecimalString()


class VehicleStatementSchema(ma.Schema):
    vehicle_id = fields.String()
    usage = fields.Nested(UsageSchema)
    segments = fields.List(
        fields.Nested(SegmentStatementSchema),
        metadata={"description": "one per plan the vehicle was on; several after a change"},
    )
    amount = DecimalString()


class StatementPoolShareSchema(ma.Schema):
    vehicle_id = fields.String()
    segment_start = UTCDateTime()
    quantity = DecimalString()
    amount = DecimalString()


class StatementPoolSchema(ma.Schema):
    plan_code = fields.String()
    plan_version = fields.Integer()
    charge = fields.Integer(attribute="charge_index")
    name = fields.String(attribute="charge_name", allow_none=True)
    metric = fields.String()
    model = fields.String()
    quantity = DecimalString(metadata={"description": "the pool's total"})
    billable_quantity = DecimalString(metadata={"description": "after included units"})
    unit_amount = DecimalString(allow_none=True)
    amount = DecimalString()
    minimum_applied = fields.Boolean()
    maximum_applied = fields.Boolean()
    tiers = fields.List(fields.Nested(TierLineSchema))
    shares = fields.List(
        fields.Nested(StatementPoolShareSchema),
        metadata={"description": "each vehicle's share, in proportion to its quantity"},
    )


class StatementVatSubtotalSchema(ma.Schema):
    category = fields.String()
    rate = DecimalString(metadata={"description": "percent"})
    base = DecimalString()
    vat = DecimalString()


class StatementTotalsSchema(ma.Schema):
    vat_breakdown = fields.List(fields.Nested(StatementVatSubtotalSchema), attribute="subtotals")
    net = DecimalString(metadata={"description": "total HT"})
    vat = DecimalString(metadata={"description": "total VAT (TVA)"})
    gross = DecimalString(metadata={"description": "total TTC"})


class StatementVatTreatmentSchema(ma.Schema):
    category = fields.String(metadata={"description": "S (French VAT) or AE (reverse charge)"})
    reverse_charge = fields.Function(lambda vat: vat.category == REVERSE_CHARGE)
    mention = fields.String(attribute="exemption", allow_none=True)


class StatementFreshnessSchema(FreshnessSchema):
    metering_pending = fields.Function(
        lambda freshness: freshness.pending_since is not None,
        metadata={"description": "some readings are still waiting to be metered"},
    )


class StatementVehicleProjectionSchema(ma.Schema):
    vehicle_id = fields.String()
    usage = fields.Dict(keys=fields.String(), values=DecimalString(), attribute="quantities")
    vehicle_days = DecimalString()
    amount = DecimalString()


class StatementProjectionSchema(ma.Schema):
    method = fields.String()
    note = fields.String(allow_none=True)
    as_of = UTCDateTime()
    end = UTCDateTime()
    elapsed_days = DecimalString(metadata={"description": "local days of the period elapsed"})
    period_days = fields.Integer()
    usage_extrapolated = fields.Boolean()
    vehicles_not_extrapolated = fields.List(
        fields.String(), metadata={"description": "under one vehicle-day of history"}
    )
    vehicles = fields.List(fields.Nested(StatementVehicleProjectionSchema))
    totals = fields.Nested(StatementTotalsSchema, metadata={"description": "of this month"})
    pending_adjustments = fields.Nested(
        StatementTotalsSchema,
        allow_none=True,
        metadata={"description": "adjustments of invoiced months this month's invoice bills"},
    )
    totals_with_adjustments = fields.Nested(
        StatementTotalsSchema,
        allow_none=True,
        metadata={"description": "the month's projected invoice, adjustments included"},
    )


class StatementInvoicedSchema(ma.Schema):
    invoices = fields.List(
        fields.String(),
        attribute="invoice_numbers",
        metadata={"description": "the month's invoice, and later ones that adjusted it"},
    )
    billed = fields.Nested(
        StatementTotalsSchema, metadata={"description": "every line issued for the month"}
    )
    pending_adjustment = fields.Nested(
        StatementTotalsSchema,
        attribute="pending",
        metadata={
            "description": "what the next invoice bills for the usage measured since "
            "(`totals` are the figures measured now); zero once out of the adjustment window"
        },
    )
    adjustable = fields.Boolean(
        metadata={"description": "false once the month is out of the adjustment window"}
    )


class StatementCapDiscountSchema(ma.Schema):
    vat_category = fields.String()
    vat_rate = DecimalString(metadata={"description": "percent"})
    amount = DecimalString(metadata={"description": "negative: taken off the total"})


class StatementSpendingCapSchema(ma.Schema):
    amount = DecimalString(attribute="cap.amount", metadata={"description": "the cap, HT"})
    include_flat_fees = fields.Boolean(attribute="cap.include_flat_fees")
    capped_amount = DecimalString(
        metadata={"description": "what the charges the cap covers cost before it"}
    )
    discount = DecimalString(metadata={"description": "the cap's discount, 0 or negative"})
    reached = fields.Boolean()
    discounts = fields.List(
        fields.Nested(StatementCapDiscountSchema),
        metadata={"description": "the discount per VAT rate, in the totals"},
    )


class StatementSchema(ma.Schema):
    customer_id = fields.String(attribute="statement.customer_id")
    period = fields.String(attribute="statement.period")
    status = fields.String(metadata={"description": "closed, or in_progress (to date)"})
    timezone = fields.String(attribute="statement.timezone")
    currency = fields.String(attribute="statement.currency")
    start = UTCDateTime(attribute="statement.start")
    end = UTCDateTime(attribute="statement.end")
    as_of = UTCDateTime(metadata={"description": "usage counted up to here"})
    vat_treatment = fields.Nested(StatementVatTreatmentSchema, attribute="statement.vat")
    vehicles = fields.List(fields.Nested(VehicleStatementSchema))
    pools = fields.List(fields.Nested(StatementPoolSchema))
    spending_cap = fields.Nested(
        StatementSpendingCapSchema,
        attribute="statement.cap",
        allow_none=True,
        metadata={"description": "the customer's cap for the period, null without one"},
    )
    totals = fields.Nested(
        StatementTotalsSchema,
        attribute="statement.totals",
        allow_none=True,
        metadata={"description": "measured figures; null for a key that sees no money"},
    )
    freshness = fields.Nested(StatementFreshnessSchema, attribute="statement.freshness")
    projection = fields.Nested(
        StatementProjectionSchema,
        allow_none=True,
        metadata={"description": "in progress only: the month projected to its end"},
    )
    invoiced = fields.Nested(
        StatementInvoicedSchema,
        allow_none=True,
        metadata={"description": "a closed month already invoiced: billed and pending"},
    )
    shows_money = fields.Boolean(
        metadata={"description": "false for operator keys: usage only, amounts left out"}
    )
    cost_of_use = fields.Nested(
        CustomerCostSchema,
        metadata={
            "description": "with ?cost_of_use=true (keys that see money): the parts' "
            "wear cost per vehicle and fleet beside what is billed"
        },
    )

    @ma.post_dump
    def without_absent_sections(self, data, **_kwargs):
        if data.get("cost_of_use") is None:
            data.pop("cost_of_use", None)
        return data


class UnbilledUsageArgs(ma.Schema):
    period = PeriodField(
        metadata={
            "example": "2026-11",
            "description": "YYYY-MM in the default time zone; default: the current month",
        }
    )


class UnattributedStretchSchema(ma.Schema):
    vehicle_id = fields.String()
    reason = fields.String(
        metadata={
            "description": "no_customer: the vehicle was in no fleet then (registered later "
            "than it rode); no_plan: its customer had it on no plan"
        }
    )
    customer_id = fields.String(allow_none=True)
    start = UTCDateTime()
    end = UTCDateTime()
    usage = fields.Nested(UsageSchema)


class UnbilledUsageSchema(ma.Schema):
    period = fields.String()
    timezone = fields.String()
    start = UTCDateTime()
    end = UTCDateTime()
    vehicles = fields.Integer(attribute="vehicle_count")
    stretches = fields.List(fields.Nested(UnattributedStretchSchema))
