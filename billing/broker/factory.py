"""Which embedded broker `billing run` starts: Mosquitto when installed (or required),
amqtt otherwise. Apart from `billing.broker.embedded` so that the base class knows none of
its implementations."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from typing import Literal

from billing.broker.embedded import EmbeddedBroker, embedded_port
from billing.devices.credentials import BrokerAccounts
from billing.settings import Settings

log = logging.getLogger(__name__)

AMQTT_WARNING = (
    "%s: using the in-process amqtt development broker instead of Mosquitto. It speaks "
    "MQTT 3.1.1 only (no shared subscriptions), keeps no persistent session for the ingest "
    "consumer, does not redeliver unacknowledged readings after a crash, and drops any "
    "message not acknowledged within 5 s: readings can be lost. Per-vehicle logins and "
    "topic rules are enforced. Install Mosquitto for the delivery guarantees of docs/telemetry.md."
)


def start_embedded_broker(
    settings: Settings,
    accounts: Callable[[], BrokerAccounts],
    *,
    backend: Literal["auto", "mosquitto", "amqtt"] = "auto",
) -> EmbeddedBroker:
    """Start Mosquitto when installed (or required), else amqtt, and wait until it serves."""
    broker = _new_broker(settings, accounts, backend)
    broker.serve()
    return broker


def _new_broker(
    settings: Settings, accounts: Callable[[], BrokerAccounts], backend: str
) -> EmbeddedBroker:
    binary = shutil.which(settings.broker.mosquitto) if backend != "amqtt" else None
    if backend == "mosquitto" and binary is None:
        raise FileNotFoundError(f"no Mosquitto binary {settings.broker.mosquitto!r}")
    port = embedded_port(settings)
    if binary is not None:
        # Imported when chosen: the other one's dependencies (amqtt) stay unloaded.
        from billing.broker.mosquitto import MosquittoBroker

        return MosquittoBroker(settings, accounts, port, binary)
    from billing.broker.amqtt import AmqttBroker

    reason = (
        "amqtt was asked for"
        if backend == "amqtt"
        else f"no Mosquitto binary {settings.broker.mosquitto!r} found"
    )
    log.warning(AMQTT_WARNING, reason)
    return AmqttBroker(settings, accounts, port)
