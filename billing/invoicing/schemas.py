"""Request and response shapes of the invoices API (marshmallow; unknown fields are refused).

Amounts and quantities leave as decimal strings, amounts to the currency's minor unit
("60.71", whichever database stored them), quantities with their significant decimals.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from billing.invoicing.models import KINDS, STATUSES, Invoice
from billing.money import round_money
from billing.pricing.schemas import NUMBER, PeriodField
from billing.validators import MAX_INT32, BoundedDecimal, Text, UTCDateTime
from billing.web import PageArgs


class InvoiceListArgs(PageArgs):
    customer_id = fields.String()
    period = PeriodField(metadata={"example": "2026-11", "description": "billing period"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(KINDS))


class ExportArgs(ma.Schema):
    period = PeriodField(
        required=True,
        metadata={"example": "2026-12", "description": "documents issued in this month"},
    )


class VoidSchema(ma.Schema):
    reason = Text(required=True, multiline=True, validate=validate.Length(1, 500))


class CreditedLineSchema(ma.Schema):
    position = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_INT32))
    amount = BoundedDecimal(metadata={"description": "default: all that is left"})


class CreditNoteRequestSchema(ma.Schema):
    """Lines of the invoice to credit, or an amount before VAT spread over its VAT rates."""

    reason = Text(required=True, multiline=True, validate=validate.Length(1, 500))
    lines = fields.List(fields.Nested(CreditedLineSchema), load_default=list)
    amount = BoundedDecimal()


class AmountString(fields.Field):
    """An amount rounded to the currency of the document it belongs to."""

    def _serialize(self, value: Decimal | None, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return format(round_money(value, self.context_currency(obj)), "f")

    @staticmethod
    def context_currency(obj: Any) -> str:
        return obj["currency"] if isinstance(obj, dict) else obj.currency


class QuantityString(fields.Field):
    """A quantity or price with its significant decimals only (no 412.300000)."""

    def _serialize(self, value: Decimal | None, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format(value.normalize() if value else Decimal(0), "f")


class RateString(fields.Field):
    """A VAT rate in percent with two decimals, "20.00", as statements and plans write it."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else vat_rate_text(value)


def vat_rate_text(rate: Any) -> str:
    return format(Decimal(rate).quantize(Decimal("0.01")), "f")


class InvoiceTierSchema(ma.Schema):
    """How much of the billable quantity one tier priced; exact, the line is rounded once.
    The same fields as the tiers of statements and previews."""

    tier = fields.Integer()
    # Stored as "from" in the line's JSON; named as statements name it.
    from_quantity = fields.String(attribute="from", metadata=NUMBER)
    up_to = fields.String(allow_none=True, metadata=NUMBER)
    quantity = fields.String(metadata=NUMBER)
    unit_amount = fields.String(metadata=NUMBER)
    flat_amount = fields.String(metadata=NUMBER)
    amount = fields.String(metadata=NUMBER)


class InvoiceLineSchema(ma.Schema):
    position = fields.Integer()
    period = fields.String(metadata={"description": "an earlier one for adjustment lines"})
    period_start = fields.Date()
    period_end = fields.Date()
    vehicle_id = fields.String(allow_none=True)
    plan_code = fields.String(allow_none=True)
    plan_version = fields.Integer(allow_none=True)
    metric = fields.String(allow_none=True)
    description = fields.String()
    note = fields.String()
    quantity = QuantityString(metadata={**NUMBER, "description": "measured"})
    billable_quantity = QuantityString(metadata={**NUMBER, "description": "after included"})
    unit_code = fields.String(metadata={"description": "UN/ECE recommendation 20"})
    unit_price = QuantityString(allow_none=True, metadata=NUMBER)
    amount = AmountString(metadata=NUMBER)
    vat_category = fields.String()
    vat_rate = RateString(metadata={**NUMBER, "description": "percent, e.g. 20.00"})
    tiers = fields.List(fields.Nested(InvoiceTierSchema))
    credited_position = fields.Integer(allow_none=True)


