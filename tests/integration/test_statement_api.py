"""The usage statement API: a customer's closed month priced per vehicle, plan and charge,
checked to the cent by hand; its CSV form; who may read it."""

import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.auth import SYSTEM
from billing.devices import services as devices
from billing.devices.models import FleetMembership
from billing.pricing import assignments
from billing.registry import vehicle_changes
from tests.conftest import NOW, auth
from tests.rides import at, meter, ride

OCTOBER = "2026-10"  # closed by the real clock the views read: October has 31 days


@pytest.fixture
def october_customer(session, registry, example_plans):
    """Customer A in October 2026 (Europe/Paris), three vehicles:

    - VEH-A on urbain all month: 260 km in 12 trips, 15 kWh;
    - VEH-A2 on urbain for 10 days, then flotte-pro from the 11th: 120 km, 4 trips, 8 kWh
      on urbain, then 500 km on flotte-pro;
    - VEH-A3 on flotte-pro all month: 600 + 517 = 1117 km.
    """
    for vehicle_id in ("VEH-A2", "VEH-A3"):
        vehicle_changes.register_vehicle(
            session, SYSTEM,
            {"id": vehicle_id, "fleet_id": registry.fleet_id, "model": "s1", "serial": vehicle_id},
            NOW,
        )  # fmt: skip
    for membership in session.scalars(select(FleetMembership)):
        membership.started_at = at("2026-09-01T00:00:00+02:00")
    session.commit()
    month = at("2026-10-01T00:00:00+02:00")
    assignments.assign_plan(session, SYSTEM, "VEH-A", "urbain", month)
    assignments.assign_plan(session, SYSTEM, "VEH-A2", "urbain", month)
    assignments.assign_plan(
        session, SYSTEM, "VEH-A2", "flotte-pro", at("2026-10-11T00:00:00+02:00")
    )
    assignments.assign_plan(session, SYSTEM, "VEH-A3", "flotte-pro", month)
    ride(session, "VEH-A", "2026-10-03T07:00:00+02:00", km=260, trips=12, kwh=15)
    counters = ride(session, "VEH-A2", "2026-10-04T07:00:00+02:00", km=120, trips=4, kwh=8)
    ride(
        session, "VEH-A2", "2026-10-20T07:00:00+02:00", km=500, trips=10, kwh=30, counters=counters
    )
    counters = ride(session, "VEH-A3", "2026-10-05T06:00:00+02:00", km=600, trips=12, kwh=40)
    ride(
        session, "VEH-A3", "2026-10-21T06:00:00+02:00", km=517, trips=11, kwh=35, counters=counters
    )
    meter(session)
    return registry


def statement(client, customer_id, key, query=f"?period={OCTOBER}", **headers):
    return client.get(
        f"/api/v1/customers/{customer_id}/statement{query}", headers={**auth(key), **headers}
    )


def amounts(segment) -> dict[str, str]:
    return {line["metric"]: line["amount"] for line in segment["lines"]}


