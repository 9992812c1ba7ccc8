"""Dunning over a month of simulated days: each step once, mailed through a real SMTP
server, stopped by a payment or a credit note, the block lifted the moment it is paid."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from billing.access.services import vehicle_access
from billing.auth import SYSTEM
from billing.devices.services import create_customer
from billing.dunning.models import MAIL_PENDING, MAIL_SENT, MAIL_SKIPPED, DunningRecord
from billing.dunning.services import records_of, run_dunning
from billing.dunning.steps import parse_steps
from billing.payments.collection import void_invoice
from billing.payments.gateway import WebhookEvent as StripeEvent
from billing.payments.services import record_webhook_event
from billing.settings import load_settings
from billing.webhooks.events import INVOICE_OVERDUE, VEHICLE_ACCESS_CHANGED
from billing.webhooks.models import WebhookEvent
from billing.webhooks.services import create_endpoint
from tests.conftest import NOW, customer_payload
from tests.integration.invoicing import issued_invoice
from tests.smtp_server import smtp_server

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def mailbox(tmp_path):
    with smtp_server() as (port, mailbox):
        mailbox.settings = load_settings(
            data_dir=tmp_path, smtp={"host": "127.0.0.1", "port": port, "starttls": False}
        )
        yield mailbox


def morning(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9), PARIS).astimezone(dt.UTC)


def pay(session, invoice, now):
    stripe_invoice = {"id": f"in_{invoice.number}", "metadata": {"invoice_id": invoice.id},
                      "status_transitions": {"paid_at": int(now.timestamp())}}  # fmt: skip
    event = StripeEvent(f"evt_{invoice.number}", "invoice.paid", stripe_invoice)
    assert record_webhook_event(session, event, now) == "applied"


def steps_taken(session, invoice) -> list[tuple[str, str]]:
    return [(record.step, record.mail_status) for record in records_of(session, invoice.id)]


def events_of(session, event_type) -> list[dict]:
    rows = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.type == event_type)
        .order_by(WebhookEvent.created_at)
    )
    return [json.loads(row.body) for row in rows]


def test_a_month_of_days_with_payments_arriving_between_the_steps(session, registry, mailbox):
    settings = mailbox.settings
    create_endpoint(
        session, SYSTEM,
        {"url": "http://hooks.example/", "events": [INVOICE_OVERDUE, VEHICLE_ACCESS_CHANGED]}, NOW,
    )  # fmt: skip
    third = create_customer(session, customer_payload("Client C"), NOW)
    paid_early = issued_invoice(session, registry.customer_id, "F-2026-000001")
    paid_late = issued_invoice(session, registry.other_customer_id, "F-2026-000002")
    voided = issued_invoice(session, third.id, "F-2026-000003")
    due = paid_early.due_date
    blocked_days = []

    for day in range(0, 41):
        today = due + dt.timedelta(days=day)
        now = morning(today)
        if day == 10:
            pay(session, paid_early, now)
        if day == 16:
            void_invoice(session, voided.id, "erreur de facturation", now, settings=settings)
        if day == 33:
            pay(session, paid_late, now)
            assert vehicle_access(session, SYSTEM, registry.other_vehicle_id, now).allowed
        run_dunning(session, now, settings)
        if not vehicle_access(session, SYSTEM, registry.other_vehicle_id, now).allowed:
            blocked_days.append(day)

    assert steps_taken(session, paid_early) == [
        ("D+1 overdue", "none"), ("D+7 reminder", MAIL_SENT),
    ]  # fmt: skip
    assert steps_taken(session, voided) == [
        ("D+1 overdue", "none"), ("D+7 reminder", MAIL_SENT), ("D+15 reminder", MAIL_SENT),
    ]  # fmt: skip
    assert steps_taken(session, paid_late) == [
        ("D+1 overdue", "none"), ("D+7 reminder", MAIL_SENT), ("D+15 reminder", MAIL_SENT),
        ("D+20 penalty_notice", MAIL_SENT), ("D+30 block", MAIL_SENT),
    ]  # fmt: skip
    assert blocked_days == [30, 31, 32]
    assert vehicle_access(session, SYSTEM, registry.vehicle_id, morning(due)).allowed
    subjects = [message["Subject"] for message in mailbox.messages]
    assert subjects == [
        "Rappel : facture F-2026-000001 échue le 03/01/2027",
        "Rappel : facture F-2026-000002 échue le 03/01/2027",
        "Rappel : facture F-2026-000003 échue le 03/01/2027",
        "Rappel : facture F-2026-000002 échue le 03/01/2027",
        "Rappel : facture F-2026-000003 échue le 03/01/2027",
        "Pénalités de retard : facture F-2026-000002",
        "Véhicules suspendus : facture F-2026-000002 impayée",
    ]
    assert {message["To"] for message in mailbox.messages} == {"compta@lp.example"}
    penalty = mailbox.messages[5].get_content()
    assert "impayée depuis 20 jours : 22.80 EUR TTC restent dus" in penalty
    assert "indemnité forfaitaire pour frais de recouvrement de 40 €" in penalty
    overdue = [event["data"]["invoice"]["number"] for event in events_of(session, INVOICE_OVERDUE)]
    assert sorted(overdue) == ["F-2026-000001", "F-2026-000002", "F-2026-000003"]
    access = [
        (event["data"]["vehicle_id"], event["data"]["allowed"], event["created_at"][:10])
        for event in events_of(session, VEHICLE_ACCESS_CHANGED)
    ]
    assert access == [
        (registry.other_vehicle_id, False, "2027-02-02"),
        (registry.other_vehicle_id, True, "2027-02-05"),
    ]


def test_after_missed_days_every_due_step_is_recorded_but_only_the_latest_is_mailed(
    session, registry, mailbox
):
    invoice = issued_invoice(session, registry.customer_id, "F-2026-000001")

    run_dunning(session, morning(invoice.due_date + dt.timedelta(days=16)), mailbox.settings)
    run_dunning(session, morning(invoice.due_date + dt.timedelta(days=17)), mailbox.settings)

    assert steps_taken(session, invoice) == [
        ("D+1 overdue", "none"), ("D+7 reminder", MAIL_SKIPPED), ("D+15 reminder", MAIL_SENT),
    ]  # fmt: skip
    assert len(mailbox.messages) == 1


def test_a_mail_that_fails_is_sent_at_a_later_pass(session, registry, tmp_path):
    down = load_settings(
        data_dir=tmp_path, smtp={"host": "127.0.0.1", "port": 9, "starttls": False}
    )
    invoice = issued_invoice(session, registry.customer_id, "F-2026-000001")
    day_7 = morning(invoice.due_date + dt.timedelta(days=7))

    failed = run_dunning(session, day_7, down)
    with smtp_server() as (port, mailbox):
        up = load_settings(data_dir=tmp_path, smtp={"host": "127.0.0.1", "port": port,
                                                   "starttls": False})  # fmt: skip
        sent = run_dunning(session, day_7 + dt.timedelta(hours=1), up)

    (record,) = session.scalars(select(DunningRecord).where(DunningRecord.kind == "reminder"))
    assert list(failed.mail_failures) == [f"{invoice.id} D+7 reminder"]
    assert sent.mailed == [f"{invoice.id} D+7 reminder"] and sent.steps == []
    assert (record.mail_status, record.mail_attempts, record.mail_error) == (MAIL_SENT, 2, None)
    assert len(mailbox.messages) == 1


def test_without_an_smtp_host_the_mail_is_logged(session, registry, settings, caplog):
    invoice = issued_invoice(session, registry.customer_id, "F-2026-000001")

    with caplog.at_level("INFO", logger="billing.mail"):
        run_dunning(session, morning(invoice.due_date + dt.timedelta(days=7)), settings)

    assert "Rappel : facture F-2026-000001" in caplog.text
    assert steps_taken(session, invoice)[-1] == ("D+7 reminder", MAIL_SENT)
    assert MAIL_PENDING not in {status for _, status in steps_taken(session, invoice)}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("7:reminder,7:block", "days must increase"),
        ("15:reminder,7:reminder", "days must increase"),
        ("7:remind", "the kind is one of"),
        ("0:reminder", "days must be 1 to 3650"),
        ("x:reminder", "days must be 1 to 3650"),
        ("10:block,20:block", "at most one block"),
    ],
)
def test_a_dunning_plan_out_of_its_rules_is_refused_naming_the_step(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_steps(text)


def test_the_default_plan_is_the_documented_one():
    plan = parse_steps(load_settings().dunning.steps)

    assert [step.key for step in plan] == [
        "D+1 overdue", "D+7 reminder", "D+15 reminder", "D+20 penalty_notice", "D+30 block",
    ]  # fmt: skip
