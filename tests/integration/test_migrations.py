"""Migrations build the schema from nothing, on SQLite and PostgreSQL, and match the models."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from billing import migrate
from billing.db import make_engine
from billing.models import metadata
from tests.services import scratch_postgres_database


def assert_schema_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
        with engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), metadata
            )
        assert diff == []
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_migrations_build_the_schema_from_an_empty_sqlite_file(tmp_path: Path):
    assert_schema_matches_models(f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.postgres
def test_migrations_build_the_schema_from_an_empty_postgresql_database():
    with scratch_postgres_database() as url:
        assert_schema_matches_models(url)