def test_a_closed_month_with_a_plan_change_and_a_pool_is_priced_to_the_cent(
    client, keys, october_customer
):
    body = statement(client, october_customer.customer_id, keys["customer"]).json
    assert (body["period"], body["status"], body["currency"]) == (OCTOBER, "closed", "EUR")
    # October in Paris: from midnight CEST on the 1st to midnight CET on 1 November.
    assert (body["start"], body["end"]) == (
        "2026-09-30T22:00:00+00:00",
        "2026-10-31T23:00:00+00:00",
    )
    assert body["projection"] is None
    vehicles = {vehicle["vehicle_id"]: vehicle for vehicle in body["vehicles"]}
    assert sorted(vehicles) == ["VEH-A", "VEH-A2", "VEH-A3"]

    [urbain] = vehicles["VEH-A"]["segments"]
    assert (urbain["plan_code"], urbain["plan_version"], urbain["vehicle_days"]) == (
        "urbain", 1, "31.000000",
    )  # fmt: skip
    # Flat 19.00 for the whole month. 260 km - 50 included = 210 billable: 100 in tier 1
    # at 0, 110 in tier 2 at 0.08 = 8.80, plus tier 2's flat 1.00 = 9.80. 12 trips at 0.10
    # = 1.20. 15 kWh: 2 started blocks of 10 at 2.50 = 5.00. Vehicle: 35.00.
    assert amounts(urbain) == {
        "vehicle_days": "19.00", "distance_km": "9.80", "trips": "1.20", "energy_kwh": "5.00",
    }  # fmt: skip
    distance = urbain["lines"][1]
    assert (distance["quantity"], distance["billable_quantity"], distance["unit_amount"]) == (
        "260.000", "210.000", None,
    )  # fmt: skip
    assert [(t["tier"], t["quantity"], t["amount"]) for t in distance["tiers"]] == [
        (1, "100", "0"), (2, "110.000", "9.80000"),
    ]  # fmt: skip
    assert vehicles["VEH-A"]["amount"] == "35.00"

    before, after = vehicles["VEH-A2"]["segments"]
    assert (before["plan_code"], before["start"], before["end"], before["vehicle_days"]) == (
        "urbain", "2026-09-30T22:00:00+00:00", "2026-10-10T22:00:00+00:00", "10.000000",
    )  # fmt: skip
    # Urbain for 10 of 31 days: 19.00 x 10 / 31 = 6.1290... -> 6.13. 120 km - 50 = 70, all
    # in the free tier 1: 0.00. 4 trips: 0.40. 8 kWh: one block, 2.50. Segment: 9.03.
    assert amounts(before) == {
        "vehicle_days": "6.13", "distance_km": "0.00", "trips": "0.40", "energy_kwh": "2.50",
    }  # fmt: skip
    assert before["usage"]["distance_km"] == "120.000"
    assert (after["plan_code"], after["start"], after["vehicle_days"]) == (
        "flotte-pro", "2026-10-10T22:00:00+00:00", "21.000000",
    )  # fmt: skip
    # Flotte-pro for 21 of 31 days: 29.00 x 21 / 31 = 19.6451... -> 19.65.
    # The pool: 500 (VEH-A2) + 1117 (VEH-A3) = 1617 km, 1000 included, 617 billable in tier
    # 1 at 0.060 = 37.02, split in proportion to the km: 3702 cents x 500 / 1617 = 1144.71
    # and x 1117 / 1617 = 2557.29; the cent left over goes to the larger remainder (VEH-A2):
    # 11.45 and 25.57.
    assert amounts(after) == {"vehicle_days": "19.65", "distance_km": "11.45"}
    pooled = after["lines"][1]
    assert (pooled["scope"], pooled["quantity"], pooled["pooled_quantity"]) == (
        "pooled", "500.000", "1617.000",
    )  # fmt: skip
    assert (pooled["pooled_billable_quantity"], pooled["pooled_amount"]) == ("617.000", "37.02")
    assert vehicles["VEH-A2"]["amount"] == "40.13"  # 9.03 + 19.65 + 11.45

    [pro] = vehicles["VEH-A3"]["segments"]
    assert amounts(pro) == {"vehicle_days": "29.00", "distance_km": "25.57"}
    [pool] = body["pools"]
    assert (pool["plan_code"], pool["metric"], pool["quantity"], pool["amount"]) == (
        "flotte-pro", "distance_km", "1617.000", "37.02",
    )  # fmt: skip
    assert [(s["vehicle_id"], s["quantity"], s["amount"]) for s in pool["shares"]] == [
        ("VEH-A2", "500.000", "11.45"), ("VEH-A3", "1117.000", "25.57"),
    ]  # fmt: skip

    # HT: 35.00 + 40.13 + 54.57 = 129.70; VAT 20 % = 25.94; TTC 155.64.
    assert body["totals"] == {
        "vat_breakdown": [{"category": "S", "rate": "20.00", "base": "129.70", "vat": "25.94"}],
        "net": "129.70", "vat": "25.94", "gross": "155.64",
    }  # fmt: skip
    assert body["vat_treatment"] == {"category": "S", "reverse_charge": False, "mention": None}
    # The latest reading: VEH-A3's 11th trip from 06:00 on the 21st (105 minutes a trip,
    # the last reading 75 minutes into it) ends at 00:45 on the 22nd, Paris time.
    assert body["freshness"] == {
        "latest_reading_at": "2026-10-21T22:45:00+00:00", "pending_since": None,
        "metering_pending": False,
    }  # fmt: skip


def test_a_business_elsewhere_in_the_eu_sees_the_reverse_charge_mention(
    client, keys, session, october_customer
):
    devices.update_customer(
        session, SYSTEM, october_customer.customer_id,
        {"vat_number": "DE123456789", "address": {"country": "DE", "city": "Berlin"}},
    )  # fmt: skip
    body = statement(client, october_customer.customer_id, keys["admin"]).json
    assert body["vat_treatment"] == {
        "category": "AE",
        "reverse_charge": True,
        "mention": "Autoliquidation (article 283-2 du CGI)",
    }
    assert body["totals"]["vat_breakdown"] == [
        {"category": "AE", "rate": "0", "base": "129.70", "vat": "0.00"}
    ]
    assert (body["totals"]["vat"], body["totals"]["gross"]) == ("0.00", "129.70")


