"""The demo data `billing run` starts with on an empty database: one customer, one fleet,
a few scooters and an admin key, and a previous month already closed and invoiced (its
finalized invoice, PDF, Factur-X, and this month's FEC), so that a newcomer can try every
feature at once."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.api_keys import ApiKey, create_api_key, digest_key
from billing.auth import SYSTEM
from billing.devices import services
from billing.devices.models import Customer
from billing.errors import DomainError
from billing.invoicing.services import generate_invoices
from billing.metering.rollups import update_rollups
from billing.mqtt import telemetry_topic
from billing.payments.collection import finalize_invoice
from billing.periods import Period
from billing.pricing import assignments
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory
from billing.registry import vehicle_changes
from billing.settings import Settings
from billing.simulation.simulator import TYPICAL_FAULTS, SimulationConfig, simulate_fleet
from billing.telemetry.contract import MAX_BATCH
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry

log = logging.getLogger(__name__)


class DemoCustomer(TypedDict):
    """The demo customer as `create_customer` takes it."""

    name: str
    email: str
    siren: str
    vat_number: str
    address: dict[str, str]
    language: str
    timezone: str
    currency: str


DEMO_CUSTOMER: DemoCustomer = {
    "name": "Livraisons Picardes SAS",
    "email": "compta@lp.example",
    "siren": "123456789",
    "vat_number": "FR32123456789",
    "address": {
        "line1": "12 rue des Jacobins",
        "postal_code": "80000",
        "city": "Amiens",
        "country": "FR",
    },
    "language": "fr",
    "timezone": "Europe/Paris",
    "currency": "EUR",
}
DEMO_VEHICLES = [f"MOB-{n:06d}" for n in range(1, 6)]
DEMO_PLAN = "urbain"
DEMO_SEED = 2026  # of the live simulator too: a restart republishes the same readings


def seed_demo(session: Session, now: dt.datetime) -> bool:
    """Create the demo registry once, its scooters on their plan since the first of the
    previous month; False when the database already holds customers."""
    if session.scalar(select(Customer.id).limit(1)) is not None:
        return False
    load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, now)  # the demo plan among them
    customer = services.create_customer(session, DEMO_CUSTOMER, now)
    fleet = services.create_fleet(
        session, SYSTEM, {"customer_id": customer.id, "name": "Amiens centre"}, now
    )
    zone = ZoneInfo(customer.timezone)
    since, _ = Period.containing(demo_backfill_start(now, zone), zone).previous().bounds(zone)
    for vehicle_id in DEMO_VEHICLES:
        vehicle_changes.enroll_vehicle(
            session,
            SYSTEM,
            {"id": vehicle_id, "fleet_id": fleet.id, "model": "s1",
             "serial": f"S1-{vehicle_id}", "effective_at": since},
            now,
        )  # fmt: skip
        assignments.assign_plan(session, SYSTEM, vehicle_id, DEMO_PLAN, since)
    return True


def demo_backfill_start(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Where the live simulator of `billing run` starts its backfill: local midnight on the
    first of the month (the date taken in UTC, as `billing simulate --backfill-from` does)."""
    return dt.datetime.combine(now.date().replace(day=1), dt.time(), zone)


def seed_demo_history(session: Session, settings: Settings, now: dt.datetime) -> str | None:
    """Give the demo a closed, invoiced previous month: its telemetry, its finalized
    invoice (its PDF and Factur-X rendered when it is finalized) and so a FEC of this
    month. Returns the invoice number, or None when the seller's settings cannot issue one.

    The history is a few rides a day per scooter, compact so that `billing run` starts
    fast, ending exactly where the live simulator's counters start on the 1st: no counter
    goes backwards between the two.
    """
    zone = ZoneInfo(DEMO_CUSTOMER["timezone"])
    live_start = demo_backfill_start(now, zone)
    previous = Period.containing(live_start, zone).previous()
    start, _ = previous.bounds(zone)
    counters = _live_counters(live_start, zone)
    for vehicle_id in DEMO_VEHICLES:
        documents = _month_of_rides(vehicle_id, start, live_start, counters[vehicle_id])
        for batch in range(0, len(documents), MAX_BATCH):
            payload = json.dumps(documents[batch : batch + MAX_BATCH]).encode()
            store_telemetry(
                session, [IncomingMessage(telemetry_topic(vehicle_id), payload)], now,
                directory=VehicleDirectory(max_age=0),
                max_future_seconds=settings.ingest.max_future_seconds,
            )  # fmt: skip
    while update_rollups(session, now, max_speed_kmh=settings.metering.max_speed_kmh).vehicles:
        pass
    report = generate_invoices(session, previous, now, settings=settings)
    try:
        [invoice] = [finalize_invoice(session, i, now, settings=settings) for i in report.created]
    except DomainError as error:
        log.warning("the demo's %s invoice stays a draft: %s", previous, error.message)
        return None
    return invoice.number


