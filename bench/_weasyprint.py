"""The renderer the invoices had before Typst, kept for bench/invoicing.py to compare
against in the same run: HTML and CSS under bench/weasyprint/ laid out by WeasyPrint, and
the Factur-X PDF/A-3b made by the `facturx` package. WeasyPrint is a development
dependency now; the product renders with billing/invoicing/pdf.py."""

from __future__ import annotations

import warnings
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import facturx
import jinja2

with warnings.catch_warnings():
    # Without the system library libharfbuzz-subset0 WeasyPrint falls back to fontTools to
    # subset fonts (slower, same output) and warns at import.
    warnings.filterwarnings("ignore", "HarfBuzz-Subset", DeprecationWarning)
    import weasyprint

from billing.invoicing import documents
from billing.invoicing.documents import InvoiceDocument, ensure_valid
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.pdf import group_lines
from billing.words import words

TEMPLATES_DIR = Path(__file__).parent / "weasyprint"


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
        return " ".join(siren[i : i + 3] for i in range(0, len(siren), 3))

    def iban(self, iban: str) -> str:
        compact = "".join(iban.split())
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def render_pdf(doc: InvoiceDocument) -> bytes:
    return _write_pdf(doc, variant=None)


def render_facturx_pdf(doc: InvoiceDocument) -> bytes:
    xml = invoice_xml(doc)
    pdf = _write_pdf(doc, variant="pdf/a-3b")
    french = words("fr").document
    title = f"{french[doc.kind]} {doc.number}"
    metadata = {
        "author": doc.seller.name,
        "keywords": "Factur-X, " + french[doc.kind],
        "title": f"{doc.seller.name} : {title}",
        "subject": f"{title} du {documents.format_date(doc.issue_date, 'fr')}, "
        f"émise par {doc.seller.name}",
    }
    return facturx.generate_from_binary(
        pdf, xml, flavor="factur-x", level="en16931", check_xsd=True, pdf_metadata=metadata,
        lang={"fr": "fr-FR", "en": "en-GB"}[doc.language],
    )  # fmt: skip


def _write_pdf(doc: InvoiceDocument, variant: str | None) -> bytes:
    ensure_valid(doc)
    html = _environment().get_template("invoice.html").render(
        doc=doc, t=words(doc.language).document, f=Formatter(doc.language, doc.currency),
        groups=group_lines(doc), mentions=documents.legal_mentions(doc, doc.language),
        lang={"fr": "fr-FR", "en": "en-GB"}[doc.language],
    )  # fmt: skip
    page = weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR))
    return page.write_pdf(stylesheets=[_stylesheet()], pdf_variant=variant)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip


@cache
def _stylesheet() -> weasyprint.CSS:
    return weasyprint.CSS(filename=str(TEMPLATES_DIR / "invoice.css"))
