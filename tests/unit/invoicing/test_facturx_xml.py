"""The Factur-X XML passes the EN16931 XSD and schematron for every kind of document."""

from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree

from billing.invoicing.documents import InvalidDocument
from billing.invoicing.facturx_xml import NAMESPACES, invoice_xml
from billing.invoicing.validation import schematron_failures, xsd_errors


def xpath(xml: bytes, path: str) -> list[str]:
    return [str(value) for value in etree.fromstring(xml).xpath(path, namespaces=NAMESPACES)]


def test_every_sample_document_is_valid_against_the_xsd_and_the_schematron(any_document):
    xml = invoice_xml(any_document)

    assert xsd_errors(xml) == []
    assert schematron_failures(xml) == []


def test_the_validators_report_a_broken_total_and_a_broken_structure(samples):
    xml = invoice_xml(samples["simple"]())
    broken_total = xml.replace(
        b"<ram:GrandTotalAmount>66.94<", b"<ram:GrandTotalAmount>70.00<"
    ).replace(b"<ram:DuePayableAmount>66.94<", b"<ram:DuePayableAmount>70.00<")
    broken_structure = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")

    failures = schematron_failures(broken_total)
    assert [failure.id for failure in failures] == ["BR-CO-15"]
    assert failures[0].location.endswith("/SpecifiedTradeSettlementHeaderMonetarySummation[1]")
    assert "Invoice total amount with VAT" in failures[0].text
    assert xsd_errors(broken_structure)


def test_the_document_declares_the_en16931_profile_and_its_type_code(samples):
    xml = invoice_xml(samples["simple"]())

    assert xpath(xml, "//rsm:ExchangedDocumentContext//ram:ID/text()") == [
        "urn:cen.eu:en16931:2017"
    ]
    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["380"]


