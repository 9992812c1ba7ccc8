"""The invoices API: listing and reading (customers see their own), issuing and correcting
(finance), the documents, and the finance exports of a month."""

import datetime as dt
import io
import zipfile
from collections import defaultdict
from decimal import Decimal

import pytest

from billing.invoicing import files, services
from billing.payments import collection
from tests.conftest import auth
from tests.integration.invoicing import (
    CLOSED,
    NOVEMBER,
    assign,
    invoice_of,
    november_rides,
)

ISSUED = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def drafts(session, settings, fleet, keys):
    """November drafts of both customers (customer B on Urbain, idle but for its fee)."""
    assign(session, "VEH-B", "urbain", "2026-11-01T00:00:00+01:00")
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    return invoice_of(session, fleet.customer_id), invoice_of(session, fleet.other_customer_id)


def finalize(client, keys, invoice_id: str) -> dict:
    response = client.post(f"/api/v1/invoices/{invoice_id}/finalize", headers=auth(keys["finance"]))
    assert response.status_code == 200, response.json
    return response.json


def test_a_customer_lists_only_its_own_invoices(client, keys, drafts):
    own, _other = drafts

    body = client.get("/api/v1/invoices", headers=auth(keys["customer"])).json
    everything = client.get("/api/v1/invoices", headers=auth(keys["finance"])).json

    assert [item["id"] for item in body["items"]] == [own.id]
    assert everything["total"] == 2
    assert client.get("/api/v1/invoices", headers=auth(keys["operator"])).status_code == 403


def test_listings_filter_by_status_kind_period_and_customer(client, keys, drafts):
    own, other = drafts
    finalize(client, keys, own.id)
    finance = auth(keys["finance"])

    def ids(query: str) -> list[str]:
        items = client.get(f"/api/v1/invoices?{query}", headers=finance).json["items"]
        return [item["id"] for item in items]

    assert ids("status=finalized") == [own.id]
    assert ids("status=draft&kind=invoice") == [other.id]
    assert ids(f"customer_id={other.customer_id}&period=2026-11") == [other.id]
    assert ids("period=2026-10") == []
    page = client.get("/api/v1/invoices?per_page=1&page=2", headers=finance).json
    assert (page["total"], len(page["items"])) == (2, 1)
    assert client.get("/api/v1/invoices?period=2026-13", headers=finance).status_code == 422


def test_an_invoice_reads_with_its_lines_and_exact_amounts(client, keys, drafts):
    own, _ = drafts
    body = finalize(client, keys, own.id)

    assert body["number"] == "F-2026-000001"
    assert [body["total_net"], body["total_vat"], body["total_gross"]] == [
        "60.71",
        "12.14",
        "72.85",
    ]
    assert body["vat_breakdown"] == [
        {"category": "S", "rate": "20.00", "base": "60.71", "amount": "12.14"}
    ]
    assert body["buyer"]["name"] == "Client A"
    distance = body["lines"][3]
    assert (distance["metric"], distance["quantity"], distance["billable_quantity"]) == (
        "distance_km", "312", "262",
    )  # fmt: skip
    assert distance["amount"] == "13.96"
    assert [tier["quantity"] for tier in distance["tiers"]] == ["100", "162"]
    # One representation across the API: statements write "20.00" and `from_quantity` too.
    assert distance["vat_rate"] == "20.00"
    assert [tier["from_quantity"] for tier in distance["tiers"]] == ["0", "100"]
    assert distance["note"] == "50\u00a0km inclus déduits"


def test_finance_voids_and_credits_through_the_api(client, keys, drafts):
    own, _ = drafts
    finalize(client, keys, own.id)
    finance = auth(keys["finance"])

    five_of_line_2 = {"reason": "Geste", "lines": [{"position": 2, "amount": "5.00"}]}
    partial = client.post(f"/api/v1/invoices/{own.id}/credit-notes", headers=finance,
                          json=five_of_line_2)  # fmt: skip
    refused = client.post(f"/api/v1/invoices/{own.id}/credit-notes", headers=finance,
                          json={"reason": "Geste", "lines": [{"position": 9}]})  # fmt: skip
    void = client.post(f"/api/v1/invoices/{own.id}/void", headers=finance,
                       json={"reason": "Erreur"})  # fmt: skip

    assert partial.status_code == 201
    assert partial.json["number"] == "AV-2026-000001"
    assert partial.json["credited_invoice"]["number"] == "F-2026-000001"
    assert refused.status_code == 422
    assert refused.json["error"]["details"] == {
        "lines.0.position": ["invoice F-2026-000001 has no line 9"]
    }
    assert void.status_code == 201 and void.json["total_net"] == "55.71"
    assert client.get(f"/api/v1/invoices/{own.id}", headers=finance).json["status"] == "void"
    customer = auth(keys["customer"])
    assert client.post(f"/api/v1/invoices/{own.id}/void", headers=customer,
                       json={"reason": "x"}).status_code == 403  # fmt: skip


