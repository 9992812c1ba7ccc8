"""What Stripe is told of an invoice or a credit note: per VAT rate, the base and the VAT,
in minor units, adding up to our total TTC to the cent."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from billing.invoicing.models import CREDIT_NOTE, FINALIZED, INVOICE, Invoice
from billing.payments.services import (
    AmountsDisagree,
    credit_note_mirror,
    invoice_mirror,
    minor_units,
)

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


def test_a_zero_rated_invoice_has_its_base_at_0_percent_and_no_vat_item():
    invoice = issued_invoice(
        [{"category": "Z", "rate": "0", "base": "42.26", "amount": "0.00"}], gross="42.26"
    )

    (item,) = invoice_mirror(invoice).items

    assert (item.description, item.amount) == ("Usage 2026-11 — montant HT, TVA 0 %", 4226)


def test_a_credit_note_credits_each_vat_rate_and_cites_our_numbers_and_its_reason():
    invoice = issued_invoice(
        [{"category": "S", "rate": "20.00", "base": "42.26", "amount": "8.45"}],
        gross="50.71",
        language="en",
    )
    note = Invoice(
        id="inv_2", kind=CREDIT_NOTE, status=FINALIZED, number="AV-2026-000003",
        period="2026-11", currency="EUR", credited_invoice_id=invoice.id,
        credited_invoice=invoice, reason="Disputed kilometres", buyer_language="en",
        total_gross=D("12.00"),
        vat_breakdown=json.dumps(
            [{"category": "S", "rate": "20", "base": "10.00", "amount": "2.00"}]
        ),
    )  # fmt: skip

    mirror = credit_note_mirror(note)

    assert [(item.description, item.amount) for item in mirror.items] == [
        ("Usage 2026-11 — net amount, VAT 20%", 1000),
        ("VAT 20%", 200),
    ]
    assert mirror.total == 1200
    assert (mirror.credit_note_id, mirror.number, mirror.invoice_id) == (
        "inv_2", "AV-2026-000003", "inv_1",
    )  # fmt: skip
    assert mirror.memo == (
        "Credit note AV-2026-000003 for invoice F-2026-000042 — Disputed kilometres"
    )


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
