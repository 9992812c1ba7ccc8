"""The MQTT ingest consumer against a real Mosquitto: every reading stored exactly once,
through duplicates, a consumer killed mid-stream, a database outage and a broker restart."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from billing import migrate
from billing.db import Database
from billing.mqtt import TELEMETRY_SUBSCRIPTION, BrokerAddress, make_client, telemetry_topic
from billing.settings import IngestSettings
from billing.telemetry.ingest import IngestConsumer
from billing.telemetry.models import Reading, RejectedMessage
from tests.brokers import AccountBook, RecordingClient, start_mosquitto
from tests.databases import SEEDED_AT, seed_fleet
from tests.services import scratch_postgres_database
from tests.waiting import wait_for_progress

pytestmark = pytest.mark.mqtt

VEHICLES = [f"ING-{n}" for n in range(5)]
GATEWAY = "gw-ingest-test"
INGEST_PROCESS_CLIENT_ID = "ingest-crash-test"


def reading(n: int, vehicle_index: int = 0, msg_id: str | None = None) -> dict:
    ts = SEEDED_AT.timestamp() * 1000 + 86_400_000 + n * 30_000
    return {
        "msg_id": msg_id or str(uuid.uuid4()),
        "ts": int(ts),
        "odometer_m": 1_000_000 + n * 100 + vehicle_index,
        "energy_wh": 50_000 + n,
    }


def stream(count: int) -> list[tuple[str, bytes]]:
    """`count` single-reading messages spread over the test vehicles."""
    return [
        (telemetry_topic(VEHICLES[n % len(VEHICLES)]), json.dumps(reading(n, n % 5)).encode())
        for n in range(count)
    ]


def publish_all(address: BrokerAddress, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and return once the broker acknowledged every message."""
    client = make_client(address)
    client.max_inflight_messages_set(500)
    acknowledged, done = [0], threading.Event()

    def on_publish(*_args) -> None:
        acknowledged[0] += 1
        if acknowledged[0] == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect(address.host, address.port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1)
    wait_for_progress(
        lambda: acknowledged[0], lambda _: done.is_set(), f"{len(messages)} acknowledged"
    )
    client.disconnect()
    client.loop_stop()


def stored_count(database: Database) -> int:
    # A read session: polling must not take SQLite's write lock from the consumer it watches.
    with database.reading() as session:
        return session.scalar(select(func.count()).select_from(Reading)) or 0


def published_msg_ids(messages: list[tuple[str, bytes]]) -> dict[str, int]:
    """The msg_id of each reading of `messages`, with the position it was first published at."""
    positions: dict[str, int] = {}
    for position, (_topic, payload) in enumerate(messages):
        decoded = json.loads(payload)
        for one in decoded if isinstance(decoded, list) else [decoded]:
            positions.setdefault(one["msg_id"], position)
    return positions


@dataclass(frozen=True)
class Delivery:
    """What became of published messages: the msg_ids lost (with the position each was
    published at: when the first ones are lost, nobody was subscribed yet) or doubled."""

    published: dict[str, int]  # msg_id -> position in the stream
    stored: dict[str, int]  # msg_id -> rows

    @property
    def lost(self) -> list[tuple[int, str]]:
        return sorted(
            (at, msg_id) for msg_id, at in self.published.items() if msg_id not in self.stored
        )

    @property
    def doubled(self) -> dict[str, int]:
        return {msg_id: rows for msg_id, rows in self.stored.items() if rows > 1}

    @property
    def unknown(self) -> list[str]:
        return sorted(set(self.stored) - set(self.published))

    @property
    def exact(self) -> bool:
        return not (self.lost or self.doubled or self.unknown)

    def __str__(self) -> str:
        lost = ", ".join(f"#{at} {msg_id}" for at, msg_id in self.lost[:10])
        return (
            f"{sum(self.stored.values())} rows, {len(self.stored)} distinct msg_ids of"
            f" {len(self.published)} published; lost {len(self.lost)} [{lost}]; doubled"
            f" {len(self.doubled)} {sorted(self.doubled.items())[:10]}; not published"
            f" {len(self.unknown)} {self.unknown[:10]}"
        )