def test_documents_download_and_stay_the_same(client, keys, drafts):
    own, _ = drafts
    customer = auth(keys["customer"])
    assert client.get(f"/api/v1/invoices/{own.id}/pdf", headers=customer).status_code == 409
    finalize(client, keys, own.id)

    first = client.get(f"/api/v1/invoices/{own.id}/facturx.pdf", headers=customer)
    again = client.get(f"/api/v1/invoices/{own.id}/facturx.pdf", headers=customer)
    pdf = client.get(f"/api/v1/invoices/{own.id}/pdf", headers=customer)
    xml = client.get(f"/api/v1/invoices/{own.id}/facturx.xml", headers=customer)

    assert first.mimetype == "application/pdf"
    assert first.headers["Content-Disposition"] == (
        'attachment; filename="F-2026-000001-facturx.pdf"'
    )
    assert first.data == again.data
    assert pdf.data.startswith(b"%PDF") and pdf.data != first.data
    assert xml.mimetype == "application/xml" and b"F-2026-000001" in xml.data


def test_exports_of_a_month_hold_what_was_issued_in_it(client, keys, drafts, session, settings):
    for invoice in drafts:
        collection.finalize_invoice(session, invoice.id, ISSUED, settings=settings)
    collection.issue_credit_note(session, drafts[0].id, "Geste", ISSUED, settings=settings,
                                 amount=Decimal("10.00"))  # fmt: skip
    finance = auth(keys["finance"])

    invoices = client.get("/api/v1/exports/invoices.csv?period=2026-12", headers=finance)
    lines = client.get("/api/v1/exports/invoice-lines.csv?period=2026-12", headers=finance)
    november = client.get("/api/v1/exports/invoices.csv?period=2026-11", headers=finance)
    archive = client.get("/api/v1/exports/facturx.zip?period=2026-12", headers=finance)

    assert [row.split(",")[:2] for row in invoices.data.decode().splitlines()[1:]] == [
        ["AV-2026-000001", "credit_note"], ["F-2026-000001", "invoice"],
        ["F-2026-000002", "invoice"],
    ]  # fmt: skip
    assert len(lines.data.decode().splitlines()) == 1 + 6 + 4 + 1
    assert november.data.decode().splitlines()[1:] == []
    assert archive.headers["Content-Disposition"] == 'attachment; filename="facturx-2026-12.zip"'
    assert zipfile.ZipFile(io.BytesIO(archive.data)).namelist() == [
        "AV-2026-000001-facturx.pdf", "F-2026-000001-facturx.pdf", "F-2026-000002-facturx.pdf",
    ]  # fmt: skip


def test_the_fec_of_a_month_balances_entry_by_entry(client, keys, drafts, session, settings):
    for invoice in drafts:
        collection.finalize_invoice(session, invoice.id, ISSUED, settings=settings)
    collection.void_invoice(session, drafts[1].id, "Erreur", ISSUED, settings=settings)

    response = client.get("/api/v1/exports/fec?period=2026-12", headers=auth(keys["finance"]))

    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{settings.seller.siren}FEC20261231.txt"'
    )
    assert response.headers["Content-Type"] == "text/plain; charset=iso-8859-15"
    assert response.data == files.fec(session, NOVEMBER.next(), settings.seller.siren).content
    header, *entries = response.data.decode("iso-8859-15").split("\r\n")[:-1]
    assert header.split("|")[:3] == ["JournalCode", "JournalLib", "EcritureNum"]
    balance: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        fields = entry.split("|")
        debit, credit = (Decimal(value.replace(",", ".")) for value in fields[11:13])
        balance[fields[2]] += debit - credit
    assert len(balance) == 3  # two invoices and a credit note
    assert set(balance.values()) == {Decimal(0)}


def test_a_discarded_draft_is_made_again_by_the_next_run(client, keys, drafts, session, settings):
    own, _ = drafts
    finance = auth(keys["finance"])

    assert client.delete(f"/api/v1/invoices/{own.id}", headers=finance).status_code == 204
    assert client.get(f"/api/v1/invoices/{own.id}", headers=finance).status_code == 404
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)

    again = invoice_of(session, own.customer_id)
    assert again.id != own.id and again.total_net == Decimal("60.71")
