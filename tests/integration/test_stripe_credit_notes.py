"""Credit notes reach Stripe through the outbox: a void of an open invoice voids it there, a
partial credit lowers what Stripe asks for, a credit of a paid invoice goes to the
customer's Stripe balance; once each, whatever fails or is retried."""

import datetime as dt
from decimal import Decimal

import pytest

from billing import create_app
from billing.payments.collection import issue_credit_note, void_invoice
from billing.payments.gateway import StripeGateway
from billing.payments.models import PAYMENT_PAID, PAYMENT_VOID, StripeOutboxEntry
from billing.payments.services import mirror_due_invoices
from tests.stripe_fixtures import ISSUED_AT, issue_november_invoice
from tests.stripe_server import signed_webhook

MINUTE = dt.timedelta(minutes=1)
LATER = ISSUED_AT + dt.timedelta(days=3)  # when finance corrects the invoice
VOID_PATH = r"/v1/invoices/\w+/void"


def mirror(session, settings, now):
    return mirror_due_invoices(session, StripeGateway(settings.stripe), now)


@pytest.fixture
def mirrored(session, registry, example_plans, stripe_settings, fake_stripe):
    """Customer A's November invoice (50.71 TTC), finalized and open in the fake Stripe."""
    invoice = issue_november_invoice(session, registry, stripe_settings)
    assert mirror(session, stripe_settings, ISSUED_AT).done == [invoice.id]
    return invoice


def credit(session, settings, invoice, amount: str):
    """A credit note of `amount` before VAT (20 %) of `invoice`, issued LATER."""
    return issue_credit_note(
        session, invoice.id, "Kilomètres contestés", LATER, settings=settings,
        amount=Decimal(amount),
    )  # fmt: skip


def assert_every_change_carries_an_idempotency_key(fake_stripe):
    assert all(r.idempotency_key for r in fake_stripe.requests if r.method == "POST")
    assert not any(r.idempotency_key for r in fake_stripe.requests if r.method == "GET")


def test_voiding_an_open_mirrored_invoice_voids_it_in_stripe_once(
    session, stripe_settings, fake_stripe, mirrored
):
    note = void_invoice(session, mirrored.id, "Erreur de plan", LATER, settings=stripe_settings)

    assert mirror(session, stripe_settings, LATER).done == [note.id]

    stripe_invoice = fake_stripe.invoices[mirrored.stripe_invoice_id]
    assert stripe_invoice["status"] == "void" and stripe_invoice["amount_remaining"] == 0
    assert fake_stripe.credit_notes == {}
    assert (mirrored.status, mirrored.payment_status) == ("void", PAYMENT_VOID)
    assert note.stripe_credit_note_id is None
    assert session.get(StripeOutboxEntry, note.id).done_at == LATER
    assert_every_change_carries_an_idempotency_key(fake_stripe)

    received = len(fake_stripe.requests)
    assert len(mirror(session, stripe_settings, LATER + dt.timedelta(days=1))) == 0  # a rerun
    assert len(fake_stripe.requests) == received
    assert len(fake_stripe.requests_to("POST", VOID_PATH)) == 1


def test_a_failing_stripe_is_retried_and_the_invoice_voided_once(
    session, stripe_settings, fake_stripe, mirrored
):
    note = void_invoice(session, mirrored.id, "Erreur de plan", LATER, settings=stripe_settings)
    entry = session.get(StripeOutboxEntry, note.id)
    # Stripe fails the void, then the first read of the retry.
    fake_stripe.fail_next(2, after=2)

    assert "HTTP 500" in mirror(session, stripe_settings, LATER).failed[note.id]
    assert (entry.attempts, entry.next_attempt_at, entry.done_at) == (1, LATER + MINUTE, None)
    assert note.id in mirror(session, stripe_settings, LATER + MINUTE).failed
    assert mirror(session, stripe_settings, LATER + 3 * MINUTE).done == [note.id]

    assert (entry.attempts, entry.last_error) == (3, None)
    assert fake_stripe.invoices[mirrored.stripe_invoice_id]["status"] == "void"
    voids = fake_stripe.requests_to("POST", VOID_PATH)
    assert len(voids) == 2 and voids[0].idempotency_key == voids[1].idempotency_key
    assert_every_change_carries_an_idempotency_key(fake_stripe)


