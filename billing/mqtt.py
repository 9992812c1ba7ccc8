"""MQTT connection details shared by the ingest consumer, the simulator and the tests.

MQTT_URL looks like mqtt://user:password@host:1883 (mqtts:// for TLS). The topic contract
lives here too, so that publishers and the consumer cannot disagree on it.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

TOPIC_PREFIX = "billing/v1/vehicles/"
TOPIC_SUFFIX = "/telemetry"
TELEMETRY_SUBSCRIPTION = "billing/v1/vehicles/+/telemetry"
VEHICLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


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


def make_client(
    address: BrokerAddress,
    client_id: str = "",
    *,
    protocol: int = mqtt.MQTTv5,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho 2 client configured for `address` (not yet connected)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        manual_ack=manual_ack,
        reconnect_on_failure=True,
    )
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    return client
