"""What Stripe is told of an invoice: per VAT rate, the base and the VAT, in minor units,
adding up to our total TTC to the cent."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from billing.invoicing.models import FINALIZED, INVOICE, Invoice
from billing.payments.services import AmountsDisagree, invoice_mirror, minor_units

D = Decimal


def issued_invoice(breakdown: list[dict], gross: str, language: str = "fr", currency="EUR"):
    return Invoice(
        id="inv_1",
        kind=INVOICE,
        status=FINALIZED,
        number="F-2026-000042",
        period="2026-11",
        currency=currency,
        issue_date=dt.date(2026, 12, 4),
        due_date=dt.date(2027, 1, 3),
        total_gross=D(gross),
        vat_breakdown=json.dumps(breakdown),
        buyer_language=language,
    )


def test_each_vat_rate_gives_its_base_and_its_vat_adding_up_to_the_total():
    invoice = issued_invoice(
        [
            {"category": "S", "rate": "20.00", "base": "42.26", "amount": "8.45"},
            {"category": "S", "rate": "5.50", "base": "10.01", "amount": "0.55"},
        ],
        gross="61.27",
    )

    mirror = invoice_mirror(invoice)

    assert [(item.description, item.amount) for item in mirror.items] == [
        ("Usage 2026-11 — montant HT, TVA 20 %", 4226),
        ("TVA 20 %", 845),
        ("Usage 2026-11 — montant HT, TVA 5,5 %", 1001),
        ("TVA 5,5 %", 55),
    ]
    assert (mirror.number, mirror.currency, mirror.days_until_due) == ("F-2026-000042", "EUR", 30)
    assert mirror.description == "Facture F-2026-000042 — usage 2026-11"


def test_a_reverse_charge_invoice_has_no_vat_item():
    invoice = issued_invoice(
        [{"category": "AE", "rate": "0.00", "base": "42.26", "amount": "0.00"}],
        gross="42.26",
        language="en",
    )

    (item,) = invoice_mirror(invoice).items

    assert (item.description, item.amount) == ("Usage 2026-11 — net amount, reverse charge", 4226)


def test_a_breakdown_that_does_not_add_up_to_the_total_is_never_sent():
    invoice = issued_invoice(
        [{"category": "S", "rate": "20.00", "base": "42.26", "amount": "8.45"}], gross="50.72"
    )

    with pytest.raises(AmountsDisagree):
        invoice_mirror(invoice)


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [(D("50.71"), "EUR", 5071), (D("19.000000"), "EUR", 1900), (D("-3.10"), "EUR", -310),
     (D("1200"), "JPY", 1200)],
)  # fmt: skip
def test_amounts_become_minor_units_exactly(amount, currency, units):
    assert minor_units(amount, currency) == units


def test_an_unrounded_amount_is_refused_rather_than_rounded_twice():
    with pytest.raises(AmountsDisagree):
        minor_units(D("0.125"), "EUR")
