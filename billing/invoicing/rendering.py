"""From a stored invoice or credit note to the `InvoiceDocument` its files are made of.

Everything comes from what the invoice froze when it was issued (its lines, totals, the
buyer's and the seller's identity, its terms), never from the customer or the settings
of today, so that its documents are the same at every rendering.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

from billing.invoicing.documents import (
    Address,
    DocumentLine,
    InvoiceDocument,
    Party,
    TierDetail,
    VatBreakdown,
    format_quantity,
    format_unit_price,
    usage_line,
)
from billing.invoicing.lines import SUMMARY_METRICS, UNIT_CODES
from billing.invoicing.models import Invoice, InvoiceLine
from billing.money import round_money
from billing.settings import SellerSettings
from billing.vat import REVERSE_CHARGE, REVERSE_CHARGE_REASON, REVERSE_CHARGE_REASON_CODE, Totals
from billing.words import words


def payment_terms(language: str, days: int) -> str:
    """The payment terms an invoice states (BT-20)."""
    return words(language).terms["invoice"].format(days=days)


def credit_note_terms(language: str) -> str:
    return words(language).terms["credit_note"]


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    """The document of an issued invoice or credit note (a draft has no number yet)."""
    if invoice.number is None or invoice.issue_date is None or invoice.due_date is None:
        raise ValueError(f"invoice {invoice.id} is a draft: it has no document yet")
    language = invoice.buyer_language or "fr"
    seller = json.loads(invoice.seller or "{}")
    terms = words(language).terms
    credited = invoice.credited_invoice
    return InvoiceDocument(
        kind=invoice.kind,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        seller=_seller(seller),
        buyer=_buyer(invoice),
        language=language,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        lines=tuple(_line(line, invoice.currency, language) for line in invoice.lines),
        vat_breakdown=_vat_breakdown(invoice),
        total_net=round_money(invoice.total_net, invoice.currency),
        total_vat=round_money(invoice.total_vat, invoice.currency),
        total_gross=round_money(invoice.total_gross, invoice.currency),
        amount_due=round_money(invoice.total_gross, invoice.currency),
        payment_terms=invoice.payment_terms or "",
        late_penalty_rate=seller.get("late_penalty_rate", ""),
        early_payment_discount=terms["discount"],
        preceding_invoice_number=credited.number if credited else None,
        preceding_invoice_date=credited.issue_date if credited else None,
        buyer_reference=invoice.customer_id,
        notes=(terms["reason"].format(reason=invoice.reason),) if invoice.reason else (),
        usage_summary=_usage_summary(invoice.usage_summary, language),
    )


def seller_json(seller: SellerSettings) -> str:
    """The seller's identity and terms as an issued document keeps them (see `_seller`)."""
    return json.dumps(dataclasses.asdict(seller), ensure_ascii=False, sort_keys=True)


def _seller(seller: dict[str, str]) -> Party:
    return Party(
        name=seller.get("name", ""),
        address=Address(
            seller.get("line1", ""),
            seller.get("postal_code", ""),
            seller.get("city", ""),
            seller.get("country", "FR"),
        ),
        siren=seller.get("siren") or None,
        vat_number=seller.get("vat_number") or None,
        email=seller.get("email") or None,
        iban=seller.get("iban") or None,
        bic=seller.get("bic") or None,
        legal_form=seller.get("legal_form") or None,
        rcs=seller.get("rcs") or None,
    )


def _buyer(invoice: Invoice) -> Party:
    return Party(
        name=invoice.buyer_name or "",
        address=Address(
            invoice.buyer_address_line1 or "",
            invoice.buyer_postal_code or "",
            invoice.buyer_city or "",
            invoice.buyer_country or "",
            line2=invoice.buyer_address_line2 or "",
        ),
        siren=invoice.buyer_siren or None,
        vat_number=invoice.buyer_vat_number or None,
        email=invoice.buyer_email or None,
    )


