"""Chaos month: the invoices of a month survive SIGKILLs of every role and a broker restart.

The same simulated month (a fleet of vehicles on the three example plans, several
customers, the simulator's deterministic seed and its usual faults: duplicates, readings
out of order, offline buffering) is run twice through the production processes — `billing
ingest`, `billing schedule` and `billing serve`, over Mosquitto as `billing run` starts it:

- calm: nothing goes wrong;
- chaos: while the month's telemetry flows, the ingest, the scheduler and the web process
  are SIGKILLed at random moments and started again, the broker is restarted once with
  readings queued for the ingest, and the scheduler is killed again while it issues the
  month's invoices.

The two runs must end with the same invoices: same numbers, same customers, every total
and every line to the cent. The month's drafts follow the telemetry while it arrives (a
grace period longer than the run), then the scheduler finalizes them with the real grace
period, as it does once a month closes.

    python bench/chaos.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench._support import (
    BillingRole,
    database,
    free_port,
    metering_lag_s,
    postgres_server,
    project_mosquitto,
    report,
    scratch_database,
    seed_fleet,
)
from billing.api_keys import create_api_key
from billing.auth import SYSTEM
from billing.devices.credentials import BrokerAccount, BrokerAccounts, mosquitto_hash
from billing.invoicing.models import Invoice
from billing.mqtt import BrokerAddress
from billing.pricing import assignments
from billing.pricing.commands import load_plan_files
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from billing.settings import IngestSettings
from billing.simulation.simulator import (
    TYPICAL_FAULTS,
    FleetPublisher,
    Publication,
    SimulationConfig,
    simulate_fleet,
)
from billing.telemetry.ingest import IngestConsumer
from billing.telemetry.models import Reading
from tests.waiting import wait_for_progress

MONTH_START = dt.datetime(2026, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # Paris
PLANS = ("liberte", "urbain", "flotte-pro")
GATEWAY = "chaos-gateway"
GATEWAY_PASSWORD = "chaos-gateway-password"
INGEST_CLIENT_ID = "chaos-ingest"
# A reading every 5 minutes riding, every 30 parked: a month of 200 vehicles in minutes.
SIMULATION = {"interval_s": 300, "heartbeat_s": 1800, "faults": TYPICAL_FAULTS}
FULL = {
    "vehicles": 200,
    "customers": 10,
    "days": 30,
    "kill_every_s": (3.0, 8.0),
    "closing_kills": 2,
}
QUICK = {"vehicles": 12, "customers": 4, "days": 4, "kill_every_s": (0.5, 1.5), "closing_kills": 1}


def seed(url: str, vehicles: int, customers: int) -> tuple[list[str], str]:
    """Customers `cus_chaos_NN` (ids fixed: invoice numbers follow customer order), their
    fleets and vehicles on the example plans from the month's start; vehicles and an admin
    key."""
    vehicle_ids = [f"CHAOS-{n:04d}" for n in range(vehicles)]
    for index in range(customers):
        seed_fleet(url, f"chaos_{index:02d}", vehicle_ids[index::customers], MONTH_START)
    db = database(url)
    with db.session() as session:
        load_plan_files(session, DEFAULT_PLANS_DIRECTORY)
        for index, vehicle_id in enumerate(vehicle_ids):
            assignments.assign_plan(session, SYSTEM, vehicle_id, PLANS[index % 3], MONTH_START)
        _key, admin_key = create_api_key(session, "admin", name="chaos")
    db.engine.dispose()
    return vehicle_ids, admin_key


def publications(vehicle_ids: list[str], days: int, seed_value: int) -> list[Publication]:
    config = SimulationConfig(seed=seed_value, **SIMULATION)
    end = MONTH_START + dt.timedelta(days=days)
    return list(simulate_fleet(vehicle_ids, MONTH_START, end, config))


def distinct_readings(messages: list[Publication]) -> int:
    found = set()
    for message in messages:
        document = json.loads(message.payload)
        for one in document if isinstance(document, list) else [document]:
            found.add((message.vehicle_id, one["msg_id"]))
    return len(found)


def stored_readings(url: str) -> int:
    db = database(url)
    try:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(Reading)) or 0
    finally:
        db.engine.dispose()


def invoices(url: str) -> list[tuple]:
    """Every invoice, by period and customer: number, status, totals and lines."""
    db = database(url)
    try:
        with db.session() as session:
            rows = session.scalars(select(Invoice).order_by(Invoice.period, Invoice.customer_id))
            return [invoice_figures(invoice) for invoice in rows]
    finally:
        db.engine.dispose()


def invoice_figures(invoice: Invoice) -> tuple:
    lines = tuple(
        (line.position, line.vehicle_id, line.description, str(line.quantity), str(line.amount))
        for line in sorted(invoice.lines, key=lambda line: line.position)
    )
    totals = (str(invoice.total_net), str(invoice.total_vat), str(invoice.total_gross))
    return (invoice.period, invoice.customer_id, invoice.kind, invoice.status, invoice.number,
            *totals, lines)  # fmt: skip


def month_drafts(url: str, customers: int) -> int:
    """Invoices of the month still to issue (none made yet counts as all of them)."""
    db = database(url)
    try:
        with db.session() as session:
            month = session.scalars(select(Invoice.status).where(Invoice.period == "2026-10"))
            statuses = list(month)
    finally:
        db.engine.dispose()
    return customers - statuses.count("finalized")


class Chaos:
    """Kills one of `roles` at a random moment and starts it again after a random pause,
    until stopped: the first role (the ingest) first, while readings flow, then each of the
    others (`killed_each` is set then), then any. A kill waits for readings to have been
    stored since the previous one, unless all are: on a loaded machine a process may take
    seconds to start, and killing it each time before it works would test nothing."""

    def __init__(
        self, roles: list[BillingRole], rng: random.Random, every_s: tuple, stored: Callable,
        expected: int,
    ):  # fmt: skip
        self.roles, self.rng, self.every_s = roles, rng, every_s
        self.stored, self.expected = stored, expected
        self.kills: dict[str, int] = {role.name: 0 for role in roles}
        self.killed_each = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        first, *others = self.roles
        order = [*self.rng.sample(others, len(others)), first]  # popped from the end
        while not self._stop.wait(self.rng.uniform(*self.every_s)):
            role = order.pop() if order else self.rng.choice(self.roles)
            role.kill()
            self.kills[role.name] += 1
            self._stop.wait(self.rng.uniform(0.0, 1.0))
            role.start()
            if not order:
                self.killed_each.set()
            before = self.stored()
            while self.stored() == before < self.expected and not self._stop.wait(0.2):
                pass


class WebClient:
    """Asks the web process for a customer's usage twice a second, as a portal would;
    counts the answers and the refusals (the process is down while it restarts)."""

    def __init__(self, base: str, key: str, customer_id: str):
        self.url = f"{base}/api/v1/customers/{customer_id}/usage"
        self.key = key
        self.answered = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self.key}"})
        while not self._stop.wait(0.5):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                    self.answered += 1
            except OSError:
                self.refused += 1

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return {"answered": self.answered, "refused": self.refused}


def show_logs(logs: Path, lines: int = 15) -> None:
    """The end of each process's log, when the run failed."""
    for log in sorted(logs.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.name}", *tail, sep="\n", file=sys.stderr)


