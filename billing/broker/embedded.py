"""The embedded broker: the one `billing run` starts when MQTT_URL is not set.

Mosquitto as a child process (`billing.broker.mosquitto`), configured from
config/mosquitto.conf, when it is installed; an in-process amqtt broker
(`billing.broker.amqtt`) otherwise, with weaker guarantees. `billing.broker.factory`
chooses between them; this module holds what they share and knows neither.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Self

from billing.broker.rules import (
    AccessRules,
    access_rules,
    broker_directory,
    embedded_ingest_password,
    write_private,
)
from billing.devices.credentials import (
    CHOSEN_PASSWORD_ITERATIONS,
    BrokerAccounts,
    mosquitto_hash,
)
from billing.mqtt import BrokerAddress
from billing.net import free_port
from billing.settings import Settings

log = logging.getLogger(__name__)

# Where a running embedded broker's address (no credentials) is, for the commands that
# publish to it (`billing simulate`) and the readiness view; removed when it stops.
ADDRESS_FILE = "address"
PORT_FILE = "port"


def running_broker_url(settings: Settings) -> str | None:
    """The URL of the embedded broker `billing run` started with these settings, if one
    runs (or ran and died without cleaning up: connecting then fails, and says where)."""
    path = broker_directory(settings) / ADDRESS_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def embedded_port(settings: Settings) -> int:
    """The port the embedded broker listens on: the configured one when free; else the one
    an earlier start had to take instead, kept in the broker directory, so that vehicles
    configured with it keep working across restarts; else a new one, kept for next time."""
    host, configured = settings.broker.host, settings.broker.port
    if configured and free_port(host, configured) == configured:
        return configured
    kept = broker_directory(settings) / PORT_FILE
    try:
        previous = int(kept.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        previous = 0
    port = free_port(host, previous if 0 < previous < 65536 else 0)
    if port != previous:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(f"{port}\n", encoding="utf-8")
        log.warning("port %s is taken: the embedded broker uses %s from now on", configured, port)
    return port


class EmbeddedBroker(ABC):
    """A broker for one machine, started by `billing run` when MQTT_URL is not set.

    `address` logs in as the ingest account; `protocol` is paho's MQTTv5 or MQTTv311, what
    the ingest consumer may speak (no shared subscription nor session expiry under 3.1.1).
    The broker follows the registry: every `settings.broker.refresh_seconds` it reloads the
    logins when credentials were issued or revoked; `reload()` does so at once.
    """

    protocol: int
    address: BrokerAddress

    def __init__(self, settings: Settings, accounts: Callable[[], BrokerAccounts], port: int):
        self.settings = settings
        self.directory = broker_directory(settings)
        self._accounts = accounts
        self._exported: BrokerAccounts | None = None
        self._reload_lock = threading.Lock()
        self._stopping = threading.Event()
        self._refresher: threading.Thread | None = None
        username = settings.broker.ingest_username
        password = embedded_ingest_password(self.directory)
        self._ingest_hash = mosquitto_hash(password, iterations=CHOSEN_PASSWORD_ITERATIONS)
        self.address = BrokerAddress(settings.broker.host, port, username, password)

    def serve(self) -> None:
        """Launch with the registry's logins, keep following them, and publish the address
        (without credentials) where `running_broker_url` finds it."""
        accounts_now = self._accounts()
        self._launch(self._rules(accounts_now))
        self._exported = accounts_now
        self._start_refreshing()
        write_private(self.directory / ADDRESS_FILE, self.address.url + "\n")
        log.info("embedded %s on %s", type(self).__name__, self.address.url)

    def reload(self) -> None:
        """Load the registry's logins into the running broker now."""
        with self._reload_lock:
            accounts = self._accounts()
            self._apply(self._rules(accounts))
            self._exported = accounts

    def refresh(self) -> bool:
        """Reload when credentials or fleets changed since the last load; True if it did."""
        with self._reload_lock:
            accounts = self._accounts()
            if accounts == self._exported:
                return False
            self._apply(self._rules(accounts))
            self._exported = accounts
            return True

    def stop(self) -> None:
        """Stop refreshing and stop the broker (Mosquitto saves its sessions on the way out)."""
        self._stopping.set()
        if self._refresher is not None:
            self._refresher.join()
        (self.directory / ADDRESS_FILE).unlink(missing_ok=True)
        self._shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _rules(self, accounts: BrokerAccounts) -> AccessRules:
        return access_rules(accounts, self.address.username or "", self._ingest_hash)

    def _start_refreshing(self) -> None:
        interval = self.settings.broker.refresh_seconds
        if interval <= 0:
            return
        self._refresher = threading.Thread(
            target=self._refresh_until_stopped, args=(interval,), name="broker-refresh", daemon=True
        )
        self._refresher.start()

    def _refresh_until_stopped(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                self.refresh()
            except Exception:
                # A database hiccup must not end the loop: the next round retries.
                log.exception("could not refresh the broker's logins")

    @abstractmethod
    def _launch(self, rules: AccessRules) -> None:
        """Start serving `address` with these rules; return once logins are accepted."""

    @abstractmethod
    def _apply(self, rules: AccessRules) -> None:
        """Make the running broker use these rules."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Stop serving."""
