"""What blocks a customer's vehicles: one row per customer and cause, kept up to date by
the services that change the cause (dunning's block step, the spending-cap watch).

The unlock check reads the vehicle's row and its customer's blocks by primary key, so it
costs two index lookups whatever the size of the fleet.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, UTCDateTime

OVERDUE = "overdue"  # an invoice unpaid past dunning's block step
SPENDING_CAP = "spending_cap_reached"  # the cap of the period reached, with block_at_cap
VEHICLE_RETIRED = "vehicle_retired"  # not a block row: the vehicle's own status
BLOCK_CAUSES = (OVERDUE, SPENDING_CAP)


class AccessBlock(Base):
    """A cause that keeps every vehicle of the customer locked, since when, and why."""

    __tablename__ = "access_blocks"
    __table_args__ = (CheckConstraint(f"cause IN {BLOCK_CAUSES}", name="cause_known"),)

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    cause: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text)
