"""Usage billed to nobody is listed: metered while the vehicle was in no customer's fleet
(no_customer) or on no plan of its customer (no_plan), for admin, finance and operators of
the vehicle's fleet."""

import pytest

from billing.auth import SYSTEM
from billing.pricing import assignments
from tests.conftest import auth
from tests.integration.invoicing import at
from tests.rides import meter, ride

NOVEMBER = "2026-11"


@pytest.fixture
def rode(session, registry, example_plans):
    """VEH-A rides before its registration (15 Nov) and after; on a plan from 20 Nov only.
    VEH-B rides on 16 Nov and is on no plan."""
    counters = ride(session, registry.vehicle_id, "2026-11-10T08:00:00+01:00", 12, 1, 1)
    counters = ride(session, registry.vehicle_id, "2026-11-17T08:00:00+01:00", 7, 1, 1, counters)
    ride(session, registry.vehicle_id, "2026-11-22T08:00:00+01:00", 30, 2, 2, counters)
    ride(session, registry.other_vehicle_id, "2026-11-16T08:00:00+01:00", 5, 1, 1)
    assignments.assign_plan(
        session, SYSTEM, registry.vehicle_id, "urbain", at("2026-11-20T00:00:00+01:00")
    )
    meter(session)


def unbilled(client, key: str, period: str = NOVEMBER):
    return client.get(f"/api/v1/unbilled-usage?period={period}", headers=auth(key))


def test_usage_before_registration_and_off_plan_is_listed_with_its_reason(
    client, keys, registry, rode
):
    body = unbilled(client, keys["finance"]).json

    assert body["period"] == NOVEMBER and body["vehicles"] == 2
    stretches = [
        (s["vehicle_id"], s["reason"], s["customer_id"], s["usage"]["distance_km"], s["end"])
        for s in body["stretches"]
    ]
    assert stretches == [
        ("VEH-A", "no_customer", None, "12.000", "2026-11-15T10:00:00+00:00"),
        ("VEH-A", "no_plan", registry.customer_id, "7.000", "2026-11-19T23:00:00+00:00"),
        ("VEH-B", "no_plan", registry.other_customer_id, "5.000", "2026-11-30T23:00:00+00:00"),
    ]


def test_an_operator_sees_the_unbilled_usage_of_its_fleets_only(client, keys, rode):
    body = unbilled(client, keys["operator"]).json
    assert {s["vehicle_id"] for s in body["stretches"]} == {"VEH-A"}


def test_a_month_without_unbilled_usage_lists_nothing(client, keys, rode):
    body = unbilled(client, keys["admin"], "2026-10").json
    assert (body["vehicles"], body["stretches"]) == (0, [])


@pytest.mark.parametrize("period", ["2026-13", "November", "2026-1", "x" * 10_000, "9999-99"])
def test_a_malformed_period_is_refused_naming_it(client, keys, period):
    response = unbilled(client, keys["admin"], period)
    assert response.status_code == 422
    assert "query.period" in response.json["error"]["details"]
