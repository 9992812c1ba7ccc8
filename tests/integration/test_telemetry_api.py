"""Telemetry over HTTP goes through the same validation and storage as MQTT; rejected
input can be listed, read and replayed; /metrics reports what operators watch."""

import base64
import hashlib
import json

from sqlalchemy import select

from billing.telemetry.models import Reading
from tests.conftest import auth

READING = {"msg_id": "h-1", "ts": "2026-11-15T09:00:00Z", "odometer_m": 1200, "energy_wh": 40}


def post_telemetry(client, key, vehicle_id, body):
    return client.post(
        f"/api/v1/vehicles/{vehicle_id}/telemetry",
        data=body if isinstance(body, bytes) else None,
        json=None if isinstance(body, bytes) else body,
        headers=auth(key),
    )


def test_readings_posted_over_http_are_stored_once(client, keys, registry, session):
    batch = [READING, {**READING, "msg_id": "h-2", "ts": "2026-11-15T09:00:30Z"}]
    first = post_telemetry(client, keys["operator"], registry.vehicle_id, batch)
    again = post_telemetry(client, keys["operator"], registry.vehicle_id, READING)
    assert first.status_code == 200
    assert first.json == {"stored": 2, "duplicates": 0, "rejected": []}
    assert again.json == {"stored": 0, "duplicates": 1, "rejected": []}
    stored = session.scalars(select(Reading.msg_id).where(Reading.vehicle_id == "VEH-A")).all()
    assert sorted(stored) == ["h-1", "h-2"]


def test_a_partly_bad_batch_stores_the_good_readings_and_names_the_bad_one(client, keys, registry):
    batch = [READING, {"msg_id": "h-3", "ts": "2026-11-15T09:01:00Z", "odometer_m": -5}]
    response = post_telemetry(client, keys["admin"], registry.vehicle_id, batch)
    assert response.status_code == 200
    [rejection] = response.json["rejected"]
    assert response.json["stored"] == 1
    assert (rejection["reason"], rejection["path"]) == ("schema_violation", "$[1]")
    assert "$[1].odometer_m" in rejection["message"]


def test_a_body_with_nothing_to_store_is_refused_with_422_and_kept(client, keys, registry):
    response = post_telemetry(client, keys["admin"], registry.vehicle_id, b"{oops")
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == ["$"]
    assert error["details"]["$"][0].startswith("malformed_json: malformed JSON")
    listed = client.get(
        "/api/v1/rejected-messages?reason=malformed_json&include=payload",
        headers=auth(keys["admin"]),
    ).json
    assert listed["total"] == 1
    item = listed["items"][0]
    assert (item["payload"], item["payload_encoding"], item["source"]) == ("{oops", "utf-8", "http")
    assert (item["payload_size"], item["payload_truncated"]) == (5, False)
    assert item["payload_sha256"] == hashlib.sha256(b"{oops").hexdigest()


def test_telemetry_for_another_fleets_vehicle_is_not_found(client, keys, registry):
    response = post_telemetry(client, keys["operator"], registry.other_vehicle_id, READING)
    assert response.status_code == 404


def test_operators_list_only_the_rejections_of_their_fleets(client, keys, registry):
    post_telemetry(client, keys["admin"], registry.vehicle_id, b"[]")
    post_telemetry(client, keys["admin"], registry.other_vehicle_id, b"[]")
    mine = client.get("/api/v1/rejected-messages", headers=auth(keys["operator"])).json
    everything = client.get("/api/v1/rejected-messages", headers=auth(keys["admin"])).json
    assert [item["vehicle_id"] for item in mine["items"]] == [registry.vehicle_id]
    assert everything["total"] == 2


