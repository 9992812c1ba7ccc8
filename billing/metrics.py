"""`/metrics` of the web process, in Prometheus text format.

Figures are read from the database at scrape time, so they are the same whichever web
process answers and survive restarts. They name no customer or vehicle: counts only.
Each ingest process exposes its own live counters (`billing ingest --metrics-port`).
"""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flask import Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.charges.unattributed import period_unattributed_usage
from billing.db import Database, utcnow
from billing.metering.queries import NO_CUSTOMER, NO_PLAN
from billing.periods import Period
from billing.telemetry.models import MeteringQueue, RejectedMessage
from billing.web import database


class DatabaseCollector(Collector):
    def __init__(self, db: Database, zone: ZoneInfo):
        self.db = db
        self.zone = zone

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.db.session() as session:
            yield self._rejections(session)
            yield self._metering_backlog(session)
            yield from self._unattributed(session)

    def _unattributed(self, session: Session) -> Iterator[GaugeMetricFamily]:
        """Usage no invoice bills, this month and last (months of the default zone)."""
        vehicles = GaugeMetricFamily(
            "billing_unattributed_vehicles",
            "Vehicles with usage metered while in no customer's fleet or on no plan",
            labels=["period", "reason"],
        )
        distance = GaugeMetricFamily(
            "billing_unattributed_distance_km",
            "Distance metered while the vehicle was in no customer's fleet or on no plan",
            labels=["period", "reason"],
        )
        current = Period.containing(utcnow(), self.zone)
        for period in (current.previous(), current):
            stretches = period_unattributed_usage(session, period, self.zone).stretches
            for reason in (NO_CUSTOMER, NO_PLAN):
                mine = [s for s in stretches if s.reason == reason]
                labels = [str(period), reason]
                vehicles.add_metric(labels, len({s.vehicle_id for s in mine}))
                distance.add_metric(labels, float(sum(s.usage.distance_km for s in mine)))
        yield vehicles
        yield distance

    @staticmethod
    def _rejections(session: Session) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "billing_rejected_messages_pending",
            "Rejected telemetry kept for review or replay",
            labels=["reason"],
        )
        rows = session.execute(
            select(RejectedMessage.reason, func.count())
            .where(RejectedMessage.status == "pending")
            .group_by(RejectedMessage.reason)
        )
        for reason, count in rows:
            family.add_metric([reason], count)
        return family

    @staticmethod
    def _metering_backlog(session: Session) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "billing_metering_lag_seconds",
            "Age of the oldest stored reading whose usage is not yet in the rollups",
        )
        oldest = session.scalar(select(func.min(MeteringQueue.enqueued_at)))
        family.add_metric([], (utcnow() - oldest).total_seconds() if oldest else 0.0)
        return family


def metrics_view() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    zone = ZoneInfo(current_app.extensions["billing.settings"].default_timezone)
    registry.register(DatabaseCollector(database(), zone))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
