"""/readyz tells the truth: each role, and 503 naming the one that is down — here the
broker, killed and restarted under a running ingest consumer."""

from __future__ import annotations

import pytest

from billing import create_app, heartbeats
from billing.db import Database, utcnow
from billing.settings import load_settings
from tests.brokers import AccountBook, start_mosquitto
from tests.integration.test_ingest import running_consumer
from tests.waiting import wait_for_progress


def status(client) -> tuple[int, dict[str, str]]:
    response = client.get("/readyz")
    return response.status_code, {n: r["status"] for n, r in response.json["roles"].items()}


def scheduler_running(database: Database) -> None:
    with database.session() as session:
        heartbeats.beat(session, heartbeats.SCHEDULER, "test-scheduler", utcnow(), {})


def test_liveness_answers_whatever_the_other_roles_do(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readiness_without_any_role_reporting_is_503_naming_them(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    roles = response.json["roles"]
    assert response.json["status"] == "not_ready"
    assert roles["database"]["status"] == "up"
    assert roles["ingest"] == {
        "status": "down", "detail": "no ingest process has reported", "instances": [],
    }  # fmt: skip
    assert roles["scheduler"]["status"] == "down"
    assert roles["metering"] == {"status": "up", "detail": "0 s behind", "lag_seconds": 0.0}


@pytest.mark.mqtt
def test_readiness_names_the_broker_and_the_ingest_while_the_broker_is_down(tmp_path, fresh_db):
    book = AccountBook()
    directory = tmp_path / "broker"
    broker = start_mosquitto(directory, book)
    port = broker.address.port
    settings = load_settings(
        data_dir=tmp_path / "web",
        mqtt_url=f"mqtt://{broker.address.host}:{port}",
        health={"heartbeat_seconds": 0.2, "stale_after_seconds": 3600},
    )
    client = create_app(settings, fresh_db).test_client()
    scheduler_running(fresh_db)
    try:
        with running_consumer(fresh_db, broker.address, heartbeat_seconds=0.2):
            wait_for_progress(lambda: status(client)[0] == 200, bool, "ready")
            assert set(status(client)[1].values()) == {"up"}
            broker.stop()
            wait_for_progress(
                lambda: status(client)[1]["ingest"] == "down", bool, "the ingest down"
            )
            response = client.get("/readyz")
            assert response.status_code == 503
            down = response.json["roles"]
            assert down["broker"]["status"] == "down"
            assert down["broker"]["url"] == f"mqtt://127.0.0.1:{port}"
            assert (down["ingest"]["status"], down["ingest"]["detail"]) == (
                "down", "not connected to the broker",
            )  # fmt: skip
            assert down["database"]["status"] == down["scheduler"]["status"] == "up"
            broker = start_mosquitto(directory, book, port=port)
            wait_for_progress(lambda: status(client)[0] == 200, bool, "ready again")
        # A consumer that stops cleanly takes its heartbeat away: none reports.
        assert client.get("/readyz").json["roles"]["ingest"]["instances"] == []
    finally:
        broker.stop()