def _line(line: InvoiceLine, currency: str, language: str) -> DocumentLine:
    """Per unit when the charge has one price and quantity × price gives the amount;
    as a lump sum with the measured usage otherwise (see `documents.usage_line`)."""
    amount = round_money(line.amount, currency)
    billable, price = _plain(line.billable_quantity), line.unit_price
    per_unit = (
        price is not None and price >= 0 and round_money(billable * price, currency) == amount
    )
    return usage_line(
        line_id=str(line.position),
        description=line.description,
        quantity=billable if per_unit else _plain(line.quantity),
        unit_code=line.unit_code,
        amount=amount,
        currency=currency,
        vat_category=line.vat_category,
        vat_rate=_plain(line.vat_rate),
        unit_price=_plain(price) if per_unit and price is not None else None,
        vehicle_id=line.vehicle_id,
        metric=line.metric,
        period_start=line.period_start,
        period_end=line.period_end,
        tiers=_tiers(line, currency, language),
        note=line.note,
    )


def _tiers(line: InvoiceLine, currency: str, language: str) -> tuple[TierDetail, ...]:
    terms = words(language).terms
    details = []
    for tier in json.loads(line.tiers):
        start, unit_price = Decimal(tier["from"]), Decimal(tier["unit_amount"])
        flat = Decimal(tier["flat_amount"])
        start_text = format_quantity(start, None, language)
        if tier["up_to"] is None:
            span = terms["above"].format(start=format_quantity(start, line.unit_code, language))
        else:
            end = format_quantity(Decimal(tier["up_to"]), line.unit_code, language)
            span = terms["range"].format(start=start_text, end=end)
        if unit_price or flat:
            label = terms["tier"].format(
                range=span, price=format_unit_price(unit_price, currency, language)
            )
            if flat:
                label += terms["flat"].format(amount=format_unit_price(flat, currency, language))
        else:
            label = terms["free"].format(range=span)
        details.append(
            TierDetail(
                label=label,
                quantity=Decimal(tier["quantity"]),
                unit_amount=unit_price,
                flat_amount=flat,
                # Shown to the cent; the line's amount is the exact sum, rounded once.
                amount=round_money(Decimal(tier["amount"]), currency),
            )
        )
    return tuple(details)


def vat_breakdown_json(totals: Totals) -> str:
    """The VAT breakdown as an invoice stores it, exact decimal strings (see `_vat_breakdown`)."""
    return json.dumps(
        [
            {"category": group.category, "rate": str(group.rate), "base": str(group.base),
             "amount": str(group.vat)}
            for group in totals.subtotals
        ]
    )  # fmt: skip


def _vat_breakdown(invoice: Invoice) -> tuple[VatBreakdown, ...]:
    groups = []
    for group in json.loads(invoice.vat_breakdown):
        reverse_charge = group["category"] == REVERSE_CHARGE
        groups.append(
            VatBreakdown(
                category=group["category"],
                rate=_plain(Decimal(group["rate"])),
                base=round_money(Decimal(group["base"]), invoice.currency),
                amount=round_money(Decimal(group["amount"]), invoice.currency),
                exemption_reason=REVERSE_CHARGE_REASON if reverse_charge else None,
                exemption_reason_code=REVERSE_CHARGE_REASON_CODE if reverse_charge else None,
            )
        )
    return tuple(groups)


def _usage_summary(summary: str, language: str) -> tuple[tuple[str, str, str], ...]:
    """(vehicle, label, quantity) chips of the PDF; metrics with no usage are left out."""
    labels, chips = words(language).metrics, []
    for vehicle_id, metrics in json.loads(summary).items():
        for metric in SUMMARY_METRICS:
            quantity = Decimal(metrics.get(metric, "0"))
            if quantity:
                text = format_quantity(quantity, UNIT_CODES[metric], language)
                chips.append((vehicle_id, labels[metric], text))
    return tuple(chips)


def _plain(value: Decimal) -> Decimal:
    """A stored decimal without the trailing zeros of its column's scale (PostgreSQL's
    NUMERIC(20, 6) gives 412.300000): the documents print what was measured."""
    return value.normalize() if value else Decimal(0)
