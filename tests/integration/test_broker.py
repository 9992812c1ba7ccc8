"""Broker security with a real Mosquitto, started with the project's configuration and the
exported password and ACL files: each vehicle publishes for itself only (docs/telemetry.md)."""

import paho.mqtt.client as mqtt
import pytest

from billing.mqtt import TELEMETRY_SUBSCRIPTION, telemetry_topic
from tests.brokers import QUIET_S, AccountBook, RecordingClient
from tests.waiting import wait_for_progress

pytestmark = pytest.mark.mqtt

NOT_AUTHORIZED = 135
BAD_CREDENTIALS = {134, 135}  # "bad user name or password", "not authorized"


@pytest.fixture
def ingest(mosquitto):
    with RecordingClient(mosquitto.address) as client:
        assert not client.refused
        assert not client.subscribe(TELEMETRY_SUBSCRIPTION)[0].is_failure
        yield client


def login(broker, username: str, password: str) -> RecordingClient:
    return RecordingClient(broker.address.with_credentials(username, password))


def test_a_vehicle_publishes_to_its_own_topic_and_the_ingest_account_receives_it(
    account_book, mosquitto, ingest
):
    password = account_book.add_vehicle("VEH-1")
    mosquitto.reload()
    with login(mosquitto, "VEH-1", password) as vehicle:
        assert not vehicle.publish(telemetry_topic("VEH-1"), b'{"msg_id": "1"}').is_failure
    message = ingest.next_message()
    assert (message.topic, message.payload) == (telemetry_topic("VEH-1"), b'{"msg_id": "1"}')


def test_a_vehicle_cannot_publish_to_another_vehicles_topic(account_book, mosquitto, ingest):
    password = account_book.add_vehicle("VEH-1")
    account_book.add_vehicle("VEH-2")
    mosquitto.reload()
    with login(mosquitto, "VEH-1", password) as vehicle:
        assert vehicle.publish(telemetry_topic("VEH-2"), b"forged").value == NOT_AUTHORIZED
        vehicle.publish(telemetry_topic("VEH-1"), b"own", qos=0)
        vehicle.publish(telemetry_topic("VEH-2"), b"forged", qos=0)  # dropped without a word
        assert not vehicle.publish(telemetry_topic("VEH-1"), b"own again").is_failure
    # One publisher's messages arrive in order: nothing came between the two of its own.
    payloads = [ingest.next_message().payload, ingest.next_message().payload]
    assert payloads == [b"own", b"own again"]


def test_a_vehicle_cannot_read_other_vehicles_telemetry(account_book, mosquitto):
    spy_password = account_book.add_vehicle("VEH-1")
    password = account_book.add_vehicle("VEH-2")
    mosquitto.reload()
    with login(mosquitto, "VEH-1", spy_password) as spy, login(mosquitto, "VEH-2", password) as car:
        spy.subscribe(TELEMETRY_SUBSCRIPTION)  # Mosquitto 2.0 grants it, then delivers nothing
        car.publish(telemetry_topic("VEH-2"), b"private")
        assert spy.next_message(timeout=QUIET_S) is None


def test_a_wrong_password_an_unknown_user_and_an_anonymous_client_are_refused(
    account_book, mosquitto
):
    account_book.add_vehicle("VEH-1")
    mosquitto.reload()
    with login(mosquitto, "VEH-1", "not-the-password") as wrong:
        assert wrong.connack.value in BAD_CREDENTIALS
    with login(mosquitto, "VEH-404", "whatever") as unknown:
        assert unknown.connack.value in BAD_CREDENTIALS
    anonymous_address = mosquitto.address.with_credentials("", "")
    with RecordingClient(anonymous_address) as anonymous:
        assert anonymous.refused


def test_a_revoked_password_is_refused_once_the_broker_reloads(account_book, mosquitto):
    old_password = account_book.add_vehicle("VEH-1")
    mosquitto.reload()
    new_password = account_book.add_vehicle("VEH-1")  # a new issue revokes the old one
    mosquitto.reload()
    with login(mosquitto, "VEH-1", old_password) as old:
        assert old.connack.value in BAD_CREDENTIALS
    with login(mosquitto, "VEH-1", new_password) as new:
        assert not new.refused
    account_book.remove("VEH-1")
    mosquitto.reload()
    with login(mosquitto, "VEH-1", new_password) as revoked:
        assert revoked.connack.value in BAD_CREDENTIALS


def test_a_gateway_publishes_for_the_vehicles_of_its_fleet_only(account_book, mosquitto, ingest):
    password = account_book.add_gateway("gw-flt_a", ("VEH-1", "VEH-2"))
    account_book.add_vehicle("VEH-3")
    mosquitto.reload()
    with login(mosquitto, "gw-flt_a", password) as gateway:
        assert not gateway.publish(telemetry_topic("VEH-1"), b"1").is_failure
        assert not gateway.publish(telemetry_topic("VEH-2"), b"2").is_failure
        assert gateway.publish(telemetry_topic("VEH-3"), b"3").value == NOT_AUTHORIZED
        gateway.publish(telemetry_topic("VEH-3"), b"3", qos=0)
        gateway.publish(telemetry_topic("VEH-1"), b"last")
    payloads = [ingest.next_message().payload for _ in range(3)]
    assert payloads == [b"1", b"2", b"last"]


def test_ingest_processes_share_the_stream_through_a_shared_subscription(account_book, mosquitto):
    password = account_book.add_vehicle("VEH-1")
    mosquitto.reload()
    shared = f"$share/billing/{TELEMETRY_SUBSCRIPTION}"
    with RecordingClient(mosquitto.address) as first, RecordingClient(mosquitto.address) as second:
        assert not first.subscribe(shared)[0].is_failure
        assert not second.subscribe(shared)[0].is_failure
        with login(mosquitto, "VEH-1", password) as vehicle:
            for number in range(10):
                vehicle.publish(telemetry_topic("VEH-1"), str(number).encode())
        received = {first: [], second: []}

        def take_what_came() -> int:
            for client, payloads in received.items():
                while (message := client.next_message(timeout=0)) is not None:
                    payloads.append(int(message.payload))
            return sum(map(len, received.values()))

        wait_for_progress(take_what_came, lambda count: count >= 10, "10 messages")
        assert first.next_message(timeout=QUIET_S) is None
        assert second.next_message(timeout=0) is None
    assert sorted(received[first] + received[second]) == list(range(10))  # each once
    assert received[first] and received[second]  # and both consumers had a share


def test_the_ingest_account_cannot_publish_telemetry(mosquitto, ingest):
    assert ingest.publish(telemetry_topic("VEH-1"), b"forged").value == NOT_AUTHORIZED


def test_mqtt_311_clients_are_refused_the_same_way(account_book, mosquitto):
    password = account_book.add_vehicle("VEH-1")
    mosquitto.reload()
    address = mosquitto.address.with_credentials("VEH-1", password)
    with RecordingClient(address, protocol=mqtt.MQTTv311) as vehicle:
        assert not vehicle.refused
    wrong = mosquitto.address.with_credentials("VEH-1", "nope")
    with RecordingClient(wrong, protocol=mqtt.MQTTv311) as refused:
        assert refused.refused


def test_the_account_book_is_what_the_broker_knows(account_book: AccountBook, mosquitto):
    account_book.add_vehicle("VEH-1")
    mosquitto.reload()
    password_file = (mosquitto.directory / "password_file").read_text()
    assert [line.split(":")[0] for line in password_file.splitlines()] == [
        "billing-ingest",
        "VEH-1",
    ]
