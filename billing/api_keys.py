"""API keys: the bearer secrets that carry a principal.

A key is shown once and stored as its SHA-256 digest. Keys are 256-bit random strings, so
a fast digest is enough: a slow password hash protects low-entropy secrets, which these
are not, and would cost every request tens of milliseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import Column, ForeignKey, String, Table, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from billing.auth import InvalidScope, Principal, check_scope
from billing.db import Base, UTCDateTime, utcnow
from billing.devices.models import Customer, Fleet
from billing.ids import new_id

KEY_PREFIX = "bk_"

api_key_fleets = Table(
    "api_key_fleets",
    Base.metadata,
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("fleet_id", ForeignKey("fleets.id"), primary_key=True),
)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, to recognise it in listings; not enough to use it.
    hint: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    fleets: Mapped[list[Fleet]] = relationship(secondary=api_key_fleets, lazy="selectin")


def digest_key(plain_key: str) -> str:
    return hashlib.sha256(plain_key.encode()).hexdigest()


def create_api_key(
    session: Session,
    role: str,
    *,
    customer_id: str | None = None,
    fleet_ids: tuple[str, ...] = (),
    name: str = "",
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain text, which is not stored anywhere."""
    check_scope(role, customer_id, fleet_ids)
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise InvalidScope(f"customer {customer_id} does not exist")
    fleets = [session.get(Fleet, fleet_id) for fleet_id in fleet_ids]
    missing = [fid for fid, fleet in zip(fleet_ids, fleets, strict=True) if fleet is None]
    if missing:
        raise InvalidScope(f"fleet(s) {', '.join(missing)} do not exist")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        name=name,
        digest=digest_key(plain),
        hint=plain[:8],
        role=role,
        customer_id=customer_id,
        fleets=fleets,
    )
    session.add(key)
    session.commit()
    return key, plain


def revoke_api_key(session: Session, key_id: str, now: dt.datetime) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = now
    session.commit()
    return True


def authenticate(session: Session, plain_key: str) -> Principal | None:
    """The principal of a valid, unrevoked key, or None."""
    key = session.scalar(
        select(ApiKey).where(ApiKey.digest == digest_key(plain_key), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    return Principal(
        key_id=key.id,
        role=key.role,
        customer_id=key.customer_id,
        fleet_ids=frozenset(fleet.id for fleet in key.fleets),
    )
