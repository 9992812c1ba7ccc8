"""Usage from the rollups: per vehicle and local hour, day or month; per customer and
month, cut at plan changes and owner changes; days cut in the customer's time zone."""

import datetime as dt
import json

import pytest

from billing.auth import SYSTEM
from billing.devices import services as devices
from billing.metering.rollups import update_rollups
from billing.mqtt import telemetry_topic
from billing.pricing.assignments import PlanAssignment
from billing.registry import vehicle_changes
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.conftest import NOW, auth
from tests.integration.invoicing import held_since_october

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def readings(session, vehicle_id, *points):
    """points: (local or UTC ISO time, odometer_m, trip event or None)."""
    documents = []
    for n, (when, odometer, trip) in enumerate(points):
        document = {
            "msg_id": f"{vehicle_id}-{n}",
            "ts": at(when).isoformat(),
            "odometer_m": odometer,
        }
        if trip:
            document["trip"] = {"id": trip[0], "event": trip[1]}
        documents.append(document)
    store_telemetry(
        session,
        [IncomingMessage(telemetry_topic(vehicle_id), json.dumps(documents).encode())],
        NOW + dt.timedelta(days=400),
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=3600,
    )
    while update_rollups(session, NOW, max_speed_kmh=60).vehicles:
        pass


@pytest.fixture(autouse=True)
def vehicles_held_since_october(session, registry):
    held_since_october(session)


def assign(session, vehicle_id, plan_code, start, end=None):
    session.add(
        PlanAssignment(
            id=f"asg_{plan_code}_{vehicle_id}", vehicle_id=vehicle_id, plan_code=plan_code,
            plan_version=1, effective_at=at(start), ended_at=at(end) if end else None,
        )
    )  # fmt: skip
    session.commit()


def test_a_month_is_cut_at_a_plan_change_in_the_customers_time_zone(
    client, keys, session, registry, example_plans
):
    vehicle = registry.vehicle_id
    assign(session, vehicle, "urbain", "2026-11-01T00:00:00+01:00", "2026-11-16T00:00:00+01:00")
    assign(session, vehicle, "flotte-pro", "2026-11-16T00:00:00+01:00")
    readings(
        session,
        vehicle,
        ("2026-11-10T09:00:00+01:00", 100_000, ("t1", "start")),
        ("2026-11-10T09:10:00+01:00", 103_000, None),
        ("2026-11-10T09:20:00+01:00", 105_500, ("t1", "end")),
        # Late evening of the 15th, Paris time: still on urbain.
        ("2026-11-15T23:50:00+01:00", 106_000, None),
        # After midnight Paris time: flotte-pro.
        ("2026-11-16T00:10:00+01:00", 107_000, None),
        ("2026-11-20T18:00:00+01:00", 112_000, None),
    )
    body = client.get(
        f"/api/v1/customers/{registry.customer_id}/usage?period=2026-11",
        headers=auth(keys["customer"]),
    ).json
    assert (body["period"], body["timezone"]) == ("2026-11", "Europe/Paris")
    assert body["start"] == "2026-10-31T23:00:00+00:00"
    [vehicle_usage] = [v for v in body["vehicles"] if v["vehicle_id"] == vehicle]
    urbain, pro = vehicle_usage["segments"]
    assert (urbain["plan_code"], urbain["vehicle_days"]) == ("urbain", "15.000000")
    assert urbain["usage"] == {
        "distance_km": "6.000", "energy_kwh": "0.000", "trips": 1, "trip_minutes": "20.000000",
        "active_days": 2,
    }  # fmt: skip
    assert (pro["plan_code"], pro["vehicle_days"]) == ("flotte-pro", "15.000000")
    assert (pro["usage"]["distance_km"], pro["usage"]["active_days"]) == ("6.000", 2)
    assert vehicle_usage["usage"]["distance_km"] == "12.000"
    assert body["freshness"]["latest_reading_at"] == "2026-11-20T17:00:00+00:00"
    assert body["freshness"]["pending_since"] is None


def test_a_vehicle_moved_to_another_customer_is_cut_at_the_move(client, keys, session, registry):
    vehicle = registry.vehicle_id
    readings(
        session,
        vehicle,
        ("2026-11-05T10:00:00+01:00", 0, None),
        ("2026-11-05T10:30:00+01:00", 4000, None),
        ("2026-11-25T10:00:00+01:00", 9000, None),
    )
    vehicle_changes.update_vehicle(
        session, SYSTEM, vehicle,
        {"fleet_id": registry.other_fleet_id, "effective_at": at("2026-11-20T00:00:00+01:00")},
        NOW,
    )  # fmt: skip
    first = client.get(
        f"/api/v1/customers/{registry.customer_id}/usage?period=2026-11",
        headers=auth(keys["admin"]),
    ).json
    second = client.get(
        f"/api/v1/customers/{registry.other_customer_id}/usage?period=2026-11",
        headers=auth(keys["admin"]),
    ).json
    [mine] = [v for v in first["vehicles"] if v["vehicle_id"] == vehicle]
    [theirs] = [v for v in second["vehicles"] if v["vehicle_id"] == vehicle]
    assert mine["usage"]["distance_km"] == "4.000"
    assert theirs["usage"]["distance_km"] == "5.000"
    # Held from the 1st to the 20th at midnight, then from the 20th to the month's end.
    assert mine["segments"][0]["vehicle_days"] == "19.000000"
    assert theirs["segments"][0]["vehicle_days"] == "11.000000"


