"""Leases that let one process at a time run a scheduled job, on SQLite and PostgreSQL.

A lease is a row per job name with its holder and expiry; taking it is a single UPDATE
(or INSERT) that succeeds only when the lease is free, expired or already ours, so two
schedulers never run the same job at once, and a crashed holder's lease simply expires.

A holder that was a process of this host and no longer exists (a scheduler killed
mid-job, restarted by its supervisor) gives its lease back at once: its job would
otherwise wait for the lease to expire, metering included. A live holder, or one of
another host, is never second-guessed (a reused pid only makes us wait for the expiry).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from sqlalchemy import String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from billing.db import Base, UTCDateTime, rows_changed


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
    free = (JobLease.holder == holder) | (JobLease.expires_at < now)
    current = session.scalar(select(JobLease.holder).where(JobLease.name == name))
    if current is not None and _is_gone(current):
        free |= JobLease.holder == current  # unless someone else took it meanwhile
    taken = rows_changed(
        session,
        update(JobLease)
        .where(JobLease.name == name)
        .where(free)
        .values(holder=holder, expires_at=expires),
    )
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


def _is_gone(holder: str) -> bool:
    """Whether `holder` (see new_holder) was a process of this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, under another user
        return False
    return False


def release_lease(session: Session, name: str, holder: str, now: dt.datetime) -> None:
    session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=now)
    )
    session.commit()
