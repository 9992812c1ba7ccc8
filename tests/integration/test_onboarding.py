"""Onboarding a fleet that already rides, through the API alone: customer, fleet, vehicles
"in the fleet since" last month, plans, last month's telemetry backfilled over HTTP and over
MQTT (a real Mosquitto and the real ingest consumer), then last month invoiced to the cent.
A vehicle registered without its past date has its usage listed as billed to nobody."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from billing import create_app
from billing.api_keys import create_api_key
from billing.broker.rules import registry_accounts
from billing.db import utcnow
from billing.metering.rollups import meter
from billing.mqtt import telemetry_topic
from billing.periods import Period
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from billing.settings import load_settings
from billing.telemetry.models import Reading
from tests.brokers import RecordingClient, start_mosquitto
from tests.conftest import auth, customer_payload
from tests.integration.test_ingest import running_consumer
from tests.rides import ride_documents
from tests.waiting import wait_for_progress

pytestmark = pytest.mark.mqtt

PARIS = ZoneInfo("Europe/Paris")
URBAIN = yaml.safe_load((DEFAULT_PLANS_DIRECTORY / "urbain.yaml").read_text(encoding="utf-8"))


def local_day(period: Period, day: int) -> str:
    return f"{period.first_day().replace(day=day).isoformat()}T08:00:00+01:00"


@pytest.fixture
def onboarding(tmp_path: Path, fresh_db):
    settings = load_settings(data_dir=tmp_path)
    client = create_app(settings, fresh_db).test_client()
    with fresh_db.session() as session:
        key = create_api_key(session, "admin")[1]
    return client, auth(key), settings, fresh_db


def stored(database, vehicle_id: str) -> int:
    with database.session() as session:
        return session.scalar(
            select(func.count()).select_from(Reading).where(Reading.vehicle_id == vehicle_id)
        )


def post(client, headers, path: str, body: dict, status: int = 201) -> dict:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.json
    return response.json


def test_a_fleet_with_history_is_onboarded_and_last_month_invoiced_through_the_api(
    onboarding, cli, tmp_path
):
    client, admin, settings, database = onboarding
    last = Period.containing(utcnow(), PARIS).previous()
    since = last.bounds(PARIS)[0].isoformat()

    post(client, admin, "/api/v1/plans", URBAIN)
    customer = post(client, admin, "/api/v1/customers", customer_payload("Onboarded SAS"))
    fleet = post(client, admin, "/api/v1/fleets", {"customer_id": customer["id"], "name": "F"})
    for vehicle_id in ("ONB-1", "ONB-2"):
        registered = post(client, admin, "/api/v1/vehicles", {
            "id": vehicle_id, "fleet_id": fleet["id"], "model": "s1", "serial": vehicle_id,
            "effective_at": since,
        })  # fmt: skip
        assert registered["memberships"][0]["started_at"] == since
    # Registered without its past: it rode last month in nobody's fleet.
    post(client, admin, "/api/v1/vehicles", {
        "id": "ONB-3", "fleet_id": fleet["id"], "model": "s1", "serial": "ONB-3",
    })  # fmt: skip
    for vehicle_id in ("ONB-1", "ONB-2", "ONB-3"):
        post(client, admin, f"/api/v1/vehicles/{vehicle_id}/plan",
             {"plan_code": "urbain", "effective_at": since})  # fmt: skip

    # ONB-1 and ONB-3 backfill over HTTP: 180 km, 6 trips, 17 kWh; 30 km, 1 trip, 3 kWh.
    first, counters = ride_documents("ONB-1", local_day(last, 3), 120, 4, 12)
    second, _ = ride_documents("ONB-1", local_day(last, 12), 60, 2, 5, counters)
    unregistered, _ = ride_documents("ONB-3", local_day(last, 5), 30, 1, 3)
    for vehicle_id, documents in (("ONB-1", first + second), ("ONB-3", unregistered)):
        post(client, admin, f"/api/v1/vehicles/{vehicle_id}/telemetry", documents, 200)
    # ONB-2 over MQTT with the password the API issued: 40 km, 2 trips, 8 kWh.
    password = post(client, admin, "/api/v1/vehicles/ONB-2/credentials", {})["password"]
    over_mqtt, _ = ride_documents("ONB-2", local_day(last, 7), 40, 2, 8)
    with (
        start_mosquitto(tmp_path / "mosquitto", registry_accounts(database)) as broker,
        running_consumer(database, broker.address),
        RecordingClient(broker.address.with_credentials("ONB-2", password)) as scooter,
    ):
        answer = scooter.publish(telemetry_topic("ONB-2"), json.dumps(over_mqtt).encode())
        assert not answer.is_failure, answer
        wait_for_progress(
            lambda: stored(database, "ONB-2"), lambda n: n >= len(over_mqtt), "ONB-2 stored"
        )
    meter(database, settings)

    run = cli("invoices", "run", "--period", str(last))
    assert run.exit_code == 0, run.output
    assert f"{last}: 1 created; 1 vehicle(s) with unattributed usage" in run.stderr
    assert "! ONB-3: 30.000 km, 3.000 kWh, 1 trip(s)" in run.stderr
    [draft] = client.get(
        f"/api/v1/invoices?customer_id={customer['id']}&period={last}", headers=admin
    ).json["items"]
    invoice = post(client, admin, f"/api/v1/invoices/{draft['id']}/finalize", {}, 200)

    assert invoice["status"] == "finalized" and invoice["number"]
    by_vehicle: dict[str, Decimal] = {}
    for line in invoice["lines"]:
        by_vehicle[line["vehicle_id"]] = by_vehicle.get(line["vehicle_id"], 0) + Decimal(
            line["amount"]
        )
    # ONB-1: 19.00 + (130 km billable: 100 free, 30 × 0.08 + 1.00) + 6 × 0.10 + 2 × 2.50.
    # ONB-2: 19.00 + 0 (40 km, all included) + 2 × 0.10 + 1 × 2.50.
    assert by_vehicle == {"ONB-1": Decimal("28.00"), "ONB-2": Decimal("21.70")}
    assert (invoice["total_net"], invoice["total_vat"], invoice["total_gross"]) == (
        "49.70", "9.94", "59.64",
    )  # fmt: skip

    unbilled = client.get(f"/api/v1/unbilled-usage?period={last}", headers=admin).json
    assert unbilled["vehicles"] == 1
    [stretch] = unbilled["stretches"]
    assert (stretch["vehicle_id"], stretch["reason"], stretch["customer_id"]) == (
        "ONB-3", "no_customer", None,
    )  # fmt: skip
    assert stretch["usage"]["distance_km"] == "30.000"
    assert stretch["usage"]["trips"] == 1
    metrics = client.get("/metrics").text
    assert f'billing_unattributed_vehicles{{period="{last}",reason="no_customer"}} 1.0' in metrics
    assert (
        f'billing_unattributed_distance_km{{period="{last}",reason="no_customer"}} 30.0' in metrics
    )
