"""Heartbeats: each ingest and scheduler process says, every few seconds, that it is alive
and how it is doing, in the database, where the web process's readiness view reads them
(whichever machine each runs on).

A process that stops cleanly removes its row; one that dies leaves a row that goes stale.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from typing import Any

from sqlalchemy import String, Text, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from billing.db import Base, UTCDateTime, rows_changed

INGEST = "ingest"
SCHEDULER = "scheduler"


class ServiceHeartbeat(Base):
    __tablename__ = "service_heartbeats"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance: Mapped[str] = mapped_column(String(200), primary_key=True)
    beat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(Text, default="{}")  # JSON: what the role reports


def instance_name(label: str) -> str:
    """This process, for its heartbeat: a label (the ingest's client id), host and pid."""
    return f"{label}@{socket.gethostname()}:{os.getpid()}"[:200]


def beat(session: Session, role: str, instance: str, now: dt.datetime, state: dict) -> None:
    """Record that `instance` of `role` is alive now, in `state`; commits."""
    text = json.dumps(state, sort_keys=True)
    updated = rows_changed(
        session,
        update(ServiceHeartbeat)
        .where(ServiceHeartbeat.role == role, ServiceHeartbeat.instance == instance)
        .values(beat_at=now, state=text),
    )
    if not updated:
        session.add(ServiceHeartbeat(role=role, instance=instance, beat_at=now, state=text))
    session.commit()


def forget(session: Session, role: str, instance: str) -> None:
    """A clean stop: the instance is gone on purpose, not down."""
    session.execute(
        delete(ServiceHeartbeat).where(
            ServiceHeartbeat.role == role, ServiceHeartbeat.instance == instance
        )
    )
    session.commit()


def heartbeats(session: Session) -> dict[str, list[tuple[str, dt.datetime, dict[str, Any]]]]:
    """{role: [(instance, beat_at, state)]}."""
    found: dict[str, list[tuple[str, dt.datetime, dict[str, Any]]]] = {}
    for row in session.scalars(select(ServiceHeartbeat).order_by(ServiceHeartbeat.instance)):
        found.setdefault(row.role, []).append((row.instance, row.beat_at, json.loads(row.state)))
    return found