def test_a_rejected_reading_is_replayed_through_the_api(client, keys, registry):
    late_clock = {**READING, "msg_id": "h-9", "ts": "2036-01-01T00:00:00Z"}
    response = post_telemetry(client, keys["admin"], registry.vehicle_id, late_clock)
    assert response.status_code == 422
    rejected_id = client.get("/api/v1/rejected-messages", headers=auth(keys["admin"])).json[
        "items"
    ][0]["id"]
    replay = client.post(
        f"/api/v1/rejected-messages/{rejected_id}/replay", headers=auth(keys["operator"])
    )
    assert replay.status_code == 200
    assert replay.json["rejected_message"]["status"] == "pending"
    assert replay.json["rejected_message"]["replay_count"] == 1
    assert replay.json["result"]["rejected"][0]["reason"] == "future_timestamp"


def test_metrics_report_pending_rejections_by_reason(client, keys, registry):
    post_telemetry(client, keys["admin"], registry.vehicle_id, b"[]")
    post_telemetry(client, keys["admin"], registry.vehicle_id, b"{")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'billing_rejected_messages_pending{reason="empty_batch"} 1.0' in text
    assert 'billing_rejected_messages_pending{reason="malformed_json"} 1.0' in text
    assert "billing_metering_lag_seconds" in text


def test_listings_leave_payloads_out_unless_asked_and_bytes_that_are_not_text_come_in_base64(
    client, keys, registry
):
    post_telemetry(client, keys["admin"], registry.vehicle_id, b'{"msg_id": "\xff"}')
    plain = client.get("/api/v1/rejected-messages", headers=auth(keys["admin"])).json["items"]
    assert "payload" not in plain[0] and "payload_encoding" not in plain[0]
    assert plain[0]["payload_size"] == 15
    rejected_id = plain[0]["id"]
    one = client.get(f"/api/v1/rejected-messages/{rejected_id}", headers=auth(keys["admin"])).json
    assert one["payload_encoding"] == "base64"
    assert base64.b64decode(one["payload"]) == b'{"msg_id": "\xff"}'
    assert "payload_base64" not in one


def test_a_payload_too_large_is_kept_truncated_with_its_size_and_digest(client, keys, registry):
    body = json.dumps({"msg_id": "big", "ts": "2026-11-15T09:00:00Z", "pad": "x" * 300_000})
    response = post_telemetry(client, keys["admin"], registry.vehicle_id, body.encode())
    assert response.status_code == 422
    [item] = client.get(
        "/api/v1/rejected-messages?include=payload", headers=auth(keys["admin"])
    ).json["items"]
    assert item["reason"] == "payload_too_large"
    assert item["payload"] == body[:4096]
    assert (item["payload_size"], item["payload_truncated"]) == (len(body), True)
    assert item["payload_sha256"] == hashlib.sha256(body.encode()).hexdigest()
    replay = client.post(
        f"/api/v1/rejected-messages/{item['id']}/replay", headers=auth(keys["admin"])
    )
    assert replay.status_code == 409
    assert "cannot be replayed" in replay.json["error"]["message"]


def test_a_batch_resent_with_one_bad_reading_keeps_one_rejection_with_its_path(
    client, keys, registry
):
    batch = [
        {**READING, "msg_id": f"r-{n}", "ts": f"2026-11-15T09:{n // 60:02d}:{n % 60:02d}Z"}
        for n in range(300)
    ]
    batch[250] = {"msg_id": "r-250", "ts": "2026-11-15T09:04:10Z", "odometer_m": "lots"}
    first = post_telemetry(client, keys["admin"], registry.vehicle_id, batch)
    again = post_telemetry(client, keys["admin"], registry.vehicle_id, batch)
    assert (first.json["stored"], again.json["duplicates"]) == (299, 299)
    assert first.json["rejected"][0]["id"] == again.json["rejected"][0]["id"]
    [item] = client.get("/api/v1/rejected-messages", headers=auth(keys["admin"])).json["items"]
    assert (item["path"], item["received_count"]) == ("$[250]", 2)
    replay = client.post(
        f"/api/v1/rejected-messages/{item['id']}/replay", headers=auth(keys["admin"])
    )
    [rejection] = replay.json["result"]["rejected"]
    assert rejection["path"] == replay.json["rejected_message"]["path"] == "$[250]"
    assert "at `$[250].odometer_m`" in rejection["message"]
