"""MQTT connection details shared by the ingest consumer, the simulator and the tests.

MQTT_URL looks like mqtt://user:password@host:1883 (mqtts:// for TLS). The topic contract
lives here too, so that publishers and the consumer cannot disagree on it.
"""

from __future__ import annotations

import re
import ssl
import struct
import time
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

PUBACK = 0x40
PUBACK_PACKET = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id

TOPIC_PREFIX = "billing/v1/vehicles/"
TOPIC_SUFFIX = "/telemetry"
TELEMETRY_SUBSCRIPTION = "billing/v1/vehicles/+/telemetry"
VEHICLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_Client = TypeVar("_Client", bound=mqtt.Client)


def telemetry_topic(vehicle_id: str) -> str:
    return f"{TOPIC_PREFIX}{vehicle_id}{TOPIC_SUFFIX}"


def vehicle_from_topic(topic: str) -> str | None:
    """The vehicle a telemetry topic names, or None when the topic breaks the contract."""
    if not (topic.startswith(TOPIC_PREFIX) and topic.endswith(TOPIC_SUFFIX)):
        return None
    vehicle_id = topic[len(TOPIC_PREFIX) : -len(TOPIC_SUFFIX)]
    return vehicle_id if VEHICLE_ID.fullmatch(vehicle_id) else None


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT_URL {url!r}: the scheme must be mqtt:// or mqtts://")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def with_credentials(self, username: str, password: str) -> BrokerAddress:
        return BrokerAddress(self.host, self.port, username, password, self.tls)

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


class ConsumerClient(mqtt.Client):
    """A paho client tuned for consuming a high-rate stream.

    paho reads a packet with three or four small recv() calls and returns to select()
    after each packet; at 15,000 messages/s those system calls took a third of the
    consumer's time. This client reads the socket 64 KiB at a time and handles every
    complete packet in that buffer before selecting again. `ack_many` sends the PUBACKs of
    a committed batch as one write instead of one per message.

    It overrides private methods of paho-mqtt 2 (`_sock_recv`, `_packet_queue`), hence the
    pinned version range; tests/integration/test_ingest.py exercises both on every run.
    """

    READ_SIZE = 65536

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._read_buffer = bytearray()

    def reconnect(self) -> mqtt.MQTTErrorCode:
        self._read_buffer.clear()  # bytes of the old connection mean nothing on the new one
        return super().reconnect()

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._read_buffer:
            data = super()._sock_recv(self.READ_SIZE)  # raises BlockingIOError when empty
            if not data:
                return data  # connection closed
            self._read_buffer += data
        chunk = bytes(self._read_buffer[:bufsize])
        del self._read_buffer[:bufsize]
        return chunk

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._read_buffer and self._sock:
            rc = super().loop_read(1)
        return rc

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages (PUBACK, success), in this order, in one write."""
        if mids:
            packets = b"".join([PUBACK_PACKET.pack(PUBACK, 2, mid) for mid in mids])
            self._packet_queue(PUBACK, packets, 0, 0)


@overload
def make_client(
    address: BrokerAddress,
    client_id: str = "",
    *,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
    manual_ack: bool = False,
    persistent_session: bool = False,
) -> mqtt.Client: ...


@overload
def make_client(
    address: BrokerAddress,
    client_id: str = "",
    *,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
    manual_ack: bool = False,
    persistent_session: bool = False,
    client_class: type[_Client],
) -> _Client: ...


def make_client(
    address: BrokerAddress,
    client_id: str = "",
    *,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
    manual_ack: bool = False,
    persistent_session: bool = False,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A paho 2 client configured for `address` (not yet connected).

    `persistent_session` asks an MQTT 3.1.1 broker to keep the session (MQTT 5 asks at
    connect time, with clean_start=False and a session expiry).
    """
    client = client_class(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        # paho refuses clean_session with MQTT 5; None is its default.
        clean_session=None if protocol == mqtt.MQTTv5 else not persistent_session,
        protocol=protocol,
        manual_ack=manual_ack,
        reconnect_on_failure=True,
    )
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    return client


def login_answer(
    address: BrokerAddress, protocol: mqtt.MQTTProtocolVersion, timeout_s: float = 2.0
) -> mqtt.ReasonCode | None:
    """The broker's answer to a login with `address`'s credentials (accepted, or the reason
    it was refused); None while the port is closed or no answer came within `timeout_s`."""
    client = make_client(address, protocol=protocol)
    answers: list[mqtt.ReasonCode] = []
    client.on_connect = lambda _client, _userdata, _flags, reason, _props: answers.append(reason)
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError:
        return None
    try:
        deadline = time.monotonic() + timeout_s
        while not answers and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    finally:
        client.disconnect()
    return answers[0] if answers else None
