"""Liveness (`/healthz`: this web process answers) and readiness (`/readyz`: every role
of the service is up), without authentication, for load balancers and supervisors.

Readiness reports each role: the database (reachable from here), the broker (accepts a
TCP connection from here), the ingest (a fresh heartbeat saying it is connected and
consuming), the scheduler (a fresh heartbeat), and metering (how old the oldest reading
not yet metered is). Any role down makes the answer 503, naming it.
"""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import Response, current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from billing import heartbeats
from billing.db import Database, utcnow
from billing.mqtt import BrokerAddress
from billing.settings import HealthSettings, Settings
from billing.telemetry.models import MeteringQueue

UP, DOWN = "up", "down"
BROKER_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class RoleState:
    status: str  # up | down
    detail: str
    data: dict[str, Any]


def readiness(
    database: Database, broker: BrokerAddress | None, settings: HealthSettings, now: dt.datetime
) -> dict[str, RoleState]:
    """The state of every role, by name."""
    roles = {"database": _database_state(database)}
    roles["broker"] = _broker_state(broker)
    if roles["database"].status == DOWN:
        unknown = RoleState(DOWN, "unknown: the database is unreachable", {})
        return {**roles, "ingest": unknown, "scheduler": unknown, "metering": unknown}
    with database.session() as session:
        beats = heartbeats.heartbeats(session)
        roles["ingest"] = _ingest_state(beats.get(heartbeats.INGEST, []), settings, now)
        roles["scheduler"] = _scheduler_state(beats.get(heartbeats.SCHEDULER, []), settings, now)
        roles["metering"] = _metering_state(session, settings, now)
    return roles


def _database_state(database: Database) -> RoleState:
    try:
        with database.session() as session:
            session.execute(text("SELECT 1"))
    except Exception as error:  # whatever the driver raises, the answer is "down"
        return RoleState(DOWN, f"unreachable: {type(error).__name__}", {})
    return RoleState(UP, "reachable", {})


def _broker_state(broker: BrokerAddress | None) -> RoleState:
    if broker is None:
        return RoleState(DOWN, "no broker known: MQTT_URL unset and no embedded broker", {})
    try:
        with socket.create_connection((broker.host, broker.port), timeout=BROKER_TIMEOUT_S):
            pass
    except OSError as error:
        return RoleState(DOWN, f"{broker.url}: {error.strerror or error}", {"url": broker.url})
    return RoleState(UP, f"{broker.url} accepts connections", {"url": broker.url})


def _fresh(beat_at: dt.datetime, settings: HealthSettings, now: dt.datetime) -> bool:
    return (now - beat_at).total_seconds() <= settings.stale_after_seconds


def _ingest_state(beats: list, settings: HealthSettings, now: dt.datetime) -> RoleState:
    instances = [
        {
            "instance": instance,
            "beat_at": beat_at.isoformat(),
            "fresh": _fresh(beat_at, settings, now),
            **state,
        }
        for instance, beat_at, state in beats
    ]
    working = [i for i in instances if i["fresh"] and i.get("connected") and i.get("consuming")]
    if working:
        return RoleState(
            UP, f"{len(working)} consumer(s) connected and consuming", {"instances": instances}
        )
    if not instances:
        return RoleState(DOWN, "no ingest process has reported", {"instances": []})
    if not any(i["fresh"] for i in instances):
        detail = f"no heartbeat for over {settings.stale_after_seconds} s"
    elif not any(i.get("connected") for i in instances if i["fresh"]):
        detail = "not connected to the broker"
    else:
        detail = "connected but not consuming"
    return RoleState(DOWN, detail, {"instances": instances})


def _scheduler_state(beats: list, settings: HealthSettings, now: dt.datetime) -> RoleState:
    instances = [
        {
            "instance": instance,
            "beat_at": beat_at.isoformat(),
            "fresh": _fresh(beat_at, settings, now),
        }
        for instance, beat_at, _state in beats
    ]
    if any(i["fresh"] for i in instances):
        return RoleState(UP, "running", {"instances": instances})
    detail = "no scheduler has reported" if not instances else "no recent heartbeat"
    return RoleState(DOWN, detail, {"instances": instances})


def _metering_state(session: Session, settings: HealthSettings, now: dt.datetime) -> RoleState:
    oldest = session.scalar(select(func.min(MeteringQueue.enqueued_at)))
    lag = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    data = {"lag_seconds": round(lag, 3)}
    if lag > settings.max_metering_lag_seconds:
        return RoleState(
            DOWN, f"{lag:.0f} s behind; at most {settings.max_metering_lag_seconds}", data
        )
    return RoleState(UP, f"{lag:.0f} s behind", data)


def broker_address(settings: Settings) -> BrokerAddress | None:
    """The broker this deployment uses: MQTT_URL's, or the embedded one `billing run`
    started (its address is in the data directory while it runs)."""
    from billing.broker.embedded import running_broker_url

    url = settings.mqtt_url or running_broker_url(settings)
    return BrokerAddress.parse(url) if url else None


# --- web ---------------------------------------------------------------------------------

blp = Blueprint("health", __name__, description="Liveness and readiness")


class LivenessSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "always `ok`"})


class RoleSchema(ma.Schema):
    """A role's state; each role adds its own figures (lag_s, last_beat_s, …)."""

    class Meta:
        unknown = ma.INCLUDE

    status = ma.fields.String(metadata={"description": "up or down"})
    detail = ma.fields.String()


class ReadinessSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ready, or not_ready"})
    roles = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(RoleSchema),
        metadata={"description": "database, broker, ingest, scheduler, metering"},
    )


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, LivenessSchema)
    def get(self) -> dict[str, str]:
        """This web process answers (nothing else is checked: see /readyz)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="a role is down")
    def get(self) -> Response:
        """Each role of the service; 503 when one is down, naming it."""
        settings = current_app.extensions["billing.settings"]
        roles = readiness(
            current_app.extensions["billing.db"],
            broker_address(settings),
            settings.health,
            utcnow(),
        )
        down = [name for name, role in roles.items() if role.status == DOWN]
        body = {
            "status": "not_ready" if down else "ready",
            "roles": {
                name: {"status": role.status, "detail": role.detail, **role.data}
                for name, role in roles.items()
            },
        }
        response = jsonify(body)
        response.status_code = 503 if down else 200
        return response
