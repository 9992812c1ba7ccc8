"""The broker `billing run` starts by itself: Mosquitto when installed, amqtt otherwise."""

import logging
import socket
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from billing.broker.amqtt import AmqttBroker
from billing.broker.factory import start_embedded_broker
from billing.broker.mosquitto import MosquittoBroker
from billing.mqtt import TELEMETRY_SUBSCRIPTION, BrokerAddress, telemetry_topic
from billing.settings import Settings, load_settings
from tests.brokers import (
    QUIET_S,
    TIMEOUT_S,
    AccountBook,
    RecordingClient,
    require_mosquitto,
    start_mosquitto,
)

pytestmark = pytest.mark.mqtt


def embedded_settings(tmp_path: Path, **broker: object) -> Settings:
    return load_settings(
        data_dir=tmp_path, mqtt_url="", broker={"port": 0, "refresh_seconds": 0, **broker}
    )


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_embedded_mosquitto_serves_the_ingest_account_and_stops_cleanly(tmp_path: Path):
    require_mosquitto()
    broker = start_embedded_broker(embedded_settings(tmp_path), AccountBook(), backend="auto")
    assert isinstance(broker, MosquittoBroker)
    assert broker.protocol == mqtt.MQTTv5
    with RecordingClient(broker.address) as ingest:
        assert not ingest.refused
    config = broker.config_file.read_text().splitlines()
    assert f"listener {broker.address.port} 127.0.0.1" in config
    assert "max_queued_messages 1000000" in config
    broker.stop()
    assert broker.process.returncode == 0
    assert not port_is_open(broker.address.port)


def test_the_embedded_broker_takes_another_port_when_its_own_is_taken(tmp_path: Path):
    require_mosquitto()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = embedded_settings(tmp_path, port=port)
        with start_embedded_broker(settings, AccountBook(), backend="mosquitto") as broker:
            assert broker.address.port != port
            with RecordingClient(broker.address) as ingest:
                assert not ingest.refused


def test_the_port_taken_instead_of_a_busy_one_is_kept_across_restarts(tmp_path: Path):
    require_mosquitto()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = embedded_settings(tmp_path, port=taken.getsockname()[1])
        with start_embedded_broker(settings, AccountBook(), backend="mosquitto") as broker:
            first = broker.address.port
        with start_embedded_broker(settings, AccountBook(), backend="mosquitto") as broker:
            assert broker.address.port == first
            with RecordingClient(broker.address) as ingest:
                assert not ingest.refused
    assert (tmp_path / "broker" / "port").read_text() == f"{first}\n"


def test_the_embedded_broker_picks_up_new_logins_by_itself(tmp_path: Path):
    require_mosquitto()
    book = AccountBook()
    settings = embedded_settings(tmp_path, refresh_seconds=0.05)
    with start_embedded_broker(settings, book, backend="mosquitto") as broker:
        password = book.add_vehicle("VEH-1")
        address = broker.address.with_credentials("VEH-1", password)
        assert wait_for_login(address)


def wait_for_login(address: BrokerAddress) -> bool:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        with RecordingClient(address) as client:
            if not client.refused:
                return True
        time.sleep(0.05)
    return False


def test_a_reading_queued_for_the_ingest_survives_a_broker_restart(tmp_path: Path):
    book = AccountBook()
    password = book.add_vehicle("VEH-1")
    broker = start_mosquitto(tmp_path, book)
    with RecordingClient(broker.address, client_id="ingest-1", session_expiry=3600) as ingest:
        ingest.subscribe(TELEMETRY_SUBSCRIPTION)
    with RecordingClient(broker.address.with_credentials("VEH-1", password)) as vehicle:
        assert not vehicle.publish(telemetry_topic("VEH-1"), b"kept").is_failure
    broker.stop()
    with start_mosquitto(tmp_path, book, port=broker.address.port) as restarted:
        address = restarted.address
        with RecordingClient(address, client_id="ingest-1", session_expiry=3600) as ingest:
            assert ingest.next_message().payload == b"kept"


def test_without_mosquitto_the_amqtt_fallback_carries_readings_over_mqtt_311(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    book = AccountBook()
    password = book.add_vehicle("VEH-1")
    book.add_vehicle("VEH-2")
    settings = embedded_settings(tmp_path, mosquitto="no-such-mosquitto")
    with caplog.at_level(logging.WARNING, logger="billing.broker"):
        broker = start_embedded_broker(settings, book)
    with broker:
        assert isinstance(broker, AmqttBroker)
        assert broker.protocol == mqtt.MQTTv311
        assert "does not redeliver unacknowledged readings" in caplog.text
        with RecordingClient(broker.address, protocol=mqtt.MQTTv311) as ingest:
            ingest.subscribe(TELEMETRY_SUBSCRIPTION)
            vehicle_address = broker.address.with_credentials("VEH-1", password)
            with RecordingClient(vehicle_address, protocol=mqtt.MQTTv311) as vehicle:
                vehicle.publish(telemetry_topic("VEH-2"), b"forged")
                vehicle.publish(telemetry_topic("VEH-1"), b"own")
            assert ingest.next_message().payload == b"own"
            assert ingest.next_message(timeout=QUIET_S) is None
        wrong = broker.address.with_credentials("VEH-1", "wrong")
        with RecordingClient(wrong, protocol=mqtt.MQTTv311) as refused:
            assert refused.refused


def test_the_amqtt_fallback_follows_revocations(tmp_path: Path):
    book = AccountBook()
    password = book.add_vehicle("VEH-1")
    with start_embedded_broker(embedded_settings(tmp_path), book, backend="amqtt") as broker:
        address = broker.address.with_credentials("VEH-1", password)
        book.remove("VEH-1")
        assert broker.refresh()
        assert not broker.refresh()  # nothing changed since
        with RecordingClient(address, protocol=mqtt.MQTTv311) as revoked:
            assert revoked.refused


def test_requiring_mosquitto_where_there_is_none_is_an_error(tmp_path: Path):
    settings = embedded_settings(tmp_path, mosquitto="no-such-mosquitto")
    with pytest.raises(FileNotFoundError, match="no-such-mosquitto"):
        start_embedded_broker(settings, AccountBook(), backend="mosquitto")


def test_a_mosquitto_that_exits_at_start_is_reported_with_its_log(tmp_path: Path):
    settings = embedded_settings(tmp_path, mosquitto="false")  # exits at once, status 1
    with pytest.raises(RuntimeError, match="Mosquitto exited at start"):
        start_embedded_broker(settings, AccountBook(), backend="mosquitto")
