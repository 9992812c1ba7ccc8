"""Usage reads and anomalies over HTTP."""

from flask.views import MethodView

from billing.db import utcnow
from billing.metering import anomalies, schemas, services
from billing.web import (
    ROW_ID,
    Blueprint,
    current_principal,
    db_session,
    page_body,
    page_schema,
    roles,
)

blp = Blueprint("usage", __name__, url_prefix="/api/v1", description="Usage and anomalies")


def _fleet_scope() -> frozenset[str] | None:
    principal = current_principal()
    return principal.fleet_ids if principal.role == "operator" else None


# --- usage -------------------------------------------------------------------------------


EVERYONE = ("admin", "finance", "operator", "customer")


@blp.route("/vehicles/<vehicle_id>/usage")
class VehicleUsage(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.VehicleUsageArgs, location="query")
    @blp.response(200, schemas.VehicleUsageSchema)
    def get(self, args, vehicle_id):
        """A vehicle's usage per local hour, day or month of its customer's time zone:
        from the start of the local month to now by default, the 15-minute bucket in
        progress included, with the latest reading and any still being metered."""
        result = services.vehicle_usage(
            db_session(),
            current_principal(),
            vehicle_id,
            args.get("from_"),
            args.get("to"),
            args["granularity"],
            utcnow(),
        )
        return {
            "vehicle_id": vehicle_id,
            "timezone": result.timezone,
            "granularity": result.granularity,
            "start": result.start,
            "end": result.end,
            "points": [{"start": key.isoformat(), "usage": value} for key, value in result.points],
            "freshness": result.freshness,
        }


@blp.route("/customers/<customer_id>/usage")
class CustomerUsage(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.PeriodArgs, location="query")
    @blp.response(200, schemas.CustomerUsageSchema)
    def get(self, args, customer_id):
        """A customer's usage in a calendar month, per vehicle, cut at plan changes."""
        result = services.customer_usage(
            db_session(), current_principal(), customer_id, args.get("period"), utcnow()
        )
        return {
            "customer_id": customer_id,
            "period": str(result.period),
            "timezone": result.timezone,
            "start": result.start,
            "end": result.end,
            "vehicles": _by_vehicle(result.segments),
            "total": result.total,
            "freshness": result.freshness,
        }


def _by_vehicle(segments) -> list[dict]:
    grouped: dict[str, list] = {}
    for item in segments:
        grouped.setdefault(item.segment.vehicle_id, []).append(item)
    return [
        {
            "vehicle_id": vehicle_id,
            "usage": services.sum_usage(item.usage for item in items),
            "segments": [
                {
                    "plan_code": item.segment.plan_code,
                    "plan_version": item.segment.plan_version,
                    "start": item.segment.start,
                    "end": item.segment.end,
                    "vehicle_days": item.vehicle_days,
                    "usage": item.usage,
                }
                for item in items
            ],
        }
        for vehicle_id, items in grouped.items()
    ]


# --- anomalies ---------------------------------------------------------------------------


@blp.route("/anomalies")
class Anomalies(MethodView):
    @roles("admin", "operator")
    @blp.arguments(schemas.AnomalyListArgs, location="query")
    @blp.response(200, page_schema(schemas.AnomalySchema))
    def get(self, args):
        """Anomalies in telemetry; held jumps wait for a decision."""
        return page_body(anomalies.list_anomalies(db_session(), fleet_ids=_fleet_scope(), **args))


def _decide(anomaly_id: int, decision: str):
    return anomalies.decide_anomaly(
        db_session(),
        anomaly_id,
        decision,
        utcnow(),
        decided_by=current_principal().key_id,
        fleet_ids=_fleet_scope(),
    )


@blp.route(f"/anomalies/<{ROW_ID}:anomaly_id>/accept")
class AcceptAnomaly(MethodView):
    @roles("admin", "operator")
    @blp.response(200, schemas.AnomalySchema)
    def post(self, anomaly_id):
        """Bill the distance of a held jump (the vehicle is re-metered)."""
        return _decide(anomaly_id, "accepted")


@blp.route(f"/anomalies/<{ROW_ID}:anomaly_id>/reject")
class RejectAnomaly(MethodView):
    @roles("admin", "operator")
    @blp.response(200, schemas.AnomalySchema)
    def post(self, anomaly_id):
        """Never bill the distance of a held jump (the vehicle is re-metered)."""
        return _decide(anomaly_id, "rejected")
