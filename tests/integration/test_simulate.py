"""The fleet simulator against a real broker: what it generates is what a subscriber gets.

Runs against the broker of MQTT_URL (CI: the system Mosquitto), else 127.0.0.1:1883, with
anonymous clients allowed. Each test
uses its own vehicle id prefix, so that concurrent runs do not see each other's messages.
Rates are capped well below what a Python subscriber takes in, because that Mosquitto
keeps its default `max_queued_messages 1000` and would drop a burst a slow subscriber
cannot follow.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from billing.auth import SYSTEM
from billing.db import Database
from billing.devices import services
from billing.devices.models import BrokerCredential
from billing.mqtt import TELEMETRY_SUBSCRIPTION, BrokerAddress, make_client, vehicle_from_topic
from billing.registry import vehicle_changes
from billing.settings import PROJECT_ROOT
from billing.simulation.simulator import (
    BrokerRefused,
    FaultRates,
    FleetPublisher,
    Publication,
    SimulationConfig,
    simulate_fleet,
)
from tests.conftest import customer_payload
from tests.services import missing_service
from tests.waiting import wait_for_progress

pytestmark = pytest.mark.mqtt

BROKER = BrokerAddress.parse(os.environ.get("MQTT_URL") or "mqtt://127.0.0.1:1883")
FAULTS = FaultRates(duplicate=0.02, out_of_order=0.02, offline=0.005)


@pytest.fixture(scope="module", autouse=True)
def broker_running() -> None:
    try:
        socket.create_connection((BROKER.host, BROKER.port), timeout=1).close()
    except OSError:
        missing_service(f"no MQTT broker at {BROKER.url} (set MQTT_URL, or run Mosquitto there)")


@pytest.fixture
def prefix() -> str:
    return f"T{uuid.uuid4().hex[:8]}-"


class Subscriber:
    """Every reading published for vehicles whose id starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.received: list[tuple[str, dict, datetime]] = []  # (vehicle, reading, received at)
        self.messages = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = make_client(BROKER)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self._subscribed.set()

    def __enter__(self) -> "Subscriber":
        self._client.connect(BROKER.host, BROKER.port)
        self._client.loop_start()
        self._client.subscribe(TELEMETRY_SUBSCRIPTION, qos=1)
        assert self._subscribed.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage):
        vehicle_id = vehicle_from_topic(message.topic)
        if vehicle_id is None or not vehicle_id.startswith(self.prefix):
            return
        now = datetime.now(UTC)
        document = json.loads(message.payload)
        with self._lock:
            self.messages += 1
            for reading in document if isinstance(document, list) else [document]:
                self.received.append((vehicle_id, reading, now))

    def distinct(self) -> set[tuple[str, str]]:
        with self._lock:
            return {(vehicle, reading["msg_id"]) for vehicle, reading, _ in self.received}

    def wait_for(self, condition: Callable[[], bool]) -> None:
        """Until `condition` holds, for as long as readings keep arriving."""
        wait_for_progress(
            lambda: len(self.received),
            lambda _received: condition(),
            "the subscriber's condition",
            report=lambda: f"{self.messages} messages, {len(self.distinct())} distinct readings",
        )


def distinct_readings(publications: list[Publication]) -> set[tuple[str, str]]:
    found = set()
    for publication in publications:
        document = json.loads(publication.payload)
        for reading in document if isinstance(document, list) else [document]:
            found.add((publication.vehicle_id, reading["msg_id"]))
    return found


def test_a_backfill_reaches_subscribers_once_per_generated_reading(prefix: str):
    vehicles = [f"{prefix}{n}" for n in range(5)]
    now = datetime.now(UTC)
    config = SimulationConfig(seed=7, faults=FAULTS)
    publications = list(simulate_fleet(vehicles, now - timedelta(hours=12), now, config))
    expected = distinct_readings(publications)
    with Subscriber(prefix) as subscriber, FleetPublisher(BROKER, vehicles, rate=5000) as publisher:
        stats = publisher.publish(publications)
        subscriber.wait_for(lambda: subscriber.distinct() >= expected)
    assert subscriber.distinct() == expected
    assert subscriber.messages >= stats.published == stats.acked == len(publications)
    assert stats.refused == stats.unacked == 0
    assert stats.elapsed_s >= 0.9 * len(publications) / 5000  # the rate cap held