def test_seller_and_buyer_carry_their_siren_and_vat_numbers(samples):
    xml = invoice_xml(samples["simple"]())

    seller = "//ram:SellerTradeParty"
    assert xpath(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID/@schemeID") == ["0002"]
    assert xpath(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID/text()") == ["732829320"]
    assert xpath(xml, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']/text()") == [
        "FR44732829320"
    ]
    assert xpath(xml, f"{seller}/ram:Description/text()") == [
        "SAS au capital de 50 000 € – RCS Amiens 732 829 320"
    ]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:ID/text()") == ["CUST-0042"]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()") == [
        "FR25812345678"
    ]


def test_the_french_mandatory_mentions_are_notes_with_subject_codes(samples):
    xml = invoice_xml(samples["simple"]())

    notes = dict(
        zip(
            xpath(xml, "//rsm:ExchangedDocument/ram:IncludedNote/ram:SubjectCode/text()"),
            xpath(xml, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()"),
            strict=True,
        )
    )
    assert set(notes) == {"PMD", "PMT", "AAB"}
    assert "taux directeur BCE + 10 points" in notes["PMD"]
    assert "40,00\u00a0€" in notes["PMT"]
    assert notes["AAB"] == "Pas d'escompte pour paiement anticipé"


def test_an_invoice_asks_for_a_sepa_transfer_to_the_seller_iban_by_the_due_date(samples):
    xml = invoice_xml(samples["simple"]())

    assert xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode/text()") == ["58"]
    assert xpath(xml, "//ram:IBANID/text()") == ["FR7630006000011234567890189"]
    assert xpath(xml, "//ram:DueDateDateTime/udt:DateTimeString/text()") == ["20261231"]
    assert xpath(xml, "//ram:PaymentReference/text()") == ["F-2026-000123"]


def test_the_billing_period_is_given_for_the_document_and_its_lines(samples):
    xml = invoice_xml(samples["simple"]())

    starts = xpath(xml, "//ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString/text()")
    ends = xpath(xml, "//ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString/text()")
    assert set(starts) == {"20261101"}
    assert set(ends) == {"20261130"}
    assert len(starts) == 4  # three lines and the header


def test_a_tiered_line_is_a_lump_sum_with_its_usage_and_tiers_in_words(samples):
    xml = invoice_xml(samples["tiered"]())

    line = "//ram:IncludedSupplyChainTradeLineItem[2]"
    assert xpath(xml, f"{line}//ram:BilledQuantity/text()") == ["1"]
    assert xpath(xml, f"{line}//ram:BilledQuantity/@unitCode") == ["C62"]
    assert xpath(xml, f"{line}//ram:ChargeAmount/text()") == ["36.50"]
    assert xpath(xml, f"{line}//ram:ApplicableProductCharacteristic/ram:Value/text()") == [
        "MOB-000123",
        "620\u00a0km",
    ]
    note = xpath(xml, f"{line}//ram:IncludedNote/ram:Content/text()")[0]
    assert "101–500 km à 0,08 € + 1,00 € : 400\u00a0km → 33,00\u00a0€" in note


def test_a_negative_adjustment_has_a_negative_quantity_and_a_positive_price(samples):
    xml = invoice_xml(samples["adjusted"]())

    line = "//ram:IncludedSupplyChainTradeLineItem[4]"
    assert xpath(xml, f"{line}//ram:BilledQuantity/text()") == ["-12.5"]
    assert xpath(xml, f"{line}//ram:ChargeAmount/text()") == ["0.08"]
    assert xpath(xml, f"{line}//ram:LineTotalAmount/text()") == ["-1.00"]
    assert xpath(xml, f"{line}//ram:StartDateTime/udt:DateTimeString/text()") == ["20261001"]


def test_reverse_charge_has_category_ae_at_zero_with_its_exemption_reason(samples):
    xml = invoice_xml(samples["reverse_charge"]())

    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert xpath(xml, f"{tax}/ram:CategoryCode/text()") == ["AE"]
    assert xpath(xml, f"{tax}/ram:RateApplicablePercent/text()") == ["0"]
    assert xpath(xml, f"{tax}/ram:CalculatedAmount/text()") == ["0.00"]
    assert xpath(xml, f"{tax}/ram:ExemptionReason/text()") == ["Autoliquidation"]
    assert xpath(xml, f"{tax}/ram:ExemptionReasonCode/text()") == ["VATEX-EU-AE"]
    assert xpath(xml, "//ram:BuyerTradeParty//ram:ID[@schemeID='VA']/text()") == ["DE811234567"]
    assert xpath(xml, "//ram:IncludedNote[ram:SubjectCode='TXD']/ram:Content/text()")


def test_a_zero_rated_invoice_has_category_z_at_zero_without_exemption_reason(samples):
    xml = invoice_xml(samples["zero_rated"]())

    assert xsd_errors(xml) == []
    assert schematron_failures(xml) == []
    line_tax = "//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
    assert set(xpath(xml, f"{line_tax}/ram:CategoryCode/text()")) == {"Z"}
    assert set(xpath(xml, f"{line_tax}/ram:RateApplicablePercent/text()")) == {"0"}
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert xpath(xml, f"{tax}/ram:CategoryCode/text()") == ["Z"]
    assert xpath(xml, f"{tax}/ram:RateApplicablePercent/text()") == ["0"]
    assert xpath(xml, f"{tax}/ram:BasisAmount/text()") == ["55.78"]
    assert xpath(xml, f"{tax}/ram:CalculatedAmount/text()") == ["0.00"]
    assert xpath(xml, f"{tax}/ram:ExemptionReason | {tax}/ram:ExemptionReasonCode") == []
    assert xpath(xml, "//ram:TaxTotalAmount/text()") == ["0.00"]
    assert xpath(xml, "//ram:GrandTotalAmount/text()") == ["55.78"]
    assert not xpath(xml, "//ram:IncludedNote[ram:SubjectCode='TXD']")


def test_a_credit_note_has_type_381_positive_amounts_and_cites_its_invoice(samples):
    xml = invoice_xml(samples["credit_note"]())

    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    assert xpath(xml, "//ram:DuePayableAmount/text()") == ["9.60"]
    reference = "//ram:InvoiceReferencedDocument"
    assert xpath(xml, f"{reference}/ram:IssuerAssignedID/text()") == ["F-2026-000123"]
    assert xpath(xml, f"{reference}/ram:FormattedIssueDateTime/qdt:DateTimeString/text()") == [
        "20261201"
    ]
    assert xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans") == []


def test_the_xml_is_french_whatever_the_pdf_language(samples):
    french, english = invoice_xml(samples["simple"]()), invoice_xml(samples["english"]())

    assert xpath(english, "//ram:IncludedNote[ram:SubjectCode='PMT']/ram:Content/text()") == (
        xpath(french, "//ram:IncludedNote[ram:SubjectCode='PMT']/ram:Content/text()")
    )


def test_decimals_are_written_without_exponent(make_document, make_line):
    doc = make_document(
        [
            make_line("1", quantity=Decimal("1E+3"), amount=Decimal("80.00")),
            make_line("2", quantity=Decimal("1"), unit_price=Decimal("1.5E-5"), amount=Decimal(0)),
        ]
    )

    xml = invoice_xml(doc)

    assert xpath(xml, "//ram:BilledQuantity/text()") == ["1000", "1"]
    assert xpath(xml, "//ram:ChargeAmount/text()") == ["0.08", "0.000015"]
    assert b"E+" not in xml and b"E-" not in xml


def test_an_inconsistent_document_is_refused_before_any_xml_is_written(samples):
    doc = replace(samples["simple"](), total_gross=Decimal("1.00"))

    with pytest.raises(InvalidDocument, match=r"total_gross 1\.00 should be 66\.94"):
        invoice_xml(doc)
