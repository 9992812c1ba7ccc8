"""The priced statement of a customer's month, checked to the cent by hand."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.demo import SYSTEM
from billing.devices import services as devices
from billing.devices.models import Customer, FleetMembership
from billing.metering.rollups import update_rollups
from billing.metering.services import IncomingMessage, VehicleDirectory, store_telemetry
from billing.mqtt import telemetry_topic
from billing.periods import Period
from billing.statements.compute import compute_statement
from tests.conftest import NOW

NOVEMBER = Period(2026, 11)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def ride(session, vehicle_id, day: str, km: int, trips: int, kwh: int, counters=(0, 0)):
    """`trips` trips on `day` totalling `km` km and `kwh` kWh; returns the counters."""
    documents, clock = [], at(f"{day}T08:00:00+01:00")
    per_trip_m, per_trip_wh = km * 1000 // trips, kwh * 1000 // trips
    odometer, energy = counters
    for trip in range(trips):
        trip_id = f"{vehicle_id}-{day}-{trip}"
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
        NOW + dt.timedelta(days=60),
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=60,
    )
    return odometer, energy


@pytest.fixture
def november_fleet(session, registry, example_plans):
    for membership in session.scalars(select(FleetMembership)):
        membership.started_at = at("2026-10-01T00:00:00+02:00")
    session.commit()
    return registry


def meter(session):
    while update_rollups(session, NOW, max_speed_kmh=60).vehicles:
        pass


def test_a_month_on_urbain_is_priced_to_the_cent(session, november_fleet):
    vehicle = november_fleet.vehicle_id
    devices.assign_plan(session, SYSTEM, vehicle, "urbain", at("2026-11-01T00:00:00+01:00"))
    counters = ride(session, vehicle, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))
    ride(session, vehicle, "2026-11-04", 112, 8, 9, counters)
    meter(session)
    customer = session.get(Customer, november_fleet.customer_id)
    statement = compute_statement(session, customer, NOVEMBER)
    amounts = {line.rated.metric: line.amount for line in statement.lines}
    # Flat 19.00 for the whole month. 312 km - 50 included = 262 billable: tier 1 takes
    # 100 at 0, tier 2 the other 162 at 0.08 = 12.96, plus its flat 1.00 = 13.96.
    # 18 trips at 0.10 = 1.80. 21 kWh: 3 started blocks of 10 at 2.50 = 7.50.
    assert amounts == {
        "vehicle_days": Decimal("19.00"),
        "distance_km": Decimal("13.96"),
        "trips": Decimal("1.80"),
        "energy_kwh": Decimal("7.50"),
    }
    # HT 42.26; VAT 20 % = 8.452 -> 8.45; TTC 50.71.
    assert (statement.totals.net, statement.totals.vat, statement.totals.gross) == (
        Decimal("42.26"), Decimal("8.45"), Decimal("50.71"),
    )  # fmt: skip
    assert statement.plan_versions == (("urbain", 1),)


def test_a_german_business_customer_is_invoiced_under_reverse_charge(session, november_fleet):
    devices.update_customer(
        session, SYSTEM, november_fleet.customer_id,
        {"vat_number": "DE123456789", "address": {"country": "DE", "city": "Berlin"}},
    )  # fmt: skip
    devices.assign_plan(
        session, SYSTEM, november_fleet.vehicle_id, "urbain", at("2026-11-01T00:00:00+01:00")
    )
    customer = session.get(Customer, november_fleet.customer_id)
    statement = compute_statement(session, customer, NOVEMBER)
    assert statement.vat.category == "AE"
    assert {(line.vat_category, line.vat_rate) for line in statement.lines} == {("AE", Decimal(0))}
    assert (statement.totals.net, statement.totals.vat) == (Decimal("19.00"), Decimal("0.00"))
