"""Brokers for tests: Mosquitto started with the project's configuration on a free port,
the logins it knows, and an MQTT client that records what the broker answers.

The system Mosquitto on 127.0.0.1:1883 runs with default settings and anonymous access:
tests never use it. `start_mosquitto` runs the embedded broker of `billing run` (same
configuration file, same exported password and ACL files) in a directory of the test's.

    book = AccountBook()
    password = book.add_vehicle("VEH-1")
    with start_mosquitto(tmp_path, book) as broker:
        with RecordingClient(broker.address) as ingest:          # the ingest account
            ingest.subscribe(TELEMETRY_SUBSCRIPTION)
            with RecordingClient(broker.address.with_credentials("VEH-1", password)) as car:
                car.publish(telemetry_topic("VEH-1"), b"{}")
            ingest.next_message()

To simulate a broker crash: `broker.process.kill()`, then `start_mosquitto(same directory,
book, port=broker.address.port)` finds its persisted sessions and messages again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from billing.broker.factory import start_embedded_broker
from billing.broker.mosquitto import MosquittoBroker
from billing.devices.credentials import (
    BrokerAccount,
    BrokerAccounts,
    mosquitto_hash,
    new_broker_password,
)
from billing.mqtt import BrokerAddress, make_client
from billing.settings import load_settings
from tests.services import require_program

# A bound on waiting for an answer the broker does give: seconds on a loaded machine.
TIMEOUT_S = 30.0
# Long enough for a message the broker was going to deliver to arrive on this machine.
QUIET_S = 0.5


def require_mosquitto() -> None:
    require_program("mosquitto", "mosquitto")


class AccountBook:
    """Broker logins a test can change while the broker runs (then `broker.reload()`)."""

    def __init__(self) -> None:
        self._accounts: dict[str, BrokerAccount] = {}

    def add_vehicle(self, vehicle_id: str, password: str | None = None) -> str:
        return self._add("vehicle", vehicle_id, (vehicle_id,), password)

    def add_gateway(self, username: str, vehicle_ids: tuple[str, ...]) -> str:
        return self._add("gateway", username, vehicle_ids, None)

    def remove(self, username: str) -> None:
        del self._accounts[username]

    def __call__(self) -> BrokerAccounts:
        return BrokerAccounts(tuple(self._accounts[name] for name in sorted(self._accounts)))

    def _add(
        self, kind: str, username: str, vehicle_ids: tuple[str, ...], password: str | None
    ) -> str:
        password = password or new_broker_password()
        self._accounts[username] = BrokerAccount(
            kind, username, mosquitto_hash(password), vehicle_ids
        )
        return password


def start_mosquitto(
    data_dir: Path, accounts: Callable[[], BrokerAccounts] | None = None, port: int = 0
) -> MosquittoBroker:
    """Mosquitto with config/mosquitto.conf, its state and files under `data_dir`.

    `port` 0 takes a free one; pass the previous port to restart a broker where it was.
    The broker does not poll for new logins: call `reload()` after changing `accounts`.
    """
    require_mosquitto()
    settings = load_settings(
        data_dir=data_dir, mqtt_url="", broker={"port": port, "refresh_seconds": 0}
    )
    broker = start_embedded_broker(settings, accounts or AccountBook(), backend="mosquitto")
    assert isinstance(broker, MosquittoBroker)
    return broker


@pytest.fixture
def account_book() -> AccountBook:
    return AccountBook()


@pytest.fixture
def mosquitto(tmp_path: Path, account_book: AccountBook) -> Iterator[MosquittoBroker]:
    """A Mosquitto of the project's configuration knowing the logins of `account_book`."""
    with start_mosquitto(tmp_path / "mosquitto", account_book) as broker:
        yield broker


class RecordingClient:
    """A connected paho client that keeps the broker's answers for the test to assert on.

    Connecting waits for the CONNACK, whatever it says: a refused login is a result here.
    With `session_expiry` > 0 it resumes or opens a persistent session, as the ingest
    consumer does (MQTT 5 clean_start=False; MQTT 3.1.1 clean_session=False).
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        protocol: int = mqtt.MQTTv5,
        client_id: str = "",
        session_expiry: int = 0,
    ):
        persistent = session_expiry > 0
        self.client = make_client(
            address, client_id, protocol=protocol, persistent_session=persistent
        )
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._pubacks: dict[int, ReasonCode] = {}
        self._acknowledged = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        options: dict = {}
        if protocol == mqtt.MQTTv5:
            options["clean_start"] = not persistent
            options["properties"] = Properties(PacketTypes.CONNECT)
            options["properties"].SessionExpiryInterval = session_expiry
        self.client.connect(address.host, address.port, keepalive=30, **options)
        self.client.loop_start()
        self.connack = self._connack.get(timeout=TIMEOUT_S)

    @property
    def refused(self) -> bool:
        return self.connack.is_failure

    def subscribe(self, topic_filter: str, qos: int = 1) -> list[ReasonCode]:
        _result, mid = self.client.subscribe(topic_filter, qos=qos)
        return self._wait_for(self._subacks, mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> ReasonCode:
        """Publish and return the broker's PUBACK reason (QoS 1; QoS 0 gets no answer)."""
        info = self.client.publish(topic, payload, qos=qos)
        return self._wait_for(self._pubacks, info.mid)

    def next_message(self, timeout: float = TIMEOUT_S) -> mqtt.MQTTMessage | None:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            client.disconnect()  # rather than retry the refused login in the background
        self._connack.put(reason)

    def _on_subscribe(self, _client, _userdata, mid, reasons, _properties) -> None:
        with self._acknowledged:
            self._subacks[mid] = list(reasons)
            self._acknowledged.notify_all()

    def _on_publish(self, _client, _userdata, mid, reason, _properties) -> None:
        with self._acknowledged:
            self._pubacks[mid] = reason
            self._acknowledged.notify_all()

    def _wait_for(self, answers: dict, mid: int):
        with self._acknowledged:
            if not self._acknowledged.wait_for(lambda: mid in answers, timeout=TIMEOUT_S):
                raise TimeoutError(f"no answer from the broker to message {mid}")
            return answers.pop(mid)