def test_a_void_whose_answer_is_lost_is_not_sent_again(
    session, stripe_settings, fake_stripe, mirrored
):
    note = void_invoice(session, mirrored.id, "Erreur de plan", LATER, settings=stripe_settings)
    fake_stripe.lose_next(1, after=2)  # Stripe voids the invoice; we never hear of it

    assert note.id in mirror(session, stripe_settings, LATER).failed
    assert mirror(session, stripe_settings, LATER + MINUTE).done == [note.id]

    assert len(fake_stripe.requests_to("POST", VOID_PATH)) == 1  # Stripe said it is void
    assert fake_stripe.invoices[mirrored.stripe_invoice_id]["status"] == "void"


def test_a_partial_credit_note_of_an_open_invoice_lowers_what_stripe_asks_for(
    session, stripe_settings, fake_stripe, mirrored
):
    note = credit(session, stripe_settings, mirrored, "10.00")

    assert mirror(session, stripe_settings, LATER).done == [note.id]

    (stripe_note,) = fake_stripe.credit_notes.values()
    assert note.stripe_credit_note_id == stripe_note["id"]
    assert stripe_note["invoice"] == mirrored.stripe_invoice_id
    # 10.00 HT and 2.00 VAT at 20 %, in cents, all of it off what is left to pay.
    assert [(line["description"], line["amount"]) for line in stripe_note["lines"]["data"]] == [
        ("Usage 2026-11 — montant HT, TVA 20 %", 1000),
        ("TVA 20 %", 200),
    ]
    assert (stripe_note["pre_payment_amount"], stripe_note["credit_amount"]) == (1200, 0)
    assert stripe_note["metadata"] == {
        "credit_note_id": note.id, "number": "AV-2026-000001", "invoice_id": mirrored.id,
    }  # fmt: skip
    assert stripe_note["memo"] == (
        "Avoir AV-2026-000001 sur la facture F-2026-000001 — Kilomètres contestés"
    )
    stripe_invoice = fake_stripe.invoices[mirrored.stripe_invoice_id]
    assert (stripe_invoice["status"], stripe_invoice["amount_remaining"]) == ("open", 3871)
    assert mirrored.payment_status == "open"
    assert_every_change_carries_an_idempotency_key(fake_stripe)


def test_a_partial_credit_note_of_a_paid_invoice_credits_the_customers_stripe_balance(
    session, database, stripe_settings, fake_stripe, mirrored
):
    body, headers = signed_webhook(fake_stripe.pay(mirrored.stripe_invoice_id))
    client = create_app(stripe_settings, database).test_client()
    assert client.post("/api/v1/stripe/webhook", data=body, headers=headers).status_code == 200
    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status) == ("paid", PAYMENT_PAID)
    note = credit(session, stripe_settings, mirrored, "10.00")

    assert mirror(session, stripe_settings, LATER).done == [note.id]

    (stripe_note,) = fake_stripe.credit_notes.values()
    assert (stripe_note["pre_payment_amount"], stripe_note["credit_amount"]) == (0, 1200)
    assert (stripe_note["refund_amount"], stripe_note["out_of_band_amount"]) == (0, 0)
    (customer,) = fake_stripe.customers.values()
    assert customer["balance"] == -1200  # deducted from the customer's next invoice
    assert fake_stripe.invoices[mirrored.stripe_invoice_id]["status"] == "paid"
    assert_every_change_carries_an_idempotency_key(fake_stripe)


