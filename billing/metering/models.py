"""Usage rollups (15-minute buckets, local days, trips) and anomalies, derived from the
readings of `billing.telemetry.models` by the metering pass."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, BigId, UTCDateTime


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