def delivery(database: Database, messages: list[tuple[str, bytes]]) -> Delivery:
    with database.session() as session:
        rows = session.execute(select(Reading.msg_id, func.count()).group_by(Reading.msg_id))
        return Delivery(published_msg_ids(messages), dict(rows.all()))


def wait_until_stored(database: Database, messages: list[tuple[str, bytes]], count: int) -> None:
    """Wait while readings keep arriving; once they stop short, fail saying which are lost."""
    wait_for_progress(
        lambda: stored_count(database),
        lambda stored: stored >= count,
        f"{count} readings stored",
        report=lambda: str(delivery(database, messages)),
    )


def assert_each_stored_once(database: Database, messages: list[tuple[str, bytes]]) -> None:
    outcome = delivery(database, messages)
    assert outcome.exact, outcome


@contextlib.contextmanager
def running_consumer(
    database: Database,
    address: BrokerAddress,
    protocol: int = mqtt.MQTTv5,
    inflight_directory: Path | None = None,
    heartbeat_seconds: float | None = None,
    **settings,
) -> Iterator[IngestConsumer]:
    options = {"client_id": "ingest-test", "batch_size": 200, "batch_delay_ms": 20, **settings}
    consumer = IngestConsumer(
        database,
        address,
        IngestSettings(**options),
        protocol=protocol,
        inflight_directory=inflight_directory,
        heartbeat_seconds=heartbeat_seconds,
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        assert consumer.ready.wait(10), "the consumer did not subscribe"
        yield consumer
    finally:
        consumer.stop()
        thread.join(15)
        assert not thread.is_alive()


@pytest.fixture
def broker_book() -> tuple[AccountBook, str]:
    book = AccountBook()
    return book, book.add_gateway(GATEWAY, tuple(VEHICLES))


@pytest.fixture
def fleet(fresh_db: Database) -> Database:
    seed_fleet(fresh_db, VEHICLES)
    return fresh_db


def test_every_distinct_reading_is_stored_once_and_repeats_are_counted(
    tmp_path, fleet, broker_book
):
    book, password = broker_book
    singles = stream(300)
    batch = [reading(1000 + n, 1) for n in range(50)]
    messages = singles + singles[:20] + [(telemetry_topic(VEHICLES[1]), json.dumps(batch).encode())]
    with (
        start_mosquitto(tmp_path / "broker", book) as broker,
        running_consumer(fleet, broker.address) as consumer,
    ):
        publish_all(broker.address.with_credentials(GATEWAY, password), messages)
        wait_for_progress(
            lambda: (
                consumer.metrics.stored._value.get(),
                consumer.metrics.duplicates._value.get(),
            ),
            lambda counts: counts[0] >= 350 and counts[1] >= 20,
            "350 stored and 20 duplicates",
            report=lambda: str(delivery(fleet, messages)),
        )
    assert_each_stored_once(fleet, messages)
    assert consumer.metrics.stored._value.get() == 350
    assert consumer.metrics.duplicates._value.get() == 20
    assert consumer.metrics.messages._value.get() == 321


def test_bad_messages_are_kept_acknowledged_and_not_redelivered(tmp_path, fleet, broker_book):
    book, password = broker_book
    bad = [(telemetry_topic(VEHICLES[0]), b"{not json"), (telemetry_topic(VEHICLES[2]), b"[]")]
    with start_mosquitto(tmp_path / "broker", book) as broker:
        with running_consumer(fleet, broker.address):
            publish_all(broker.address.with_credentials(GATEWAY, password), bad)
            wait_for_progress(
                lambda: rejected_reasons(fleet),
                lambda reasons: len(reasons) >= 2,
                "two rejected messages",
            )
        # The same session again gets nothing: both messages were acknowledged.
        with running_consumer(fleet, broker.address) as again:
            time.sleep(1)
            assert again.metrics.messages._value.get() == 0
    assert rejected_reasons(fleet) == ["empty_batch", "malformed_json"]


def rejected_reasons(database: Database) -> list[str]:
    with database.session() as session:
        return sorted(session.scalars(select(RejectedMessage.reason)))


def test_two_consumers_share_the_stream_and_store_each_reading_once(tmp_path, fleet, broker_book):
    book, password = broker_book
    with start_mosquitto(tmp_path / "broker", book) as broker:
        shared = {"shared_group": "billing"}
        with (
            running_consumer(fleet, broker.address, client_id="ingest-a", **shared) as first,
            running_consumer(fleet, broker.address, client_id="ingest-b", **shared) as second,
        ):
            messages = stream(1000)
            publish_all(broker.address.with_credentials(GATEWAY, password), messages)
            wait_until_stored(fleet, messages, 1000)
            # A consumer counts a batch once it is committed: wait for both to have counted.
            wait_for_progress(
                lambda: first.metrics.messages._value.get() + second.metrics.messages._value.get(),
                lambda counted: counted >= 1000,
                "1000 messages counted",
            )
    assert_each_stored_once(fleet, messages)
    received = [c.metrics.messages._value.get() for c in (first, second)]
    assert sum(received) == 1000, received
    assert min(received) > 0, f"one consumer got nothing: {received}"
    assert first.subscription == "$share/billing/billing/v1/vehicles/+/telemetry"


def test_the_consumer_also_works_over_mqtt_3_1_1(tmp_path, fleet, broker_book):
    book, password = broker_book
    v311 = {"protocol": mqtt.MQTTv311, "shared_group": "x"}
    with (
        start_mosquitto(tmp_path / "broker", book) as broker,
        running_consumer(fleet, broker.address, **v311) as consumer,
    ):
        assert consumer.subscription == "billing/v1/vehicles/+/telemetry"
        messages = stream(100)
        publish_all(broker.address.with_credentials(GATEWAY, password), messages)
        wait_until_stored(fleet, messages, 100)
    assert_each_stored_once(fleet, messages)


def test_a_full_inbox_holds_the_stream_back_without_losing_any_of_it(tmp_path, fleet, broker_book):
    book, password = broker_book
    with (
        start_mosquitto(tmp_path / "broker", book) as broker,
        running_consumer(fleet, broker.address, max_pending=5, batch_size=3) as consumer,
    ):
        messages = stream(400)
        publish_all(broker.address.with_credentials(GATEWAY, password), messages)
        wait_until_stored(fleet, messages, 400)
        assert consumer._inbox.max_items == 5
    assert_each_stored_once(fleet, messages)


def open_ingest_session(address: BrokerAddress) -> None:
    """Create the persistent session of `ingest_process`, so that the broker queues what is
    published for it from now on, whether or not the process has connected yet."""
    with RecordingClient(
        address, client_id=INGEST_PROCESS_CLIENT_ID, session_expiry=3600
    ) as ingest:
        ingest.subscribe(TELEMETRY_SUBSCRIPTION)


def ingest_process(database_url: str, address: BrokerAddress, data_dir: Path) -> subprocess.Popen:
    url = (
        f"mqtt://{quote(address.username or '', safe='')}:{quote(address.password or '', safe='')}"
        f"@{address.host}:{address.port}"
    )
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MQTT_URL": url,
        "BILLING_DATA_DIR": str(data_dir),
        "BILLING_INGEST_CLIENT_ID": INGEST_PROCESS_CLIENT_ID,
        "BILLING_INGEST_BATCH_SIZE": "100",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "billing.cli", "ingest"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_consumer_killed_mid_stream_loses_nothing_and_doubles_nothing(
    tmp_path, fresh_url, fleet, broker_book
):
    book, password = broker_book
    messages = stream(3000)
    # The kill lands mid-stream by construction, however fast the consumer is: the first
    # two thousand are still arriving when it dies, the last thousand are published after.
    before_kill, after_kill = messages[:2000], messages[2000:]
    with start_mosquitto(tmp_path / "broker", book) as broker:
        gateway = broker.address.with_credentials(GATEWAY, password)
        # The session exists before anything is published, as in production: while the
        # process starts, the broker queues for it. (Publishing into a broker where nobody
        # has subscribed yet loses the first readings, however long a test sleeps first.)
        open_ingest_session(broker.address)
        first = ingest_process(fresh_url, broker.address, tmp_path / "data")
        try:
            publisher = threading.Thread(target=publish_all, args=(gateway, before_kill))
            publisher.start()
            wait_until_stored(fleet, messages, 500)
            first.send_signal(signal.SIGKILL)
            first.wait()
            publisher.join()
        finally:
            first.kill()
        publish_all(gateway, after_kill)
        second = ingest_process(fresh_url, broker.address, tmp_path / "data")
        try:
            wait_until_stored(fleet, messages, 3000)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait()
    assert_each_stored_once(fleet, messages)
    assert second.returncode == 0


def test_a_restarted_broker_delivers_what_it_queued_and_the_consumer_reconnects(
    tmp_path, fleet, broker_book
):
    book, password = broker_book
    directory = tmp_path / "broker"
    broker = start_mosquitto(directory, book)
    port = broker.address.port
    gateway = broker.address.with_credentials(GATEWAY, password)
    # The consumer's persistent session exists; while it is away the broker queues for it.
    with running_consumer(fleet, broker.address):
        pass
    messages = stream(300)
    publish_all(gateway, messages[:200])
    broker.stop()  # Mosquitto saves its sessions and queued messages on the way down
    broker = start_mosquitto(directory, book, port=port)
    try:
        with running_consumer(fleet, broker.address) as consumer:
            wait_until_stored(fleet, messages, 200)
            broker.stop()
            wait_for_connected(consumer, 0)
            broker = start_mosquitto(directory, book, port=port)
            wait_for_connected(consumer, 1)
            publish_all(gateway, messages[200:])
            wait_until_stored(fleet, messages, 300)
    finally:
        broker.stop()
    assert_each_stored_once(fleet, messages)


def wait_for_connected(consumer: IngestConsumer, state: int) -> None:
    wait_for_progress(
        lambda: consumer.metrics.connected._value.get(),
        lambda connected: connected == state,
        "the consumer connected" if state else "the consumer disconnected",
    )


class CuttableProxy:
    """A TCP proxy to PostgreSQL that a test can cut (connections dropped, new ones refused)
    and restore: the database becomes unavailable to the ingest, then comes back."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.postgres
def test_readings_wait_unacknowledged_while_the_database_is_down(tmp_path, broker_book):
    book, password = broker_book
    with scratch_postgres_database() as url:
        database = Database.from_url(url)
        migrate.upgrade(database.engine)
        seed_fleet(database, VEHICLES)
        parsed = make_url(url)
        proxy = CuttableProxy(parsed.host, parsed.port or 5432)
        proxied = Database.from_url(
            parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        )
        try:
            with (
                start_mosquitto(tmp_path / "broker", book) as broker,
                running_consumer(proxied, broker.address) as consumer,
            ):
                gateway = broker.address.with_credentials(GATEWAY, password)
                messages = stream(300)
                publish_all(gateway, messages[:100])
                wait_until_stored(database, messages, 100)
                proxy.cut()
                publish_all(gateway, messages[100:])
                wait_for_progress(
                    lambda: consumer.metrics.db_errors._value.get(),
                    lambda errors: errors >= 2,
                    "two database errors",
                )
                assert stored_count(database) == 100
                proxy.restore()
                wait_until_stored(database, messages, 300)
            assert_each_stored_once(database, messages)
        finally:
            proxy.close()
            proxied.engine.dispose()
            database.engine.dispose()
    assert consumer.metrics.stored._value.get() == 300
