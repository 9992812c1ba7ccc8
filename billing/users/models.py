"""People who use the web pages: customer contacts and staff, their sign-in links and
their page sessions. Machines keep using API keys (billing.auth)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.db import Base, UTCDateTime, utcnow
from billing.devices.models import Fleet

USER_ROLES = ("customer", "admin", "finance", "operator")
STAFF_ROLES = ("admin", "finance", "operator")
LANGUAGES = ("fr", "en")

user_fleets = Table(
    "user_fleets",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("fleet_id", ForeignKey("fleets.id"), primary_key=True),
)


class User(Base):
    """A customer contact (role `customer`, tied to one customer account) or a staff user
    (admin, finance, operator with its fleets). The e-mail address is stored lower-cased
    and is unique: it is what a sign-in link is sent to."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("(role = 'customer') = (customer_id IS NOT NULL)", name="customer_contact"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # None: the customer's language for a contact, English for staff.
    language: Mapped[str | None] = mapped_column(String(2))
    # argon2 hash; staff only, optional (the e-mailed link always works).
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    fleets: Mapped[list[Fleet]] = relationship(secondary=user_fleets, lazy="selectin")


class SignInLink(Base):
    """A link e-mailed to sign in: its token's digest, until when it works, and when it
    was used (once only)."""

    __tablename__ = "sign_in_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PageSession(Base):
    """A signed-in browser: the cookie holds a random token, the database its digest, so
    that signing out (or disabling the user) ends it everywhere at once."""

    __tablename__ = "page_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")
