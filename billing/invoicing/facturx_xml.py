"""Factur-X 1.0 / ZUGFeRD 2 "EN 16931" profile: the CII XML of an InvoiceDocument.

Element order follows the Factur-X EN16931 XSD (a sequence everywhere: reordering breaks
validity). Business terms are named BT-n after EN 16931-1. The XML is always French, the
legal language of the seller, whatever the PDF language. Amounts are written as plain
decimals, never with an exponent.

Mapping choices:
- `buyer_reference` (the seller's customer id) is the Buyer identifier BT-46.
- The seller's legal form, capital and RCS go to Seller additional legal information BT-33.
- The French mandatory mentions are document notes with UNTDID 4451 subject codes: PMD late
  penalties, PMT the recovery indemnity, AAB early-payment discount, TXD reverse charge.
- Payment instructions (SEPA credit transfer, code 58, to the seller's IBAN) are given on
  invoices only: a credit note is settled by the seller, not paid to it.
"""

from datetime import date
from decimal import Decimal

from lxml import etree

from billing.invoicing.documents import (
    DocumentLine,
    InvoiceDocument,
    Party,
    VatBreakdown,
    ensure_valid,
    format_money,
    format_quantity,
    legal_mentions,
)
from billing.money import exponent, minor_units, round_money

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
SEPA_CREDIT_TRANSFER = "58"  # UNTDID 4461
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the French SIRENE register
EMAIL_SCHEME = "EM"

NAMESPACES = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


