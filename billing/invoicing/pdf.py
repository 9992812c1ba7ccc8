"""The PDF of an invoice or credit note, and its Factur-X (PDF/A-3b + CII XML) version.

`templates/invoice.typ` is laid out by Typst (the `typst` package, its compiler built in)
with DejaVu Sans from Debian's fonts-dejavu-core, embedded. Every text is written here, in
the buyer's language (French unless `doc.language == "en"`) with the labels of its wording
catalogue (`billing.words`), and handed to the template as JSON; the template only places
it. The embedded XML is always French.

Rendering only reads the document: the wording of the legal mentions comes from
`documents.legal_mentions`, the same sentences the XML notes carry. The VAT summary names
the categories at 0 %: "Autoliquidation" for reverse charge (its mention is among the legal
ones), "0 % (taux zéro)" for zero-rated lines, which carry no exemption reason (BR-Z-10).

The same document always gives the same bytes: the PDF's dates are the issue date's, and
the Factur-X file embeds the XML with that date too.
"""

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal

import typst

from billing.invoicing import documents, xmp
from billing.invoicing.documents import DocumentLine, InvoiceDocument, ensure_valid
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.validation import xsd_errors
from billing.money import ZERO
from billing.vat import REVERSE_CHARGE, ZERO_RATED
from billing.words import words

TEMPLATE = Path(__file__).parent / "templates" / "invoice.typ"
# Debian's fonts-dejavu-core (config/system-packages.txt); nothing else is looked up, so
# that every machine lays out with the same fonts.
FONTS_DIR = Path("/usr/share/fonts/truetype/dejavu")
FACTURX_FILENAME = "factur-x.xml"


