"""Fixtures: a migrated database for the session, a rolled-back transaction per test, the
Flask app and client, API keys for every role, and the `billing` command."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from billing import create_app, migrate
from billing.api_keys import create_api_key
from billing.cli import main
from billing.db import Database, make_engine
from billing.devices import services
from billing.registry import vehicle_changes
from billing.settings import Settings, load_settings
from billing.simulation.demo import DEMO_CUSTOMER
from tests.services import configured_database_url, scratch_postgres_database

NOW = dt.datetime(2026, 11, 15, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DATABASE_URL when set (CI points it at a dedicated PostgreSQL database), else SQLite."""
    url = configured_database_url()
    if url and url.startswith("postgresql"):
        with scratch_postgres_database() as scratch:
            yield scratch
        return
    yield url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'billing.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def database(engine: Engine) -> Iterator[Database]:
    """A database whose every commit is undone after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield Database(connection)
        transaction.rollback()


@pytest.fixture
def session(database: Database):
    with database.session() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path)


@pytest.fixture
def app(settings: Settings, database: Database) -> Flask:
    return create_app(settings, database)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Registry:
    """Two customers, each with a fleet and a vehicle, to test scopes against."""

    customer_id: str
    fleet_id: str
    vehicle_id: str
    other_customer_id: str
    other_fleet_id: str
    other_vehicle_id: str


def customer_payload(name: str = "Livraisons Picardes SAS") -> dict:
    """The demo customer's fields, without those that have defaults (tests check those)."""
    defaults = ("language", "timezone", "currency")
    payload = copy.deepcopy({k: v for k, v in DEMO_CUSTOMER.items() if k not in defaults})
    return {**payload, "name": name}


@pytest.fixture
def registry(session) -> Registry:
    from billing.auth import SYSTEM

    ids = []
    for suffix in ("A", "B"):
        customer = services.create_customer(session, customer_payload(f"Client {suffix}"), NOW)
        fleet = services.create_fleet(
            session, SYSTEM, {"customer_id": customer.id, "name": f"Fleet {suffix}"}, NOW
        )
        vehicle = vehicle_changes.register_vehicle(
            session,
            SYSTEM,
            {"id": f"VEH-{suffix}", "fleet_id": fleet.id, "model": "s1", "serial": f"S-{suffix}"},
            NOW,
        )
        ids += [customer.id, fleet.id, vehicle.id]
    return Registry(*ids[:3], *ids[3:])


@pytest.fixture
def example_plans(session) -> list[str]:
    """The plans of config/plans (flotte-pro, liberte, urbain), at version 1; their codes."""
    from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory

    return [p.code for p in load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, NOW)]


@pytest.fixture
def keys(session, registry: Registry) -> dict[str, str]:
    """Plain keys by role; operator and customer keys are scoped to customer A."""
    made = {
        "admin": create_api_key(session, "admin")[1],
        "finance": create_api_key(session, "finance")[1],
        "operator": create_api_key(session, "operator", fleet_ids=(registry.fleet_id,))[1],
        "customer": create_api_key(session, "customer", customer_id=registry.customer_id)[1],
    }
    return made


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Cli:
    """The `billing` command run in-process: `cli("keys", "list")`.

    It runs on the test's data directory and database: `fresh_url`'s when the test has that
    fixture, else an SQLite file of its own there (cli.db). Keyword arguments override the
    environment (`MQTT_URL=...`; None unsets a variable).
    `input` is its standard input; exceptions propagate unless `catch_exceptions=True`.
    """

    def __init__(self, environment: dict[str, str | None]) -> None:
        self.environment = environment

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        catch_exceptions: bool = False,
        **environment: str | None,
    ) -> Result:
        return CliRunner().invoke(
            main,
            list(args),
            input=input,
            env={**self.environment, **environment},
            catch_exceptions=catch_exceptions,
        )


@pytest.fixture
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    if "fresh_url" in request.fixturenames:
        url = request.getfixturevalue("fresh_url")
    else:
        url = f"sqlite:///{tmp_path / 'cli.db'}"
    return Cli({"DATABASE_URL": url, "BILLING_DATA_DIR": str(tmp_path)})
