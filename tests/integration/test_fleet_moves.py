"""Fleet moves in time: a move in the past applies at once (and says which invoiced months
it re-attributes), a move in the future changes nothing — API access, broker logins,
billing — until its instant, then everything at once. The clock is passed in, never slept."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing.api_keys import create_api_key
from billing.auth import SYSTEM
from billing.broker.rules import ACL_FILE, registry_accounts
from billing.db import utcnow
from billing.devices import services as devices
from billing.devices.membership import apply_due_fleet_moves
from billing.invoicing import drafts
from billing.metering.usage import bucket_start
from billing.mqtt import telemetry_topic
from billing.periods import Period
from billing.pricing import assignments
from billing.registry import vehicle_changes
from billing.scheduler import fleet_moves
from billing.settings import load_settings
from billing.statements.services import get_statement
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.brokers import RecordingClient, start_mosquitto
from tests.conftest import NOW, auth
from tests.rides import meter

PARIS = ZoneInfo("Europe/Paris")


def patch_vehicle(client, key: str, vehicle_id: str, body: dict):
    return client.patch(f"/api/v1/vehicles/{vehicle_id}", json=body, headers=auth(key))


def reading(vehicle_id: str, msg_id: str, ts: dt.datetime, odometer_m: int) -> dict:
    return {"msg_id": msg_id, "ts": ts.isoformat(), "odometer_m": odometer_m}


def store(session, vehicle_id: str, documents: list[dict], received: dt.datetime) -> None:
    store_telemetry(
        session,
        [IncomingMessage(telemetry_topic(vehicle_id), json.dumps(documents).encode())],
        received,
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=60,
    )


def distance_of(session, customer_id: str, vehicle_id: str, at: dt.datetime, now) -> Decimal:
    """The km of `vehicle_id` on the customer's statement of the month holding `at`."""
    statement = get_statement(
        session, SYSTEM, customer_id, Period.containing(at, PARIS), now, history=drafts
    ).statement
    return sum(
        (s.usage.distance_km for s in statement.segments if s.segment.vehicle_id == vehicle_id),
        Decimal(0),
    )


@pytest.fixture
def other_keys(session, registry) -> dict[str, str]:
    """Keys of customer B, who the vehicle of customer A is moved to."""
    return {
        "operator": create_api_key(session, "operator", fleet_ids=(registry.other_fleet_id,))[1],
        "customer": create_api_key(session, "customer", customer_id=registry.other_customer_id)[1],
    }


def test_a_future_move_changes_nothing_until_its_instant_then_everything_at_once(
    tmp_path: Path, client, session, database, keys, other_keys, registry, example_plans
):
    vehicle, a_fleet, b_fleet = registry.vehicle_id, registry.fleet_id, registry.other_fleet_id
    assignments.assign_plan(session, SYSTEM, vehicle, "urbain", NOW)
    gateways = {
        fleet: client.post(f"/api/v1/fleets/{fleet}/credentials", headers=auth(key)).json
        for fleet, key in ((a_fleet, keys["operator"]), (b_fleet, other_keys["operator"]))
    }
    now = utcnow()
    instant = bucket_start(now + dt.timedelta(hours=1))

    moved = patch_vehicle(
        client, keys["admin"], vehicle, {"fleet_id": b_fleet, "effective_at": instant.isoformat()}
    )

    assert moved.status_code == 200, moved.json
    assert moved.json["fleet_id"] == a_fleet
    assert moved.json["memberships"][-1] == {
        "fleet_id": b_fleet, "started_at": instant.isoformat(), "ended_at": None,
    }  # fmt: skip
    assert moved.json["adjusted_invoices"] == []
    # Readings half an hour either side of the instant, received then: 4 km, then 6 km.
    before, after = instant - dt.timedelta(minutes=30), instant + dt.timedelta(minutes=30)
    store(session, vehicle, [reading(vehicle, "m-0", before - dt.timedelta(minutes=30), 0),
                             reading(vehicle, "m-1", before, 4000)], before)  # fmt: skip
    store(session, vehicle, [reading(vehicle, "m-2", after, 10_000)], after)
    meter(session)
    later = after + dt.timedelta(hours=1)

    def holder_sees(expected_holder: str) -> None:
        readers = {"A": keys["customer"], "B": other_keys["customer"]}
        for name, key in readers.items():
            status = client.get(f"/api/v1/vehicles/{vehicle}", headers=auth(key)).status_code
            assert status == (200 if name == expected_holder else 404), (name, status)
        operators = {"A": keys["operator"], "B": other_keys["operator"]}
        for name, key in operators.items():
            path = f"/api/v1/vehicles/{vehicle}/credentials"
            status = client.post(path, headers=auth(key)).status_code
            assert status == (201 if name == expected_holder else 404), (name, status)

    def gateway_may_publish(broker, fleet: str) -> bool:
        login = gateways[fleet]
        address = broker.address.with_credentials(login["username"], login["password"])
        with RecordingClient(address) as gateway:
            return not gateway.publish(telemetry_topic(vehicle), b"{}").is_failure

    with start_mosquitto(tmp_path / "mosquitto", registry_accounts(database)) as broker:
        holder_sees("A")
        assert gateway_may_publish(broker, a_fleet)
        assert not gateway_may_publish(broker, b_fleet)
        # Billing follows the readings' timestamps: before the instant A, after it B.
        assert distance_of(session, registry.customer_id, vehicle, before, later) == 4
        assert distance_of(session, registry.other_customer_id, vehicle, after, later) == 6
        assert distance_of(session, registry.customer_id, vehicle, after, later) == (
            0 if Period.containing(before, PARIS) != Period.containing(after, PARIS) else 4
        )

        assert apply_due_fleet_moves(session, instant - dt.timedelta(microseconds=1)) == []
        broker.reload()
        holder_sees("A")
        assert not gateway_may_publish(broker, b_fleet)

        assert apply_due_fleet_moves(session, instant) == [vehicle]
        broker.reload()

        holder_sees("B")
        assert gateway_may_publish(broker, b_fleet)
        assert not gateway_may_publish(broker, a_fleet)
        assert distance_of(session, registry.other_customer_id, vehicle, after, later) == 6


