"""Database access: engine, sessions, the declarative Base and the column types we rely on.

Works the same on SQLite (the embedded default) and PostgreSQL (production). Two types
hide their differences: `UTCDateTime` (always timezone-aware UTC in Python) and
`ExactDecimal` (never a float on the way in or out — SQLite has no exact numeric type).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.engine import Connection, CursorResult, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so that migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# SQLite auto-increments only an INTEGER PRIMARY KEY; elsewhere a table that grows without
# end wants BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime; naive datetimes are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware datetimes")
        value = value.astimezone(dt.UTC)
        # SQLite stores text; naive UTC text sorts and compares correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def sqlite_timestamp(value: dt.datetime) -> str:
    """The text UTCDateTime stores on SQLite (SQLITE_FORMAT), for the few paths that bypass
    the ORM. isoformat writes the same text as strftime in a third of the time: the ingest
    formats two timestamps per reading."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class ExactDecimal(TypeDecorator):
    """An exact decimal: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(20, 6, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"{value!r} is not a Decimal")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the per-database settings we depend on."""
    if url.startswith("sqlite"):
        # The most recently returned connection first: each SQLite connection keeps its own
        # page cache (up to 32 MiB, below), and a pool handing them out in turn would fill
        # every one of them in a process that runs one job after another (the scheduler).
        if make_url(url).database not in (None, "", ":memory:"):  # a file: a QueuePool
            kwargs.setdefault("pool_use_lifo", True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024
# The execution option of a read-only transaction (Database.reading).
READ_ONLY = "billing_read_only"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
        # SAVEPOINTs work (test isolation) and BEGIN is issued as below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the ingest writer
        # Durable against any application crash; on a power cut or an OS crash the commits
        # since the last checkpoint may be lost, never the database (docs/telemetry.md).
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 32 MiB of page cache instead of 2: the readings' primary key takes inserts all over
        # its B-tree, and each page not cached is read again (with the faster timestamps
        # below, a fifth less CPU per stored reading). Per connection, filled as used.
        cursor.execute("PRAGMA cache_size=-32768")
        # Checkpoint when the WAL reaches 64 MiB instead of 4: every reading dirties a page
        # of each readings index at random, and a checkpoint copies each dirty page back
        # once, however often it changed since the last. Measured on the ingest's inserts:
        # 1.5x the rows per second. The cost is a WAL file of up to 64 MiB (kept at that
        # size, not more, by journal_size_limit) and replaying it when a crash left one.
        page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_CHECKPOINT_BYTES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A reader of a WAL database takes no lock and never waits for a writer.
            connection.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front: a deferred transaction that later writes
        # fails at once with "database is locked" when another process wrote meanwhile,
        # instead of waiting for busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its session factory; tests bind it to one connection and roll back."""

    def __init__(self, bind: Engine | Connection):
        self.bind = bind
        self.engine = bind if isinstance(bind, Engine) else bind.engine
        options: dict[str, Any] = {"expire_on_commit": False}
        if isinstance(bind, Connection):
            options["join_transaction_mode"] = "create_savepoint"
        self.sessionmaker = sessionmaker(bind=bind, **options)
        reader: Engine | Connection
        if isinstance(bind, Engine):
            reader, reader_options = bind.execution_options(**{READ_ONLY: True}), options
        else:
            # Tests share one connection, already begun: a reader joins its transaction
            # without a savepoint, whose rollback at close would undo what a session
            # beside it committed meanwhile (a GET that writes its one row aside).
            reader, reader_options = bind, {**options, "join_transaction_mode": "rollback_only"}
        self.read_only_sessionmaker = sessionmaker(
            bind=reader, info={READ_ONLY: True}, **reader_options
        )
        _refuse_writes(self.read_only_sessionmaker)

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> Database:
        return cls(make_engine(url, **engine_options))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessionmaker() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads. On SQLite its transactions take no lock: a session
        takes the database's one write lock from its start (see _configure_sqlite), so a
        process that reads for long, or often, would hold back the ingest's commits. A
        write in it raises ReadOnlyViolation, on both databases, before reaching SQL."""
        with self.read_only_sessionmaker() as session:
            yield session


class ReadOnlyViolation(RuntimeError):
    """A write in a read-only session: a bug of the code that opened it, never of input."""


def _refuse_writes(factory: sessionmaker[Session]) -> None:
    """Make the sessions of `factory` raise ReadOnlyViolation on any write: an ORM change
    at flush, an INSERT, UPDATE or DELETE when executed. Writing sessions pay nothing."""

    @event.listens_for(factory, "before_flush")
    def refuse_flush(session: Session, *_args: Any) -> None:
        modified = [row for row in session.dirty if session.is_modified(row)]
        changed = [type(row).__name__ for row in (*session.new, *modified, *session.deleted)]
        if changed:
            raise ReadOnlyViolation(f"a read-only session would write {sorted(set(changed))}")

    @event.listens_for(factory, "do_orm_execute")
    def refuse_statement(state: Any) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            raise ReadOnlyViolation(f"a read-only session would run {state.statement}")


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed: conditional updates use it
    as a compare-and-set."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def table_of(model: type[Base]) -> Table:
    """The table a model is mapped to, for Core statements (SQLAlchemy types it as any
    FromClause, which a model could be mapped to)."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert many rows at once: COPY on PostgreSQL (SQLAlchemy's executemany there sends a
    statement per row), executemany elsewhere. Values must already be the column types'."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(model), rows)
        return
    names = list(rows[0])
    driver = session.connection().connection.driver_connection
    assert driver is not None, "a session's connection is open"
    cursor = driver.cursor()
    with cursor.copy(f"COPY {model.__tablename__} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])


# For statements carrying a VALUES list of rows: each row count compiles to new SQL, and
# caching every variant would grow a long-running process's memory (the scheduler's
# metering passes) for no gain, compiling is cheap beside running them.
UNCACHED: dict[str, Any] = {"compiled_cache": None}
