"""Stored telemetry: readings, rejected messages, and the queue of readings to meter."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, BigId, UTCDateTime


class Reading(Base):
    """One telemetry reading. (vehicle_id, msg_id) is unique: a repeat is a duplicate.

    No foreign key to vehicles: the ingest checks the vehicle before storing, vehicles are
    never deleted, and the key would cost an index probe on the hottest insert path.
    """

    __tablename__ = "readings"
    __table_args__ = (Index("ix_readings_vehicle_ts", "vehicle_id", "ts"),)

    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    odometer_m: Mapped[int | None] = mapped_column(BigInteger)
    energy_wh: Mapped[int | None] = mapped_column(BigInteger)
    battery_pct: Mapped[float | None] = mapped_column(Float)  # informative, never billed
    trip_id: Mapped[str | None] = mapped_column(String(64))
    trip_event: Mapped[str | None] = mapped_column(String(5))
    extra: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RejectedMessage(Base):
    """Input that could not be stored as readings, kept with why, until replayed."""

    __tablename__ = "rejected_messages"
    __table_args__ = (Index("ix_rejected_messages_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(8))  # mqtt | http
    topic: Mapped[str] = mapped_column(String(300))
    vehicle_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    message: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(String(32), default="$")
    # The payload as received, or its first bytes when it was too large to keep whole;
    # its size and digest are always those of the whole payload.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(BigInteger, server_default="0")
    payload_sha256: Mapped[str] = mapped_column(String(64), server_default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | replayed
    replayed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    replay_count: Mapped[int] = mapped_column(default=0)
    # The same bytes rejected again for the same reason (a resent batch) count here,
    # instead of making a second record.
    received_count: Mapped[int] = mapped_column(Integer, server_default="1")
    last_received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def payload_truncated(self) -> bool:
        return len(self.payload) < self.payload_size


class MeteringQueue(Base):
    """Usage of a vehicle to recompute over [since, until] (plus the next reading).

    Append-only: the ingest inserts one row per vehicle per batch, in the transaction that
    stores the readings; a metering pass merges the rows of a vehicle into one window and
    deletes exactly the rows it read. A row committed while a pass runs stays for the next
    one, so a window never grows beyond what is new since the last pass, however steady the
    stream (a single row widened in place would never leave the queue under constant load).
    """

    __tablename__ = "metering_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[str] = mapped_column(String(64), index=True)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