def test_a_gateway_publishes_for_every_vehicle_over_one_connection(prefix: str):
    vehicles = [f"{prefix}{n}" for n in range(3)]
    now = datetime.now(UTC)
    publications = list(simulate_fleet(vehicles, now - timedelta(hours=6), now))
    gateway = BROKER.with_credentials("gw-test", "secret")
    with Subscriber(prefix) as subscriber:
        with FleetPublisher(gateway, vehicles, gateway=True, rate=5000) as publisher:
            stats = publisher.publish(publications)
        subscriber.wait_for(lambda: len(subscriber.distinct()) >= len(publications))
    assert stats.acked == len(publications)
    assert subscriber.distinct() == distinct_readings(publications)
    assert {vehicle for vehicle, _ in subscriber.distinct()} == set(vehicles)


def test_a_live_feed_publishes_each_reading_once_its_time_has_come(prefix: str):
    vehicles = [f"{prefix}{n}" for n in range(2)]
    now = datetime.now(UTC)
    config = SimulationConfig(interval_s=1, heartbeat_s=1)  # a reading every second
    start, end = now - timedelta(seconds=3), now + timedelta(seconds=2)
    with Subscriber(prefix) as subscriber:
        with FleetPublisher(BROKER, vehicles) as publisher:
            began = datetime.now(UTC)
            stats = publisher.publish(simulate_fleet(vehicles, start, end, config))
        subscriber.wait_for(lambda: len(subscriber.received) >= stats.readings)
    taken = [
        (datetime.strptime(reading["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), received_at)
        for _, reading, received_at in subscriber.received
    ]
    assert len(taken) == stats.readings >= 2 * 5
    assert max(taken_at for taken_at, _ in taken) > began  # some were due only later…
    assert all(taken_at <= received_at for taken_at, received_at in taken)  # …and waited


def test_an_unreachable_broker_is_reported_by_vehicle():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = BrokerAddress("127.0.0.1", unused.getsockname()[1])
    with (
        pytest.raises(BrokerRefused, match=r"2 of 2 connections .* SIM-1: unreachable"),
        FleetPublisher(nowhere, ["SIM-1", "SIM-2"], connect_timeout_s=0.3),
    ):
        pass


@pytest.fixture
def registered_vehicles(cli, tmp_path: Path, prefix: str) -> Iterator[list[str]]:
    """Two vehicles registered in a fresh database that the CLI is pointed at."""
    assert cli("db", "upgrade").exit_code == 0
    database = Database.from_url(f"sqlite:///{tmp_path / 'cli.db'}")
    now = datetime.now(UTC) - timedelta(days=30)
    with database.session() as session:
        customer = services.create_customer(session, customer_payload(), now)
        fleet = services.create_fleet(
            session, SYSTEM, {"customer_id": customer.id, "name": "Sim"}, now
        )
        for n in range(2):
            data = {"id": f"{prefix}{n}", "fleet_id": fleet.id, "model": "s1", "serial": f"S{n}"}
            vehicle_changes.register_vehicle(session, SYSTEM, data, now)
    yield [f"{prefix}{n}" for n in range(2)]
    database.engine.dispose()


def test_the_command_backfills_the_registered_vehicles_with_their_own_passwords(
    cli, tmp_path: Path, prefix: str, registered_vehicles: list[str]
):
    no_faults = ["--duplicate-rate", "0", "--out-of-order-rate", "0", "--offline-rate", "0"]
    args = ["simulate", "--mqtt-url", BROKER.url, "--backfill-days", "1", "--rate", "5000"]
    with Subscriber(prefix) as subscriber:
        result = cli(*args, *no_faults, "--seed", "3")
        assert result.exit_code == 0, result.output
        summary = result.stderr.strip().splitlines()[-1]
        readings = int(summary.split("(")[1].split()[0].replace(",", ""))
        subscriber.wait_for(lambda: len(subscriber.distinct()) >= readings)
    assert "issued broker passwords for 2 vehicles" in result.stderr
    assert "unacked 0" in summary and readings > 100
    assert len(subscriber.distinct()) == readings
    database = Database.from_url(f"sqlite:///{tmp_path / 'cli.db'}")
    with database.session() as session:
        active = session.scalars(
            select(BrokerCredential.username).where(BrokerCredential.revoked_at.is_(None))
        ).all()
    database.engine.dispose()
    assert sorted(active) == registered_vehicles


def test_sigterm_stops_a_live_feed_with_a_summary(tmp_path: Path, prefix: str):
    command = [sys.executable, "-m", "billing.cli", "simulate", "--vehicles", "2"]
    command += ["--prefix", prefix, "--anonymous", "--mqtt-url", BROKER.url]
    command += ["--interval", "1", "--heartbeat", "1"]
    env = {**os.environ, "BILLING_DATA_DIR": str(tmp_path)}
    with Subscriber(prefix) as subscriber:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        subscriber.wait_for(lambda: len(subscriber.received) >= 4)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert len(subscriber.received) >= 4
    assert "unacked 0" in stderr.splitlines()[-1]
