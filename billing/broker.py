"""The MQTT broker, an outside system behind a small interface.

- `export_broker_files` writes the password_file and acl_file that make Mosquitto enforce
  the telemetry contract: a vehicle publishes only to its own topic, a fleet gateway only for its
  fleet's vehicles, the ingest service account reads them all. Production runs
  `billing broker export` and reloads its Mosquitto.
- `EmbeddedBroker` is the broker `billing run` starts when MQTT_URL is not set: Mosquitto
  as a child process (`billing.broker_mosquitto`), configured from config/mosquitto.conf,
  when it is installed; an in-process amqtt broker (`billing.broker_amqtt`) otherwise,
  with weaker guarantees.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from billing.db import Database
from billing.devices.credentials import (
    CHOSEN_PASSWORD_ITERATIONS,
    BrokerAccounts,
    mosquitto_hash,
    new_broker_password,
)
from billing.mqtt import (
    TELEMETRY_SUBSCRIPTION,
    VEHICLE_ID,
    BrokerAddress,
    telemetry_topic,
)
from billing.net import free_port
from billing.settings import Settings

log = logging.getLogger(__name__)

PASSWORD_FILE = "password_file"
# Where a running embedded broker's address (no credentials) is, for the commands that
# publish to it (`billing simulate`) and the readiness view; removed when it stops.
ADDRESS_FILE = "address"
ACL_FILE = "acl_file"
# What goes into a password file line and after `user` in an ACL file: nothing that could
# end the line or the field early. Vehicle ids and `gw-<fleet id>` all fit.
USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")

AMQTT_WARNING = (
    "%s: using the in-process amqtt development broker instead of Mosquitto. It speaks "
    "MQTT 3.1.1 only (no shared subscriptions), keeps no persistent session for the ingest "
    "consumer, does not redeliver unacknowledged readings after a crash, and drops any "
    "message not acknowledged within 5 s: readings can be lost. Per-vehicle logins and "
    "topic rules are enforced. Install Mosquitto for the delivery guarantees of docs/telemetry.md."
)


# --- the files Mosquitto reads ----------------------------------------------------------


@dataclass(frozen=True)
class AccessRules:
    """Who may log in (username → `$7$` hash), publish to which topics, and read which."""

    password_hashes: dict[str, str]
    publish: dict[str, tuple[str, ...]]
    read: dict[str, tuple[str, ...]]


def access_rules(
    accounts: BrokerAccounts, ingest_username: str, ingest_password_hash: str
) -> AccessRules:
    """The broker's rules for these accounts plus the ingest service account.

    An account whose name cannot be written safely, or that would take the ingest
    account's name (a vehicle registered as "billing-ingest"), is left out with an error
    logged: it must not gain the right to read every vehicle's telemetry, nor stop the
    export for every other vehicle.
    """
    passwords = {ingest_username: ingest_password_hash}
    publish: dict[str, tuple[str, ...]] = {}
    for account in accounts.accounts:
        if account.username in passwords or not USERNAME.fullmatch(account.username):
            log.error("broker login %r left out: invalid or taken name", account.username)
            continue
        passwords[account.username] = account.password_hash
        publish[account.username] = tuple(
            telemetry_topic(vehicle_id)
            for vehicle_id in account.vehicle_ids
            if VEHICLE_ID.fullmatch(vehicle_id)
        )
    return AccessRules(passwords, publish, {ingest_username: (TELEMETRY_SUBSCRIPTION,)})


def export_broker_files(
    accounts: BrokerAccounts, directory: Path, ingest_username: str, ingest_password_hash: str
) -> tuple[Path, Path]:
    """Write Mosquitto's password_file and acl_file into `directory`; return their paths.

    Each file is replaced atomically, so that a Mosquitto reloading meanwhile reads the old
    or the new one, never half of one.
    """
    return write_broker_files(
        access_rules(accounts, ingest_username, ingest_password_hash), directory
    )


def write_broker_files(rules: AccessRules, directory: Path) -> tuple[Path, Path]:
    """Write the password_file and acl_file of these rules into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    password_file, acl_file = directory / PASSWORD_FILE, directory / ACL_FILE
    _write_private(password_file, _password_file_text(rules))
    _write_private(acl_file, _acl_file_text(rules))
    return password_file, acl_file


def _password_file_text(rules: AccessRules) -> str:
    return "".join(
        f"{user}:{password_hash}\n" for user, password_hash in rules.password_hashes.items()
    )