class InvalidFacturX(ValueError):
    def __init__(self, number: str, errors: list[str]):
        super().__init__(f"the Factur-X XML of {number} breaks the XSD: " + "; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class VehicleGroup:
    """The lines of one vehicle (or of the account when `vehicle_id` is None)."""

    vehicle_id: str | None
    lines: tuple[DocumentLine, ...]
    usage: tuple[tuple[str, str], ...]  # (metric label, quantity text)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def render_pdf(doc: InvoiceDocument) -> bytes:
    """The PDF a customer receives, in the buyer's language."""
    return _compile(doc, standard=None)


def render_facturx_pdf(doc: InvoiceDocument) -> bytes:
    """The Factur-X EN 16931 e-invoice: the PDF as PDF/A-3b with the CII XML embedded.

    The XML is checked against the XSD before it is embedded; a document that fails raises
    rather than producing an invalid e-invoice.
    """
    xml = invoice_xml(doc)
    errors = xsd_errors(xml)
    if errors:
        raise InvalidFacturX(doc.number, errors)
    pdf = _compile(doc, standard="a-3b", xml=xml)
    return xmp.with_facturx_metadata(pdf, FACTURX_FILENAME)


def group_lines(doc: InvoiceDocument) -> tuple[VehicleGroup, ...]:
    """Lines grouped by vehicle in order of first appearance; account-level lines last."""
    vehicles = list(dict.fromkeys(line.vehicle_id for line in doc.lines if line.vehicle_id))
    groups = [
        VehicleGroup(
            vehicle,
            tuple(line for line in doc.lines if line.vehicle_id == vehicle),
            tuple((label, text) for vid, label, text in doc.usage_summary if vid == vehicle),
        )
        for vehicle in vehicles
    ]
    account_lines = tuple(line for line in doc.lines if not line.vehicle_id)
    if account_lines:
        groups.append(VehicleGroup(None, account_lines, ()))
    return tuple(groups)


def document_view(doc: InvoiceDocument) -> dict:
    """Every text of the PDF, written and formatted, as the template places it."""
    ensure_valid(doc)
    own, french = words(doc.language), words("fr")
    t, language, currency = own.document, doc.language, doc.currency

    def money(amount: Decimal) -> str:
        return documents.format_money(amount, currency, language)

    seller, buyer, title = doc.seller, doc.buyer, t[doc.kind]
    groups = group_lines(doc)
    fr_title = f"{french.document[doc.kind]} {doc.number}"
    ids = f"{t['siren']} {_siren(seller.siren)} · {t['vat_number']} {seller.vat_number}"
    return {
        "lang": language,
        "region": own.region,
        "credit_note": doc.is_credit_note,
        # Document information, in French like the Factur-X metadata always was.
        "title": f"{seller.name} : {fr_title}",
        "author": seller.name,
        "subject": f"{fr_title} du {documents.format_date(doc.issue_date, 'fr')}, "
        f"émise par {seller.name}",
        "keywords": ["Factur-X", french.document[doc.kind]],
        "heading": title,
        "number_label": f"{t['number']} {doc.number}",
        "footer": {
            "identity": " · ".join(
                part for part in (seller.name, seller.legal_form, seller.rcs, ids) if part
            ),
            "folio": f"{title} {doc.number} · {t['page']}",
        },
        "seller": {
            "name": seller.name,
            "lines": _address_lines(seller.address, show_country=seller.address.country != "FR"),
            "email": seller.email,
            "ids": ids,
        },
        "facts": _facts(doc, t),
        "buyer": {
            "label": t["bill_to"],
            "name": buyer.name,
            "lines": _buyer_lines(doc),
            "ids": [
                text
                for text in (
                    buyer.siren and f"{t['siren']} {_siren(buyer.siren)}",
                    buyer.vat_number and f"{t['vat_number']} {buyer.vat_number}",
                )
                if text
            ],
        },
        "banner": {
            "label": t["credit_amount"] if doc.is_credit_note else t["amount_due"],
            "amount": money(doc.amount_due),
            "detail": f"{t['credits']} {buyer.name}"
            if doc.is_credit_note
            else f"{t['due_by']} {documents.format_date(doc.due_date, language)}",
        },
        "overview": _overview(groups, t, money) if len(groups) > 1 else None,
        "lines": {
            "headers": [t["description"], t["quantity"], t["unit_price"], t["vat"], t["amount"]],
            "groups": [_group(doc, group, len(groups) > 1, t, money) for group in groups],
        },
        "vat": {
            "caption": t["vat_summary"],
            "headers": [t["rate"], t["base"], t["vat_amount"]],
            "rows": [
                [_vat_label(group, t, language), money(group.base), money(group.amount)]
                for group in doc.vat_breakdown
            ],
        },
        "totals": _totals(doc, t, money),
        "payment": {
            "title": t["payment"],
            "terms": doc.payment_terms,
            "transfer": _transfer(doc, t),
        },
        "mentions": {
            "title": t["notes"],
            "items": [
                {"text": text, "strong": code == "TXD"}
                for code, text in documents.legal_mentions(doc, language)
            ]
            + [{"text": text, "strong": False} for text in doc.notes],
        },
    }


def _facts(doc: InvoiceDocument, t: Mapping[str, str]) -> list[list[str]]:
    language = doc.language
    facts = [[t["issue_date"], documents.format_date(doc.issue_date, language)]]
    if not doc.is_credit_note:
        facts.append([t["due_date"], documents.format_date(doc.due_date, language)])
    facts.append([t["period"], documents.format_period(doc.period_start, doc.period_end, language)])
    if doc.buyer_reference:
        facts.append([t["customer_ref"], doc.buyer_reference])
    if doc.preceding_invoice_number:
        cited = doc.preceding_invoice_number
        if doc.preceding_invoice_date:
            cited += f" {t['dated']} {documents.format_date(doc.preceding_invoice_date, language)}"
        facts.append([t["corrects"], cited])
    return facts


def _address_lines(address: documents.Address, show_country: bool) -> list[str]:
    city = f"{address.postal_code} {address.city}"
    lines = [address.line1, *([address.line2] if address.line2 else [])]
    return [*lines, f"{city}, {address.country}" if show_country else city]


def _buyer_lines(doc: InvoiceDocument) -> list[str]:
    address = doc.buyer.address
    lines = [address.line1, *([address.line2] if address.line2 else [])]
    lines.append(f"{address.postal_code} {address.city}")
    if address.country != doc.seller.address.country:
        lines.append(address.country)
    return lines


# An amount written in the document's currency and language.
Money = Callable[[Decimal], str]


def _overview(groups: Sequence[VehicleGroup], t: Mapping[str, str], money: Money) -> dict:
    return {
        "title": t["overview"],
        "headers": [t["vehicle"], t["usage"], t["amount"]],
        "rows": [
            {
                "vehicle": group.vehicle_id or t["account"],
                "chips": [list(chip) for chip in group.usage],
                "amount": money(group.subtotal),
            }
            for group in groups
        ],
    }


def _group(
    doc: InvoiceDocument, group: VehicleGroup, several: bool, t: Mapping[str, str], money: Money
) -> dict:
    title = f"{t['vehicle']} {group.vehicle_id}" if group.vehicle_id else t["account"]
    return {
        "title": title,
        "chips": [] if several else [list(chip) for chip in group.usage],
        "lines": [_line(doc, line, t, money) for line in group.lines],
        "subtotal": [f"{t['subtotal']} {group.vehicle_id or t['account']}", money(group.subtotal)]
        if several
        else None,
    }


def _line(doc: InvoiceDocument, line: DocumentLine, t: Mapping[str, str], money: Money) -> dict:
    language = doc.language
    subs = []
    if line.period_start and (line.period_start, line.period_end) != (
        doc.period_start,
        doc.period_end,
    ):
        end = line.period_end or line.period_start
        subs.append(documents.format_period(line.period_start, end, language))
    if line.note:
        subs.append(line.note)
    if not line.is_lump_sum:
        price = documents.format_unit_price(line.unit_price, doc.currency, language)
    elif line.tiers:
        price = t["tiered"]
    elif line.period_start and line.period_start < doc.period_start:
        price = t["adjustment"]  # of an earlier period: a difference of amounts, not a price
    else:
        price = t["lump_sum"]
    reverse_charge = line.vat_category == REVERSE_CHARGE
    vat = REVERSE_CHARGE if reverse_charge else documents.format_percent(line.vat_rate, language)
    unit = line.measured_unit_code
    return {
        "description": line.description,
        "subs": subs,
        "quantity": documents.format_quantity(line.measured_quantity, unit, language),
        "price": price,
        "price_muted": line.is_lump_sum,
        "vat": vat,
        "vat_muted": reverse_charge,
        "amount": money(line.amount),
        "tiers": [
            {
                "label": tier.label,
                "quantity": documents.format_quantity(tier.quantity, unit, language),
                "amount": money(tier.amount),
            }
            for tier in line.tiers
        ],
    }


def _vat_label(group: documents.VatBreakdown, t: Mapping[str, str], language: str) -> str:
    if group.category == REVERSE_CHARGE:
        return t["reverse_charge"]
    percent = documents.format_percent(group.rate, language)
    if group.category == ZERO_RATED:
        return f"{percent} ({t['zero_rated']})"
    return percent


def _totals(doc: InvoiceDocument, t: Mapping[str, str], money: Money) -> list[dict]:
    rows = [
        {"label": t["total_net"], "amount": money(doc.total_net), "style": "plain"},
        {"label": t["total_vat"], "amount": money(doc.total_vat), "style": "plain"},
        {"label": t["total_gross"], "amount": money(doc.total_gross), "style": "gross"},
    ]
    if doc.amount_due != doc.total_gross:
        prepaid = money(doc.total_gross - doc.amount_due)
        rows.append({"label": t["prepaid"], "amount": prepaid, "style": "plain"})
    due = t["credit_amount"] if doc.is_credit_note else t["amount_due"]
    rows.append({"label": due, "amount": money(doc.amount_due), "style": "due"})
    return rows


def _transfer(doc: InvoiceDocument, t: Mapping[str, str]) -> dict | None:
    seller = doc.seller
    if doc.is_credit_note or not seller.iban:
        return None
    rows = [["IBAN", _iban(seller.iban)]]
    if seller.bic:
        rows.append(["BIC", seller.bic])
    rows.append([t["payment_reference"], doc.number])
    return {"intro": t["transfer_to"], "rows": rows}


def _siren(siren: str | None) -> str:
    """'732829320' → '732 829 320', as the SIRENE register prints it."""
    siren = siren or ""
    return " ".join(siren[i : i + 3] for i in range(0, len(siren), 3))


def _iban(iban: str) -> str:
    compact = "".join(iban.split())
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# --- Typst -------------------------------------------------------------------------------

_compiler_lock = threading.Lock()


def _compile(
    doc: InvoiceDocument, standard: Literal["a-3b"] | None, xml: bytes | None = None
) -> bytes:
    inputs = {"document": json.dumps(document_view(doc), ensure_ascii=False)}
    if xml is not None:
        inputs["facturx"] = xml.decode("utf-8")
    # The issue date at midnight UTC: the same document gives the same bytes.
    issued = dt.datetime.combine(doc.issue_date, dt.time(), dt.UTC)
    with _compiler_lock:  # one compiler per process, whose world is not shared across threads
        pdf = _compiler().compile(
            format="pdf",
            sys_inputs=inputs,
            pdf_standards=[standard] if standard else [],
            timestamp=issued,
            pdf_tags=False,
        )
    # A list of pages or nothing are what other formats and an output path give.
    if not isinstance(pdf, bytes):
        raise TypeError(f"typst gave {type(pdf).__name__} for a PDF")
    return pdf


@cache
def _compiler() -> typst.Compiler:
    if not (FONTS_DIR / "DejaVuSans.ttf").exists():
        # Typst would fall back to a font of its own: a document that looks different.
        raise RuntimeError(f"DejaVu Sans is missing from {FONTS_DIR}: install fonts-dejavu-core")
    return typst.Compiler(
        TEMPLATE, root=TEMPLATE.parent, font_paths=[FONTS_DIR], ignore_system_fonts=True
    )
