"""Telemetry over HTTP (backfill, gateways without MQTT) and the rejected-messages store."""

from collections.abc import Sequence

from flask import current_app, jsonify
from flask.views import MethodView

from billing.db import utcnow
from billing.devices.services import get_vehicle
from billing.errors import Invalid
from billing.mqtt import telemetry_topic
from billing.telemetry import schemas, services
from billing.web import (
    ROW_ID,
    Blueprint,
    current_principal,
    db_session,
    page_body,
    page_schema,
    request_body,
    roles,
)

blp = Blueprint("telemetry", __name__, url_prefix="/api/v1", description="Telemetry")

TELEMETRY_BODY = {
    "required": True,
    "description": "One reading object or an array of up to 500 (docs/telemetry.md).",
    "content": {"application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}}},
}


def _directory() -> services.VehicleDirectory:
    return current_app.extensions["billing.vehicle_directory"]


def _max_future_seconds() -> int:
    return current_app.extensions["billing.settings"].ingest.max_future_seconds


def _bounds():
    return services.telemetry_bounds(current_app.extensions["billing.settings"].ingest)


def _fleet_scope() -> frozenset[str] | None:
    principal = current_principal()
    return principal.fleet_ids if principal.role == "operator" else None


def _rejections(outcome: services.StoreOutcome) -> list[dict]:
    ids: Sequence[int | None] = outcome.rejected_ids or [None] * len(outcome.rejections)
    return [
        {"id": rejected_id, "reason": r.reason, "message": r.message, "path": r.path}
        for rejected_id, (_index, r) in zip(ids, outcome.rejections, strict=True)
    ]


@blp.route("/vehicles/<vehicle_id>/telemetry")
class VehicleTelemetry(MethodView):
    @roles("admin", "operator")
    @blp.doc(requestBody=TELEMETRY_BODY)
    @blp.response(200, schemas.TelemetryResultSchema)
    def post(self, vehicle_id):
        """Store readings through the same validation as MQTT.

        Answers 200 with what was stored, skipped and rejected; 422 when nothing in the
        body could be stored. Rejected input is kept (see /rejected-messages) either way.
        """
        session = db_session()
        get_vehicle(session, current_principal(), vehicle_id)
        message = services.IncomingMessage(telemetry_topic(vehicle_id), request_body(), "http")
        outcome = services.store_telemetry(
            session,
            [message],
            utcnow(),
            directory=_directory(),
            max_future_seconds=_max_future_seconds(),
            bounds=_bounds(),
        )
        rejected = _rejections(outcome)
        if rejected and outcome.stored == 0 and outcome.duplicates == 0:
            raise Invalid(
                f"no reading stored; {len(rejected)} rejected and kept as "
                + ", ".join(f"rejected message {r['id']}" for r in rejected),
                {r["path"]: [f"{r['reason']}: {r['message']}"] for r in rejected},
            )
        return {"stored": outcome.stored, "duplicates": outcome.duplicates, "rejected": rejected}


REJECTED_PAGE = page_schema(schemas.RejectedMessageSchema)


@blp.route("/rejected-messages")
class RejectedMessages(MethodView):
    @roles("admin", "operator")
    @blp.arguments(schemas.RejectedMessageListArgs, location="query")
    @blp.response(200, REJECTED_PAGE)
    def get(self, args):
        """Rejected messages, newest first; operators see those of their fleets' vehicles.

        Without their payloads, unless `include=payload`: a payload may be 256 KiB."""
        with_payloads = args.pop("include", None) == "payload"
        page = services.list_rejected_messages(db_session(), fleet_ids=_fleet_scope(), **args)
        exclude = () if with_payloads else [f"items.{name}" for name in schemas.PAYLOAD_FIELDS]
        return jsonify(REJECTED_PAGE(exclude=exclude).dump(page_body(page)))


@blp.route(f"/rejected-messages/<{ROW_ID}:message_id>")
class RejectedMessage(MethodView):
    @roles("admin", "operator")
    @blp.response(200, schemas.RejectedMessageSchema)
    def get(self, message_id):
        return services.get_rejected_message(db_session(), message_id, _fleet_scope())


@blp.route(f"/rejected-messages/<{ROW_ID}:message_id>/replay")
class ReplayRejectedMessage(MethodView):
    @roles("admin", "operator")
    @blp.response(200, schemas.ReplayResultSchema)
    def post(self, message_id):
        """Validate and store the message again, e.g. once its vehicle is registered."""
        rejected, outcome = services.replay_rejected_message(
            db_session(),
            message_id,
            utcnow(),
            directory=_directory(),
            max_future_seconds=_max_future_seconds(),
            bounds=_bounds(),
            fleet_ids=_fleet_scope(),
        )
        result = {
            "stored": outcome.stored,
            "duplicates": outcome.duplicates,
            "rejected": _rejections(outcome),
        }
        return {"rejected_message": rejected, "result": result}
