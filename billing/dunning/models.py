"""What dunning did: one row per invoice and step, so that each step happens once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing.db import Base, UTCDateTime

# DunningRecord.mail_status
MAIL_NONE = "none"  # the step sends no mail (overdue)
MAIL_PENDING = "pending"  # to send (again, after a failure)
MAIL_SENT = "sent"
MAIL_SKIPPED = "skipped"  # a later step was due at the same pass: only its mail is sent
MAIL_GIVEN_UP = "given_up"  # failed MAX_MAIL_ATTEMPTS times
MAX_MAIL_ATTEMPTS = 5


class DunningRecord(Base):
    """A step of the dunning plan taken on an invoice (`step` as "D+15 reminder")."""

    __tablename__ = "dunning_records"
    __table_args__ = (UniqueConstraint("invoice_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    days: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mail_to: Mapped[str | None] = mapped_column(String(254))
    mail_status: Mapped[str] = mapped_column(String(16))
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0)
    mail_error: Mapped[str | None] = mapped_column(Text)
