"""`billing schedule`: the periodic jobs, each run by one process at a time.

Jobs only fan work out to service functions. Several schedulers may run (for
availability); a lease in the database (billing.jobs) makes sure that one of them at a
time runs a given job, and a job missed while every scheduler was down simply runs at
the next start, since each job works from the state of the database, not from its own
memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from billing import heartbeats
from billing.access.services import refresh_cap_blocks
from billing.alerts.services import evaluate_alerts
from billing.broker.rules import export_registry_broker_files
from billing.db import Database, utcnow
from billing.devices.membership import apply_due_fleet_moves
from billing.dunning.services import DunningReport, run_dunning
from billing.invoicing.document_files import render_missing_documents
from billing.invoicing.services import RunReport
from billing.jobs import new_holder, release_lease, take_lease
from billing.metering.rollups import meter
from billing.payments.collection import invoice_closed_periods
from billing.payments.gateway import StripeGateway
from billing.payments.services import mirror_due_invoices
from billing.settings import Settings
from billing.webhooks.sender import HttpSender
from billing.webhooks.services import deliver_due

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
# A pass over the Stripe outbox stops after this long, well within the lease; the next run
# goes on with the rest.
STRIPE_SYNC_BUDGET = dt.timedelta(minutes=2)
# Likewise for rendering the documents of a month, at some 40 invoices a second and core.
DOCUMENTS_BUDGET = dt.timedelta(minutes=3)
# Likewise for a pass over the webhook outbox (a receiver may take its whole timeout).
WEBHOOKS_BUDGET = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Job:
    name: str
    seconds: float
    run: Callable[[Database, Settings], object]


def fleet_moves(database: Database, settings: Settings) -> list[str]:
    """Apply the scheduled fleet moves whose instant has come (API access follows at once)
    and make the broker's logins follow: the embedded broker reloads them from the registry
    by itself; an outside broker gets its files exported again. Vehicles moved."""
    with database.session() as session:
        moved = apply_due_fleet_moves(session, utcnow())
    if moved:
        log.info("fleet moves took effect for %s", ", ".join(moved))
        if not settings.embedded_broker:
            export_registry_broker_files(database, settings)
    return moved


def invoice(database: Database, settings: Settings) -> RunReport:
    """Close periods: make and refresh the drafts of the closed periods not yet issued, and
    finalize those past their grace period; then render the documents issued, so that they
    exist before anyone asks. A missed run is caught up by the next."""
    with database.session() as session:
        report = invoice_closed_periods(session, utcnow(), settings=settings)
        render_missing_documents(session, utcnow(), budget=DOCUMENTS_BUDGET)
    for stretch in report.unattributed:
        log.warning(
            "unattributed usage, billed to nobody: %s (%s) from %s to %s, %s km",
            stretch.vehicle_id, stretch.reason, stretch.start.isoformat(),
            stretch.end.isoformat(), stretch.usage.distance_km,
        )  # fmt: skip
    return report


def stripe_sync(database: Database, settings: Settings) -> int:
    """Mirror the invoices and credit notes waiting in the outbox to Stripe; how many were
    attempted."""
    gateway = StripeGateway(settings.stripe)
    deadline = time.monotonic() + STRIPE_SYNC_BUDGET.total_seconds()
    attempted = 0
    with database.session() as session:
        while time.monotonic() < deadline:
            report = mirror_due_invoices(session, gateway, utcnow())
            if not report:
                break
            attempted += len(report)
    return attempted


def webhooks(database: Database, settings: Settings) -> int:
    """Send the webhook deliveries that are due (first attempts and retries); how many
    were attempted."""
    sender = HttpSender()
    deadline = time.monotonic() + WEBHOOKS_BUDGET.total_seconds()
    attempted = 0
    with database.session() as session:
        while time.monotonic() < deadline:
            report = deliver_due(session, sender, utcnow(), settings.webhooks)
            if not report:
                break
            attempted += len(report)
    return attempted


def cap_blocks(database: Database, settings: Settings) -> list[str]:
    """Lock the vehicles of customers whose cap says block_at_cap once it is reached, and
    unlock them when it no longer is (a new period, a cap raised); customers changed."""
    with database.session() as session:
        return refresh_cap_blocks(session, utcnow())


def dunning(database: Database, settings: Settings) -> DunningReport:
    """Follow up the overdue invoices: the steps due, the blocks lifted, the mails."""
    with database.session() as session:
        return run_dunning(session, utcnow(), settings)


def alerts(database: Database, settings: Settings) -> int:
    """Fire the usage alerts whose threshold the usage metered so far reached (late
    readings of the previous period count during its grace days); how many fired."""
    with database.session() as session:
        fired = evaluate_alerts(session, utcnow(), late_days=settings.invoicing.grace_days)
    return len(fired)


def jobs(settings: Settings) -> list[Job]:
    scheduled = [
        Job("meter", settings.metering.interval_seconds, meter),
        Job("fleet_moves", settings.devices.moves_interval_seconds, fleet_moves),
        Job("invoice", settings.invoicing.interval_seconds, invoice),
        Job("webhooks", settings.webhooks.interval_seconds, webhooks),
        Job("cap_blocks", settings.access.cap_watch_seconds, cap_blocks),
        Job("dunning", settings.dunning.interval_seconds, dunning),
        Job("alerts", settings.alerts.interval_seconds, alerts),
    ]
    if settings.stripe.enabled:  # without Stripe keys, nothing is collected
        scheduled.append(Job("stripe_sync", settings.stripe.sync_interval_seconds, stripe_sync))
    return scheduled


def run_under_lease(database: Database, settings: Settings, job: Job, holder: str) -> bool:
    """Run `job` if no other scheduler holds its lease; False when skipped."""
    with database.session() as session:
        if not take_lease(session, job.name, holder, utcnow(), LEASE):
            return False
    try:
        job.run(database, settings)
    except Exception:
        log.exception("job %s failed; it runs again at its next turn", job.name)
    finally:
        with database.session() as session:
            release_lease(session, job.name, holder, utcnow())
    return True


def beat(database: Database, instance: str) -> None:
    """Tell the readiness view this scheduler is running (every scheduler, no lease)."""
    with database.session() as session:
        heartbeats.beat(session, heartbeats.SCHEDULER, instance, utcnow(), {})


def build_scheduler(database: Database, settings: Settings) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=dt.UTC)
    holder = new_holder()
    scheduler.add_job(
        beat,
        IntervalTrigger(seconds=settings.health.heartbeat_seconds),
        args=(database, heartbeats.instance_name("scheduler")),
        id="heartbeat",
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    for job in jobs(settings):
        scheduler.add_job(
            run_under_lease,
            IntervalTrigger(seconds=job.seconds),
            args=(database, settings, job, holder),
            id=job.name,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),  # catch up at start
        )
    return scheduler


def stop_on_signal(scheduler: BlockingScheduler) -> Callable[..., None]:
    """A signal handler that stops the scheduler, however many signals come: Ctrl-C on
    `billing run` reaches it twice (SIGINT from the terminal, then SIGTERM from the
    supervisor), and a second shutdown would raise SchedulerNotRunningError."""

    def stop(*_args: object) -> None:
        with contextlib.suppress(SchedulerNotRunningError):
            scheduler.shutdown(wait=False)

    return stop
