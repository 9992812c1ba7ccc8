"""Alert rules of a customer, and the history of their firings (once per period)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, ExactDecimal, UTCDateTime

CUSTOMER, FLEET, VEHICLE = "customer", "fleet", "vehicle"
SCOPES = (CUSTOMER, FLEET, VEHICLE)
AMOUNT = "amount"  # the period's amount to date, net of VAT (after the cap's discount)
CAP_PERCENT = "cap_percent"  # what the charges the cap covers cost, in % of the cap
METRICS = ("distance_km", "energy_kwh", "trips", "trip_minutes", "active_days")
MEASURES = (AMOUNT, CAP_PERCENT, *METRICS)
MONEY_MEASURES = (AMOUNT, CAP_PERCENT)  # of the whole customer only


class AlertRule(Base):
    """ "Tell me when <measure> of <scope> reaches <threshold> in a billing period"."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(f"scope IN {SCOPES}", name="scope_known"),
        CheckConstraint(f"measure IN {MEASURES}", name="measure_known"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[str] = mapped_column(String(16))
    fleet_id: Mapped[str | None] = mapped_column(ForeignKey("fleets.id"))
    vehicle_id: Mapped[str | None] = mapped_column(ForeignKey("vehicles.id"))
    measure: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[Decimal] = mapped_column(ExactDecimal)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AlertFiring(Base):
    """A rule that reached its threshold in a period: at most one per rule and period,
    whenever the crossing is seen (a late reading may cross it after the period)."""

    __tablename__ = "alert_firings"
    __table_args__ = (
        UniqueConstraint("rule_id", "period"),
        Index("ix_alert_firings_customer", "customer_id", "fired_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    threshold: Mapped[Decimal] = mapped_column(ExactDecimal)
    fired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
