"""A customer's spending caps, each in force from one billing period until the next one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.db import Base, ExactDecimal, UTCDateTime
from billing.devices.models import Customer
from billing.money import round_money


class SpendingCapRecord(Base):
    """The cap of a customer's contract from `effective_from` (a period, "2026-12") on.

    The cap of a period is the record with the latest `effective_from` not after it; a
    record with no `amount` ends the cap from its period on. Records start at the current
    period or later, so a cap never changes a period that may already be invoiced.
    """

    __tablename__ = "spending_caps"
    __table_args__ = (UniqueConstraint("customer_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    effective_from: Mapped[str] = mapped_column(String(7))
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    include_flat_fees: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the customer's vehicles are locked once the cap of a period is reached (the
    # unlock check, billing.access); by default usage beyond the cap is simply free.
    block_at_cap: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship()

    @property
    def cap_amount(self) -> Decimal | None:
        """The amount in the customer's currency (PostgreSQL reads it back with 6 places)."""
        return None if self.amount is None else round_money(self.amount, self.customer.currency)
