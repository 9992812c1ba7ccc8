"""Every kind of document the invoicing issues is a valid Factur-X EN 16931 e-invoice, and
its files never change once it is issued."""

import datetime as dt
from decimal import Decimal

import facturx
import pytest
from sqlalchemy import select

from billing.auth import SYSTEM
from billing.devices import services as devices
from billing.invoicing import files, rendering, services
from billing.invoicing.credit_notes import CreditedLine
from billing.invoicing.document_files import render_missing_documents
from billing.invoicing.documents import format_money
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.models import Invoice
from billing.invoicing.pdf import render_facturx_pdf, render_pdf
from billing.invoicing.validation import schematron_failures, xsd_errors
from billing.payments import collection
from billing.periods import Period
from billing.pricing import assignments
from tests.integration.invoicing import (
    CLOSED,
    DUE,
    NOVEMBER,
    assign,
    invoice_of,
    november_rides,
    ride,
)
from tests.pdf import pdf_text

DECEMBER = Period(2026, 12)
DECEMBER_CLOSED = dt.datetime(2027, 1, 1, 6, 0, tzinfo=dt.UTC)
DECEMBER_DUE = dt.datetime(2027, 1, 5, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def every_kind(session, settings, fleet) -> dict[str, Invoice]:
    """An invoice of each kind: tiers, adjustments (both signs), reverse charge, English,
    and credit notes (a void, a partial by lines, a partial by amount)."""
    devices.update_customer(
        session, SYSTEM, fleet.other_customer_id,
        {"name": "Stadtwerke Freiburg GmbH", "siren": None, "vat_number": "DE811234567",
         "language": "en",
         "address": {"line1": "Heinrich-von-Stephan-Straße 2", "postal_code": "79100",
                     "city": "Freiburg im Breisgau", "country": "DE"}},
    )  # fmt: skip
    assign(session, "VEH-B", "flotte-pro", "2026-11-01T00:00:00+01:00")
    november_rides(session, fleet)
    ride(session, "VEH-B", "2026-11-12", 180, 12, 8, (2_000_000, 90_000))
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    collection.finalize_due_invoices(session, DUE, settings=settings)
    november = invoice_of(session, fleet.customer_id)
    german = invoice_of(session, fleet.other_customer_id)
    # After November is issued: 20 km more on Liberté, and the Urbain contract of VEH-A
    # recorded as ended on the 20th (fewer days of its fee).
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")
    assignments.end_plan_assignment(
        session, SYSTEM, fleet.urbain, dt.datetime(2026, 11, 19, 23, 0, tzinfo=dt.UTC)
    )
    services.generate_invoices(session, DECEMBER, DECEMBER_CLOSED, settings=settings)
    collection.finalize_due_invoices(session, DECEMBER_DUE, settings=settings)
    december = invoice_of(session, fleet.customer_id, DECEMBER)
    later = DECEMBER_DUE + dt.timedelta(days=1)
    by_lines = collection.issue_credit_note(
        session, november.id, "Kilomètres contestés", later, settings=settings,
        lines=[CreditedLine(2, Decimal("4.50")), CreditedLine(6)],
    )  # fmt: skip
    by_amount = collection.issue_credit_note(
        session, german.id, "Goodwill", later, settings=settings, amount=Decimal("12.00")
    )
    void = collection.void_invoice(session, december.id, "Erreur de plan", later,
                                   settings=settings)  # fmt: skip
    return {
        "tiers": november, "reverse_charge_english": german, "adjustments": december,
        "credit_note_by_lines": by_lines, "credit_note_by_amount": by_amount,
        "void_credit_note": void,
    }  # fmt: skip


def test_every_issued_document_passes_the_xsd_and_the_en16931_schematron(session, every_kind):
    issued = session.scalars(select(Invoice).where(Invoice.number.is_not(None))).all()
    assert len(issued) == 7  # two invoices a month for two months, three credit notes
    december = every_kind["adjustments"]
    assert {line.period for line in december.lines} == {"2026-11", "2026-12"}
    assert any(line.amount < 0 for line in december.lines)
    assert any(line.tiers != "[]" for line in every_kind["tiers"].lines)
    assert every_kind["reverse_charge_english"].buyer_language == "en"
    for invoice in issued:
        xml = invoice_xml(rendering.invoice_document(invoice))
        assert xsd_errors(xml) == [], invoice.number
        assert schematron_failures(xml) == [], invoice.number


def test_reverse_charge_and_credit_notes_say_what_the_law_requires(every_kind):
    german = rendering.invoice_document(every_kind["reverse_charge_english"])
    assert german.is_reverse_charge and german.total_vat == 0
    assert german.vat_breakdown[0].exemption_reason == "Autoliquidation"
    note = rendering.invoice_document(every_kind["void_credit_note"])
    assert note.type_code == "381"
    assert note.preceding_invoice_number == every_kind["adjustments"].number
    assert note.preceding_invoice_date == dt.date(2027, 1, 5)
    assert note.notes == ("Motif de l'avoir : Erreur de plan",)


def test_the_factur_x_pdf_of_every_kind_embeds_its_xml(every_kind):
    for invoice in every_kind.values():
        document = rendering.invoice_document(invoice)

        filename, embedded = facturx.get_xml_from_pdf(render_facturx_pdf(document))

        assert filename == "factur-x.xml"
        assert embedded == invoice_xml(document)


def test_an_issued_invoice_keeps_its_document_after_the_customer_and_seller_change(
    session, settings, every_kind, tmp_path
):
    # What must not change is the document: the PDF kept at the first download, and what a
    # new rendering says. Two renderings need not be the same bytes (a renderer's font
    # subsetting may differ between runs), so a new one is compared by its text.
    from billing.settings import load_settings

    invoice = every_kind["tiers"]
    document = rendering.invoice_document(invoice)
    render_missing_documents(session, DUE)
    kept = files.document_file(session, SYSTEM, invoice.id, files.PDF).content
    devices.update_customer(
        session, SYSTEM, invoice.customer_id,
        {"name": "Nouveau nom SAS", "address": {"city": "Lille", "postal_code": "59000"}},
    )  # fmt: skip
    moved = load_settings(data_dir=tmp_path, seller={"name": "Autre vendeur SAS"})
    services.generate_invoices(session, NOVEMBER, DUE, settings=moved)

    session.expire_all()
    assert files.document_file(session, SYSTEM, invoice.id, files.PDF).content == kept
    again = rendering.invoice_document(session.get(Invoice, invoice.id))
    assert again == document
    text = pdf_text(render_pdf(again))
    assert text == pdf_text(kept)
    assert document.buyer.name in text and "Nouveau nom" not in text
    due = format_money(document.amount_due, document.currency, document.language)
    assert " ".join(due.split()) in text
