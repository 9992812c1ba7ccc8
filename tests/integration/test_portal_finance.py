"""The finance pages: invoices by period, status and customer with totals by VAT rate,
drafts finalized, voids and credit notes after a confirmation, the exports, usage billed
to nobody; roles as the API's."""

import re
from decimal import Decimal

import pytest

from billing.invoicing import files
from billing.invoicing.models import Invoice
from billing.invoicing.services import generate_invoices
from billing.payments.collection import finalize_invoice
from billing.users import services as users
from tests.integration.invoicing import DUE, IN_GRACE, NOVEMBER, invoice_of, november_rides
from tests.portal import csrf_token, fix_clock, signed_in_client


@pytest.fixture
def draft(session, settings, fleet):
    november_rides(session, fleet)
    generate_invoices(session, NOVEMBER, IN_GRACE, settings=settings)
    return invoice_of(session, fleet.customer_id)


@pytest.fixture
def finance(app, session):
    fix_clock(app, IN_GRACE)
    user = users.add_user(session, "f@x.example", "finance", IN_GRACE)
    return signed_in_client(app, session, user, IN_GRACE)


def post(client, path, data=None, page="/finance/drafts/"):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})})


def test_a_draft_is_finalized_after_its_confirmation(session, finance, draft):
    listing = finance.get("/finance/drafts/").get_data(as_text=True)
    assert f"/finance/invoices/{draft.id}/finalize" in listing
    asked = post(finance, f"/finance/invoices/{draft.id}/finalize")
    assert asked.status_code == 200 and b'id="confirm"' in asked.data
    session.refresh(draft)
    assert draft.status == "draft"  # nothing happened before the confirmation
    done = post(finance, f"/finance/invoices/{draft.id}/finalize", {"confirm": "yes"})
    assert done.status_code == 302
    session.refresh(draft)
    assert draft.status == "finalized" and draft.number == "F-2026-000001"
    page = finance.get(done.headers["Location"]).get_data(as_text=True)
    assert "F-2026-000001" in page and "€72.85" in page


def test_finalizing_twice_says_why_it_cannot(session, settings, finance, draft):
    finalize_invoice(session, draft.id, DUE, settings=settings)
    again = post(finance, f"/finance/invoices/{draft.id}/finalize", {"confirm": "yes"})
    assert again.status_code == 409
    assert "cannot be finalized again" in again.get_data(as_text=True)


def test_an_invoice_is_voided_with_its_reason(session, settings, finance, draft):
    finalize_invoice(session, draft.id, DUE, settings=settings)
    page = f"/finance/invoices/{draft.id}"
    asked = post(finance, f"{page}/void", {"reason": "Erreur de tarif"}, page=page)
    assert asked.status_code == 200 and "Erreur de tarif" in asked.get_data(as_text=True)
    done = post(finance, f"{page}/void", {"reason": "Erreur de tarif", "confirm": "yes"}, page=page)
    assert done.status_code == 302
    session.refresh(draft)
    assert draft.status == "void"
    note = session.query(Invoice).filter_by(credited_invoice_id=draft.id).one()
    assert note.total_net == draft.total_net and note.reason == "Erreur de tarif"


def test_a_credit_note_of_an_amount_is_issued(session, settings, finance, draft):
    finalize_invoice(session, draft.id, DUE, settings=settings)
    page = f"/finance/invoices/{draft.id}"
    form = {"reason": "Geste commercial", "amount": "10.00", "confirm": "yes"}
    done = post(finance, f"{page}/credit-notes", form, page=page)
    assert done.status_code == 302
    note = session.query(Invoice).filter_by(credited_invoice_id=draft.id).one()
    assert note.total_net == Decimal("10.00") and note.number.startswith("AV-")
    listed = finance.get("/finance/invoices/?period=2026-11").get_data(as_text=True)
    by_rate = re.search(r'id="by-rate".*?</table>', listed, re.S).group(0)
    assert "€50.71" in by_rate  # 60.71 invoiced, 10.00 credited


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"reason": "x", "amount": "abc"}, "amount"),
        ({"reason": "x", "amount": "1" * 40}, "amount"),
        ({"reason": "x", "amount": "1.0000001"}, "amount"),
        ({"reason": "x", "amount": "NaN"}, "amount"),
        ({"reason": "x"}, "amount"),
        ({"reason": "", "amount": "1"}, "reason"),
        ({"reason": "a\u202eb", "amount": "1"}, "reason"),
        ({"reason": "x" * 501, "amount": "1"}, "reason"),
        ({"reason": "x", "amount": "100000"}, "amount"),  # more than is left to credit
    ],
)
def test_a_credit_note_form_breaking_a_rule_names_the_field(
    session, settings, finance, draft, form, field
):
    finalize_invoice(session, draft.id, DUE, settings=settings)
    page = f"/finance/invoices/{draft.id}"
    refused = post(finance, f"{page}/credit-notes", {**form, "confirm": "yes"}, page=page)
    assert refused.status_code == 422
    assert field in refused.get_data(as_text=True)


