"""The fleet-wide list of parts due for service: ordered by date, within a horizon,
filtered by fleet and category, with parts that need attention now listed whatever the
horizon, even on a vehicle with too little history for a projection."""

import datetime as dt

import pytest

from billing.auth import SYSTEM, Principal
from billing.components import maintenance, services
from billing.errors import NotFound
from tests.conftest import NOW, auth
from tests.integration.components import fitted, load_example_bom, register_s1
from tests.rides import at, meter, ride

TODAY = dt.date(2026, 11, 15)


@pytest.fixture
def fleet_in_use(session, registry):
    """S1-W: 170 km from 2 to 15 November (its front tyre new on the 5th); S1-NEW: 450 km
    on the 13th, its third day (too little history for a rate)."""
    load_example_bom(session)
    register_s1(session, registry.fleet_id, "S1-W", "2026-11-01T00:00:00+01:00")
    ride(session, "S1-W", "2026-11-02T09:00:00+01:00", km=100, trips=2, kwh=2)
    services.swap_component(
        session, SYSTEM, fitted(session, "S1-W", "tyre-front").id,
        {"reason": "worn", "at": at("2026-11-05T12:00:00+01:00")}, NOW,
    )  # fmt: skip
    ride(
        session, "S1-W", "2026-11-06T09:00:00+01:00", km=70, trips=2, kwh=2,
        counters=(1_100_000, 52_000),
    )  # fmt: skip
    register_s1(session, registry.fleet_id, "S1-NEW", "2026-11-12T00:00:00+01:00")
    ride(session, "S1-NEW", "2026-11-13T06:00:00+01:00", km=450, trips=3, kwh=6)
    meter(session)


def due(session, principal=SYSTEM, **filters):
    page = maintenance.due_list(session, principal, NOW, per_page=500, **filters)
    return [
        (
            item.part_wear.part.vehicle_id,
            item.part_wear.part.component_code,
            item.due_on,
            item.reason,
        )
        for item in page.items
    ]


def in_days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def test_the_due_list_is_ordered_by_date_within_the_horizon(session, fleet_in_use):
    # S1-W rides 170/14 km a day. Brake pads: 500 km service, 330 km left -> 27 days;
    # rear tyre: 1000 km service, 830 left -> 68 days; front tyre (new on the 5th): 930
    # left -> 76 days. S1-NEW's brake pads have 50 km to their service: urgent (100 km
    # margin) though its 3 days of history give no date, so listed today.
    assert due(session, horizon_days=30) == [
        ("S1-NEW", "brake-pads", TODAY, "service"),
        ("S1-W", "brake-pads", in_days(27), "service"),
    ]
    assert due(session, horizon_days=80) == [
        ("S1-NEW", "brake-pads", TODAY, "service"),
        ("S1-W", "brake-pads", in_days(27), "service"),
        ("S1-W", "tyre-rear", in_days(68), "service"),
        ("S1-W", "tyre-front", in_days(76), "service"),
    ]


def test_a_horizon_of_zero_keeps_only_what_needs_attention_now(session, fleet_in_use):
    assert due(session, horizon_days=0) == [("S1-NEW", "brake-pads", TODAY, "service")]


def test_the_due_list_filters_by_category_and_fleet(session, registry, fleet_in_use):
    assert [row[1] for row in due(session, horizon_days=80, category="wear")] == [
        "brake-pads", "brake-pads", "tyre-rear", "tyre-front",
    ]  # fmt: skip
    assert due(session, horizon_days=80, category="structure") == []
    assert due(session, horizon_days=80, fleet_id=registry.other_fleet_id) == []


def test_an_operator_of_another_fleet_sees_none_of_it(session, registry, fleet_in_use):
    other = Principal("k", "operator", fleet_ids=frozenset({registry.other_fleet_id}))
    assert due(session, other, horizon_days=80) == []
    with pytest.raises(NotFound):
        due(session, other, horizon_days=80, fleet_id=registry.fleet_id)


def test_a_worn_out_part_is_due_today_for_its_end_of_life(session, registry, fleet_in_use):
    register_s1(session, registry.fleet_id, "S1-OLD", "2026-10-20T00:00:00+02:00")
    counters = (1_000_000, 50_000)
    for day in range(21, 27):  # 450 km a day from 21 to 26 October: 2,700 km
        counters = ride(
            session, "S1-OLD", f"2026-10-{day}T06:00:00+02:00", km=450, trips=3, kwh=6,
            counters=counters,
        )  # fmt: skip
    meter(session)
    rows = [row for row in due(session, horizon_days=0) if row[0] == "S1-OLD"]
    assert ("S1-OLD", "brake-pads", TODAY, "end_of_life") in rows  # 2,700 km of 2,500


def test_the_due_list_over_http_names_the_part_and_its_wear(client, keys, fleet_in_use):
    response = client.get(
        "/api/v1/components/due?horizon_days=3660&category=wear", headers=auth(keys["operator"])
    )
    assert response.status_code == 200
    first = response.json["items"][0]
    assert first["component"]["vehicle_id"] == "S1-NEW"
    assert first["component"]["wear"]["history"] in ("sufficient", "insufficient")
    assert {u["unit"] for u in first["component"]["wear"]["units"]} == {"km"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("horizon_days=-1", "query.horizon_days"),
        ("horizon_days=99999999999999999999", "query.horizon_days"),
        ("category=Not%20A%20Code", "query.category"),
        ("per_page=100000", "query.per_page"),
    ],
)
def test_a_bad_due_list_query_names_the_parameter(client, keys, query, field):
    response = client.get(f"/api/v1/components/due?{query}", headers=auth(keys["admin"]))
    assert response.status_code == 422
    assert field in response.json["error"]["details"]
