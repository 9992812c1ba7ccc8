"""`/metrics` of the web process, in Prometheus text format.

Figures are read from the database at scrape time, so they are the same whichever web
process answers and survive restarts. They name no customer or vehicle: counts only.
Each ingest process exposes its own live counters (`billing ingest --metrics-port`).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from billing.db import Database, utcnow
from billing.metering.models import MeteringQueue, RejectedMessage
from billing.web import database


class DatabaseCollector(Collector):
    def __init__(self, db: Database):
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.db.session() as session:
            yield self._rejections(session)
            yield self._metering_backlog(session)

    @staticmethod
    def _rejections(session) -> GaugeMetricFamily:
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
    def _metering_backlog(session) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "billing_metering_lag_seconds",
            "Age of the oldest stored reading whose usage is not yet in the rollups",
        )
        oldest = session.scalar(select(func.min(MeteringQueue.enqueued_at)))
        family.add_metric([], (utcnow() - oldest).total_seconds() if oldest else 0.0)
        return family


def metrics_view() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(database()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