def _acl_file_text(rules: AccessRules) -> str:
    # Explicit `user` blocks rather than `pattern ... %u`: a pattern would apply to every
    # login, gateways and the ingest account included.
    blocks = ["# Written by `billing broker export`; the next export replaces it.\n"]
    for user, topics in rules.read.items():
        blocks.append(f"user {user}\n" + "".join(f"topic read {topic}\n" for topic in topics))
    for user, topics in rules.publish.items():
        blocks.append(f"user {user}\n" + "".join(f"topic write {topic}\n" for topic in topics))
    return "\n".join(blocks)


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only (mkstemp creates it 0600)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        _keep_owner(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _keep_owner(path: Path, temporary: str) -> None:
    # Mosquitto drops root and re-reads the files on SIGHUP as its own user: an export run as
    # root keeps the owner the administrator gave the files (chown mosquitto once).
    if path.exists() and os.geteuid() == 0:
        existing = path.stat()
        os.chown(temporary, existing.st_uid, existing.st_gid)


# --- the ingest service account -----------------------------------------------------------


def broker_directory(settings: Settings) -> Path:
    """Where the embedded broker and `billing broker export` keep their files by default."""
    return settings.data_dir / "broker"


def ingest_credentials(settings: Settings) -> tuple[str, str]:
    """The ingest account's username and password.

    With MQTT_URL set, the ones it carries (mqtt://billing-ingest:PASSWORD@host); without,
    the embedded broker's: a password generated once and kept in the data directory.
    """
    if settings.mqtt_url:
        address = BrokerAddress.parse(settings.mqtt_url)
        if not (address.username and address.password):
            raise ValueError(
                "MQTT_URL carries no username and password; put the ingest account's in it: "
                f"mqtt://{settings.broker.ingest_username}:PASSWORD@host:port"
            )
        return address.username, address.password
    return settings.broker.ingest_username, _embedded_ingest_password(broker_directory(settings))


def _embedded_ingest_password(directory: Path) -> str:
    path = directory / "ingest-password"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    directory.mkdir(parents=True, exist_ok=True)
    password = new_broker_password()
    _write_private(path, password + "\n")
    return password


def export_registry_broker_files(
    database: Database, settings: Settings, directory: Path | None = None
) -> tuple[BrokerAccounts, tuple[Path, Path]]:
    """Export the registry's logins for an outside Mosquitto into `directory` (default
    `broker_directory`), then run `broker.reload_command` if set (e.g. `systemctl reload
    mosquitto`) so that the broker reads them. Returns the logins and the files written.
    Raises ValueError when MQTT_URL carries no ingest credentials."""
    username, password = ingest_credentials(settings)
    accounts = registry_accounts(database)()
    files = export_broker_files(
        accounts,
        directory or broker_directory(settings),
        username,
        mosquitto_hash(password, iterations=CHOSEN_PASSWORD_ITERATIONS),
    )
    if settings.broker.reload_command:
        subprocess.run(shlex.split(settings.broker.reload_command), check=True, timeout=30)
    return accounts, files


def running_broker_url(settings: Settings) -> str | None:
    """The URL of the embedded broker `billing run` started with these settings, if one
    runs (or ran and died without cleaning up: connecting then fails, and says where)."""
    path = broker_directory(settings) / ADDRESS_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def registry_accounts(database: Database) -> Callable[[], BrokerAccounts]:
    """A source of the registry's active broker logins, for `EmbeddedBroker.start`."""
    from billing.devices.services import broker_accounts

    def load() -> BrokerAccounts:
        with database.session() as session:
            return broker_accounts(session)

    return load


# --- the embedded broker ------------------------------------------------------------------

PORT_FILE = "port"


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
        password = _embedded_ingest_password(self.directory)
        self._ingest_hash = mosquitto_hash(password, iterations=CHOSEN_PASSWORD_ITERATIONS)
        self.address = BrokerAddress(settings.broker.host, port, username, password)

    @classmethod
    def start(
        cls,
        settings: Settings,
        accounts: Callable[[], BrokerAccounts],
        *,
        backend: Literal["auto", "mosquitto", "amqtt"] = "auto",
    ) -> EmbeddedBroker:
        """Start Mosquitto when installed (or required), else amqtt, and wait until it serves."""
        broker = _new_broker(settings, accounts, backend)
        accounts_now = accounts()
        broker._launch(broker._rules(accounts_now))
        broker._exported = accounts_now
        broker._start_refreshing()
        _write_private(broker.directory / ADDRESS_FILE, broker.address.url + "\n")
        log.info("embedded %s on %s", type(broker).__name__, broker.address.url)
        return broker

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


def _new_broker(
    settings: Settings, accounts: Callable[[], BrokerAccounts], backend: str
) -> EmbeddedBroker:
    binary = shutil.which(settings.broker.mosquitto) if backend != "amqtt" else None
    if backend == "mosquitto" and binary is None:
        raise FileNotFoundError(f"no Mosquitto binary {settings.broker.mosquitto!r}")
    port = embedded_port(settings)
    if binary is not None:
        from billing.broker_mosquitto import MosquittoBroker

        return MosquittoBroker(settings, accounts, port, binary)
    from billing.broker_amqtt import AmqttBroker

    reason = (
        "amqtt was asked for"
        if backend == "amqtt"
        else f"no Mosquitto binary {settings.broker.mosquitto!r} found"
    )
    log.warning(AMQTT_WARNING, reason)
    return AmqttBroker(settings, accounts, port)