def test_the_csv_has_a_row_per_vehicle_and_charge_and_the_same_totals_as_the_json(
    client, keys, october_customer
):
    customer_id = october_customer.customer_id
    body = statement(client, customer_id, keys["finance"]).json
    response = statement(client, customer_id, keys["finance"], Accept="text/csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="statement-{customer_id}-{OCTOBER}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    lines = [row for row in rows if row["row"] == "line"]
    # VEH-A: 4 urbain charges; VEH-A2: 4 urbain and 2 flotte-pro; VEH-A3: 2 flotte-pro.
    assert len(lines) == 12
    json_lines = [line for v in body["vehicles"] for s in v["segments"] for line in s["lines"]]
    assert [row["amount"] for row in lines] == [line["amount"] for line in json_lines]
    assert sum(Decimal(row["amount"]) for row in lines) == Decimal(body["totals"]["net"])
    totals = {row["row"]: row["amount"] for row in rows if row["row"] != "line"}
    assert totals == {
        "vat_base": body["totals"]["vat_breakdown"][0]["base"],
        "vat": body["totals"]["vat_breakdown"][0]["vat"],
        "total_net": body["totals"]["net"],
        "total_vat": body["totals"]["vat"],
        "total_gross": body["totals"]["gross"],
    }
    pooled = next(
        row for row in lines if row["vehicle_id"] == "VEH-A3" and row["scope"] == "pooled"
    )
    assert (pooled["quantity"], pooled["pooled_quantity"], pooled["amount"]) == (
        "1117.000", "1617.000", "25.57",
    )  # fmt: skip
    assert pooled["segment_start"] == "2026-09-30T22:00:00+00:00"
    same = statement(client, customer_id, keys["finance"], f"?period={OCTOBER}&format=csv")
    assert same.get_data() == response.get_data()


def test_format_json_wins_over_an_accept_header_asking_for_csv(client, keys, october_customer):
    response = statement(
        client, october_customer.customer_id, keys["admin"], f"?period={OCTOBER}&format=json",
        Accept="text/csv",
    )  # fmt: skip
    assert response.json["totals"]["net"] == "129.70"


def test_the_month_in_progress_is_the_default_and_carries_a_projection(
    client, keys, october_customer
):
    body = statement(client, october_customer.customer_id, keys["customer"], "").json
    assert body["status"] == "in_progress"
    assert body["projection"]["method"].startswith("Usage to date extrapolated by elapsed time")
    assert body["as_of"] == body["projection"]["as_of"]
    rows = list(
        csv.DictReader(
            io.StringIO(
                statement(
                    client, october_customer.customer_id, keys["customer"], "?format=csv"
                ).get_data(as_text=True)
            )
        )
    )
    projected = {row["row"]: row["amount"] for row in rows if row["row"].startswith("projected_")}
    assert projected["projected_total_gross"] == body["projection"]["totals"]["gross"]


def test_a_future_period_is_refused_naming_the_period(client, keys, registry):
    response = statement(client, registry.customer_id, keys["admin"], "?period=2099-01")
    assert response.status_code == 422
    assert list(response.json["error"]["details"]) == ["period"]
    malformed = statement(client, registry.customer_id, keys["admin"], "?period=2026-13")
    assert malformed.status_code == 422
    assert list(malformed.json["error"]["details"]) == ["query.period"]


@pytest.mark.parametrize(
    ("role", "own", "other"),
    [
        ("admin", 200, 200),
        ("finance", 200, 200),
        ("operator", 200, 404),  # operates customer A's fleet only
        ("customer", 200, 404),  # customer A's key
    ],
)
def test_each_role_reads_the_statements_its_scope_allows(client, keys, registry, role, own, other):
    assert statement(client, registry.customer_id, keys[role]).status_code == own
    response = statement(client, registry.other_customer_id, keys[role])
    assert response.status_code == other
    if other == 404:
        assert response.json["error"]["code"] == "not_found"
        csv_response = statement(
            client, registry.other_customer_id, keys[role], f"?period={OCTOBER}&format=csv"
        )
        assert csv_response.status_code == 404


def test_a_statement_needs_an_api_key(client, registry):
    response = client.get(f"/api/v1/customers/{registry.customer_id}/statement")
    assert response.status_code == 401
