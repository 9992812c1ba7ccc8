"""Helpers of the invoicing tests: a small fleet, rides as telemetry, the calendar of a run."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.auth import SYSTEM
from billing.devices.models import Customer, FleetMembership
from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.rendering import seller_json
from billing.metering.rollups import update_rollups
from billing.mqtt import telemetry_topic
from billing.periods import Period
from billing.pricing import assignments
from billing.registry import vehicle_changes
from billing.settings import load_settings
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.conftest import NOW

NOVEMBER = Period(2026, 11)
# November closes at midnight in Paris on 1 December (23:00 UTC on the 30th); with the
# default grace of 3 days its drafts are due from 23:00 UTC on 3 December.
CLOSED = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
IN_GRACE = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
DUE = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)
# A reading is stored as received at this instant, after every date these tests use.
RECEIVED = NOW + dt.timedelta(days=120)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def ride(session, vehicle_id, day: str, km: int, trips: int, kwh: int, counters=(0, 0), tag=""):
    """`trips` trips from 08:00 Paris time on `day` totalling `km` km and `kwh` kWh, stored
    and metered; returns the counters after them. The first reading of a vehicle only sets
    its baseline: start from the counters a previous ride returned."""
    documents, clock = [], at(f"{day}T08:00:00+01:00")
    per_trip_m, per_trip_wh = km * 1000 // trips, kwh * 1000 // trips
    odometer, energy = counters
    for trip in range(trips):
        trip_id = f"{vehicle_id}-{day}-{trip}{tag}"
        for step, event in ((0, "start"), (1, None), (2, "end")):
            if step:
                odometer += per_trip_m // 2
                energy += per_trip_wh // 2
            document = {"msg_id": f"{trip_id}-{step}", "ts": clock.isoformat(),
                        "odometer_m": odometer, "energy_wh": energy}  # fmt: skip
            if event:
                document["trip"] = {"id": trip_id, "event": event}
            documents.append(document)
            clock += dt.timedelta(minutes=10)
        clock += dt.timedelta(minutes=30)
    store_telemetry(
        session,
        [IncomingMessage(telemetry_topic(vehicle_id), json.dumps(documents).encode())],
        RECEIVED,
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=60,
    )
    meter(session)
    return odometer, energy


def meter(session) -> None:
    while update_rollups(session, RECEIVED, max_speed_kmh=60).vehicles:
        pass


def held_since_october(session) -> None:
    """The registry fixture registers vehicles mid-November; these tests need them earlier."""
    for membership in session.scalars(select(FleetMembership)):
        membership.started_at = at("2026-10-01T00:00:00+02:00")
    session.commit()


def add_vehicle(session, fleet_id: str, vehicle_id: str) -> str:
    vehicle_changes.register_vehicle(
        session,
        SYSTEM,
        {"id": vehicle_id, "fleet_id": fleet_id, "model": "s1", "serial": vehicle_id},
        NOW,
    )
    held_since_october(session)
    return vehicle_id


def assign(session, vehicle_id: str, plan_code: str, start: str) -> None:
    assignments.assign_plan(session, SYSTEM, vehicle_id, plan_code, at(start))


@dataclass
class Fleet:
    """Customer A's two vehicles on plans, customer B's vehicle on none."""

    customer_id: str
    fleet_id: str
    urbain: str
    liberte: str
    other_customer_id: str


@pytest.fixture
def fleet(session, registry, example_plans) -> Fleet:
    held_since_october(session)
    liberte = add_vehicle(session, registry.fleet_id, "VEH-A2")
    assign(session, registry.vehicle_id, "urbain", "2026-11-01T00:00:00+01:00")
    assign(session, liberte, "liberte", "2026-11-16T00:00:00+01:00")
    return Fleet(
        registry.customer_id, registry.fleet_id, registry.vehicle_id, liberte,
        registry.other_customer_id,
    )  # fmt: skip


def november_rides(session, fleet: Fleet) -> None:
    """The usage the hand-checked amounts of test_invoicing_run rest on."""
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))
    ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)
    ride(session, fleet.liberte, "2026-11-20", 100, 10, 5, (500_000, 20_000))


def invoice_of(session, customer_id: str, period: Period = NOVEMBER) -> Invoice | None:
    return session.scalars(
        select(Invoice).where(
            Invoice.customer_id == customer_id,
            Invoice.period == str(period),
            Invoice.kind == "invoice",
        )
    ).one_or_none()


def issued_invoice(session, customer_id: str, number: str) -> Invoice:
    """A finalized invoice of one line, written directly, for tests of who sees what."""
    customer = session.get(Customer, customer_id)
    one, fee = Decimal(1), Decimal("19.00")
    invoice = Invoice(
        id=f"inv_{number}", customer_id=customer_id, period="2026-11", kind="invoice",
        status="finalized", number=number, currency="EUR", period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30), period_ends_at=CLOSED, issue_date=DUE.date(),
        due_date=DUE.date() + dt.timedelta(days=30), total_net=fee, total_vat=Decimal("3.80"),
        total_gross=Decimal("22.80"),
        vat_breakdown='[{"category": "S", "rate": "20", "base": "19.00", "amount": "3.80"}]',
        payment_terms="Paiement à 30 jours", seller=seller_json(load_settings().seller),
        buyer_name=customer.name, buyer_address_line1=customer.address_line1,
        buyer_postal_code=customer.postal_code, buyer_city=customer.city,
        buyer_country=customer.country, buyer_siren=customer.siren,
        buyer_vat_number=customer.vat_number, buyer_language="fr", created_at=NOW,
        refreshed_at=NOW, finalized_at=DUE,
        lines=[InvoiceLine(
            position=1, period="2026-11", period_start=dt.date(2026, 11, 1),
            period_end=dt.date(2026, 11, 30), description="Abonnement", note="",
            quantity=one, billable_quantity=one, unit_code="C62", unit_price=fee, amount=fee,
            vat_category="S", vat_rate=Decimal(20), tiers="[]",
        )],
    )  # fmt: skip
    session.add(invoice)
    session.commit()
    return invoice
