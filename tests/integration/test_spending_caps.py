"""Spending caps end to end: set through the API, applied on statements and invoices."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.auth import Principal
from billing.charges.compute import compute_statement
from billing.devices.models import Customer
from billing.invoicing import rendering, services
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.pdf import render_pdf
from billing.invoicing.validation import schematron_failures, xsd_errors
from billing.payments import collection
from billing.spending_caps.services import set_spending_cap
from tests.conftest import NOW, auth
from tests.integration.invoicing import CLOSED, DUE, NOVEMBER, invoice_of, november_rides
from tests.unit.invoicing.test_invoice_pdf import pdf_text

D = Decimal
ADMIN = Principal("test", "admin")
CAP = "/api/v1/customers/{}/spending-caps"


def cap(session, customer_id, amount, period="2026-11", **options):
    from billing.periods import Period

    fields = {"amount": None if amount is None else D(amount), **options}
    return set_spending_cap(session, ADMIN, customer_id, Period.parse(period), fields, NOW)


def test_a_capped_month_is_invoiced_with_a_discount_line_naming_the_cap(session, settings, fleet):
    november_rides(session, fleet)
    cap(session, fleet.customer_id, "30.00")

    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    invoice = collection.finalize_invoice(
        session, invoice_of(session, fleet.customer_id).id, DUE, settings=settings
    )

    # Usage charges 15.00 + 13.96 + 1.80 + 7.50 = 38.26, brought down to 30.00: -8.26.
    # Flat fees 3.45 + 19.00 = 22.45 on top. HT 52.45; VAT 20 % 10.49; TTC 62.94.
    discount = invoice.lines[-1]
    assert (discount.vehicle_id, discount.metric, discount.amount) == (
        None, "spending_cap", D("-8.26"),
    )  # fmt: skip
    assert discount.description == "Plafond de dépenses de 30,00\u00a0€ HT par période"
    assert discount.note == "Frais d'usage de la période : 38,26\u00a0€ HT, ramenés au plafond"
    assert sum(line.amount for line in invoice.lines) == invoice.total_net == D("52.45")
    assert (invoice.total_vat, invoice.total_gross) == (D("10.49"), D("62.94"))
    document = rendering.invoice_document(invoice)
    xml = invoice_xml(document)
    assert xsd_errors(xml) == [] and schematron_failures(xml) == []
    assert "Plafond de dépenses de 30,00" in pdf_text(render_pdf(document))


def test_the_statement_of_a_capped_month_agrees_with_its_invoice(session, settings, fleet):
    november_rides(session, fleet)
    cap(session, fleet.customer_id, "40.00", include_flat_fees=True)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    invoice = invoice_of(session, fleet.customer_id)

    statement = compute_statement(session, session.get(Customer, fleet.customer_id), NOVEMBER)

    # Everything counts: 60.71 brought down to 40.00.
    assert statement.cap.capped_amount == D("60.71")
    assert statement.cap.discount == D("-20.71")
    assert statement.totals.net == invoice.total_net == D("40.00")
    assert statement.totals.gross == invoice.total_gross == D("48.00")


def test_a_cap_changed_from_a_later_period_leaves_the_month_as_it_was(session, fleet):
    november_rides(session, fleet)
    cap(session, fleet.customer_id, "30.00")
    cap(session, fleet.customer_id, None, period="2026-12")
    customer = session.get(Customer, fleet.customer_id)

    assert compute_statement(session, customer, NOVEMBER).totals.net == D("52.45")
    from billing.periods import Period

    assert compute_statement(session, customer, Period(2026, 12)).cap is None


def test_the_statement_api_shows_the_cap_and_its_discount(client, keys, session, fleet):
    november_rides(session, fleet)
    cap(session, fleet.customer_id, "30.00")

    body = client.get(
        f"/api/v1/customers/{fleet.customer_id}/statement?period=2026-11",
        headers=auth(keys["customer"]),
    ).json

    assert body["spending_cap"] == {
        "amount": "30.00", "include_flat_fees": False,
        "capped_amount": "38.26", "discount": "-8.26", "reached": True,
        "discounts": [{"vat_category": "S", "vat_rate": "20.00", "amount": "-8.26"}],
    }  # fmt: skip
    assert body["totals"]["net"] == "52.45"
    csv = client.get(
        f"/api/v1/customers/{fleet.customer_id}/statement?period=2026-11&format=csv",
        headers=auth(keys["customer"]),
    ).text
    assert "cap_discount,,,,,,,,,spending_cap,cap,,38.26,,,30.00,-8.26,S,20.00,EUR" in csv


def test_finance_sets_a_cap_and_the_customer_reads_it(client, keys, registry):
    url = CAP.format(registry.customer_id)
    response = client.put(
        f"{url}/2026-12", json={"amount": "250.00", "include_flat_fees": True},
        headers=auth(keys["finance"]),
    )  # fmt: skip
    assert response.status_code == 200, response.json
    body = client.get(url, headers=auth(keys["customer"])).json
    assert [(i["effective_from"], i["amount"], i["include_flat_fees"])
            for i in body["items"]] == [("2026-12", "250.00", True)]  # fmt: skip

    assert client.delete(f"{url}/2026-12", headers=auth(keys["admin"])).status_code == 204
    assert client.get(url, headers=auth(keys["customer"])).json == {"items": []}
    response = client.delete(f"{url}/2026-12", headers=auth(keys["admin"]))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("period", "body", "field", "message"),
    [
        ("2026-13", {"amount": "1.00"}, "period", "months run from 01 to 12"),
        ("2020-01", {"amount": "1.00"}, "period", "caps change from the current period"),
        ("x" * 5000, {"amount": "1.00"}, "period", "is not in the form YYYY-MM"),
        ("2099-01", {"amount": "-1"}, "amount", "must be within 0 and"),
        ("2099-01", {"amount": "1e13"}, "amount", "at most 12 digits before the point"),
        ("2099-01", {"amount": "1.005"}, "amount", "minor unit of EUR"),
        ("2099-01", {"amount": "NaN"}, "amount", "Special numeric values"),
        ("2099-01", {"amount": "lots"}, "amount", "Not a valid number"),
        ("2099-01", {"amount": {"a": [[[]]]}}, "amount", "Not a valid number"),
        ("2099-01", {}, "amount", "Missing data"),
        (
            "2099-01",
            {"amount": "1", "include_flat_fees": "maybe"},
            "include_flat_fees",
            "Not a valid",
        ),
        ("2099-01", {"amount": "1", "extra": 1}, "extra", "Unknown field"),
    ],
)
def test_a_bad_cap_is_refused_naming_the_field(client, keys, registry, period, body, field,
                                               message):  # fmt: skip
    response = client.put(
        f"{CAP.format(registry.customer_id)}/{period}", json=body, headers=auth(keys["admin"])
    )
    assert response.status_code == 422, response.json
    details = response.json["error"]["details"]
    assert any(message in text for text in details[field]), details


def test_a_cap_body_that_is_not_an_object_is_refused(client, keys, registry):
    response = client.put(
        f"{CAP.format(registry.customer_id)}/2099-01", json=[1, 2], headers=auth(keys["admin"])
    )
    assert response.status_code == 422


def test_a_customer_may_not_set_its_own_cap_nor_see_another_customers(client, keys, registry):
    response = client.put(
        f"{CAP.format(registry.customer_id)}/2099-01",
        json={"amount": "1.00"},
        headers=auth(keys["customer"]),
    )
    assert response.status_code == 403
    response = client.get(CAP.format(registry.other_customer_id), headers=auth(keys["customer"]))
    assert response.status_code == 404


def test_the_caps_api_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/api/v1/customers/{customer_id}/spending-caps/{period}"]) >= {"put", "delete"}
    assert "get" in paths["/api/v1/customers/{customer_id}/spending-caps"]


def test_time_moves_on_and_a_cap_of_a_past_period_can_no_longer_change(session, registry):
    from billing.errors import Invalid
    from billing.periods import Period

    later = NOW + dt.timedelta(days=40)
    with pytest.raises(Invalid):
        set_spending_cap(session, ADMIN, registry.customer_id, Period(2026, 11), {"amount": D(1)},
                         later)  # fmt: skip
