"""Where the test suite finds PostgreSQL and an MQTT broker.

With REQUIRE_SERVICES=1 (CI), a test that needs a missing service fails; otherwise it is
skipped, so that the suite also runs on a machine with only Python.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from billing.settings import normalize_database_url

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    if require_services():
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def require_program(program: str, package: str) -> str:
    """The path of `program`; skips (or fails, in CI) naming the Debian package that brings
    it, which `make install` installs from config/system-packages.txt."""
    path = shutil.which(program)
    if path is None:
        missing_service(
            f"{program} is not installed (Debian package {package}, installed by `make install`"
            " as root; `make doctor` lists what is missing)"
        )
    return path


def configured_database_url() -> str | None:
    url = os.environ.get("DATABASE_URL")
    return normalize_database_url(url) if url else None


def postgres_server_url() -> str | None:
    """A PostgreSQL URL to create scratch databases from: DATABASE_URL's server, or local."""
    configured = configured_database_url()
    if configured and configured.startswith("postgresql"):
        return configured
    url = make_url(LOCAL_POSTGRES)
    try:
        with socket.create_connection((url.host, url.port), timeout=1):
            return LOCAL_POSTGRES
    except OSError:
        return None


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    server = postgres_server_url()
    if server is None:
        missing_service(
            "PostgreSQL is not reachable (set DATABASE_URL, or run it on 127.0.0.1:5432)"
        )
    name = f"billing_scratch_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