def _live_counters(live_start: dt.datetime, zone: ZoneInfo) -> dict[str, tuple[int, int]]:
    """The odometer and energy counters the live simulator starts from on the 1st."""
    config = demo_simulation_config(zone)
    lowest: dict[str, tuple[int, int]] = {}
    # Counters only rise: the lowest of a day's readings are the first ones, whatever the
    # simulated delays and reorderings.
    day = live_start + dt.timedelta(days=1)
    for publication in simulate_fleet(DEMO_VEHICLES, live_start, day, config):
        document = json.loads(publication.payload)
        for reading in document if isinstance(document, list) else [document]:
            if "odometer_m" not in reading or "energy_wh" not in reading:
                continue
            now_seen = (reading["odometer_m"], reading["energy_wh"])
            seen = lowest.setdefault(publication.vehicle_id, now_seen)
            lowest[publication.vehicle_id] = (min(seen[0], now_seen[0]), min(seen[1], now_seen[1]))
    return lowest


def _month_of_rides(
    vehicle_id: str, start: dt.datetime, end: dt.datetime, counters: tuple[int, int]
) -> list[dict]:
    """Two to five rides on each working day in [start, end), as readings ending exactly
    at `counters`: a start, a midpoint and an end per ride, at 12 to 24 km/h."""
    rng = random.Random(f"demo-history/{vehicle_id}")
    zone = start.tzinfo
    rides = []
    day = start
    while day < end:
        if day.weekday() < 6:
            at = day.replace(hour=8)
            for _ in range(rng.randint(2, 5)):
                at += dt.timedelta(minutes=rng.randint(30, 150))
                minutes = rng.randint(15, 40)
                metres = minutes * rng.randint(200, 400)  # 12 to 24 km/h
                rides.append((at.astimezone(dt.UTC), minutes, metres, metres * 15 // 1000))
                at += dt.timedelta(minutes=minutes)
        day = dt.datetime.combine(day.date() + dt.timedelta(days=1), dt.time(), zone)
    odometer = counters[0] - sum(metres for *_, metres, _ in rides)
    energy = counters[1] - sum(wh for *_, wh in rides)
    documents = []
    for n, (at, minutes, metres, wh) in enumerate(rides):
        trip = f"{vehicle_id}-h{n}"
        for step, (event, share) in enumerate((("start", 0), (None, 2), ("end", 2))):
            if share:
                odometer, energy = odometer + metres // share, energy + wh // share
            if step == 2:  # the halves of an odd distance: the end reading carries the rest
                odometer += metres % 2
                energy += wh % 2
            document = {
                "msg_id": f"{trip}-{step}",
                "ts": (at + dt.timedelta(minutes=minutes * step / 2)).isoformat(),
                "odometer_m": odometer,
                "energy_wh": energy,
            }
            if event:
                document["trip"] = {"id": trip, "event": event}
            documents.append(document)
    return documents


def demo_simulation_config(zone: ZoneInfo) -> SimulationConfig:
    """What `billing simulate --seed 2026` (the demo's live feed) simulates with."""
    return SimulationConfig(DEMO_SEED, timezone=zone.key, faults=TYPICAL_FAULTS)


def demo_admin_key(session: Session, data_dir: Path) -> str:
    """The demo admin key, kept in the data directory so that each start can print it.

    Only `billing run` uses this; production keys are made with `billing keys create`
    and never written to disk.
    """
    path = data_dir / "demo-admin-key"
    if path.exists():
        plain = path.read_text().strip()
        if session.scalar(select(ApiKey.id).where(ApiKey.digest == digest_key(plain))):
            return plain
    _key, plain = create_api_key(session, "admin", name="demo admin (billing run)")
    path.write_text(plain + "\n")
    os.chmod(path, 0o600)
    return plain


DEMO_FINANCE_EMAIL = "finance@mobilite-durable.example"


def demo_users(session: Session, now: dt.datetime) -> tuple[str, str]:
    """The demo customer's contact (its invoicing address) and a finance user, added once;
    their e-mail addresses, for `billing run` to print a sign-in link of each."""
    from billing.users.services import add_user, find_user

    customer = session.scalar(select(Customer).where(Customer.name == DEMO_CUSTOMER["name"]))
    contact = DEMO_CUSTOMER["email"]
    if customer is not None and find_user(session, contact) is None:
        add_user(session, contact, "customer", now, customer_id=customer.id, name="Comptabilité")
    if find_user(session, DEMO_FINANCE_EMAIL) is None:
        add_user(session, DEMO_FINANCE_EMAIL, "finance", now, name="Finance (démo)")
    return contact, DEMO_FINANCE_EMAIL
