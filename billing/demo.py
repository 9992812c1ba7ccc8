"""The demo data `billing run` starts with on an empty database: one customer, one fleet,
a few scooters and an admin key, so that a newcomer can call the API at once."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.auth import ApiKey, Principal, create_api_key, digest_key
from billing.devices import services
from billing.devices.models import Customer
from billing.periods import Period
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory

DEMO_CUSTOMER = {
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
SYSTEM = Principal(key_id="system", role="admin")


def seed_demo(session: Session, now: dt.datetime) -> bool:
    """Create the demo registry once; False when the database already holds customers."""
    if session.scalar(select(Customer.id).limit(1)) is not None:
        return False
    load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, now)  # the demo plan among them
    customer = services.create_customer(session, DEMO_CUSTOMER, now)
    fleet = services.create_fleet(
        session, SYSTEM, {"customer_id": customer.id, "name": "Amiens centre"}, now
    )
    zone = ZoneInfo(customer.timezone)
    start_of_month, _ = Period.containing(now, zone).bounds(zone)
    for vehicle_id in DEMO_VEHICLES:
        services.register_vehicle(
            session,
            SYSTEM,
            {"id": vehicle_id, "fleet_id": fleet.id, "model": "s1", "serial": f"S1-{vehicle_id}"},
            start_of_month,
        )
        services.assign_plan(session, SYSTEM, vehicle_id, DEMO_PLAN, start_of_month)
    return True


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
