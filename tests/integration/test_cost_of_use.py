"""The cost of use: the wear cost of each part in a month beside what was billed, per
vehicle, fleet and customer, in JSON, in the statement's optional section and as CSV."""

import csv
import io
import re
from decimal import Decimal as D

import pytest

from billing.auth import SYSTEM
from billing.components import costs, services
from billing.periods import Period
from billing.pricing import assignments
from tests.conftest import NOW, auth
from tests.integration.components import fitted, load_example_bom, register_s1
from tests.rides import at, meter, ride

OCTOBER = Period.parse("2026-10")


@pytest.fixture
def october(session, registry, example_plans):
    """S1-C on plan urbain all October: 100 km (2 trips, 2 kWh) on the 2nd, its front tyre
    swapped as worn on the 10th, 50 km (1 trip, 1 kWh) on the 20th."""
    load_example_bom(session)
    register_s1(session, registry.fleet_id, "S1-C", "2026-10-01T00:00:00+02:00")
    assignments.assign_plan(session, SYSTEM, "S1-C", "urbain", at("2026-10-01T00:00:00+02:00"))
    ride(session, "S1-C", "2026-10-02T09:00:00+02:00", km=100, trips=2, kwh=2)
    services.swap_component(
        session, SYSTEM, fitted(session, "S1-C", "tyre-front").id,
        {"reason": "worn", "at": at("2026-10-10T12:00:00+02:00")}, NOW,
    )  # fmt: skip
    ride(
        session, "S1-C", "2026-10-20T09:00:00+02:00", km=50, trips=1, kwh=1,
        counters=(1_100_000, 52_000),
    )  # fmt: skip
    meter(session)


# October: 150 km, 3 kWh (4.166667 cycles), 31 days = 1.018501 months (÷ 30.436875).
# Each part costs unit_cost × the largest share of a lifetime unit, rounded to the cent:
EXPECTED_WEAR = {
    "frame": D("0.76"),  # 180 × 1.018501 / 240 months
    "fork": D("0.55"),  # 65 × max(150 / 20000 km, 1.018501 / 120 months)
    "motor": D("1.13"),  # 150 × 150 / 20000 km = 1.125
    "controller": D("1.13"),  # 80 × 1.018501 / 72 months
    "battery": D("7.13"),  # 420 × max(4.166667 / 800 cycles, 1.018501 / 60 months)
    "charger-port": D("0.20"),  # 12 × 1.018501 / 60 months
    "tyre-rear": D("1.50"),  # 30 × 150 / 3000 km
    "brake-pads": D("0.90"),  # 15 × 150 / 2500 km
    "brake-disc": D("0.50"),  # 25 × 150 / 7500 km
    "lights": D("0.42"),  # 20 × 1.018501 / 48 months
    "deck-grips": D("0.51"),  # 18 × max(150 / 10000 km, 1.018501 / 36 months)
}
TYRES = [D("0.75"), D("0.38")]  # 30 × 100 / 4000 km (1–9 Oct), 30 × 50 / 4000 (10–31 Oct)
WEAR = D("15.86")
# urbain: 19.00 a month; 150 km less 50 included, all in the free first tier; 3 trips at
# 0.10; 3 kWh, one started package of 10 at 2.50.
BILLED = D("21.80")


def test_each_part_costs_its_share_of_life_used_in_the_month(session, october):
    result = costs.customer_cost_of_use(session, SYSTEM, october_customer(session), OCTOBER, NOW)
    [vehicle] = result.vehicles
    by_code = {}
    for component in vehicle.components:
        by_code.setdefault(component.component_code, []).append(component.wear_cost)
    assert by_code.pop("tyre-front") == TYRES
    assert {code: cost for code, [cost] in by_code.items()} == EXPECTED_WEAR
    assert vehicle.wear_cost == WEAR
    assert vehicle.billed == BILLED
    assert vehicle.margin == D("5.94")
    assert vehicle.margin_rate == D("0.2725")
    [fleet] = result.fleets
    assert (fleet.totals.wear_cost, fleet.totals.billed, fleet.totals.margin) == (
        WEAR, BILLED, D("5.94"),
    )  # fmt: skip
    assert result.totals.margin_rate == D("0.2725")


