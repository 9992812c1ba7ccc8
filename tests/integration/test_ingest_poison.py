"""Poison messages on a real Mosquitto: the consumer stores every good reading around
them, keeps each poison as a rejected message, acknowledges it, and lives on."""

from __future__ import annotations

import json
import signal
import uuid
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.db import Database
from billing.mqtt import telemetry_topic
from billing.telemetry import contract as telemetry
from billing.telemetry.models import RejectedMessage
from tests.brokers import AccountBook, start_mosquitto
from tests.databases import SEEDED_AT, readings_locked, seed_fleet
from tests.integration.test_ingest import (
    INGEST_PROCESS_CLIENT_ID,
    ingest_process,
    open_ingest_session,
    publish_all,
    running_consumer,
    stored_count,
)
from tests.waiting import wait_for_progress

pytestmark = pytest.mark.mqtt

VEHICLES = [f"PSN-{n}" for n in range(10)]
GATEWAY = "gw-poison-test"
TS = (SEEDED_AT.replace(day=2)).isoformat()
POISONS = {
    "too_deeply_nested": b'{"msg_id": "p1", "ts": "%s", "junk": %s}'
    % (TS.encode(), b"[" * 10_000 + b"]" * 10_000),
    "future_timestamp": b'{"msg_id": "p2", "ts": 99999999999999999999}',
    "schema_violation": b'{"msg_id": "p3\\u0000", "ts": "%s"}' % TS.encode(),
    "payload_too_large": json.dumps({"msg_id": "p4", "ts": TS, "pad": "x" * 300_000}).encode(),
    "malformed_json": b'{"msg_id": "p5\xff", "ts": "%s", "battery_pct": NaN}' % TS.encode(),
}


def good_messages(count: int) -> list[tuple[str, bytes]]:
    messages = []
    for n in range(count):
        vehicle = n % len(VEHICLES)
        reading = {
            "msg_id": str(uuid.uuid4()),
            "ts": int(SEEDED_AT.timestamp() * 1000) + 86_400_000 + n * 30_000,
            "odometer_m": 1_000_000 + n * 50,
        }
        messages.append((telemetry_topic(VEHICLES[vehicle]), json.dumps(reading).encode()))
    return messages


@pytest.fixture
def fleet(fresh_db: Database) -> Database:
    seed_fleet(fresh_db, VEHICLES)
    return fresh_db


def rejected(database: Database) -> list[tuple[str, str, bytes]]:
    with database.session() as session:
        rows = session.execute(
            select(RejectedMessage.reason, RejectedMessage.vehicle_id, RejectedMessage.payload)
        )
        return sorted(tuple(row) for row in rows)


def test_poison_messages_among_a_thousand_good_ones_stop_nothing(tmp_path, fleet):
    book = AccountBook()
    password = book.add_gateway(GATEWAY, tuple(VEHICLES))
    good = good_messages(1000)
    poisons = [(telemetry_topic(VEHICLES[3]), payload) for payload in POISONS.values()]
    # The poisons land in the middle of the stream, within batches of good readings.
    messages = good[:500] + poisons + good[500:]
    with (
        start_mosquitto(tmp_path / "broker", book) as broker,
        running_consumer(
            fleet, broker.address, batch_size=100, inflight_directory=tmp_path / "ingest"
        ) as consumer,
    ):
        gateway = broker.address.with_credentials(GATEWAY, password)
        publish_all(gateway, messages)
        wait_for_progress(partial(stored_count, fleet), lambda n: n >= 1000, "1000 good readings")
        wait_for_progress(
            lambda: len(rejected(fleet)), lambda n: n >= len(POISONS), "the poisons rejected"
        )
        # Alive and consuming: one more good reading goes through.
        publish_all(gateway, good_messages(1001)[1000:])
        wait_for_progress(partial(stored_count, fleet), lambda n: n >= 1001, "one more reading")
        assert stored_count(fleet) == 1001
        assert consumer.metrics.messages._value.get() == 1000 + len(POISONS) + 1
    # Of a payload too large, its first bytes only are kept.
    assert rejected(fleet) == sorted(
        (reason, VEHICLES[3], payload[: telemetry.KEPT_PAYLOAD_BYTES] if big else payload)
        for reason, payload in POISONS.items()
        for big in [reason == "payload_too_large"]
    )


def records(directory: Path) -> set[str]:
    return {path.name for path in directory.glob("*.*") if path.suffix != ".json"}


def test_a_message_that_keeps_killing_the_consumer_is_quarantined(tmp_path, fresh_url, fleet):
    book = AccountBook()
    password = book.add_gateway(GATEWAY, tuple(VEHICLES))
    [(topic, deadly)] = good_messages(1)
    data_dir = tmp_path / "data"
    state = data_dir / "ingest" / INGEST_PROCESS_CLIENT_ID
    with start_mosquitto(tmp_path / "broker", book) as broker:
        gateway = broker.address.with_credentials(GATEWAY, password)
        open_ingest_session(broker.address)
        publish_all(gateway, [(topic, deadly)])
        with readings_locked(fresh_url):
            # Killed while the message is in flight: first in a batch, then twice alone.
            for expected in (".batch", ".alone", ".alone"):
                left_behind = records(state) if state.exists() else set()
                process = ingest_process(fresh_url, broker.address, data_dir)

                def in_flight(kind: str = expected, old: set[str] = left_behind) -> bool:
                    return [Path(name).suffix for name in records(state) - old] == [kind]

                try:
                    # A process start takes tens of seconds on a loaded machine.
                    wait_for_progress(in_flight, bool, f"a {expected} record", stall_s=180)
                finally:
                    process.kill()
                    process.wait(10)
        process = ingest_process(fresh_url, broker.address, data_dir)
        try:
            wait_for_progress(lambda: rejected(fleet) != [], bool, "the quarantine", stall_s=180)
            publish_all(gateway, good_messages(2)[1:])
            wait_for_progress(partial(stored_count, fleet), bool, "the next message stored")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
    assert rejected(fleet) == [("quarantined", VEHICLES[0], deadly)]
    assert json.loads((state / "crashes.json").read_text()) == {}
    assert records(state) == set()