class PartySchema(ma.Schema):
    name = fields.String()
    email = fields.String(allow_none=True)
    address = fields.Dict()
    siren = fields.String(allow_none=True)
    vat_number = fields.String(allow_none=True)
    language = fields.String()


class CreditedInvoiceSchema(ma.Schema):
    id = fields.String()
    number = fields.String()
    issue_date = fields.Date()


class InvoiceSummarySchema(ma.Schema):
    id = fields.String()
    customer_id = fields.String()
    period = fields.String()
    kind = fields.String(metadata={"description": "invoice (380) or credit_note (381)"})
    status = fields.String(metadata={"description": "draft → finalized → paid | void"})
    number = fields.String(allow_none=True, metadata={"description": "given at finalization"})
    currency = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    issue_date = fields.Date(allow_none=True)
    due_date = fields.Date(allow_none=True)
    total_net = AmountString(metadata=NUMBER)
    total_vat = AmountString(metadata=NUMBER)
    total_gross = AmountString(metadata=NUMBER)
    credited_invoice = fields.Nested(CreditedInvoiceSchema, allow_none=True)
    reason = fields.String(allow_none=True)
    refreshed_at = UTCDateTime()
    finalized_at = UTCDateTime(allow_none=True)
    voided_at = UTCDateTime(allow_none=True)
    payment_status = fields.String(
        allow_none=True,
        metadata={"description": "collection through Stripe: open, failed, paid or void"},
    )
    paid_at = UTCDateTime(allow_none=True)
    stripe_invoice_id = fields.String(allow_none=True)

    @ma.pre_dump
    def flatten(self, invoice: Invoice, **_kwargs: Any) -> dict[str, Any]:
        values = {column.key: getattr(invoice, column.key) for column in Invoice.__table__.columns}
        credited = invoice.credited_invoice
        values["credited_invoice"] = credited and {
            "id": credited.id, "number": credited.number, "issue_date": credited.issue_date,
        }  # fmt: skip
        return values


class InvoiceSchema(InvoiceSummarySchema):
    vat_breakdown = fields.List(fields.Dict(), metadata={"description": "per VAT rate"})
    payment_terms = fields.String(allow_none=True)
    buyer = fields.Nested(PartySchema, allow_none=True, metadata={"description": "as issued"})
    lines = fields.List(fields.Nested(InvoiceLineSchema))

    @ma.pre_dump
    def flatten(self, invoice: Invoice, **kwargs: Any) -> dict[str, Any]:
        return {**super().flatten(invoice, **kwargs), **_details(invoice)}


def _details(invoice: Invoice) -> dict[str, Any]:
    """What a single invoice shows besides its summary: VAT breakdown, buyer, lines."""
    currency = invoice.currency
    return {
        "vat_breakdown": [
            {"category": group["category"], "rate": vat_rate_text(group["rate"]),
             "base": format(round_money(Decimal(group["base"]), currency), "f"),
             "amount": format(round_money(Decimal(group["amount"]), currency), "f")}
            for group in json.loads(invoice.vat_breakdown)
        ],
        "buyer": invoice.buyer_name and {
            "name": invoice.buyer_name, "email": invoice.buyer_email,
            "address": {"line1": invoice.buyer_address_line1,
                        "line2": invoice.buyer_address_line2,
                        "postal_code": invoice.buyer_postal_code, "city": invoice.buyer_city,
                        "country": invoice.buyer_country},
            "siren": invoice.buyer_siren, "vat_number": invoice.buyer_vat_number,
            "language": invoice.buyer_language,
        },
        "lines": [
            {**{column.key: getattr(line, column.key) for column in line.__table__.columns},
             "tiers": json.loads(line.tiers), "currency": currency}
            for line in invoice.lines
        ],
    }  # fmt: skip