def october_customer(session) -> str:
    from billing.devices.models import Fleet, Vehicle

    return session.get(Fleet, session.get(Vehicle, "S1-C").fleet_id).customer_id


def test_the_vehicle_cost_of_use_over_http(client, keys, october):
    response = client.get(
        "/api/v1/vehicles/S1-C/cost-of-use?period=2026-10", headers=auth(keys["customer"])
    )
    assert response.status_code == 200, response.json
    assert response.json["wear_cost"] == "15.86"
    assert response.json["billed"] == "21.80"
    assert len(response.json["components"]) == 13


def test_the_statement_shows_the_cost_of_use_when_asked(client, keys, registry, october):
    url = f"/api/v1/customers/{registry.customer_id}/statement?period=2026-10"
    plain = client.get(url, headers=auth(keys["finance"])).json
    assert "cost_of_use" not in plain
    body = client.get(url + "&cost_of_use=true", headers=auth(keys["finance"])).json
    assert body["cost_of_use"]["totals"] == {
        "wear_cost": "15.86", "billed": "21.80", "margin": "5.94", "margin_rate": "0.2725",
    }  # fmt: skip
    operator = client.get(url + "&cost_of_use=true", headers=auth(keys["operator"])).json
    assert "cost_of_use" not in operator  # operators see no money


def test_the_cost_of_use_csv_has_a_row_per_part_vehicle_fleet_and_customer(
    client, keys, registry, october
):
    response = client.get(
        f"/api/v1/customers/{registry.customer_id}/cost-of-use?period=2026-10&format=csv",
        headers=auth(keys["customer"]),
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["row"] for r in rows].count("component") == 13
    vehicle = next(r for r in rows if r["row"] == "vehicle")
    assert (vehicle["wear_cost"], vehicle["billed"], vehicle["margin"]) == (
        "15.86",
        "21.80",
        "5.94",
    )
    assert rows[-1]["row"] == "customer" and rows[-1]["margin_rate"] == "0.2725"
    export = client.get(
        "/api/v1/exports/cost-of-use.csv?period=2026-10", headers=auth(keys["finance"])
    )
    assert export.status_code == 200
    customers = [
        r
        for r in csv.DictReader(io.StringIO(export.get_data(as_text=True)))
        if r["row"] == "customer"
    ]
    assert len(customers) == 2  # both customers of the registry, the other with nothing


def test_a_vehicle_without_parts_has_no_wear_cost(session, registry, october):
    result = costs.vehicle_cost_of_use(session, SYSTEM, registry.vehicle_id, OCTOBER, NOW)
    assert result.wear_cost is None and result.margin is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=2099-01", "period"),
        ("period=2026-13", "query.period"),
        ("format=pdf", "query.format"),
    ],
)
def test_a_bad_period_or_format_is_named(client, keys, registry, query, field):
    response = client.get(
        f"/api/v1/customers/{registry.customer_id}/cost-of-use?{query}", headers=auth(keys["admin"])
    )
    assert response.status_code == 422
    assert field in response.json["error"]["details"]


def test_another_customers_cost_of_use_is_not_found(client, keys, registry):
    for path in (
        f"/api/v1/customers/{registry.other_customer_id}/cost-of-use",
        f"/api/v1/vehicles/{registry.other_vehicle_id}/cost-of-use",
    ):
        response = client.get(path, headers=auth(keys["customer"]))
        assert response.status_code == 404


def test_the_portal_vehicle_page_shows_the_cost_of_use_of_the_month(
    app, session, registry, october
):
    from billing.portal.formatting import money
    from billing.users import services as users
    from tests.portal import fix_clock, signed_in_client

    end_of_october = at("2026-10-31T20:00:00+01:00")
    fix_clock(app, end_of_october)
    user = users.add_user(
        session, "c@lp.example", "customer", end_of_october, customer_id=registry.customer_id
    )
    client = signed_in_client(app, session, user, end_of_october)
    response = client.get(f"/accounts/{registry.customer_id}/vehicles/S1-C")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[-500:]
    wear = re.search(r'id="wear-cost">([^<]*)<', page).group(1)
    assert wear == money(WEAR, "EUR", "fr")  # the whole of October: 15.86
    assert page.count("<tr><td>") == 13  # a row per part, both front tyres