def test_invoices_are_listed_by_period_status_and_customer_with_totals_by_rate(
    session, settings, finance, draft, fleet
):
    finalize_invoice(session, draft.id, DUE, settings=settings)
    page = finance.get(
        f"/finance/invoices/?period=2026-11&status=finalized&customer_id={fleet.customer_id}"
    ).get_data(as_text=True)
    assert "F-2026-000001" in page
    by_rate = re.search(r'id="by-rate".*?</table>', page, re.S).group(0)
    assert "20 %" in by_rate and "€60.71" in by_rate and "€12.14" in by_rate
    empty = finance.get("/finance/invoices/?status=draft").get_data(as_text=True)
    assert "F-2026-000001" not in empty


@pytest.mark.parametrize(
    "query", ["period=2026-13", "status=nope", "page=0", "page=abc", "customer_id=" + "x" * 99]
)
def test_bad_filters_are_refused_naming_them(finance, query):
    refused = finance.get(f"/finance/invoices/?{query}")
    assert refused.status_code == 422
    assert query.split("=")[0] in refused.get_data(as_text=True)


def test_the_exports_are_the_apis(session, settings, finance, draft):
    finalize_invoice(session, draft.id, DUE, settings=settings)
    page = finance.get("/finance/exports/?period=2026-12").get_data(as_text=True)
    assert 'action="/finance/exports/fec"' in page
    fec = finance.get("/finance/exports/fec?period=2026-12")
    assert fec.status_code == 200
    assert fec.data == files.fec(session, NOVEMBER.next(), settings.seller.siren).content
    assert b"F-2026-000001" in fec.data
    csv = finance.get("/finance/exports/invoices.csv?period=2026-12")
    assert csv.data == files.invoices_csv(session, NOVEMBER.next()).content
    zipped = finance.get("/finance/exports/facturx.zip?period=2026-12")
    assert zipped.status_code == 200 and zipped.data[:2] == b"PK"
    assert finance.get("/finance/exports/fec?period=20261").status_code == 422


def test_unbilled_usage_is_listed(session, finance, fleet):
    from tests.integration.invoicing import ride

    ride(session, "VEH-B", "2026-11-10", 40, 2, 1, (10_000, 1_000))
    page = finance.get("/finance/unbilled/?period=2026-11").get_data(as_text=True)
    assert "VEH-B" in page


@pytest.mark.parametrize("role", ["customer", "operator"])
@pytest.mark.parametrize(
    "path", ["/finance/invoices/", "/finance/drafts/", "/finance/exports/", "/finance/exports/fec"]
)
def test_finance_pages_refuse_other_roles(app, session, fleet, role, path):
    fix_clock(app, IN_GRACE)
    scope = (
        {"customer_id": fleet.customer_id}
        if role == "customer"
        else {"fleet_ids": [fleet.fleet_id]}
    )
    user = users.add_user(session, f"{role}@x.example", role, IN_GRACE, **scope)
    client = signed_in_client(app, session, user, IN_GRACE)
    assert client.get(path).status_code == 403


def test_a_customer_cannot_finalize_even_with_a_valid_token(app, session, fleet, draft):
    fix_clock(app, IN_GRACE)
    user = users.add_user(
        session, "c@x.example", "customer", IN_GRACE, customer_id=fleet.customer_id
    )
    client = signed_in_client(app, session, user, IN_GRACE)
    token = csrf_token(client, f"/accounts/{fleet.customer_id}/")
    refused = client.post(
        f"/finance/invoices/{draft.id}/finalize", data={"csrf_token": token, "confirm": "yes"}
    )
    assert refused.status_code == 403
    session.refresh(draft)
    assert draft.status == "draft"


def test_the_numbering_series_and_the_stripe_failures_are_shown(session, settings, finance, draft):
    import datetime as dt

    from billing.payments.models import StripeOutboxEntry

    finalize_invoice(session, draft.id, DUE, settings=settings)
    session.add(
        StripeOutboxEntry(
            invoice_id=draft.id, enqueued_at=DUE, attempts=3, last_error="card_declined: no",
            next_attempt_at=DUE + dt.timedelta(hours=1),
        )
    )  # fmt: skip
    session.commit()
    page = finance.get("/finance/collection/").get_data(as_text=True)
    series = re.search(r'id="series".*?</table>', page, re.S).group(0)
    assert "F-2026" in series and ">1<" in series
    failures = re.search(r'id="sync-failures".*?</table>', page, re.S).group(0)
    assert "F-2026-000001" in failures and "card_declined: no" in failures


@pytest.mark.parametrize(
    "path",
    [
        "/finance/unbilled/?period=2026-00",
        "/finance/unbilled/?period=" + "9" * 3000,
        "/finance/exports/?period=abcd-ef",
        "/finance/exports/invoice-lines.csv?period=1969-12",
        "/finance/exports/facturx.zip?period=2026-1",
    ],
)
def test_a_bad_period_is_refused_naming_it(finance, path):
    refused = finance.get(path)
    assert refused.status_code == 422
    assert "period" in refused.get_data(as_text=True)


def test_an_unknown_export_or_invoice_answers_404(finance):
    assert finance.get("/finance/exports/fec.exe?period=2026-12").status_code == 404
    assert finance.get("/finance/invoices/inv_nothing").status_code == 404
    token = csrf_token(finance, "/finance/drafts/")
    refused = finance.post("/finance/invoices/inv_nothing/void", data={"csrf_token": token})
    assert refused.status_code == 404
