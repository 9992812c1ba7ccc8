"""Stripe's webhooks, verified by signature, mark mirrored invoices paid or failed, once."""

import datetime as dt
import json
import time

import pytest
from sqlalchemy import func, select

from billing import create_app
from billing.api_keys import create_api_key
from billing.payments.gateway import StripeGateway
from billing.payments.models import PAYMENT_FAILED, PAYMENT_OPEN, PAYMENT_PAID, StripeEvent
from billing.payments.services import mirror_due_invoices
from tests.conftest import auth
from tests.stripe_fixtures import ISSUED_AT, issue_november_invoice
from tests.stripe_server import signature_header, signed_webhook

WEBHOOK = "/api/v1/stripe/webhook"


@pytest.fixture
def stripe_client(stripe_settings, database):
    return create_app(stripe_settings, database).test_client()


@pytest.fixture
def mirrored(session, registry, example_plans, stripe_settings):
    """Customer A's November invoice, finalized and mirrored to the fake Stripe."""
    invoice = issue_november_invoice(session, registry, stripe_settings)
    mirror_due_invoices(session, StripeGateway(stripe_settings.stripe), ISSUED_AT)
    assert invoice.payment_status == PAYMENT_OPEN
    return invoice


def deliver(client, event, **signing):
    body, headers = signed_webhook(event, **signing)
    return client.post(WEBHOOK, data=body, headers=headers)


def events_recorded(session) -> int:
    return session.scalar(select(func.count()).select_from(StripeEvent))


def test_invoice_paid_marks_the_invoice_paid_on_stripes_payment_date(
    session, stripe_client, fake_stripe, mirrored
):
    event = fake_stripe.pay(mirrored.stripe_invoice_id)

    response = deliver(stripe_client, event)

    assert response.status_code == 200, response.json
    assert response.json == {"id": event["id"], "type": "invoice.paid", "outcome": "applied"}
    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status) == ("paid", PAYMENT_PAID)
    paid_at = event["data"]["object"]["status_transitions"]["paid_at"]
    assert mirrored.paid_at == dt.datetime.fromtimestamp(paid_at, dt.UTC)
    assert mirrored.number == "F-2026-000001"  # the rest of the invoice never changes
    key = create_api_key(session, "finance")[1]
    shown = stripe_client.get(f"/api/v1/invoices/{mirrored.id}", headers=auth(key)).json
    assert (shown["status"], shown["payment_status"]) == ("paid", "paid")
    assert shown["stripe_invoice_id"] == mirrored.stripe_invoice_id


def test_a_failed_payment_is_recorded_and_the_invoice_stays_due(
    session, stripe_client, fake_stripe, mirrored
):
    response = deliver(stripe_client, fake_stripe.fail_payment(mirrored.stripe_invoice_id))

    assert response.json["outcome"] == "applied"
    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status) == ("finalized", PAYMENT_FAILED)
    assert mirrored.paid_at is None


def test_a_replayed_event_changes_nothing(session, stripe_client, fake_stripe, mirrored):
    failed = fake_stripe.fail_payment(mirrored.stripe_invoice_id)
    deliver(stripe_client, failed)
    deliver(stripe_client, fake_stripe.pay(mirrored.stripe_invoice_id))

    replay = deliver(stripe_client, failed)  # the same event again, freshly signed

    assert replay.status_code == 200
    assert replay.json["outcome"] == "duplicate"
    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status) == ("paid", PAYMENT_PAID)
    assert events_recorded(session) == 2


def test_a_failure_reported_after_the_payment_does_not_undo_it(
    session, stripe_client, fake_stripe, mirrored
):
    failed = fake_stripe.fail_payment(mirrored.stripe_invoice_id)
    deliver(stripe_client, fake_stripe.pay(mirrored.stripe_invoice_id))

    assert deliver(stripe_client, failed).json["outcome"] == "ignored"  # out of order

    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status) == ("paid", PAYMENT_PAID)


@pytest.mark.parametrize(
    "forgery",
    ["another secret", "a tampered body", "no signature", "an old signature"],
)
def test_a_webhook_whose_signature_does_not_verify_is_refused_and_changes_nothing(
    session, stripe_client, fake_stripe, mirrored, forgery
):
    event = fake_stripe.pay(mirrored.stripe_invoice_id)
    if forgery == "another secret":
        body, headers = signed_webhook(event, secret="whsec_someone_else")
    elif forgery == "an old signature":  # a captured request, replayed later
        body, headers = signed_webhook(event, timestamp=int(time.time()) - 3600)
    else:
        body, headers = signed_webhook(event)
    if forgery == "a tampered body":
        body = body.replace(b'"invoice.paid"', b'"invoice.payment_failed"')
    if forgery == "no signature":
        del headers["Stripe-Signature"]

    response = stripe_client.post(WEBHOOK, data=body, headers=headers)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_webhook"
    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status) == ("finalized", PAYMENT_OPEN)
    assert events_recorded(session) == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "evt_1", "type": "x"}'])
def test_a_signed_body_that_is_not_an_event_is_refused(session, stripe_client, body):
    headers = {"Stripe-Signature": signature_header(body)}

    response = stripe_client.post(WEBHOOK, data=body, headers=headers)

    assert response.status_code == 400
    assert events_recorded(session) == 0


def test_other_event_types_are_acknowledged_and_ignored(
    session, stripe_client, fake_stripe, mirrored
):
    event = fake_stripe.event("customer.updated", {"id": "cus_x", "object": "customer"})

    response = deliver(stripe_client, event)

    assert response.status_code == 200
    assert response.json["outcome"] == "ignored"
    session.refresh(mirrored)
    assert mirrored.payment_status == PAYMENT_OPEN


def test_an_invoice_that_is_not_ours_is_ignored(session, stripe_client, fake_stripe, mirrored):
    stranger = json.loads(json.dumps(fake_stripe.invoices[mirrored.stripe_invoice_id]))
    stranger.update(id="in_made_in_the_dashboard", metadata={})

    response = deliver(stripe_client, fake_stripe.event("invoice.paid", stranger))

    assert response.json["outcome"] == "ignored"
    session.refresh(mirrored)
    assert mirrored.status == "finalized"


def test_without_stripe_configured_the_webhook_is_not_found(client, fake_stripe):
    response = deliver(client, fake_stripe.event("invoice.paid", {"id": "in_x"}))

    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