def invoice_xml(doc: InvoiceDocument) -> bytes:
    """The Factur-X EN 16931 CII XML of `doc`, UTF-8 encoded.

    Raises InvalidDocument when the data breaks a rule `check_document` knows, so that an
    invalid e-invoice is never produced.
    """
    ensure_valid(doc)
    root = etree.Element(_tag("rsm:CrossIndustryInvoice"), nsmap=NAMESPACES)
    context = _sub(root, "rsm:ExchangedDocumentContext")
    guideline = _sub(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ram:ID", GUIDELINE_EN16931)
    _add_header(root, doc)
    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    for line in doc.lines:
        _add_line(transaction, line, doc.currency)
    _add_agreement(transaction, doc)
    _add_delivery(transaction, doc)
    _add_settlement(transaction, doc)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _add_header(root: etree._Element, doc: InvoiceDocument) -> None:
    header = _sub(root, "rsm:ExchangedDocument")
    _sub(header, "ram:ID", doc.number)
    _sub(header, "ram:TypeCode", doc.type_code)
    _add_date(header, "ram:IssueDateTime", doc.issue_date)
    for text in doc.notes:
        _sub(_sub(header, "ram:IncludedNote"), "ram:Content", text)
    for subject_code, text in legal_mentions(doc, "fr"):
        note = _sub(header, "ram:IncludedNote")
        _sub(note, "ram:Content", text)
        _sub(note, "ram:SubjectCode", subject_code)


def _add_line(transaction: etree._Element, line: DocumentLine, currency: str) -> None:
    item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
    document = _sub(item, "ram:AssociatedDocumentLineDocument")
    _sub(document, "ram:LineID", line.line_id)
    note = _line_note(line, currency)
    if note:
        _sub(_sub(document, "ram:IncludedNote"), "ram:Content", note)
    _add_product(item, line)
    price = _sub(_sub(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
    _sub(price, "ram:ChargeAmount", _price(line.unit_price, currency))
    _sub(price, "ram:BasisQuantity", "1", unitCode=line.unit_code)
    delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
    _sub(delivery, "ram:BilledQuantity", _plain(line.quantity), unitCode=line.unit_code)
    _add_line_settlement(item, line, currency)


def _add_product(item: etree._Element, line: DocumentLine) -> None:
    product = _sub(item, "ram:SpecifiedTradeProduct")
    if line.metric:
        _sub(product, "ram:SellerAssignedID", line.metric)
    _sub(product, "ram:Name", line.description)
    for name, value in _item_attributes(line):
        characteristic = _sub(product, "ram:ApplicableProductCharacteristic")
        _sub(characteristic, "ram:Description", name)
        _sub(characteristic, "ram:Value", value)


def _add_line_settlement(item: etree._Element, line: DocumentLine, currency: str) -> None:
    settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
    tax = _sub(settlement, "ram:ApplicableTradeTax")
    _sub(tax, "ram:TypeCode", "VAT")
    _sub(tax, "ram:CategoryCode", line.vat_category)
    _sub(tax, "ram:RateApplicablePercent", _plain(line.vat_rate))
    if line.period_start or line.period_end:
        _add_period(settlement, line.period_start, line.period_end)
    summation = _sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _sub(summation, "ram:LineTotalAmount", _money(line.amount, currency))


def _line_note(line: DocumentLine, currency: str) -> str:
    """BT-127: the free note, then the tier breakdown a lump sum stands for."""
    parts = [line.note] if line.note else []
    parts += [
        f"{tier.label} : {format_quantity(tier.quantity, line.measured_unit_code, 'fr')} → "
        f"{format_money(tier.amount, currency, 'fr')}"
        for tier in line.tiers
    ]
    return "\n".join(parts)


def _item_attributes(line: DocumentLine) -> list[tuple[str, str]]:
    """Item attributes BG-32: which vehicle, and the usage behind a lump-sum line."""
    attributes = []
    if line.vehicle_id:
        attributes.append(("Véhicule", line.vehicle_id))
    if line.usage_quantity is not None:
        attributes.append(
            ("Quantité mesurée", format_quantity(line.usage_quantity, line.usage_unit_code, "fr"))
        )
    return attributes


def _add_agreement(transaction: etree._Element, doc: InvoiceDocument) -> None:
    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    _add_party(agreement, "ram:SellerTradeParty", doc.seller, None)
    _add_party(agreement, "ram:BuyerTradeParty", doc.buyer, doc.buyer_reference)


def _add_party(parent: etree._Element, tag: str, party: Party, identifier: str | None) -> None:
    element = _sub(parent, tag)
    if identifier:
        _sub(element, "ram:ID", identifier)
    _sub(element, "ram:Name", party.name)
    legal_information = " – ".join(filter(None, (party.legal_form, party.rcs)))
    if legal_information:
        _sub(element, "ram:Description", legal_information)
    if party.siren:
        organization = _sub(element, "ram:SpecifiedLegalOrganization")
        _sub(organization, "ram:ID", party.siren, schemeID=SIREN_SCHEME)
    address = _sub(element, "ram:PostalTradeAddress")
    _sub(address, "ram:PostcodeCode", party.address.postal_code)
    _sub(address, "ram:LineOne", party.address.line1)
    if party.address.line2:
        _sub(address, "ram:LineTwo", party.address.line2)
    _sub(address, "ram:CityName", party.address.city)
    _sub(address, "ram:CountryID", party.address.country)
    if party.email:
        electronic_address = _sub(element, "ram:URIUniversalCommunication")
        _sub(electronic_address, "ram:URIID", party.email, schemeID=EMAIL_SCHEME)
    if party.vat_number:
        registration = _sub(element, "ram:SpecifiedTaxRegistration")
        _sub(registration, "ram:ID", party.vat_number, schemeID="VA")


def _add_delivery(transaction: etree._Element, doc: InvoiceDocument) -> None:
    # The service is delivered over the billing period and completed on its last day
    # (BT-72); the element may not be left empty (PEPPOL-EN16931-R008).
    delivery = _sub(transaction, "ram:ApplicableHeaderTradeDelivery")
    event = _sub(delivery, "ram:ActualDeliverySupplyChainEvent")
    _add_date(event, "ram:OccurrenceDateTime", doc.period_end)


def _add_settlement(transaction: etree._Element, doc: InvoiceDocument) -> None:
    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    pays_seller = not doc.is_credit_note and doc.seller.iban
    if pays_seller:
        _sub(settlement, "ram:PaymentReference", doc.number)
    _sub(settlement, "ram:InvoiceCurrencyCode", doc.currency)
    if pays_seller:
        _add_payment_means(settlement, doc.seller)
    for group in doc.vat_breakdown:
        _add_vat_group(settlement, group, doc.currency)
    _add_period(settlement, doc.period_start, doc.period_end)
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    _sub(terms, "ram:Description", doc.payment_terms)
    _add_date(terms, "ram:DueDateDateTime", doc.due_date)
    _add_summation(settlement, doc)
    if doc.preceding_invoice_number:
        reference = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(reference, "ram:IssuerAssignedID", doc.preceding_invoice_number)
        if doc.preceding_invoice_date:
            _add_date(reference, "ram:FormattedIssueDateTime", doc.preceding_invoice_date, "qdt")


def _add_payment_means(settlement: etree._Element, seller: Party) -> None:
    means = _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _sub(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER)
    _sub(means, "ram:Information", "Virement SEPA")
    account = _sub(means, "ram:PayeePartyCreditorFinancialAccount")
    _sub(account, "ram:IBANID", "".join((seller.iban or "").split()))
    if seller.bic:
        institution = _sub(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
        _sub(institution, "ram:BICID", seller.bic)


def _add_vat_group(settlement: etree._Element, group: VatBreakdown, currency: str) -> None:
    tax = _sub(settlement, "ram:ApplicableTradeTax")
    _sub(tax, "ram:CalculatedAmount", _money(group.amount, currency))
    _sub(tax, "ram:TypeCode", "VAT")
    if group.exemption_reason:
        _sub(tax, "ram:ExemptionReason", group.exemption_reason)
    _sub(tax, "ram:BasisAmount", _money(group.base, currency))
    _sub(tax, "ram:CategoryCode", group.category)
    if group.exemption_reason_code:
        _sub(tax, "ram:ExemptionReasonCode", group.exemption_reason_code)
    _sub(tax, "ram:RateApplicablePercent", _plain(group.rate))


def _add_summation(settlement: etree._Element, doc: InvoiceDocument) -> None:
    summation = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(summation, "ram:LineTotalAmount", _money(doc.total_net, doc.currency))
    _sub(summation, "ram:TaxBasisTotalAmount", _money(doc.total_net, doc.currency))
    _sub(
        summation,
        "ram:TaxTotalAmount",
        _money(doc.total_vat, doc.currency),
        currencyID=doc.currency,
    )
    _sub(summation, "ram:GrandTotalAmount", _money(doc.total_gross, doc.currency))
    prepaid = doc.total_gross - doc.amount_due  # BR-CO-16, no rounding amount
    if prepaid:
        _sub(summation, "ram:TotalPrepaidAmount", _money(prepaid, doc.currency))
    _sub(summation, "ram:DuePayableAmount", _money(doc.amount_due, doc.currency))


def _add_period(parent: etree._Element, start: date | None, end: date | None) -> None:
    period = _sub(parent, "ram:BillingSpecifiedPeriod")
    if start:
        _add_date(period, "ram:StartDateTime", start)
    if end:
        _add_date(period, "ram:EndDateTime", end)


def _add_date(parent: etree._Element, tag: str, day: date, prefix: str = "udt") -> None:
    # Format 102 is CCYYMMDD, the only one EN 16931 allows.
    _sub(_sub(parent, tag), f"{prefix}:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _money(amount: Decimal, currency: str) -> str:
    return format(round_money(amount, currency), "f")


def _price(price: Decimal, currency: str) -> str:
    """A unit price with its significant decimals, never fewer than the currency's."""
    decimals = min(exponent(price.normalize()), -minor_units(currency))
    return format(price.quantize(Decimal(1).scaleb(decimals)), "f")


def _plain(value: Decimal) -> str:
    """A quantity, price or rate with no trailing zeros and no exponent: 1E+2 → '100'."""
    return format(value.normalize(), "f")


def _tag(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NAMESPACES[prefix]}}}{local}"


def _sub(
    parent: etree._Element, name: str, text: str | None = None, **attributes: str
) -> etree._Element:
    element = etree.SubElement(parent, _tag(name), attributes)
    if text is not None:
        element.text = text
    return element