def test_the_scheduler_applies_due_moves_and_exports_an_outside_brokers_files(
    tmp_path: Path, database, session, registry
):
    now = utcnow()
    devices.issue_gateway_credential(session, SYSTEM, registry.other_fleet_id, now)
    # Scheduled a minute ago for half a minute ago: due now.
    vehicle_changes.update_vehicle(
        session, SYSTEM, registry.vehicle_id,
        {"fleet_id": registry.other_fleet_id, "effective_at": now - dt.timedelta(seconds=30)},
        now - dt.timedelta(minutes=1),
    )  # fmt: skip
    assert devices.get_vehicle(session, SYSTEM, registry.vehicle_id).fleet_id == registry.fleet_id
    reloaded = tmp_path / "reloaded"
    settings = load_settings(
        data_dir=tmp_path,
        mqtt_url="mqtt://billing-ingest:secret@127.0.0.1:1883",
        broker={"reload_command": f"touch {reloaded}"},
    )

    assert fleet_moves(database, settings) == [registry.vehicle_id]
    assert fleet_moves(database, settings) == []

    session.expire_all()
    assert devices.get_vehicle(session, SYSTEM, registry.vehicle_id).fleet_id == (
        registry.other_fleet_id
    )
    acl = (tmp_path / "broker" / ACL_FILE).read_text()
    assert (
        f"user gw-{registry.other_fleet_id}\ntopic write " + telemetry_topic(registry.vehicle_id)
        in acl
    )
    assert reloaded.exists()


def error_fields(response) -> dict:
    assert response.status_code == 422, response.json
    return response.json["error"]["details"]


def register(client, key: str, fleet_id: str, vehicle_id: str, **fields):
    body = {"id": vehicle_id, "fleet_id": fleet_id, "model": "s1", "serial": vehicle_id}
    return client.post("/api/v1/vehicles", json={**body, **fields}, headers=auth(key))


@pytest.mark.parametrize(
    "effective_at",
    [
        dt.timedelta(days=-401),  # from now: beyond the window
        dt.timedelta(days=1),  # from now: a registration is not scheduled
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "yesterday",
        "2026-11-01T00:00:00",  # no offset: which midnight?
        12,
        ["2026-11-01T00:00:00Z"],
    ],
)
def test_a_registration_out_of_its_window_is_refused_naming_effective_at(
    client, keys, registry, effective_at
):
    if isinstance(effective_at, dt.timedelta):
        effective_at = (utcnow() + effective_at).isoformat()
    admin = keys["admin"]
    response = register(client, admin, registry.fleet_id, "NEW-9", effective_at=effective_at)
    assert "effective_at" in error_fields(response)
    assert client.get("/api/v1/vehicles/NEW-9", headers=auth(keys["admin"])).status_code == 404