def test_days_follow_the_paris_clock_across_the_october_dst_change(client, keys, session, registry):
    vehicle = registry.vehicle_id
    readings(
        session,
        vehicle,
        ("2026-10-24T23:00:00+02:00", 0, None),
        ("2026-10-24T23:30:00+02:00", 1000, None),  # the 24th
        ("2026-10-25T23:30:00+01:00", 3000, None),  # the 25th, a 25-hour day
        ("2026-10-26T00:30:00+01:00", 6000, None),  # the 26th
    )
    body = client.get(
        f"/api/v1/vehicles/{vehicle}/usage?from=2026-10-24T00:00:00%2B02:00"
        "&to=2026-10-27T00:00:00%2B01:00&granularity=day",
        headers=auth(keys["operator"]),
    ).json
    assert [(p["start"], p["usage"]["distance_km"]) for p in body["points"]] == [
        ("2026-10-24T00:00:00+02:00", "1.000"),
        ("2026-10-25T00:00:00+02:00", "2.000"),
        ("2026-10-26T00:00:00+01:00", "3.000"),
    ]


def test_days_follow_a_half_hour_time_zone(client, keys, session, registry):
    devices.update_customer(session, SYSTEM, registry.customer_id, {"timezone": "Asia/Kolkata"})
    vehicle = registry.vehicle_id
    readings(
        session,
        vehicle,
        ("2026-11-10T23:30:00+05:30", 0, None),
        ("2026-11-10T23:50:00+05:30", 2000, None),
        ("2026-11-11T00:10:00+05:30", 2500, None),
    )
    body = client.get(
        f"/api/v1/vehicles/{vehicle}/usage?from=2026-11-10T00:00:00Z&to=2026-11-12T00:00:00Z",
        headers=auth(keys["admin"]),
    ).json
    assert body["timezone"] == "Asia/Kolkata"
    assert [(p["start"], p["usage"]["distance_km"]) for p in body["points"]] == [
        ("2026-11-10T00:00:00+05:30", "2.000"),
        ("2026-11-11T00:00:00+05:30", "0.500"),
    ]
    hourly = client.get(
        f"/api/v1/vehicles/{vehicle}/usage?from=2026-11-10T00:00:00Z&to=2026-11-12T00:00:00Z"
        "&granularity=hour",
        headers=auth(keys["admin"]),
    ).json
    assert [p["start"] for p in hourly["points"]] == [
        "2026-11-10T23:00:00+05:30",
        "2026-11-11T00:00:00+05:30",
    ]


def test_usage_of_another_customer_is_not_found(client, keys, registry):
    response = client.get(
        f"/api/v1/customers/{registry.other_customer_id}/usage", headers=auth(keys["customer"])
    )
    assert response.status_code == 404
    response = client.get(
        f"/api/v1/vehicles/{registry.other_vehicle_id}/usage", headers=auth(keys["operator"])
    )
    assert response.status_code == 404


def test_operators_decide_held_jumps_through_the_api(client, keys, session, registry):
    vehicle = registry.vehicle_id
    readings(
        session,
        vehicle,
        ("2026-11-10T09:00:00+01:00", 0, None),
        ("2026-11-10T09:05:00+01:00", 80_000, None),
    )
    [jump] = client.get("/api/v1/anomalies?status=held", headers=auth(keys["operator"])).json[
        "items"
    ]
    assert (jump["kind"], jump["distance_km"]) == ("implausible_jump", "80.000")
    accepted = client.post(f"/api/v1/anomalies/{jump['id']}/accept", headers=auth(keys["operator"]))
    assert accepted.json["status"] == "accepted"
    while update_rollups(session, NOW, max_speed_kmh=60).vehicles:
        pass
    body = client.get(
        f"/api/v1/customers/{registry.customer_id}/usage?period=2026-11",
        headers=auth(keys["admin"]),
    ).json
    assert body["total"]["distance_km"] == "80.000"
    other = client.post(f"/api/v1/anomalies/{jump['id']}/reject", headers=auth(keys["customer"]))
    assert other.status_code == 403
