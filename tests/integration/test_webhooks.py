"""Outbound webhooks against a real HTTP receiver: signed, retried with backoff after
errors and timeouts, delivered once per crash-free pass, replayable, deduplicated by id."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billing.auth import SYSTEM
from billing.db import utcnow
from billing.payments.collection import issue_credit_note
from billing.payments.gateway import WebhookEvent as StripeEvent
from billing.payments.services import record_webhook_event
from billing.settings import load_settings
from billing.webhooks import services, signing
from billing.webhooks.events import (
    CREDIT_NOTE_ISSUED,
    INVOICE_FINALIZED,
    INVOICE_PAID,
)
from billing.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookEvent
from billing.webhooks.sender import HttpSender
from tests.conftest import auth
from tests.stripe_fixtures import ISSUED_AT, issue_november_invoice
from tests.webhook_receiver import HANG

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts-and-webhooks.md"
T0 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path, webhooks={"timeout_seconds": 0.5})


def documented_verify():
    """The receiver of docs/alerts-and-webhooks.md, exactly as printed there."""
    text = DOCS.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["verify"]


def add_endpoint(session, url, events, customer_id=None):
    return services.create_endpoint(
        session, SYSTEM, {"url": url, "events": events, "customer_id": customer_id}, T0
    )


def emit(session, customer_id, number, now=T0):
    event = services.emit_event(session, INVOICE_PAID, customer_id, {"n": number}, now)
    session.commit()
    return event


def deliveries(session) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_finalized_invoice_reaches_its_customers_endpoint_signed_as_documented(
    session, registry, example_plans, settings, receiver
):
    endpoint = add_endpoint(session, receiver.url, [INVOICE_FINALIZED], registry.customer_id)
    invoice = issue_november_invoice(session, registry, settings)

    report = services.deliver_due(session, HttpSender(), ISSUED_AT, settings.webhooks)

    assert len(report.delivered) == 1
    (request,) = receiver.received
    body = json.loads(request.body)
    assert body["type"] == INVOICE_FINALIZED
    assert request.headers[signing.EVENT_ID_HEADER] == body["id"]
    assert request.headers[signing.EVENT_TYPE_HEADER] == INVOICE_FINALIZED
    assert body["customer_id"] == registry.customer_id
    assert body["data"]["invoice"] == {
        "id": invoice.id, "kind": "invoice", "number": "F-2026-000001",
        "customer_id": registry.customer_id, "period": "2026-11", "status": "finalized",
        "currency": "EUR", "total_net": "42.26", "total_vat": "8.45", "total_gross": "50.71",
        "issue_date": "2026-12-05", "due_date": "2027-01-04", "credited_invoice_id": None,
    }  # fmt: skip
    verify = documented_verify()
    header = request.headers[signing.SIGNATURE_HEADER]
    assert header.startswith(f"t={int(ISSUED_AT.timestamp())},v1=")
    days = 10 * 86400  # signed on the test's 5 December, checked today
    assert verify(endpoint.secret, header, request.body, tolerance=days)
    assert not verify(endpoint.secret, header, request.body + b" ", tolerance=days)
    assert not verify(signing.new_secret(), header, request.body, tolerance=days)
    (delivery,) = deliveries(session)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DELIVERED, 1, 200)


def test_payment_and_credit_notes_are_events_too(
    session, registry, example_plans, settings, receiver
):
    add_endpoint(session, receiver.url, [INVOICE_PAID, CREDIT_NOTE_ISSUED])
    invoice = issue_november_invoice(session, registry, settings)
    paid_at = int(ISSUED_AT.timestamp()) + 3600
    stripe_invoice = {"id": "in_1", "metadata": {"invoice_id": invoice.id},
                      "status_transitions": {"paid_at": paid_at}}  # fmt: skip
    record_webhook_event(session, StripeEvent("evt_s1", "invoice.paid", stripe_invoice), ISSUED_AT)
    record_webhook_event(session, StripeEvent("evt_s2", "invoice.paid", stripe_invoice), ISSUED_AT)
    note = issue_credit_note(
        session, invoice.id, "geste commercial", ISSUED_AT, settings=settings, amount=Decimal(10)
    )

    services.deliver_due(session, HttpSender(), ISSUED_AT, settings.webhooks)

    bodies = [json.loads(request.body) for request in receiver.received]
    assert [body["type"] for body in bodies] == [INVOICE_PAID, CREDIT_NOTE_ISSUED]
    assert bodies[0]["data"]["invoice"]["status"] == "paid"  # once: the replay told nothing
    credit = bodies[1]["data"]["invoice"]
    assert (credit["id"], credit["kind"], credit["total_net"]) == (note.id, "credit_note", "10.00")
    assert credit["credited_invoice_id"] == invoice.id


def test_a_receiver_answering_500_then_timing_out_gets_it_again_after_1_then_2_minutes(
    session, registry, settings, client, keys, receiver
):
    endpoint = add_endpoint(session, receiver.url, [INVOICE_PAID], registry.customer_id)
    emit(session, registry.customer_id, 1)
    receiver.script = [500, HANG, 200]
    sender = HttpSender()

    first = services.deliver_due(session, sender, T0, settings.webhooks)
    early = services.deliver_due(session, sender, T0 + MINUTE / 2, settings.webhooks)
    second = services.deliver_due(session, sender, T0 + MINUTE, settings.webhooks)
    (delivery,) = deliveries(session)
    retry_at = delivery.next_attempt_at
    third = services.deliver_due(session, sender, T0 + 3 * MINUTE, settings.webhooks)

    assert list(first.failed.values()) == ["HTTP 500: ok"]
    assert len(early) == 0
    assert list(second.failed.values()) == ["no answer within 0.5 s"]
    assert retry_at == T0 + 3 * MINUTE
    assert len(third.delivered) == 1
    assert len({request.headers[signing.EVENT_ID_HEADER] for request in receiver.received}) == 1
    log = client.get(
        f"/api/v1/webhook-endpoints/{endpoint.id}/deliveries/{delivery.id}",
        headers=auth(keys["customer"]),
    ).json
    assert [(a["status_code"], a["error"]) for a in log["attempt_log"]] == [
        (500, "HTTP 500: ok"),
        (None, "no answer within 0.5 s"),
        (200, None),
    ]
    assert (log["status"], log["attempts"], log["event_type"]) == ("delivered", 3, INVOICE_PAID)
    assert log["payload"]["data"] == {"n": 1}


def test_a_failing_receiver_is_retried_for_a_day_then_given_up_and_replayable(
    session, registry, settings, client, keys, receiver
):
    endpoint = add_endpoint(session, receiver.url, [INVOICE_PAID], registry.customer_id)
    event = emit(session, registry.customer_id, 1)
    receiver.script = [500] * 18
    now = T0
    while True:
        services.deliver_due(session, HttpSender(), now, settings.webhooks)
        (delivery,) = deliveries(session)
        if delivery.status != PENDING:
            break
        now = delivery.next_attempt_at

    # 1, 2, 4 … 64 minutes, then every 2 hours: the 18th attempt is the last within a day.
    assert delivery.status == FAILED
    assert delivery.attempts == 18
    assert now - T0 == dt.timedelta(minutes=127 + 10 * 120)
    response = client.post(
        f"/api/v1/webhook-endpoints/{endpoint.id}/deliveries/{delivery.id}/replay",
        headers=auth(keys["customer"]),
    )
    assert response.status_code == 202, response.json
    assert response.json["status"] == "pending"
    services.deliver_due(session, HttpSender(), utcnow(), settings.webhooks)
    session.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DELIVERED, 19, 200)
    ids = {request.headers[signing.EVENT_ID_HEADER] for request in receiver.received}
    assert ids == {event.id}


def test_the_documented_receiver_takes_a_fresh_signature_and_refuses_a_stale_one():
    verify = documented_verify()
    secret, body = signing.new_secret(), b'{"id":"evt_1"}'
    now = int(utcnow().timestamp())
    rotated = signing.signature_header([signing.new_secret(), secret], now, body)

    assert verify(secret, signing.signature_header([secret], now, body), body)
    assert verify(secret, rotated, body)  # the second v1 of an overlap
    assert not verify(secret, signing.signature_header([secret], now - 600, body), body)
    assert not verify(secret, f"v1={signing.signature(secret, now, body)}", body)
    assert not verify(secret, "garbage", body)


class Crash(BaseException):
    """The sender process dying: nothing after it runs."""


class CrashingSender(HttpSender):
    """Sends, then dies before the answer is recorded, at the `crash_at`-th request."""

    def __init__(self, crash_at: int):
        self.crash_at, self.sent = crash_at, 0

    def post(self, url, body, headers, timeout):
        answer = super().post(url, body, headers, timeout)
        self.sent += 1
        if self.sent == self.crash_at:
            raise Crash
        return answer


def test_a_sender_crash_resends_only_the_delivery_in_flight_with_the_same_event_id(
    session, registry, settings, receiver
):
    add_endpoint(session, receiver.url, [INVOICE_PAID], registry.customer_id)
    events = [emit(session, registry.customer_id, n) for n in range(3)]

    with pytest.raises(Crash):
        services.deliver_due(session, CrashingSender(crash_at=2), T0, settings.webhooks)
    session.rollback()
    after_restart = services.deliver_due(session, HttpSender(), T0, settings.webhooks)
    claim_lapsed = T0 + dt.timedelta(seconds=settings.webhooks.timeout_seconds) + 2 * MINUTE
    later = services.deliver_due(session, HttpSender(), claim_lapsed, settings.webhooks)

    sent = [request.headers[signing.EVENT_ID_HEADER] for request in receiver.received]
    assert sent == [events[0].id, events[1].id, events[2].id, events[1].id]
    assert len(after_restart.delivered) == 1 and len(later.delivered) == 1
    assert [d.status for d in deliveries(session)] == [DELIVERED] * 3
    assert [d.attempts for d in deliveries(session)] == [1, 1, 1]  # the lost answer left no log
    # What the documentation asks of receivers: deduplicate by the event id.
    assert len(set(sent)) == 3


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    session, registry, settings, receiver
):
    endpoint = add_endpoint(session, receiver.url, [INVOICE_PAID], registry.customer_id)
    old_secret = endpoint.secret
    services.rotate_secret(session, SYSTEM, endpoint.id, T0, settings.webhooks)
    emit(session, registry.customer_id, 1)
    services.deliver_due(session, HttpSender(), T0 + dt.timedelta(hours=1), settings.webhooks)
    emit(session, registry.customer_id, 2, now=T0 + dt.timedelta(hours=25))
    services.deliver_due(session, HttpSender(), T0 + dt.timedelta(hours=25), settings.webhooks)

    during, after = receiver.received
    for request, secrets in ((during, [endpoint.secret, old_secret]), (after, [endpoint.secret])):
        header = request.headers[signing.SIGNATURE_HEADER]
        timestamp = int(header.split(",")[0].removeprefix("t="))
        expected = ",".join(
            [f"t={timestamp}"]
            + [f"v1={signing.signature(s, timestamp, request.body)}" for s in secrets]
        )
        assert header == expected
    assert endpoint.secret != old_secret


def test_an_event_goes_to_its_accounts_endpoints_and_to_those_of_every_account(
    session, registry, settings
):
    own = add_endpoint(session, "http://a.example/h", [INVOICE_PAID], registry.customer_id)
    other = add_endpoint(session, "http://b.example/h", [INVOICE_PAID], registry.other_customer_id)
    every = add_endpoint(session, "http://c.example/h", [INVOICE_PAID])
    add_endpoint(session, "http://d.example/h", [CREDIT_NOTE_ISSUED])

    emit(session, registry.other_customer_id, 1)

    assert {d.endpoint_id for d in deliveries(session)} == {other.id, every.id}
    assert own.id not in {d.endpoint_id for d in deliveries(session)}


def test_an_event_whose_change_rolls_back_is_never_sent(session, registry):
    add_endpoint(session, "http://a.example/h", [INVOICE_PAID], registry.customer_id)

    services.emit_event(session, INVOICE_PAID, registry.customer_id, {"n": 1}, T0)
    session.rollback()

    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert deliveries(session) == []


def test_nothing_is_stored_when_no_endpoint_wants_the_event(session, registry):
    add_endpoint(session, "http://a.example/h", [CREDIT_NOTE_ISSUED], registry.customer_id)

    assert emit(session, registry.customer_id, 1) is None
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


# --- the API -------------------------------------------------------------------------------

ENDPOINTS = "/api/v1/webhook-endpoints"


def test_a_customer_registers_an_endpoint_of_its_own_and_reads_its_secret_once(
    client, keys, registry
):
    created = client.post(
        ENDPOINTS,
        json={"url": "https://hooks.example/b", "events": ["invoice.paid", "invoice.paid"]},
        headers=auth(keys["customer"]),
    )

    assert created.status_code == 201, created.json
    assert created.json["customer_id"] == registry.customer_id
    assert created.json["events"] == ["invoice.paid"]
    assert created.json["secret"].startswith("whsec_")
    shown = client.get(f"{ENDPOINTS}/{created.json['id']}", headers=auth(keys["customer"])).json
    assert "secret" not in shown
    listed = client.get(ENDPOINTS, headers=auth(keys["customer"])).json
    assert [item["id"] for item in listed["items"]] == [created.json["id"]]
    rotated = client.post(
        f"{ENDPOINTS}/{created.json['id']}/rotate-secret", headers=auth(keys["customer"])
    ).json
    assert rotated["secret"] != created.json["secret"]
    assert rotated["previous_secret_expires_at"] is not None


def test_a_customer_never_sees_nor_registers_for_another_account(client, keys, session, registry):
    theirs = add_endpoint(session, "http://b.example/h", [INVOICE_PAID], registry.other_customer_id)
    mine = client.post(
        ENDPOINTS,
        json={"url": "http://x.example/", "events": ["invoice.paid"],
              "customer_id": registry.other_customer_id},
        headers=auth(keys["customer"]),
    )  # fmt: skip
    seen = client.get(f"{ENDPOINTS}/{theirs.id}", headers=auth(keys["customer"]))
    patched = client.patch(
        f"{ENDPOINTS}/{theirs.id}", json={"enabled": False}, headers=auth(keys["customer"])
    )

    assert mine.status_code == 422
    assert mine.json["error"]["details"] == {
        "customer_id": [f"customer {registry.other_customer_id} not found"]
    }
    assert (seen.status_code, patched.status_code) == (404, 404)
    assert seen.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example/", "events": ["invoice.paid"]}, "url"),
        ({"url": "not a url", "events": ["invoice.paid"]}, "url"),
        ({"url": "https://h.example/" + "a" * 3000, "events": ["invoice.paid"]}, "url"),
        ({"url": "https://h.example/", "events": ["invoice.eaten"]}, "events.0"),
        ({"url": "https://h.example/", "events": []}, "events"),
        ({"url": "https://h.example/", "events": "invoice.paid"}, "events"),
        ({"url": "https://h.example/", "events": ["invoice.paid"] * 7}, "events"),
        ({"url": "https://h.example/", "events": ["invoice.paid"], "description": "a\u202eb"},
         "description"),
        ({"url": "https://h.example/", "events": ["invoice.paid"], "customer_id": "c" * 40},
         "customer_id"),
        ({"events": ["invoice.paid"]}, "url"),
    ],
)  # fmt: skip
def test_a_malformed_endpoint_is_refused_naming_the_field(client, keys, body, field):
    response = client.post(ENDPOINTS, json=body, headers=auth(keys["admin"]))

    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]


def test_hostile_requests_get_a_clear_4xx(client, keys, session, registry):
    endpoint = add_endpoint(session, "http://a.example/h", [INVOICE_PAID], registry.customer_id)
    admin, customer = auth(keys["admin"]), auth(keys["customer"])
    base = f"{ENDPOINTS}/{endpoint.id}/deliveries"

    not_json = client.post(
        ENDPOINTS, data=b"{", headers={**admin, "Content-Type": "application/json"}
    )
    huge = client.post(
        ENDPOINTS,
        data=b"x" * (2 * 1024 * 1024),
        headers={**admin, "Content-Type": "application/json"},
    )
    finance = client.get(ENDPOINTS, headers=auth(keys["finance"]))
    operator = client.post(
        ENDPOINTS, json={"url": "http://a.example/", "events": ["invoice.paid"]},
        headers=auth(keys["operator"]),
    )  # fmt: skip
    no_delivery = client.get(f"{base}/99999999", headers=customer)
    beyond_ids = client.post(f"{base}/99999999999999999999/replay", headers=customer)
    bad_status = client.get(f"{base}?status=lost", headers=customer)
    unknown = client.delete(f"{ENDPOINTS}/whe_nothing", headers=admin)

    assert not_json.status_code == 400
    assert huge.status_code == 413
    assert finance.status_code == operator.status_code == 403
    assert no_delivery.status_code == beyond_ids.status_code == unknown.status_code == 404
    assert bad_status.status_code == 422
    assert "query.status" in bad_status.json["error"]["details"]


def test_an_endpoint_is_paused_changed_and_removed_with_its_log(client, keys, session, registry):
    endpoint = add_endpoint(session, "http://a.example/h", [INVOICE_PAID], registry.customer_id)
    emit(session, registry.customer_id, 1)
    customer = auth(keys["customer"])

    paused = client.patch(
        f"{ENDPOINTS}/{endpoint.id}",
        json={"enabled": False, "events": ["alert.triggered"]},
        headers=customer,
    )
    listed = client.get(f"{ENDPOINTS}/{endpoint.id}/deliveries", headers=customer).json
    removed = client.delete(f"{ENDPOINTS}/{endpoint.id}", headers=customer)

    assert paused.status_code == 200, paused.json
    assert (paused.json["enabled"], paused.json["events"]) == (False, ["alert.triggered"])
    assert [(d["status"], d["attempts"]) for d in listed["items"]] == [("pending", 0)]
    assert removed.status_code == 204
    assert deliveries(session) == []


def test_the_schedulers_job_sends_the_deliveries_due(
    database, session, registry, settings, receiver
):
    from billing.scheduler import jobs

    add_endpoint(session, receiver.url, [INVOICE_PAID], registry.customer_id)
    emit(session, registry.customer_id, 1, now=utcnow())
    [job] = [job for job in jobs(settings) if job.name == "webhooks"]

    assert job.run(database, settings) == 1
    assert [json.loads(r.body)["data"] for r in receiver.received] == [{"n": 1}]
