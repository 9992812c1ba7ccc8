"""The PDF a customer receives, and its Factur-X PDF/A-3 version."""

import io
from datetime import date
from decimal import Decimal as D

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.pdf import document_view, group_lines, render_facturx_pdf, render_pdf
from billing.invoicing.xmp import FACTURX_NAMESPACE, UnexpectedPdf, with_facturx_metadata
from tests.pdf import pdf_text

NAMESPACES = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
    "fx": FACTURX_NAMESPACE,
}


def test_an_invoice_shows_parties_dates_lines_totals_and_payment_details(samples):
    text = pdf_text(render_pdf(samples["simple"]()))

    for expected in (
        "Facture", "F-2026-000123", "Trottinettes Durables SAS", "SIREN 732 829 320",
        "FR44732829320", "Livraisons Picardes SAS", "FR25812345678", "1er décembre 2026",
        "31 décembre 2026", "1er – 30 novembre 2026", "Véhicule MOB-000123",
        "Distance parcourue — plan Urbain v2", "412,3 km", "0,08 €", "32,98 €",
        "Total HT", "55,78 €", "11,16 €", "66,94 €", "FR76 3000 6000 0112 3456 7890 189",
        "Paiement à 30 jours par virement", "taux directeur BCE + 10 points", "40,00 €",
        "Pas d'escompte pour paiement anticipé", "SAS au capital de 50 000 €",
    ):  # fmt: skip
        assert expected in text, expected


def test_a_tiered_line_shows_its_usage_and_each_tier(samples):
    text = pdf_text(render_pdf(samples["tiered"]()))

    assert "620 km" in text and "selon barème" in text
    assert "101–500 km à 0,08 € + 1,00 €" in text and "33,00 €" in text


def test_a_reverse_charge_invoice_says_autoliquidation(samples):
    text = pdf_text(render_pdf(samples["reverse_charge"]()))

    assert "Autoliquidation : TVA due par le preneur" in text
    assert "DE811234567" in text


def test_a_zero_rated_invoice_shows_the_zero_rate_and_no_reverse_charge(samples):
    text = pdf_text(render_pdf(samples["zero_rated"]()))

    assert "0 % (taux zéro) 55,78 € 0,00 €" in text
    assert "Total TTC 55,78 €" in text
    assert "Autoliquidation" not in text


def test_a_credit_note_is_titled_avoir_and_cites_its_invoice(samples):
    text = pdf_text(render_pdf(samples["credit_note"]()))

    assert "Avoir" in text and "AV-2026-000007" in text
    assert "Facture d'origine" in text and "F-2026-000123 du 1er décembre 2026" in text
    assert "Montant de l'avoir" in text and "9,60 €" in text
    assert "IBAN" not in text


def test_an_english_invoice_is_in_english(samples):
    text = pdf_text(render_pdf(samples["english"]()))

    assert "Invoice" in text and "Amount due" in text and "€66.94" in text
    assert "1 December 2026" in text and "Total excl. VAT" in text
    assert "Facture" not in text


def test_lines_are_grouped_by_vehicle_in_order_of_appearance(samples):
    groups = group_lines(samples["fleet"]())

    assert [group.vehicle_id for group in groups] == ["MOB-000123", "MOB-000124", "MOB-000125"]
    assert [str(group.subtotal) for group in groups] == ["55.78", "54.78", "55.50"]
    assert groups[0].usage[0] == ("Distance", "412,3 km")


def test_a_fleet_invoice_lists_every_vehicle_with_its_subtotal(samples):
    text = pdf_text(render_pdf(samples["fleet"]()))

    assert "VOTRE FLOTTE SUR LA PÉRIODE" in text  # an uppercase heading
    assert "Sous-total MOB-000124" in text and "54,78 €" in text
    assert "Régularisation période 2026-10" in text


def test_the_facturx_pdf_embeds_the_xml_that_round_trips(samples):
    doc = samples["credit_note"]()

    pdf = render_facturx_pdf(doc)
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)

    assert filename == "factur-x.xml"
    assert xml == invoice_xml(doc)
    assert "Avoir" in pdf_text(pdf)


