"""Committed databases for tests that span processes or threads (the ingest consumer, the
scheduler), where the rolled-back connection of the `database` fixture cannot be shared."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from billing import migrate
from billing.auth import SYSTEM
from billing.db import Database
from billing.devices import services
from billing.registry import vehicle_changes
from tests.conftest import customer_payload
from tests.services import configured_database_url, scratch_postgres_database

SEEDED_AT = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@contextmanager
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """A new migrated database of the kind the suite runs on (DATABASE_URL's, or SQLite)."""
    configured = configured_database_url()
    if configured and configured.startswith("postgresql"):
        with scratch_postgres_database() as url:
            _migrate(url)
            yield url
        return
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _migrate(url)
    yield url


def _migrate(url: str) -> None:
    database = Database.from_url(url)
    migrate.upgrade(database.engine)
    database.engine.dispose()


@contextmanager
def readings_locked(database_url: str) -> Iterator[None]:
    """Hold a lock that makes every insert into `readings` wait: a message being stored
    stays in flight for as long as the test wants."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    else:
        connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
        connection.execute("LOCK TABLE readings IN SHARE ROW EXCLUSIVE MODE")
    try:
        yield
    finally:
        connection.rollback()
        connection.close()


def seed_fleet(database: Database, vehicle_ids: list[str]) -> str:
    """A customer with one fleet holding these vehicles; returns the fleet id."""
    with database.session() as session:
        customer = services.create_customer(session, customer_payload(), SEEDED_AT)
        fleet = services.create_fleet(
            session, SYSTEM, {"customer_id": customer.id, "name": "Test fleet"}, SEEDED_AT
        )
        for vehicle_id in vehicle_ids:
            vehicle_changes.register_vehicle(
                session,
                SYSTEM,
                {"id": vehicle_id, "fleet_id": fleet.id, "model": "s1", "serial": vehicle_id},
                SEEDED_AT,
            )
        return fleet.id


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(tmp_path) as url:
        yield url


@pytest.fixture
def fresh_db(fresh_url: str) -> Iterator[Database]:
    database = Database.from_url(fresh_url)
    yield database
    database.engine.dispose()
