"""Poison messages: whatever a message holds, the one validate-and-store function keeps
it as readings or as a rejection, and the messages around it are stored all the same."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from billing.mqtt import telemetry_topic
from billing.telemetry import contract as telemetry
from billing.telemetry import services, storage
from billing.telemetry.models import Reading, RejectedMessage
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.conftest import NOW, auth
from tests.unit.telemetry.test_telemetry_decoding import DOCUMENTS, hostile_payloads, json_bytes

GOOD_TS = "2026-11-15T09:00:00Z"
DEEP = b"[" * 10_000 + b"]" * 10_000


def good(msg_id: str, odometer_m: int = 1000) -> bytes:
    return json.dumps({"msg_id": msg_id, "ts": GOOD_TS, "odometer_m": odometer_m}).encode()


def poisoned(msg_id: str) -> bytes:
    return b'{"msg_id": "%s", "ts": "%s", "junk": %s}' % (msg_id.encode(), GOOD_TS.encode(), DEEP)


def store(session, vehicle_id: str, *payloads: bytes):
    messages = [IncomingMessage(telemetry_topic(vehicle_id), payload) for payload in payloads]
    return store_telemetry(
        session, messages, NOW, directory=VehicleDirectory(max_age=0), max_future_seconds=3600
    )


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_poison_message_among_good_ones_is_rejected_alone(session, registry):
    outcome = store(session, registry.vehicle_id, good("a"), poisoned("p"), good("b", 1200))
    assert outcome.stored == 2
    [(index, rejection)] = outcome.rejections
    assert (index, rejection.reason) == (1, "too_deeply_nested")
    row = session.get(RejectedMessage, outcome.rejected_ids[0])
    assert (row.reason, row.payload) == ("too_deeply_nested", poisoned("p"))


def test_an_unexpected_error_decoding_one_message_rejects_it_as_internal_error(
    session, registry, monkeypatch
):
    decode = telemetry.decode_payload

    def explode_on_boom(vehicle_id, payload, limits, bounds):
        if b"boom" in payload:
            raise KeyError("boom")
        return decode(vehicle_id, payload, limits, bounds)

    monkeypatch.setattr(telemetry, "decode_payload", explode_on_boom)
    outcome = store(session, registry.vehicle_id, good("a"), good("boom"), good("b"))
    assert outcome.stored == 2
    [(_index, rejection)] = outcome.rejections
    assert rejection.reason == "internal_error"
    assert rejection.message == "unexpected KeyError while decoding: 'boom'"
    assert session.get(RejectedMessage, outcome.rejected_ids[0]).payload == good("boom")


def test_a_message_that_cannot_be_stored_is_rejected_and_the_rest_of_its_batch_stored(
    session, registry, monkeypatch
):
    insert = storage.insert_readings

    def refuse_boom(session, readings, received_at):
        if any(r.msg_id == "boom" for r in readings):
            raise ValueError("cannot store boom")
        return insert(session, readings, received_at)

    monkeypatch.setattr(services, "insert_readings", refuse_boom)
    outcome = store(session, registry.vehicle_id, good("a"), good("boom"), good("b", 1200))
    assert outcome.stored == 2
    [(index, rejection)] = outcome.rejections
    assert index == 1
    assert rejection.reason == "internal_error"
    assert rejection.message == "unexpected ValueError while storing: cannot store boom"
    stored = session.scalars(select(Reading.msg_id).where(Reading.vehicle_id == "VEH-A")).all()
    assert sorted(stored) == ["a", "b"]


def test_a_deeply_nested_http_body_is_kept_as_a_rejected_message_and_answers_422(
    client, keys, registry, session
):
    response = client.post(
        f"/api/v1/vehicles/{registry.vehicle_id}/telemetry",
        data=poisoned("p"),
        headers={**auth(keys["admin"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json["error"]["details"]["$"][0].startswith("too_deeply_nested: ")
    [row] = session.scalars(select(RejectedMessage)).all()
    assert (row.source, row.reason, row.payload) == ("http", "too_deeply_nested", poisoned("p"))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.one_of(DOCUMENTS.map(json_bytes), hostile_payloads()), min_size=1, max_size=5))
def test_every_message_of_any_batch_is_stored_or_rejected(session, registry, payloads):
    readings_before, rejected_before = count(session, Reading), count(session, RejectedMessage)
    outcome = store(session, registry.vehicle_id, *payloads)
    rejected_messages = {index for index, _rejection in outcome.rejections}
    for index, payload in enumerate(payloads):
        decoded = telemetry.decode_payload(
            registry.vehicle_id, payload, telemetry.Limits(latest=NOW.replace(hour=11))
        )
        assert decoded.readings or index in rejected_messages, payload[:200]
    assert all(r.reason != "internal_error" for _i, r in outcome.rejections)
    assert count(session, Reading) == readings_before + outcome.stored
    # Each rejection is on record (the same bytes twice for the same reason: once).
    assert len(outcome.rejected_ids) == len(outcome.rejections)
    on_record = session.scalars(
        select(RejectedMessage.id).where(RejectedMessage.id.in_(outcome.rejected_ids))
    ).all()
    assert set(on_record) == set(outcome.rejected_ids)
    assert count(session, RejectedMessage) <= rejected_before + len(outcome.rejections)
