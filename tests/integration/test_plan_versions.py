"""Plan versions: an edit replaces a version nothing was rated on and adds a version once
usage was rated; vehicles keep the version they were assigned until assigned again or
migrated; stored definitions read back exactly."""

import datetime as dt

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from billing.auth import SYSTEM
from billing.errors import NotFound
from billing.pricing import services
from billing.pricing.assignments import PlanAssignment, assign_plan
from billing.pricing.plans import parse_plan
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from tests.conftest import NOW, auth

LATER = NOW + dt.timedelta(days=1)


def urbain(**changes) -> dict:
    path = DEFAULT_PLANS_DIRECTORY / "urbain.yaml"
    return {**yaml.safe_load(path.read_text(encoding="utf-8")), **changes}


def put_urbain(client, key, **changes):
    response = client.put("/api/v1/plans/urbain", json=urbain(**changes), headers=auth(key))
    assert response.status_code == 200, response.json
    return response.json


def assign(client, key, vehicle_id, effective_at):
    response = client.post(
        f"/api/v1/vehicles/{vehicle_id}/plan",
        json={"plan_code": "urbain", "effective_at": effective_at},
        headers=auth(key),
    )
    assert response.status_code == 201, response.json
    return response.json


def test_editing_a_plan_nothing_was_rated_on_replaces_its_version(client, keys, example_plans):
    edited = put_urbain(client, keys["admin"], name="Urbain — 2027")
    assert (edited["version"], edited["name"]) == (1, "Urbain — 2027")
    versions = client.get("/api/v1/plans/urbain/versions", headers=auth(keys["admin"])).json
    assert [(v["version"], v["name"]) for v in versions] == [(1, "Urbain — 2027")]


def test_editing_a_plan_once_usage_was_rated_on_it_adds_a_version(
    client, session, keys, example_plans
):
    services.lock_plan_version(session, "urbain", 1, NOW)
    session.commit()
    edited = put_urbain(client, keys["admin"], name="Urbain — 2027")
    assert (edited["version"], edited["locked_at"]) == (2, None)
    versions = client.get("/api/v1/plans/urbain/versions", headers=auth(keys["admin"])).json
    assert [(v["version"], v["name"], v["locked_at"] is None) for v in versions] == [
        (1, "Urbain — usage", False),
        (2, "Urbain — 2027", True),
    ]
    first = client.get("/api/v1/plans/urbain?version=1", headers=auth(keys["admin"])).json
    assert first["name"] == "Urbain — usage"
    assert client.get("/api/v1/plans/urbain", headers=auth(keys["admin"])).json["version"] == 2


def test_an_edit_that_changes_nothing_creates_no_version(client, session, keys, example_plans):
    services.lock_plan_version(session, "urbain", 1, NOW)
    session.commit()
    assert put_urbain(client, keys["admin"])["version"] == 1


def test_a_plan_version_is_locked_once_and_keeps_its_first_lock_time(session, example_plans):
    first = services.lock_plan_version(session, "urbain", 1, NOW)
    again = services.lock_plan_version(session, "urbain", 1, LATER)
    assert first.locked_at == again.locked_at == NOW


def test_a_lock_lasts_only_if_the_caller_commits(session, example_plans):
    services.lock_plan_version(session, "urbain", 1, NOW)
    session.rollback()
    assert services.get_plan_version(session, "urbain", 1).locked_at is None


def test_locking_an_unknown_version_is_an_error(session, example_plans):
    with pytest.raises(NotFound):
        services.lock_plan_version(session, "urbain", 2, NOW)


def test_a_stored_version_reads_back_as_the_plan_it_was_made_from(session, example_plans):
    stored = services.get_plan_version(session, "urbain").to_plan()
    assert stored == parse_plan(urbain())
    assert str(stored.charges[1].tiers[1].unit_amount) == "0.08"
    assert services.get_plan_version(session, "urbain").to_plan() is stored


def test_vehicles_keep_their_version_when_the_plan_gets_a_new_one(
    client, session, keys, registry, example_plans
):
    admin = keys["admin"]
    assert (
        assign(client, admin, registry.vehicle_id, "2026-11-01T00:00:00+01:00")["plan_version"] == 1
    )
    services.lock_plan_version(session, "urbain", 1, NOW)
    session.commit()
    put_urbain(client, admin, name="Urbain — 2027")
    history = client.get(f"/api/v1/vehicles/{registry.vehicle_id}/plan", headers=auth(admin))
    assert [(a["plan_version"], a["ended_at"]) for a in history.json] == [(1, None)]


def test_assigning_the_plan_again_takes_its_latest_version(
    client, session, keys, registry, example_plans
):
    admin = keys["admin"]
    assign(client, admin, registry.vehicle_id, "2026-11-01T00:00:00+01:00")
    services.lock_plan_version(session, "urbain", 1, NOW)
    session.commit()
    put_urbain(client, admin, name="Urbain — 2027")
    again = assign(client, admin, registry.vehicle_id, "2026-12-01T00:00:00+01:00")
    assert again["plan_version"] == 2
    history = client.get(f"/api/v1/vehicles/{registry.vehicle_id}/plan", headers=auth(admin))
    assert [(a["plan_version"], a["ended_at"]) for a in history.json] == [
        (1, "2026-11-30T23:00:00+00:00"),
        (2, None),
    ]


def test_an_assignment_may_name_an_older_version(session, registry, example_plans):
    services.lock_plan_version(session, "urbain", 1, NOW)
    services.update_plan(session, "urbain", urbain(name="Urbain — 2027"), NOW)
    assignment = assign_plan(session, SYSTEM, registry.vehicle_id, "urbain", NOW, plan_version=1)
    assert assignment.plan_version == 1


def test_migrating_moves_the_vehicles_on_older_versions_to_the_latest(
    client, session, keys, registry, example_plans
):
    admin = keys["admin"]
    assign(client, admin, registry.vehicle_id, "2026-11-01T00:00:00+01:00")
    assign(client, admin, registry.other_vehicle_id, "2026-12-15T00:00:00+01:00")
    services.lock_plan_version(session, "urbain", 1, NOW)
    session.commit()
    put_urbain(client, admin, name="Urbain — 2027")
    response = client.post(
        "/api/v1/plans/urbain/migrate",
        json={"effective_at": "2026-12-01T00:00:00+01:00"},
        headers=auth(admin),
    )
    assert response.status_code == 200, response.json
    # The other vehicle's assignment begins after the migration date: it is left alone.
    assert [(a["vehicle_id"], a["plan_version"]) for a in response.json] == [
        (registry.vehicle_id, 2)
    ]
    rows = session.scalars(
        select(PlanAssignment).order_by(PlanAssignment.vehicle_id, PlanAssignment.effective_at)
    ).all()
    assert [(r.vehicle_id, r.plan_version, r.ended_at is None) for r in rows] == [
        (registry.vehicle_id, 1, False),
        (registry.vehicle_id, 2, True),
        (registry.other_vehicle_id, 1, True),
    ]


def test_an_assignment_cannot_point_to_a_version_that_does_not_exist(session, registry):
    session.add(
        PlanAssignment(
            id="asg_test",
            vehicle_id=registry.vehicle_id,
            plan_code="urbain",
            plan_version=1,
            effective_at=NOW,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()