def test_the_facturx_pdf_declares_pdfa_3b_and_the_en16931_profile(samples):
    reader = PdfReader(io.BytesIO(render_facturx_pdf(samples["simple"]())))

    metadata = reader.xmp_metadata.stream.get_data().decode("utf-8")
    assert "<pdfaid:part>3</pdfaid:part>" in metadata
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in metadata
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in metadata


def test_a_lump_sum_adjustment_of_an_earlier_month_is_not_called_a_flat_fee(
    make_document, make_line
):
    # 20 more km on a graduated charge for October: a difference of amounts, no unit price.
    adjustment = make_line(
        "9", description="Régularisation période 2026-10 — Kilomètres", quantity=D("20"),
        unit_price=None, amount=D("3.00"), period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
    )  # fmt: skip
    assert adjustment.is_lump_sum
    view = document_view(make_document([make_line("1"), adjustment]))
    [row] = [line for group in view["lines"]["groups"] for line in group["lines"]
             if line["description"].startswith("Régularisation période 2026-10")]  # fmt: skip
    assert row["price"] == "régularisation"


def test_the_facturx_xmp_declares_its_extension_schema_as_pdfa_requires(samples):
    reader = PdfReader(io.BytesIO(render_facturx_pdf(samples["simple"]())))

    xmp = etree.fromstring(reader.xmp_metadata.stream.get_data())  # well-formed XML
    schemas = xmp.xpath("//pdfaSchema:namespaceURI/text()", namespaces=NAMESPACES)
    properties = {
        name: xmp.xpath(f"string(//fx:{name})", namespaces=NAMESPACES)
        for name in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")
    }
    declared = xmp.xpath(
        "//rdf:li[pdfaSchema:prefix='fx']//pdfaProperty:name/text()", namespaces=NAMESPACES
    )

    assert FACTURX_NAMESPACE in schemas
    assert properties == {"DocumentType": "INVOICE", "DocumentFileName": "factur-x.xml",
                          "Version": "1.0", "ConformanceLevel": "EN 16931"}  # fmt: skip
    assert sorted(declared) == sorted(properties)


def test_the_facturx_pdf_keeps_what_pdfa_3b_requires(samples):
    pdf = render_facturx_pdf(samples["reverse_charge"]())
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    catalog = reader.trailer["/Root"]

    [intent] = catalog["/OutputIntents"]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/DestOutputProfile"].get_data()
    [attachment] = catalog["/AF"]
    assert attachment["/AFRelationship"] == "/Data"
    assert attachment["/EF"]["/F"]["/Subtype"] == "/text/xml"
    assert catalog["/Names"]["/EmbeddedFiles"]["/Names"][0] == "factur-x.xml"
    assert "/Encrypt" not in reader.trailer and len(reader.trailer["/ID"]) == 2
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = font.get_object()["/DescendantFonts"][0]["/FontDescriptor"]
            assert "/FontFile2" in descriptor, font  # every font embedded
    # Every cross-reference entry points at its object, after the metadata was rewritten.
    for number, offset in enumerate(_xref_offsets(pdf)):
        if offset is not None:
            assert pdf[offset:].startswith(f"{number} 0 obj".encode()), number


def test_a_document_renders_to_the_same_bytes_every_time(samples):
    doc = samples["fleet"]()

    assert render_pdf(doc) == render_pdf(doc)
    assert render_facturx_pdf(doc) == render_facturx_pdf(doc)


def test_a_pdf_not_shaped_as_typst_writes_it_is_refused_not_damaged(samples):
    pdf = render_facturx_pdf(samples["simple"]())
    no_xref = pdf.replace(b"\nxref\n", b"\nxref \n")

    with pytest.raises(UnexpectedPdf, match="one XMP metadata stream, found 0"):
        with_facturx_metadata(b"%PDF-1.7\n%%EOF\n", "factur-x.xml")
    with pytest.raises(UnexpectedPdf, match="has Factur-X properties already"):
        with_facturx_metadata(pdf, "factur-x.xml")
    with pytest.raises(UnexpectedPdf, match="cross-reference"):
        with_facturx_metadata(no_xref, "factur-x.xml")


def _xref_offsets(pdf: bytes) -> list[int | None]:
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    lines = pdf[start:].split(b"\n")
    count = int(lines[1].split()[1])
    entries = [line.split() for line in lines[2 : 2 + count]]
    return [int(entry[0]) if entry[2] == b"n" else None for entry in entries]