def test_a_void_of_an_invoice_paid_in_stripe_before_its_webhook_came_is_credited_not_voided(
    session, stripe_settings, fake_stripe, mirrored
):
    fake_stripe.pay(mirrored.stripe_invoice_id)  # the invoice.paid event is still on its way
    note = void_invoice(session, mirrored.id, "Erreur de plan", LATER, settings=stripe_settings)

    assert mirror(session, stripe_settings, LATER).done == [note.id]

    assert fake_stripe.requests_to("POST", VOID_PATH) == []
    (stripe_note,) = fake_stripe.credit_notes.values()
    assert (stripe_note["total"], stripe_note["credit_amount"]) == (5071, 5071)
    assert fake_stripe.customers[stripe_note["customer"]]["balance"] == -5071


def test_a_credit_note_whose_answer_is_lost_is_found_again_not_made_twice(
    session, stripe_settings, fake_stripe, mirrored
):
    note = credit(session, stripe_settings, mirrored, "10.00")
    fake_stripe.lose_next(1, after=2)  # Stripe makes the credit note; we never hear of it

    assert note.id in mirror(session, stripe_settings, LATER).failed
    assert mirror(session, stripe_settings, LATER + MINUTE).done == [note.id]

    (stripe_note,) = fake_stripe.credit_notes.values()
    assert note.stripe_credit_note_id == stripe_note["id"]
    assert len(fake_stripe.requests_to("POST", "/v1/credit_notes")) == 1


def test_a_credit_note_of_an_invoice_still_queued_is_mirrored_right_after_it(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    note = credit(session, stripe_settings, invoice, "10.00")

    assert mirror(session, stripe_settings, LATER).done == [invoice.id, note.id]

    stripe_invoice = fake_stripe.invoices[invoice.stripe_invoice_id]
    assert (stripe_invoice["total"], stripe_invoice["amount_remaining"]) == (5071, 3871)
    assert [n["invoice"] for n in fake_stripe.credit_notes.values()] == [stripe_invoice["id"]]


def test_a_credit_note_waits_while_its_invoice_fails_to_reach_stripe(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    note = credit(session, stripe_settings, invoice, "10.00")
    fake_stripe.fail_next(1)

    report = mirror(session, stripe_settings, LATER)

    assert set(report.failed) == {invoice.id, note.id}
    assert "waits for F-2026-000001" in report.failed[note.id]
    assert fake_stripe.credit_notes == {}
    assert mirror(session, stripe_settings, LATER + MINUTE).done == [invoice.id, note.id]
    assert len(fake_stripe.credit_notes) == 1


def test_a_void_after_a_partial_credit_closes_the_stripe_invoice_with_a_credit_note(
    session, database, stripe_settings, fake_stripe, mirrored
):
    partial = credit(session, stripe_settings, mirrored, "10.00")
    mirror(session, stripe_settings, LATER)
    note = void_invoice(session, mirrored.id, "Erreur de plan", LATER, settings=stripe_settings)

    assert mirror(session, stripe_settings, LATER).done == [note.id]

    # Stripe's invoice already carries a credit note: the rest, 38.71, is credited too.
    assert [n["total"] for n in fake_stripe.credit_notes.values()] == [1200, 3871]
    assert note.stripe_credit_note_id not in (None, partial.stripe_credit_note_id)
    stripe_invoice = fake_stripe.invoices[mirrored.stripe_invoice_id]
    assert (stripe_invoice["status"], stripe_invoice["amount_paid"]) == ("paid", 0)
    # Stripe then says the invoice is paid, though nothing was: no refund is due.
    body, headers = signed_webhook(fake_stripe.event("invoice.paid", stripe_invoice))
    client = create_app(stripe_settings, database).test_client()
    response = client.post("/api/v1/stripe/webhook", data=body, headers=headers)
    assert response.json["outcome"] == "applied"
    session.refresh(mirrored)
    assert (mirrored.status, mirrored.payment_status, mirrored.paid_at) == (
        "void", PAYMENT_VOID, None,
    )  # fmt: skip