def ingest_url(address: BrokerAddress) -> str:
    user, password = quote(address.username or "", safe=""), quote(address.password or "", safe="")
    return f"mqtt://{user}:{password}@{address.host}:{address.port}"


def open_ingest_session(url: str, address: BrokerAddress) -> None:
    """Subscribe once with the ingest's client id: from then on the broker queues for it,
    as it does in production, so nothing published while a process starts is dropped."""
    db = database(url)
    consumer = IngestConsumer(db, address, IngestSettings(client_id=INGEST_CLIENT_ID))
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    if not consumer.ready.wait(60):
        raise RuntimeError("the ingest session could not subscribe")
    consumer.stop()
    thread.join(60)
    db.engine.dispose()


def publish(address: BrokerAddress, vehicle_ids: list[str], messages: list[Publication]) -> int:
    gateway = address.with_credentials(GATEWAY, GATEWAY_PASSWORD)
    with FleetPublisher(gateway, vehicle_ids, gateway=True, drain_timeout_s=120) as publisher:
        stats = publisher.publish(messages)
    if stats.unacked or stats.errors:
        raise RuntimeError(f"the broker did not take every message: {stats}")
    return stats.published


def run_month(kind: str, shape: dict, seed_value: int, faults: bool) -> dict:
    """One month through the processes; with `faults`, under kills and a broker restart."""
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory() as directory, scratch_database(kind) as url:
        root = Path(directory)
        vehicle_ids, admin_key = seed(url, shape["vehicles"], shape["customers"])
        messages = publications(vehicle_ids, shape["days"], seed_value)
        expected = distinct_readings(messages)
        gateway = BrokerAccount(
            "gateway", GATEWAY, mosquitto_hash(GATEWAY_PASSWORD), tuple(vehicle_ids)
        )
        accounts = BrokerAccounts((gateway,))
        broker = project_mosquitto(root / "broker", lambda: accounts)
        http_port = free_port()
        environment = {
            "DATABASE_URL": url,
            "MQTT_URL": ingest_url(broker.address),
            "BILLING_DATA_DIR": str(root / "data"),
            "BILLING_INGEST_CLIENT_ID": INGEST_CLIENT_ID,
            "BILLING_METERING_INTERVAL_SECONDS": "1",
            "BILLING_INVOICING_INTERVAL_SECONDS": "2",
        }
        # While the month's telemetry flows its drafts follow it: no grace period ends.
        flowing = {**environment, "BILLING_INVOICING_GRACE_DAYS": "3650"}
        logs = root / "logs"
        serve = ["serve", "--port", str(http_port), "--threads", "2"]
        roles = [
            BillingRole("ingest", ["ingest"], environment, logs),
            BillingRole("scheduler", ["schedule"], flowing, logs),
            BillingRole("web", serve, environment, logs),
        ]
        closing = BillingRole("closing", ["schedule"], environment, logs)
        chaos = None
        if faults:
            stored = partial(stored_readings, url)
            chaos = Chaos(roles, rng, shape["kill_every_s"], stored, expected)
        open_ingest_session(url, broker.address)
        started = time.perf_counter()
        for role in roles:
            role.start()
        client = WebClient(f"http://127.0.0.1:{http_port}", admin_key, "cus_chaos_00")
        try:
            if chaos:
                chaos.start()
            half = len(messages) // 2
            published = publish(broker.address, vehicle_ids, messages[:half])
            if faults:
                # Readings are queued for the ingest (killed now and then): a restart of
                # the broker keeps them, and the sessions.
                broker.stop()
                broker = project_mosquitto(root / "broker", lambda: accounts, broker.address.port)
            published += publish(broker.address, vehicle_ids, messages[half:])
            wait_for_progress(partial(stored_readings, url), lambda n: n >= expected, "readings")
            if chaos:
                chaos.killed_each.wait()
                chaos.stop()  # the processes now meter and refresh the drafts in peace
            db = database(url)
            wait_for_progress(lambda: metering_lag_s(db) == 0, bool, "metering", stall_s=300)
            db.engine.dispose()
            ingested_s = time.perf_counter() - started
            # The month closes: the scheduler finalizes with the real grace period, killed
            # (in the chaos run) while it refreshes, numbers and freezes the invoices.
            closed_at = time.perf_counter()
            roles[1].stop()
            closing.start()
            for _ in range(shape["closing_kills"] if faults else 0):
                time.sleep(rng.uniform(0.5, 2.5))
                closing.kill()
                closing.start()
            wait_for_progress(
                partial(month_drafts, url, shape["customers"]), lambda left: left == 0, "issued"
            )
            closing_s = time.perf_counter() - closed_at
        except BaseException:
            show_logs(logs)
            raise
        finally:
            if chaos:
                chaos.stop()
            web_figures = client.stop()
            for role in [*roles, closing]:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    role.stop()
            broker.stop()
        kills = dict(chaos.kills) if chaos else {}
        if faults:
            kills |= {"scheduler_while_issuing": closing.starts - 1, "broker_restarts": 1}
        return {
            "published_messages": published,
            "readings_published": expected,
            "readings_stored": stored_readings(url),
            "ingested_and_metered_s": round(ingested_s, 1),
            "issued_s": round(closing_s, 1),
            "kills": kills,
            "web": web_figures,
            "invoices": invoices(url),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few vehicles and days")
    parser.add_argument("--seed", type=int, default=2026)
    arguments = parser.parse_args()
    shape = QUICK if arguments.quick else FULL
    kind = "postgresql" if postgres_server() else "sqlite"
    calm = run_month(kind, shape, arguments.seed, faults=False)
    print(f"calm: {calm['readings_stored']} readings, {len(calm['invoices'])} invoices", flush=True)
    chaos = run_month(kind, shape, arguments.seed, faults=True)
    print(f"chaos: {chaos['readings_stored']} readings, kills {chaos['kills']}", flush=True)
    equal = calm["invoices"] == chaos["invoices"]
    for ours, theirs in zip(calm["invoices"], chaos["invoices"], strict=False):
        if ours != theirs:
            print(f"calm:  {ours}\nchaos: {theirs}", file=sys.stderr)
    issued = [invoice for invoice in chaos["invoices"] if invoice[4]]
    stored_equal = (
        calm["readings_stored"] == chaos["readings_stored"] == chaos["readings_published"]
    )
    report(
        {
            "benchmark": "chaos",
            "database": kind,
            **{name: shape[name] for name in ("vehicles", "customers", "days")},
            "readings_published": chaos["readings_published"],
            "readings_stored_calm": calm["readings_stored"],
            "readings_stored_chaos": chaos["readings_stored"],
            "kills": chaos["kills"],
            "web_requests_chaos": chaos["web"],
            "calm_ingested_and_metered_s": calm["ingested_and_metered_s"],
            "chaos_ingested_and_metered_s": chaos["ingested_and_metered_s"],
            "calm_issued_s": calm["issued_s"],
            "chaos_issued_s": chaos["issued_s"],
            "invoices": len(chaos["invoices"]),
            "issued_numbers": [invoice[4] for invoice in issued],
            "issued_total_gross": str(sum(Decimal(invoice[7]) for invoice in issued)),
            "invoices_equal": equal,
        }
    )
    return 0 if equal and stored_equal else 1


if __name__ == "__main__":
    sys.exit(main())
