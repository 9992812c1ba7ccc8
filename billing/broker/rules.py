"""The broker's access rules and the files that carry them.

`export_broker_files` writes the password_file and acl_file that make Mosquitto enforce
the telemetry contract: a vehicle publishes only to its own topic, a fleet gateway only for its
fleet's vehicles, the ingest service account reads them all. Production runs
`billing broker export` and reloads its Mosquitto. The embedded brokers of `billing run`
(`billing.broker.embedded`) serve the same `AccessRules`.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
from billing.settings import Settings

log = logging.getLogger(__name__)

PASSWORD_FILE = "password_file"
ACL_FILE = "acl_file"
# What goes into a password file line and after `user` in an ACL file: nothing that could
# end the line or the field early. Vehicle ids and `gw-<fleet id>` all fit.
USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")

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
    write_private(password_file, _password_file_text(rules))
    write_private(acl_file, _acl_file_text(rules))
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


def write_private(path: Path, text: str) -> None:
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
    return settings.broker.ingest_username, embedded_ingest_password(broker_directory(settings))


def embedded_ingest_password(directory: Path) -> str:
    path = directory / "ingest-password"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    directory.mkdir(parents=True, exist_ok=True)
    password = new_broker_password()
    write_private(path, password + "\n")
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


def registry_accounts(database: Database) -> Callable[[], BrokerAccounts]:
    """A source of the registry's active broker logins, for `EmbeddedBroker.start`."""
    from billing.devices.services import broker_accounts

    def load() -> BrokerAccounts:
        with database.session() as session:
            return broker_accounts(session)

    return load
