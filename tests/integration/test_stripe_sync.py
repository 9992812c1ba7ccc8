"""Finalized invoices are mirrored to Stripe through the outbox: once, to the cent, and
retried with backoff when Stripe fails, without ever making a duplicate."""

import datetime as dt

from sqlalchemy import func, select

from billing.db import utcnow
from billing.payments.collection import void_invoice
from billing.payments.gateway import StripeGateway
from billing.payments.models import PAYMENT_OPEN, StripeCustomer, StripeOutboxEntry
from billing.payments.services import mirror_due_invoices, retry_delay
from billing.scheduler import jobs, stripe_sync
from tests.stripe_fixtures import ISSUED_AT, issue_november_invoice

MINUTE = dt.timedelta(minutes=1)


def mirror(session, settings, now):
    return mirror_due_invoices(session, StripeGateway(settings.stripe), now)


def test_finalizing_an_invoice_queues_it_for_stripe_in_the_same_transaction(
    session, registry, example_plans, stripe_settings
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    entry = session.get(StripeOutboxEntry, invoice.id)
    assert (entry.attempts, entry.next_attempt_at, entry.done_at) == (0, ISSUED_AT, None)


def test_a_finalized_invoice_is_mirrored_once_with_its_number_and_amounts_to_the_cent(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)

    report = mirror(session, stripe_settings, ISSUED_AT)

    assert report.done == [invoice.id] and report.failed == {}
    (customer,) = fake_stripe.customers.values()
    assert customer["metadata"] == {"customer_id": registry.customer_id}
    assert session.get(StripeCustomer, registry.customer_id).stripe_customer_id == customer["id"]
    (mirrored,) = fake_stripe.invoices.values()
    assert mirrored["id"] == invoice.stripe_invoice_id
    assert mirrored["customer"] == customer["id"]
    assert mirrored["number"] == invoice.number == "F-2026-000001"
    assert mirrored["metadata"]["invoice_id"] == invoice.id
    assert (mirrored["status"], mirrored["collection_method"]) == ("open", "send_invoice")
    assert mirrored["days_until_due"] == (invoice.due_date - invoice.issue_date).days == 30
    # 42.26 HT and 8.45 VAT at 20 %: 50.71 TTC, in cents.
    assert [line["amount"] for line in mirrored["lines"]["data"]] == [4226, 845]
    assert mirrored["currency"] == "eur"
    assert mirrored["total"] == 5071 == int(invoice.total_gross * 100)
    assert invoice.payment_status == PAYMENT_OPEN
    entry = session.get(StripeOutboxEntry, invoice.id)
    assert (entry.attempts, entry.done_at, entry.last_error) == (1, ISSUED_AT, None)
    assert all(request.idempotency_key for request in fake_stripe.requests)


def test_a_mirrored_invoice_is_not_sent_again(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    issue_november_invoice(session, registry, stripe_settings)
    mirror(session, stripe_settings, ISSUED_AT)
    received = len(fake_stripe.requests)

    report = mirror(session, stripe_settings, ISSUED_AT + dt.timedelta(days=1))

    assert len(report) == 0
    assert len(fake_stripe.requests) == received


def test_a_failing_stripe_is_retried_with_backoff_and_the_invoice_mirrored_exactly_once(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    entry = session.get(StripeOutboxEntry, invoice.id)
    # The customer and the invoice are made, then Stripe fails on the first item, twice.
    fake_stripe.fail_next(2, after=2)

    first = mirror(session, stripe_settings, ISSUED_AT)
    assert "HTTP 500" in first.failed[invoice.id]
    assert (entry.attempts, entry.next_attempt_at) == (1, ISSUED_AT + MINUTE)
    assert "HTTP 500" in entry.last_error and entry.done_at is None
    assert invoice.stripe_invoice_id is not None  # kept: the retry completes this one

    received = len(fake_stripe.requests)
    assert len(mirror(session, stripe_settings, ISSUED_AT + MINUTE / 2)) == 0  # not due yet
    assert len(fake_stripe.requests) == received

    second = mirror(session, stripe_settings, ISSUED_AT + MINUTE)
    assert invoice.id in second.failed
    assert (entry.attempts, entry.next_attempt_at) == (2, ISSUED_AT + 3 * MINUTE)

    third = mirror(session, stripe_settings, ISSUED_AT + 3 * MINUTE)
    assert third.done == [invoice.id]
    assert (entry.attempts, entry.done_at, entry.last_error) == (3, ISSUED_AT + 3 * MINUTE, None)

    mirror(session, stripe_settings, ISSUED_AT + dt.timedelta(days=1))  # a rerun: nothing
    assert len(fake_stripe.customers) == 1
    (mirrored,) = fake_stripe.invoices.values()
    assert [line["amount"] for line in mirrored["lines"]["data"]] == [4226, 845]
    assert (mirrored["status"], mirrored["total"]) == ("open", 5071)
    assert len(fake_stripe.requests_to("POST", "/v1/invoices")) == 1


def test_an_answer_lost_on_the_way_back_is_replayed_by_stripe_not_repeated(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    fake_stripe.lose_next(1, after=1)  # Stripe creates the invoice; we never hear of it

    assert invoice.id in mirror(session, stripe_settings, ISSUED_AT).failed
    assert invoice.stripe_invoice_id is None
    assert mirror(session, stripe_settings, ISSUED_AT + MINUTE).done == [invoice.id]

    creations = fake_stripe.requests_to("POST", "/v1/invoices")
    assert len(creations) == 2
    assert creations[0].idempotency_key == creations[1].idempotency_key
    (mirrored,) = fake_stripe.invoices.values()
    assert invoice.stripe_invoice_id == mirrored["id"]
    assert mirrored["total"] == 5071


def test_an_invoice_voided_before_its_turn_is_not_sent_to_stripe_nor_its_credit_note(
    session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    note = void_invoice(session, invoice.id, "wrong plan", ISSUED_AT, settings=stripe_settings)

    assert mirror(session, stripe_settings, ISSUED_AT + MINUTE).done == [invoice.id, note.id]

    assert fake_stripe.requests == []
    assert session.get(StripeOutboxEntry, invoice.id).done_at == ISSUED_AT + MINUTE
    assert session.get(StripeOutboxEntry, note.id).done_at == ISSUED_AT + MINUTE
    assert invoice.stripe_invoice_id is None and invoice.payment_status is None
    assert note.stripe_credit_note_id is None


def test_retry_delays_double_from_a_minute_up_to_an_hour():
    delays = [retry_delay(failures) for failures in (1, 2, 3, 6, 7, 50)]
    minutes = [delay / MINUTE for delay in delays]
    assert minutes == [1, 2, 4, 32, 60, 60]


def test_the_scheduler_job_mirrors_the_outbox_when_stripe_is_configured(
    database, session, registry, example_plans, stripe_settings, fake_stripe
):
    invoice = issue_november_invoice(session, registry, stripe_settings)
    # The job works on the clock's time, and the invoice may be issued in its future.
    session.get(StripeOutboxEntry, invoice.id).next_attempt_at = utcnow()
    session.commit()
    job = {job.name: job for job in jobs(stripe_settings)}["stripe_sync"]
    assert job.seconds == stripe_settings.stripe.sync_interval_seconds

    assert job.run(database, stripe_settings) == 1

    session.expire_all()
    assert session.get(StripeOutboxEntry, invoice.id).done_at is not None
    assert len(fake_stripe.invoices) == 1
    assert stripe_sync(database, stripe_settings) == 0


def test_without_stripe_keys_finalizing_queues_nothing_and_no_job_runs(
    session, registry, example_plans, settings
):
    assert not settings.stripe.enabled
    invoice = issue_november_invoice(session, registry, settings)

    assert invoice.status == "finalized" and invoice.stripe_invoice_id is None
    assert session.scalar(select(func.count()).select_from(StripeOutboxEntry)) == 0
    assert "stripe_sync" not in {job.name for job in jobs(settings)}
