"""Leases that let one process at a time run a scheduled job, on SQLite and PostgreSQL.

A lease is a row per job name with its holder and expiry; taking it is a single UPDATE
(or INSERT) that succeeds only when the lease is free, expired or already ours, so two
schedulers never run the same job at once, and a crashed holder's lease simply expires.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from sqlalchemy import String, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from billing.db import Base, UTCDateTime


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


def new_holder() -> str:
    """An identity for this process's leases: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take_lease(
    session: Session, name: str, holder: str, now: dt.datetime, duration: dt.timedelta
) -> bool:
    """Take or extend the lease on `name` until now + duration; False if another holds it."""
    expires = now + duration
    taken = session.execute(
        update(JobLease)
        .where(JobLease.name == name)
        .where((JobLease.holder == holder) | (JobLease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    ).rowcount
    if not taken:
        try:
            with session.begin_nested():
                session.execute(
                    insert(JobLease).values(name=name, holder=holder, expires_at=expires)
                )
            taken = 1
        except IntegrityError:
            taken = 0
    session.commit()
    return bool(taken)


def release_lease(session: Session, name: str, holder: str, now: dt.datetime) -> None:
    session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=now)
    )
    session.commit()
