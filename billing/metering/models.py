"""Stored telemetry: readings, rejected messages, and the queue of usage to recompute."""

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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, UTCDateTime

# SQLite auto-increments only an INTEGER PRIMARY KEY; elsewhere a table that grows without
# end wants BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")


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


class UsageBucket(Base):
    """Billable distance and energy of one vehicle in 15 minutes (UTC): local days and
    months of every IANA zone, +05:30 and +05:45 included, are unions of these."""

    __tablename__ = "usage_buckets"

    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    distance_m: Mapped[int] = mapped_column(BigInteger, default=0)
    energy_wh: Mapped[int] = mapped_column(BigInteger, default=0)
    readings: Mapped[int] = mapped_column(Integer, default=0)


class UsageDay(Base):
    """The buckets of one local day of the vehicle's customer, summed, for fast months.

    Kept in the customer's time zone at the time; a query in another zone (the vehicle
    changed customer) falls back to the buckets.
    """

    __tablename__ = "usage_days"

    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    distance_m: Mapped[int] = mapped_column(BigInteger, default=0)
    energy_wh: Mapped[int] = mapped_column(BigInteger, default=0)
    readings: Mapped[int] = mapped_column(Integer, default=0)


class TripRecord(Base):
    """A trip paired from its start and end events; it counts in the period it ends."""

    __tablename__ = "trips"
    __table_args__ = (Index("ix_trips_vehicle_end", "vehicle_id", "end_ts"),)

    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_ts: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    start_msg_id: Mapped[str | None] = mapped_column(String(64))
    end_ts: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_msg_id: Mapped[str | None] = mapped_column(String(64))
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class AnomalyRecord(Base):
    """Something in a vehicle's telemetry an operator should see.

    An `implausible_jump` holds its distance out of billing while `status` is "held", until
    an operator accepts (billed) or rejects it. Other kinds are "open" for information.
    """

    __tablename__ = "anomalies"
    __table_args__ = (
        UniqueConstraint("vehicle_id", "kind", "counter", "msg_id"),
        Index("ix_anomalies_status", "status", "detected_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    counter: Mapped[str] = mapped_column(String(16), default="")
    msg_id: Mapped[str] = mapped_column(String(64))
    previous_msg_id: Mapped[str | None] = mapped_column(String(64))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    distance_m: Mapped[int] = mapped_column(BigInteger, default=0)
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(32))
