"""The registry API: create, read, list, update and retire customers, fleets, vehicles and
plan assignments, with validation errors that name the faulty field."""

from sqlalchemy import select

from billing.devices.models import FleetMembership
from billing.pricing.assignments import PlanAssignment
from tests.conftest import auth, customer_payload


def create_customer(client, key, **changes):
    response = client.post(
        "/api/v1/customers", json={**customer_payload(), **changes}, headers=auth(key)
    )
    assert response.status_code == 201, response.json
    return response.json


def test_creating_a_customer_returns_it_with_defaults(client, keys):
    body = create_customer(client, keys["admin"])
    assert body["id"].startswith("cus_")
    assert body["address"]["city"] == "Amiens"
    assert (body["timezone"], body["currency"], body["language"]) == ("Europe/Paris", "EUR", "fr")
    fetched = client.get(f"/api/v1/customers/{body['id']}", headers=auth(keys["admin"])).json
    assert fetched == body


def test_updating_a_customer_changes_only_the_fields_sent(client, keys):
    body = create_customer(client, keys["admin"], language="en")
    response = client.patch(
        f"/api/v1/customers/{body['id']}",
        json={"email": "billing@lp.example", "address": {"city": "Abbeville"}},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 200
    assert response.json["email"] == "billing@lp.example"
    assert response.json["address"]["city"] == "Abbeville"
    assert response.json["address"]["postal_code"] == "80000"
    assert response.json["language"] == "en"


def test_listing_customers_is_paginated(client, keys):
    for n in range(5):
        create_customer(client, keys["admin"], name=f"Client {n}")
    first = client.get("/api/v1/customers?per_page=3", headers=auth(keys["admin"])).json
    second = client.get("/api/v1/customers?per_page=3&page=2", headers=auth(keys["admin"])).json
    third = client.get("/api/v1/customers?per_page=3&page=3", headers=auth(keys["admin"])).json
    assert first["total"] == 7  # five here and the two of the registry fixture
    assert [len(first["items"]), len(second["items"]), len(third["items"])] == [3, 3, 1]
    ids = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert len(set(ids)) == 7


def test_a_missing_field_is_named_in_the_error(client, keys):
    payload = customer_payload()
    del payload["address"]["postal_code"]
    response = client.post("/api/v1/customers", json=payload, headers=auth(keys["admin"]))
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == {"address.postal_code": ["Missing data for required field."]}


def test_a_wrong_type_is_named_in_the_error(client, keys):
    response = client.post(
        "/api/v1/customers", json={**customer_payload(), "name": 42}, headers=auth(keys["admin"])
    )
    assert response.status_code == 422
    assert list(response.json["error"]["details"]) == ["name"]


def test_an_unknown_field_is_refused(client, keys):
    payload = customer_payload()
    payload["address"]["planet"] = "Earth"
    response = client.post(
        "/api/v1/customers", json={**payload, "colour": "red"}, headers=auth(keys["admin"])
    )
    assert response.status_code == 422
    assert response.json["error"]["details"] == {
        "address.planet": ["Unknown field."],
        "colour": ["Unknown field."],
    }


def test_a_french_vat_number_must_match_the_siren(client, keys):
    response = client.post(
        "/api/v1/customers",
        json={**customer_payload(), "vat_number": "FR99123456789", "timezone": "Mars/Olympus"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"vat_number", "timezone"}


def test_a_bad_vehicle_id_is_refused_with_its_field(client, keys, registry):
    response = client.post(
        "/api/v1/vehicles",
        json={"id": "MOB 1/../2", "fleet_id": registry.fleet_id, "model": "s1", "serial": "X"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert list(response.json["error"]["details"]) == ["id"]


def test_registering_a_vehicle_in_an_unknown_fleet_names_the_fleet(client, keys):
    response = client.post(
        "/api/v1/vehicles",
        json={"id": "MOB-9", "fleet_id": "flt_nope", "model": "s1", "serial": "S9"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"fleet_id": ["fleet flt_nope not found"]}


def test_a_vehicle_id_or_serial_cannot_be_registered_twice(client, keys, registry):
    body = {"id": "VEH-A", "fleet_id": registry.fleet_id, "model": "s1", "serial": "new"}
    assert (
        client.post("/api/v1/vehicles", json=body, headers=auth(keys["admin"])).status_code == 409
    )
    body = {"id": "VEH-C", "fleet_id": registry.fleet_id, "model": "s1", "serial": "S-A"}
    assert (
        client.post("/api/v1/vehicles", json=body, headers=auth(keys["admin"])).status_code == 409
    )


def test_fleet_lifecycle_create_rename_and_retire(client, keys, registry):
    headers = auth(keys["admin"])
    fleet = client.post(
        "/api/v1/fleets",
        json={"customer_id": registry.customer_id, "name": "Nord"},
        headers=headers,
    ).json
    renamed = client.patch(
        f"/api/v1/fleets/{fleet['id']}", json={"name": "Nord-Est"}, headers=headers
    )
    assert renamed.json["name"] == "Nord-Est"
    listed = client.get(f"/api/v1/fleets?customer_id={registry.customer_id}", headers=headers).json
    assert {f["name"] for f in listed["items"]} == {"Fleet A", "Nord-Est"}
    retired = client.delete(f"/api/v1/fleets/{fleet['id']}", headers=headers)
    assert (retired.status_code, retired.json["status"]) == (200, "retired")
    again = client.patch(f"/api/v1/fleets/{fleet['id']}", json={"name": "x"}, headers=headers)
    assert again.status_code == 409


def test_a_fleet_with_active_vehicles_cannot_be_retired(client, keys, registry):
    response = client.delete(f"/api/v1/fleets/{registry.fleet_id}", headers=auth(keys["admin"]))
    assert response.status_code == 409
    assert "VEH-A" in response.json["error"]["message"]


def test_moving_a_vehicle_to_another_fleet_keeps_its_history(client, keys, registry, session):
    response = client.patch(
        f"/api/v1/vehicles/{registry.vehicle_id}",
        json={"fleet_id": registry.other_fleet_id, "effective_at": "2026-11-20T00:00:00+01:00"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 200
    assert response.json["fleet_id"] == registry.other_fleet_id
    history = session.scalars(
        select(FleetMembership)
        .where(FleetMembership.vehicle_id == registry.vehicle_id)
        .order_by(FleetMembership.started_at)
    ).all()
    assert [(m.fleet_id, m.ended_at is None) for m in history] == [
        (registry.fleet_id, False),
        (registry.other_fleet_id, True),
    ]
    assert history[0].ended_at.isoformat() == "2026-11-19T23:00:00+00:00"


def test_retiring_a_vehicle_ends_its_plan_and_freezes_it(
    client, keys, registry, session, example_plans
):
    headers = auth(keys["admin"])
    url = f"/api/v1/vehicles/{registry.vehicle_id}"
    client.post(
        f"{url}/plan",
        json={"plan_code": "urbain", "effective_at": "2026-11-01T00:00:00+01:00"},
        headers=headers,
    )
    retired = client.delete(url, headers=headers)
    assert (retired.status_code, retired.json["status"]) == (200, "retired")
    assignment = session.scalars(select(PlanAssignment)).one()
    assert assignment.ended_at is not None
    assert client.patch(url, json={"model": "s2"}, headers=headers).status_code == 409


def test_plan_assignments_form_a_history_without_overlap(client, keys, registry, example_plans):
    headers = auth(keys["admin"])
    url = f"/api/v1/vehicles/{registry.vehicle_id}/plan"
    first = client.post(
        url,
        json={"plan_code": "urbain", "effective_at": "2026-11-01T00:00:00+01:00"},
        headers=headers,
    )
    second = client.post(
        url,
        json={"plan_code": "flotte-pro", "effective_at": "2026-11-16T00:00:00+01:00"},
        headers=headers,
    )
    assert (first.status_code, second.status_code) == (201, 201)
    history = client.get(url, headers=headers).json
    assert [(a["plan_code"], a["effective_at"], a["ended_at"]) for a in history] == [
        ("urbain", "2026-10-31T23:00:00+00:00", "2026-11-15T23:00:00+00:00"),
        ("flotte-pro", "2026-11-15T23:00:00+00:00", None),
    ]
    backdated = client.post(
        url,
        json={"plan_code": "urbain", "effective_at": "2026-11-10T00:00:00+01:00"},
        headers=headers,
    )
    assert backdated.status_code == 422
    assert list(backdated.json["error"]["details"]) == ["effective_at"]
    ended = client.delete(url, json={"ended_at": "2026-12-01T00:00:00+01:00"}, headers=headers)
    assert ended.json["ended_at"] == "2026-11-30T23:00:00+00:00"


def test_an_assignment_needs_a_time_zone_in_its_timestamp(client, keys, registry):
    response = client.post(
        f"/api/v1/vehicles/{registry.vehicle_id}/plan",
        json={"plan_code": "urbain", "effective_at": "2026-11-01T00:00:00"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert list(response.json["error"]["details"]) == ["effective_at"]


def test_archiving_a_customer_needs_its_fleets_retired_first(client, keys, registry):
    headers = auth(keys["admin"])
    assert (
        client.delete(f"/api/v1/customers/{registry.customer_id}", headers=headers).status_code
        == 409
    )
    client.delete(f"/api/v1/vehicles/{registry.vehicle_id}", headers=headers)
    client.delete(f"/api/v1/fleets/{registry.fleet_id}", headers=headers)
    archived = client.delete(f"/api/v1/customers/{registry.customer_id}", headers=headers)
    assert (archived.status_code, archived.json["status"]) == (200, "archived")
    listed = client.get("/api/v1/customers?status=active", headers=headers).json
    assert registry.customer_id not in {c["id"] for c in listed["items"]}


def test_health_and_openapi_are_served(client):
    assert client.get("/healthz").json == {"status": "ok"}
    spec = client.get("/api/v1/openapi.json").json
    assert "/api/v1/vehicles/{vehicle_id}/plan" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_a_request_without_a_valid_key_is_unauthenticated(client):
    missing = client.get("/api/v1/customers")
    wrong = client.get("/api/v1/customers", headers=auth("bk_not-a-key"))
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json["error"]["code"] == "unauthenticated"
