"""The PDF of an invoice or credit note, and its Factur-X (PDF/A-3b + CII XML) version.

HTML and CSS under `templates/` are laid out by WeasyPrint. The PDF speaks the buyer's
language (French unless `doc.language == "en"`); the embedded XML is always French.

Rendering only reads the document: the wording of the legal mentions comes from
`documents.legal_mentions`, the same sentences the XML notes carry. The VAT summary names
the categories at 0 %: "Autoliquidation" for reverse charge (its mention is among the legal
ones), "0 % (taux zéro)" for zero-rated lines, which carry no exemption reason (BR-Z-10).
"""

import warnings
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import facturx
import jinja2

with warnings.catch_warnings():
    # Without the system library libharfbuzz-subset0 WeasyPrint falls back to fontTools to
    # subset fonts (twice as slow, output not byte-stable) and warns at import; `make install`
    # installs it (config/system-packages.txt).
    warnings.filterwarnings("ignore", "HarfBuzz-Subset", DeprecationWarning)
    import weasyprint

from billing.invoicing import documents
from billing.invoicing.documents import DocumentLine, InvoiceDocument, ensure_valid
from billing.invoicing.facturx_xml import invoice_xml
from billing.money import ZERO

TEMPLATES_DIR = Path(__file__).parent / "templates"

LABELS = {
    "fr": {
        "invoice": "Facture", "credit_note": "Avoir", "number": "N°",
        "issue_date": "Date d'émission", "due_date": "Échéance", "period": "Période",
        "customer_ref": "Réf. client", "corrects": "Facture d'origine", "dated": "du",
        "bill_to": "Facturé à", "siren": "SIREN", "vat_number": "N° TVA",
        "overview": "Votre flotte sur la période", "vehicle": "Véhicule",
        "account": "Compte", "usage": "Usage", "description": "Désignation",
        "quantity": "Quantité", "unit_price": "P.U. HT", "vat": "TVA",
        "amount": "Montant HT", "subtotal": "Sous-total", "tiered": "selon barème",
        "lump_sum": "forfait", "adjustment": "régularisation",
        "vat_summary": "Récapitulatif TVA", "base": "Base HT",
        "rate": "Taux", "vat_amount": "Montant TVA", "total_net": "Total HT",
        "total_vat": "Total TVA", "total_gross": "Total TTC", "prepaid": "Déjà réglé",
        "amount_due": "Net à payer", "credit_amount": "Montant de l'avoir",
        "due_by": "à régler avant le", "credits": "en faveur de", "payment": "Règlement",
        "transfer_to": "Par virement SEPA sur le compte", "payment_reference":
        "Référence à rappeler", "notes": "Mentions", "page": "Page",
        "reverse_charge": "Autoliquidation", "zero_rated": "taux zéro",
    },
    "en": {
        "invoice": "Invoice", "credit_note": "Credit note", "number": "No.",
        "issue_date": "Issue date", "due_date": "Due date", "period": "Billing period",
        "customer_ref": "Customer ref.", "corrects": "Credits invoice", "dated": "of",
        "bill_to": "Bill to", "siren": "SIREN", "vat_number": "VAT no.",
        "overview": "Your fleet this period", "vehicle": "Vehicle",
        "account": "Account", "usage": "Usage", "description": "Description",
        "quantity": "Quantity", "unit_price": "Unit price", "vat": "VAT",
        "amount": "Amount", "subtotal": "Subtotal", "tiered": "tiered",
        "lump_sum": "flat", "adjustment": "adjustment",
        "vat_summary": "VAT summary", "base": "Taxable amount",
        "rate": "Rate", "vat_amount": "VAT amount", "total_net": "Total excl. VAT",
        "total_vat": "Total VAT", "total_gross": "Total incl. VAT", "prepaid": "Already paid",
        "amount_due": "Amount due", "credit_amount": "Credit amount",
        "due_by": "due by", "credits": "in favour of", "payment": "Payment",
        "transfer_to": "By SEPA credit transfer to", "payment_reference":
        "Payment reference", "notes": "Notes", "page": "Page",
        "reverse_charge": "Reverse charge", "zero_rated": "zero rated",
    },
}  # fmt: skip


@dataclass(frozen=True)
class VehicleGroup:
    """The lines of one vehicle (or of the account when `vehicle_id` is None)."""

    vehicle_id: str | None
    lines: tuple[DocumentLine, ...]
    usage: tuple[tuple[str, str], ...]  # (metric label, quantity text)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


class Formatter:
    """The `documents.format_*` functions bound to one language and currency, for templates."""

    def __init__(self, language: str, currency: str):
        self.language = language
        self.currency = currency

    def money(self, amount: Decimal) -> str:
        return documents.format_money(amount, self.currency, self.language)

    def price(self, price: Decimal) -> str:
        return documents.format_unit_price(price, self.currency, self.language)

    def quantity(self, quantity: Decimal, unit_code: str | None) -> str:
        return documents.format_quantity(quantity, unit_code, self.language)

    def percent(self, rate: Decimal) -> str:
        return documents.format_percent(rate, self.language)

    def date(self, day: date) -> str:
        return documents.format_date(day, self.language)

    def period(self, start: date, end: date) -> str:
        return documents.format_period(start, end, self.language)

    def siren(self, siren: str) -> str:
        """'732829320' → '732 829 320', as the SIRENE register prints it."""
        return " ".join(siren[i : i + 3] for i in range(0, len(siren), 3))

    def iban(self, iban: str) -> str:
        compact = "".join(iban.split())
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def render_pdf(doc: InvoiceDocument) -> bytes:
    """The PDF a customer receives, in the buyer's language."""
    return _write_pdf(doc, variant=None)


def render_facturx_pdf(doc: InvoiceDocument) -> bytes:
    """The Factur-X EN 16931 e-invoice: the PDF as PDF/A-3b with the CII XML embedded.

    The XML is checked against the XSD by `facturx` while embedding; a document that fails
    raises rather than producing an invalid e-invoice.
    """
    xml = invoice_xml(doc)
    pdf = _write_pdf(doc, variant="pdf/a-3b")
    title = f"{LABELS['fr'][doc.kind]} {doc.number}"
    metadata = {
        "author": doc.seller.name,
        "keywords": "Factur-X, " + LABELS["fr"][doc.kind],
        "title": f"{doc.seller.name} : {title}",
        "subject": f"{title} du {documents.format_date(doc.issue_date, 'fr')}, "
        f"émise par {doc.seller.name}",
    }
    return facturx.generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata=metadata,
        lang=_language_tag(doc.language),
    )


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


def render_html(doc: InvoiceDocument) -> str:
    """The HTML WeasyPrint lays out; public so that it can be previewed in a browser."""
    ensure_valid(doc)
    template = _environment().get_template("invoice.html")
    return template.render(
        doc=doc,
        t=LABELS[doc.language],
        f=Formatter(doc.language, doc.currency),
        groups=group_lines(doc),
        mentions=documents.legal_mentions(doc, doc.language),
        lang=_language_tag(doc.language),
    )


def _write_pdf(doc: InvoiceDocument, variant: str | None) -> bytes:
    html = weasyprint.HTML(string=render_html(doc), base_url=str(TEMPLATES_DIR))
    return html.write_pdf(stylesheets=[_stylesheet()], pdf_variant=variant)


def _language_tag(language: str) -> str:
    return {"fr": "fr-FR", "en": "en-GB"}[language]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _stylesheet() -> weasyprint.CSS:
    return weasyprint.CSS(filename=str(TEMPLATES_DIR / "invoice.css"))
