"""Broker passwords in Mosquitto's own `$7$` format, and the accounts a broker must know.

Plain Python on plain data: the registry issues the hashes, the broker adapter
(`billing.broker`) writes them out for Mosquitto or hands them to the development broker.

A `$7$` hash is what `mosquitto_passwd` 2.0 writes by default:
`$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512 digest>`, standard base64 with
padding, a 12-byte salt and a 64-byte digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

# Mosquitto 2.0.11 refuses every password of an entry whose salt is not 12 bytes long
# (measured: a 32-byte salt made the CONNECT fail), so this is part of the format.
SALT_BYTES = 12
DIGEST_BYTES = 64
# mosquitto_passwd's default. Enough for broker passwords: they are 256-bit random strings,
# which no amount of guessing recovers from a stolen hash, so key stretching would only add
# CPU to every CONNECT — thousands of them at once when a broker restarts and the fleet
# reconnects. Passwords people choose (the ingest account's, in MQTT_URL) use more.
RANDOM_PASSWORD_ITERATIONS = 101
CHOSEN_PASSWORD_ITERATIONS = 100_000


def new_broker_password() -> str:
    """A fresh 256-bit password, URL-safe so that it fits in an MQTT_URL unescaped."""
    return secrets.token_urlsafe(32)


def mosquitto_hash(
    password: str, *, iterations: int = RANDOM_PASSWORD_ITERATIONS, salt: bytes | None = None
) -> str:
    """The `$7$` line Mosquitto's password_file expects after `username:`."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"Mosquitto accepts only {SALT_BYTES}-byte salts, not {len(salt)}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, DIGEST_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_mosquitto_hash(password: str, password_hash: str) -> bool:
    """Whether `password` matches a `$7$` hash (False for anything malformed)."""
    try:
        empty, kind, iterations, salt, digest = password_hash.split("$")
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac(
            "sha512",
            password.encode(),
            base64.b64decode(salt, validate=True),
            int(iterations),
            len(expected),
        )
    except ValueError:
        return False
    return empty == "" and kind == "7" and hmac.compare_digest(actual, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class BrokerAccount:
    """An active broker login and the vehicles whose telemetry topic it may publish to."""

    kind: str  # "vehicle" or "gateway"
    username: str
    password_hash: str
    vehicle_ids: tuple[str, ...]


@dataclass(frozen=True)
class BrokerAccounts:
    """Every active vehicle and gateway login, in a stable order (so that equal means same)."""

    accounts: tuple[BrokerAccount, ...]
