"""The development broker: amqtt 0.12 in a thread of this process, with its own event loop.

Used by `billing run` only when no Mosquitto is installed (`billing.broker.factory` logs
what it does not guarantee). It enforces the same logins and topic rules as Mosquitto through two
plugins that read the `AccessRules` the Mosquitto files are written from.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext, BrokerConfig, ListenerConfig, ListenerType
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from billing.broker.embedded import EmbeddedBroker
from billing.broker.rules import AccessRules
from billing.devices.credentials import verify_mosquitto_hash

T = TypeVar("T")
TIMEOUT_S = 10.0


class RulesHolder:
    """The rules in force, swapped whole by `reload()` (one attribute write, thread-safe)."""

    def __init__(self, rules: AccessRules):
        self.rules = rules


class AmqttBroker(EmbeddedBroker):
    """amqtt serving `address`; MQTT 3.1.1 only."""

    protocol = mqtt.MQTTv311

    def _launch(self, rules: AccessRules) -> None:
        # amqtt's state machine library logs every transition of every session at INFO.
        logging.getLogger("transitions").setLevel(logging.WARNING)
        self._holder = RulesHolder(rules)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="amqtt-broker", daemon=True
        )
        self._thread.start()
        self._broker = self._run(self._start_broker())

    async def _start_broker(self) -> Broker:
        plugin_config = {"rules": self._holder}
        config = BrokerConfig(
            listeners={
                "default": ListenerConfig(
                    type=ListenerType.TCP, bind=f"{self.address.host}:{self.address.port}"
                )
            },
            plugins={
                f"{__name__}.{LoginPlugin.__name__}": plugin_config,
                f"{__name__}.{TopicRulesPlugin.__name__}": plugin_config,
            },
        )
        broker = Broker(config)
        await broker.start()
        return broker

    def _apply(self, rules: AccessRules) -> None:
        self._holder.rules = rules

    def _shutdown(self) -> None:
        try:
            self._run(self._broker.shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT_S)
            self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT_S)


@dataclass
class PluginConfig:
    rules: Any = None  # a RulesHolder; Any because amqtt builds this class with dacite


class LoginPlugin(BaseAuthPlugin):
    """Accepts a login whose password matches its `$7$` hash; refuses everyone else."""

    Config = PluginConfig

    def __init__(self, context: BaseContext):
        super().__init__(context)
        self._holder: RulesHolder = self.config.rules

    async def authenticate(self, *, session: Session) -> bool:
        password_hash = self._holder.rules.password_hashes.get(session.username or "")
        if password_hash is None:
            return False
        # PBKDF2 with the ingest account's many iterations would stall the event loop.
        return await asyncio.to_thread(verify_mosquitto_hash, session.password or "", password_hash)


class TopicRulesPlugin(BaseTopicPlugin):
    """Publish and read rights as in Mosquitto's acl_file: nothing that is not granted."""

    Config = PluginConfig

    def __init__(self, context: BaseContext):
        super().__init__(context)
        self._holder: RulesHolder = self.config.rules

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        if session is None or topic is None:
            return False
        rules = self._holder.rules
        granted = rules.publish if action == Action.PUBLISH else rules.read
        return any(topic_covers(allowed, topic) for allowed in granted.get(session.username, ()))


def topic_covers(allowed: str, requested: str) -> bool:
    """Whether the filter `allowed` covers `requested`, a topic or a narrower filter."""
    allowed_levels, requested_levels = allowed.split("/"), requested.split("/")
    for index, level in enumerate(allowed_levels):
        if level == "#":
            return True
        if index >= len(requested_levels):
            return False
        wanted = requested_levels[index]
        if wanted == "#" or (level != "+" and level != wanted):
            return False
    return len(allowed_levels) == len(requested_levels)
