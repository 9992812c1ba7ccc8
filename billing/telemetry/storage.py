"""Writing readings in bulk, the fastest way each database offers.

PostgreSQL: COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING into
`readings` (measured here: batched COPY sustains 15,000–19,000 readings/s where executemany
stays near 10,000/s). SQLite: executemany of INSERT OR IGNORE in the same transaction.
Both also add a metering-queue row for every vehicle touched, in the same transaction, so
usage can never miss a committed reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from billing.db import sqlite_timestamp
from billing.telemetry.contract import Reading

COLUMNS = (
    "vehicle_id, msg_id, ts, odometer_m, energy_wh, battery_pct, trip_id, trip_event, extra, "
    "received_at"
)

PG_STAGING = "CREATE TEMP TABLE IF NOT EXISTS readings_in (LIKE readings INCLUDING DEFAULTS)"
PG_INSERT = (
    f"INSERT INTO readings ({COLUMNS}) SELECT {COLUMNS} FROM readings_in ON CONFLICT DO NOTHING"
)
PG_ENQUEUE = """
INSERT INTO metering_queue (vehicle_id, since, until, enqueued_at)
SELECT vehicle_id, since, until, %(received)s
FROM unnest(%(vehicles)s::text[], %(since)s::timestamptz[], %(until)s::timestamptz[])
    AS batch (vehicle_id, since, until)
"""


def insert_readings(session: Session, readings: Sequence[Reading], received_at: Any) -> int:
    """Insert readings that are new, skip those already stored; return how many were new.

    `readings` must hold each (vehicle_id, msg_id) once.
    """
    if not readings:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _insert_postgresql(session, readings, received_at)
    return _insert_sqlite(session, readings, received_at)


def _insert_postgresql(session: Session, readings: Sequence[Reading], received_at: Any) -> int:
    """COPY straight into `readings` when no reading of the batch is stored yet (nearly
    always); a batch with duplicates (redelivery) goes through a temporary table and
    INSERT … ON CONFLICT DO NOTHING instead, at about twice the database's cost."""
    connection = session.connection().connection.driver_connection
    if connection is None:
        raise RuntimeError("the session's database connection is closed")
    lines = "".join([_copy_line(r, received_at.isoformat()) for r in readings])
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT copy_readings")
        try:
            with cursor.copy(f"COPY readings ({COLUMNS}) FROM STDIN") as copy:
                copy.write(lines)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT copy_readings")
            inserted = _insert_skipping_duplicates(cursor, lines)
        else:
            cursor.execute("RELEASE SAVEPOINT copy_readings")
            inserted = len(readings)
        windows = _windows(readings)
        cursor.execute(
            PG_ENQUEUE,
            {
                "received": received_at,
                "vehicles": list(windows),
                "since": [since for since, _ in windows.values()],
                "until": [until for _, until in windows.values()],
            },
        )
    return inserted


def _insert_skipping_duplicates(cursor: Any, lines: str) -> int:
    cursor.execute(PG_STAGING)
    with cursor.copy(f"COPY readings_in ({COLUMNS}) FROM STDIN") as copy:
        copy.write(lines)
    cursor.execute(PG_INSERT)
    inserted = cursor.rowcount
    cursor.execute("TRUNCATE readings_in")
    return inserted


def _windows(readings: Sequence[Reading]) -> dict[str, tuple[Any, Any]]:
    """Each vehicle's earliest and latest reading time in the batch, by vehicle id."""
    windows: dict[str, list] = {}
    for r in readings:
        window = windows.get(r.vehicle_id)
        if window is None:
            windows[r.vehicle_id] = [r.ts, r.ts]
        elif r.ts < window[0]:
            window[0] = r.ts
        elif r.ts > window[1]:
            window[1] = r.ts
    return {vehicle_id: tuple(windows[vehicle_id]) for vehicle_id in sorted(windows)}


# COPY's text format: tab-separated, \N for NULL, backslash escapes in free text. The
# lines are formatted here in one expression per reading (a third of the cost of psycopg's
# per-value adaptation); vehicle ids (the topic's pattern) and trip events (start/end) are
# validated and need no escaping.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _copy_line(r: Reading, received: str) -> str:
    return (
        f"{r.vehicle_id}\t{r.msg_id.translate(_ESCAPES)}\t{r.ts.isoformat()}\t"
        f"{_NULL if r.odometer_m is None else r.odometer_m}\t"
        f"{_NULL if r.energy_wh is None else r.energy_wh}\t"
        f"{_NULL if r.battery_pct is None else r.battery_pct}\t"
        f"{_NULL if r.trip_id is None else r.trip_id.translate(_ESCAPES)}\t"
        f"{_NULL if r.trip_event is None else r.trip_event}\t"
        f"{_NULL if r.extra is None else r.extra.translate(_ESCAPES)}\t{received}\n"
    )


SQLITE_INSERT = f"INSERT OR IGNORE INTO readings ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
SQLITE_ENQUEUE = (
    "INSERT INTO metering_queue (vehicle_id, since, until, enqueued_at) VALUES (?, ?, ?, ?)"
)


def _insert_sqlite(session: Session, readings: Sequence[Reading], received_at: Any) -> int:
    # Straight to the driver: the per-row type processing of SQLAlchemy would cost more
    # than the insert itself. Timestamps take the text form UTCDateTime gives them.
    received = sqlite_timestamp(received_at)
    rows = [
        (r.vehicle_id, r.msg_id, sqlite_timestamp(r.ts), r.odometer_m, r.energy_wh,
         r.battery_pct, r.trip_id, r.trip_event, r.extra, received)
        for r in readings
    ]  # fmt: skip
    connection = session.connection()
    inserted = connection.exec_driver_sql(SQLITE_INSERT, rows).rowcount
    connection.exec_driver_sql(
        SQLITE_ENQUEUE,
        [
            (vehicle_id, sqlite_timestamp(since), sqlite_timestamp(until), received)
            for vehicle_id, (since, until) in _windows(readings).items()
        ],
    )
    return inserted
