"""Usage alerts: crossing in real time, crossing by a late reading, no second firing in a
period, firing again in a new one; thresholds on the amount, the cap's share, metrics."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.alerts.models import AlertFiring, AlertRule
from billing.alerts.services import create_rule, evaluate_alerts, plain
from billing.auth import SYSTEM
from billing.charges.compute import compute_statement
from billing.devices.models import Customer
from billing.periods import Period
from billing.spending_caps.services import set_spending_cap
from billing.webhooks.events import ALERT_TRIGGERED
from billing.webhooks.models import WebhookEvent
from billing.webhooks.services import create_endpoint
from tests.conftest import NOW, auth
from tests.integration.invoicing import at, ride

START = (1_000_000, 50_000)


def rule(session, customer_id, measure, threshold, scope="customer", **where):
    fields = {"scope": scope, "measure": measure, "threshold": Decimal(threshold), **where}
    return create_rule(session, SYSTEM, customer_id, fields, NOW)


def fire(session, when: str):
    return [
        (f.rule_id, f.period, plain(f.value))
        for f in evaluate_alerts(session, at(when), late_days=3)
    ]


@pytest.fixture
def listening(session):
    create_endpoint(
        session, SYSTEM, {"url": "http://alerts.example/", "events": [ALERT_TRIGGERED]}, NOW
    )


def test_a_vehicle_crossing_its_distance_fires_once_within_the_pass_after_the_reading(
    session, fleet, listening
):
    alert = rule(session, fleet.customer_id, "distance_km", "300", "vehicle",
                 vehicle_id=fleet.urbain, name="500 km")  # fmt: skip
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    under = fire(session, "2026-11-03T23:00:00+01:00")
    ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)

    crossed = fire(session, "2026-11-04T23:00:00+01:00")
    again = fire(session, "2026-11-05T23:00:00+01:00")

    assert under == []
    assert crossed == [(alert.id, "2026-11", "312")]
    assert again == []
    (event,) = session.scalars(select(WebhookEvent).where(WebhookEvent.type == ALERT_TRIGGERED))
    body = json.loads(event.body)
    assert body["customer_id"] == fleet.customer_id
    assert body["data"] == {
        "alert": {"id": alert.id, "name": "500 km", "scope": "vehicle", "fleet_id": None,
                  "vehicle_id": fleet.urbain, "measure": "distance_km", "threshold": "300"},
        "period": "2026-11", "value": "312", "threshold": "300",
    }  # fmt: skip


def test_a_fleet_sums_its_vehicles(session, fleet):
    alert = rule(session, fleet.customer_id, "distance_km", "400", "fleet", fleet_id=fleet.fleet_id)
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)
    before = fire(session, "2026-11-19T23:00:00+01:00")
    ride(session, fleet.liberte, "2026-11-20", 100, 10, 5, (500_000, 20_000))

    assert before == []
    assert fire(session, "2026-11-21T23:00:00+01:00") == [(alert.id, "2026-11", "412")]


def test_a_late_reading_crosses_last_months_threshold_and_the_new_month_fires_again(session, fleet):
    alert = rule(session, fleet.customer_id, "trips", "20")
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    counters = ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)
    november = fire(session, "2026-11-30T20:00:00+01:00")
    counters = ride(session, fleet.urbain, "2026-11-29", 30, 3, 1, counters, tag="late")

    late = fire(session, "2026-12-01T10:00:00+01:00")
    ride(session, fleet.urbain, "2026-12-10", 300, 25, 10, counters)
    december = fire(session, "2026-12-11T10:00:00+01:00")
    long_after = fire(session, "2026-12-20T10:00:00+01:00")

    assert november == []
    assert late == [(alert.id, "2026-11", "21")]
    assert december == [(alert.id, "2026-12", "25")]
    assert long_after == []


def test_a_rule_made_after_a_period_never_fires_for_it(session, fleet):
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    made = create_rule(
        session, SYSTEM, fleet.customer_id,
        {"scope": "customer", "measure": "trips", "threshold": Decimal(5)},
        at("2026-12-02T09:00:00+01:00"),
    )  # fmt: skip

    assert made.threshold == 5
    assert fire(session, "2026-12-02T10:00:00+01:00") == []


def test_the_share_of_the_cap_and_the_amount_to_date_fire_at_their_thresholds(session, fleet):
    november = Period(2026, 11)
    set_spending_cap(session, SYSTEM, fleet.customer_id, november, {"amount": Decimal(20)}, NOW)
    at_80 = rule(session, fleet.customer_id, "cap_percent", "80")
    at_100 = rule(session, fleet.customer_id, "cap_percent", "100")
    amount = rule(session, fleet.customer_id, "amount", "20")
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    # 150 km billable: 1.00 + 50 × 0.08; 10 trips × 0.10; 2 blocks of 10 kWh × 2.50.
    first = fire(session, "2026-11-03T23:00:00+01:00")
    ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)
    # 1.00 + 162 × 0.08 + 1.80 + 3 × 2.50 = 23.26 against the cap of 20.00.
    second = fire(session, "2026-11-04T23:00:00+01:00")

    customer = session.get(Customer, fleet.customer_id)
    statement = compute_statement(
        session, customer, november, until=at("2026-11-04T23:00:00+01:00")
    )
    assert first == []
    assert sorted(second) == sorted([
        (at_80.id, "2026-11", "116.3"),
        (at_100.id, "2026-11", "116.3"),
        (amount.id, "2026-11", plain(statement.totals.net)),
    ])  # fmt: skip
    assert statement.totals.net > 20  # the cap, and the flat fee it leaves out


def test_without_a_cap_the_cap_share_never_fires(session, fleet):
    rule(session, fleet.customer_id, "cap_percent", "1")
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)

    assert fire(session, "2026-11-03T23:00:00+01:00") == []


def test_a_paused_rule_does_not_fire(session, fleet, client, keys):
    alert = rule(session, fleet.customer_id, "trips", "1")
    paused = client.patch(
        f"/api/v1/customers/{fleet.customer_id}/alerts/{alert.id}",
        json={"enabled": False},
        headers=auth(keys["customer"]),
    )
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)

    assert paused.status_code == 200, paused.json
    assert fire(session, "2026-11-03T23:00:00+01:00") == []


# --- the API -------------------------------------------------------------------------------


def alerts_path(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/alerts"


def test_a_customer_sets_an_alert_and_reads_its_history(client, keys, session, fleet):
    customer = auth(keys["customer"])
    created = client.post(
        alerts_path(fleet.customer_id),
        json={"scope": "vehicle", "vehicle_id": fleet.urbain, "measure": "distance_km",
              "threshold": "300.0", "name": "Révision"},
        headers=customer,
    )  # fmt: skip
    made = session.get(AlertRule, created.json["id"])
    made.created_at = NOW  # made in mid-November: the rides below count
    session.commit()
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)
    fire(session, "2026-11-04T23:00:00+01:00")

    listed = client.get(alerts_path(fleet.customer_id), headers=customer).json
    history = client.get(
        f"/api/v1/customers/{fleet.customer_id}/alert-history", headers=customer
    ).json

    assert created.status_code == 201, created.json
    assert (created.json["threshold"], created.json["name"]) == ("300", "Révision")
    assert [item["id"] for item in listed["items"]] == [created.json["id"]]
    assert [(h["rule_id"], h["period"], h["value"], h["threshold"]) for h in history["items"]] == [
        (created.json["id"], "2026-11", "312", "300")
    ]
    assert history["total"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "vehicle", "vehicle_id": "VEH-A", "measure": "amount", "threshold": "1"},
         "measure"),
        ({"scope": "fleet", "measure": "trips", "threshold": "1"}, "fleet_id"),
        ({"scope": "fleet", "fleet_id": "{other_fleet}", "measure": "trips", "threshold": "1"},
         "fleet_id"),
        ({"scope": "vehicle", "vehicle_id": "VEH-B", "measure": "trips", "threshold": "1"},
         "vehicle_id"),
        ({"scope": "customer", "vehicle_id": "VEH-A", "measure": "trips", "threshold": "1"},
         "vehicle_id"),
        ({"scope": "customer", "measure": "trips", "threshold": "0"}, "threshold"),
        ({"scope": "customer", "measure": "trips", "threshold": "1e999"}, "threshold"),
        ({"scope": "customer", "measure": "trips", "threshold": "NaN"}, "threshold"),
        ({"scope": "customer", "measure": "speed", "threshold": "1"}, "measure"),
        ({"scope": "galaxy", "measure": "trips", "threshold": "1"}, "scope"),
        ({"measure": "trips", "threshold": "1"}, "scope"),
        ({"scope": "customer", "measure": "trips", "threshold": "1", "name": "x" * 201}, "name"),
        ({"scope": "customer", "measure": "trips", "threshold": "1", "name": "a\x07"}, "name"),
    ],
)  # fmt: skip
def test_a_bad_alert_is_refused_naming_the_field(client, keys, registry, body, field):
    body = {k: v.format(other_fleet=registry.other_fleet_id) if isinstance(v, str) else v
            for k, v in body.items()}  # fmt: skip
    response = client.post(
        alerts_path(registry.customer_id), json=body, headers=auth(keys["admin"])
    )

    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"], response.json


def test_hostile_requests_on_alerts_get_a_clear_4xx(client, keys, session, registry):
    theirs = rule(session, registry.other_customer_id, "trips", "1")
    customer, admin = auth(keys["customer"]), auth(keys["admin"])
    body = {"scope": "customer", "measure": "trips", "threshold": "1"}

    another = client.post(alerts_path(registry.other_customer_id), json=body, headers=customer)
    peek = client.get(f"{alerts_path(registry.other_customer_id)}/{theirs.id}", headers=customer)
    crossed = client.get(f"{alerts_path(registry.customer_id)}/{theirs.id}", headers=admin)
    operator = client.get(alerts_path(registry.customer_id), headers=auth(keys["operator"]))
    not_json = client.post(
        alerts_path(registry.customer_id),
        data=b"[",
        headers={**admin, "Content-Type": "application/json"},
    )
    huge = client.post(
        alerts_path(registry.customer_id), data=b"x" * (2 * 1024 * 1024),
        headers={**admin, "Content-Type": "application/json"},
    )  # fmt: skip
    array = client.post(alerts_path(registry.customer_id), json=[body], headers=admin)
    page = client.get(
        f"/api/v1/customers/{registry.customer_id}/alert-history?page=0", headers=customer
    )

    assert another.status_code == peek.status_code == crossed.status_code == 404
    assert operator.status_code == 403
    assert not_json.status_code == 400
    assert huge.status_code == 413
    assert array.status_code == 422
    assert page.status_code == 422 and "query.page" in page.json["error"]["details"]


def test_a_rule_is_changed_and_removed(client, keys, session, registry):
    alert = rule(session, registry.customer_id, "trips", "1")
    path = f"{alerts_path(registry.customer_id)}/{alert.id}"

    changed = client.patch(path, json={"threshold": "40"}, headers=auth(keys["finance"]))
    zero = client.patch(path, json={"threshold": "0"}, headers=auth(keys["finance"]))
    removed = client.delete(path, headers=auth(keys["customer"]))
    gone = client.get(path, headers=auth(keys["customer"]))

    assert (changed.status_code, changed.json["threshold"]) == (200, "40")
    assert zero.status_code == 422 and "threshold" in zero.json["error"]["details"]
    assert (removed.status_code, gone.status_code) == (204, 404)


def test_the_schedulers_job_evaluates_the_alerts(database, session, fleet, settings):
    from billing.scheduler import jobs

    rule(session, fleet.customer_id, "trips", "1")
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, START)
    [job] = [job for job in jobs(settings) if job.name == "alerts"]

    fired = job.run(database, settings)  # on the real clock: November fires in its grace days

    history = session.scalars(select(AlertFiring)).all()
    assert fired == len(history)
    assert {firing.period for firing in history} <= {"2026-11"}
