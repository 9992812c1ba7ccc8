"""The registry: customers, their fleets, the vehicles, and the history of who holds what."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.db import Base, UTCDateTime, utcnow

VEHICLE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    siren: Mapped[str | None] = mapped_column(String(9))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(2), default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    fleets: Mapped[list[Fleet]] = relationship(back_populates="customer")


class Fleet(Base):
    __tablename__ = "fleets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(back_populates="fleets")


class Vehicle(Base):
    __tablename__ = "vehicles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fleet_id: Mapped[str] = mapped_column(ForeignKey("fleets.id"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    commissioned_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    notes: Mapped[str] = mapped_column(Text, default="")

    fleet: Mapped[Fleet] = relationship()
    memberships: Mapped[list[FleetMembership]] = relationship(
        order_by="FleetMembership.started_at", viewonly=True
    )


class FleetMembership(Base):
    """Which fleet (hence which customer) holds a vehicle, from when until when.

    Usage is attributed to the customer holding the vehicle at the reading's time, so a
    vehicle moved to another customer mid-period is cut at the move. A membership may
    start in the past (backdated) or in the future (a scheduled move): see
    billing.devices.membership.
    """

    __tablename__ = "fleet_memberships"
    __table_args__ = (Index("ix_fleet_memberships_vehicle_start", "vehicle_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    fleet_id: Mapped[str] = mapped_column(ForeignKey("fleets.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    vehicle: Mapped[Vehicle] = relationship()


class BrokerCredential(Base):
    """A password for the MQTT broker: a vehicle's own, or a fleet gateway's.

    Only the hash is stored, in Mosquitto's `$7$` format, so that the broker's password
    file is exported as is. A username has at most one active credential: issuing a new
    one revokes the previous one (enforced by the partial unique index).
    """

    __tablename__ = "broker_credentials"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'vehicle' AND vehicle_id IS NOT NULL AND fleet_id IS NULL)"
            " OR (kind = 'gateway' AND fleet_id IS NOT NULL AND vehicle_id IS NULL)",
            name="kind_matches_owner",
        ),
        Index(
            "uq_broker_credentials_active_username",
            "username",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    vehicle_id: Mapped[str | None] = mapped_column(ForeignKey("vehicles.id"), index=True)
    fleet_id: Mapped[str | None] = mapped_column(ForeignKey("fleets.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