def test_a_move_must_come_after_the_latest_membership_and_within_the_window(client, keys, registry):
    vehicle, key = registry.vehicle_id, keys["admin"]
    before_registration = (NOW - dt.timedelta(days=1)).isoformat()
    far_back = (utcnow() - dt.timedelta(days=401)).isoformat()
    for effective_at in (before_registration, far_back):
        body = {"fleet_id": registry.other_fleet_id, "effective_at": effective_at}
        assert "effective_at" in error_fields(patch_vehicle(client, key, vehicle, body))
    scheduled = (utcnow() + dt.timedelta(days=10)).isoformat()
    body = {"fleet_id": registry.other_fleet_id, "effective_at": scheduled}
    assert patch_vehicle(client, key, vehicle, body).status_code == 200
    # The next move comes after the scheduled one, not before it.
    earlier = (utcnow() + dt.timedelta(days=5)).isoformat()
    body = {"fleet_id": registry.fleet_id, "effective_at": earlier}
    assert "effective_at" in error_fields(patch_vehicle(client, key, vehicle, body))


def test_an_operator_cannot_move_a_vehicle_into_a_fleet_it_does_not_operate(client, keys, registry):
    body = {"fleet_id": registry.other_fleet_id}
    response = patch_vehicle(client, keys["operator"], registry.vehicle_id, body)
    assert "fleet_id" in error_fields(response)
    vehicle = client.get(f"/api/v1/vehicles/{registry.vehicle_id}", headers=auth(keys["admin"]))
    assert vehicle.json["fleet_id"] == registry.fleet_id
    assert len(vehicle.json["memberships"]) == 1


def test_a_move_in_the_past_applies_at_once_and_names_the_invoices_it_adjusts(session, registry):
    from billing.devices.schemas import VehicleChangeSchema
    from tests.integration.invoicing import DUE, issued_invoice

    issued_invoice(session, registry.customer_id, "F-2026-0042")
    change = vehicle_changes.update_vehicle(
        session, SYSTEM, registry.vehicle_id,
        {"fleet_id": registry.other_fleet_id,
         "effective_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC)},
        DUE,
    )  # fmt: skip

    assert change.vehicle.fleet_id == registry.other_fleet_id
    body = VehicleChangeSchema().dump(change)
    assert body["adjusted_invoices"] == [
        {"customer_id": registry.customer_id, "period": "2026-11", "invoice_number": "F-2026-0042"}
    ]
    assert [(m["fleet_id"], m["ended_at"]) for m in body["memberships"]] == [
        (registry.fleet_id, "2026-11-20T00:00:00+00:00"), (registry.other_fleet_id, None),
    ]  # fmt: skip


def test_a_move_into_an_invoiced_month_past_the_adjustment_window_is_refused(session, registry):
    from billing.errors import Invalid
    from tests.integration.invoicing import issued_invoice

    issued_invoice(session, registry.customer_id, "F-2026-0043")
    in_april = dt.datetime(2027, 4, 15, tzinfo=dt.UTC)  # November is 5 months back
    with pytest.raises(Invalid) as refused:
        vehicle_changes.update_vehicle(
            session, SYSTEM, registry.vehicle_id,
            {"fleet_id": registry.other_fleet_id,
             "effective_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC)},
            in_april,
        )  # fmt: skip
    assert "F-2026-0043" in refused.value.details["effective_at"][0]
    session.rollback()
    assert devices.get_vehicle(session, SYSTEM, registry.vehicle_id).fleet_id == registry.fleet_id


def test_retiring_a_vehicle_cancels_its_scheduled_move(session, registry):
    now = utcnow()
    vehicle_changes.update_vehicle(
        session, SYSTEM, registry.vehicle_id,
        {"fleet_id": registry.other_fleet_id, "effective_at": now + dt.timedelta(days=3)}, now,
    )  # fmt: skip
    retired = vehicle_changes.retire_vehicle(session, SYSTEM, registry.vehicle_id, now)
    assert [(m.fleet_id, m.ended_at) for m in retired.memberships] == [(registry.fleet_id, now)]
    assert apply_due_fleet_moves(session, now + dt.timedelta(days=4)) == []
