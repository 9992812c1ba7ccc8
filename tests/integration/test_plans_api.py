"""The plans API: create, read, list, edit and archive plans, with errors naming each faulty
field path, and previews priced to the cent."""

import copy

import pytest
import yaml

from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from tests.conftest import auth


def example(code: str) -> dict:
    return yaml.safe_load((DEFAULT_PLANS_DIRECTORY / f"{code}.yaml").read_text(encoding="utf-8"))


SIMPLE = {
    "code": "simple",
    "name": "Simple",
    "currency": "EUR",
    "vat_rate": "20.00",
    "charges": [
        {"metric": "vehicle_days", "model": "flat", "amount": "10.00"},
        {"metric": "distance_km", "model": "per_unit", "unit_amount": "0.1"},
    ],
}


def create(client, key, body):
    response = client.post("/api/v1/plans", json=body, headers=auth(key))
    assert response.status_code == 201, response.json
    return response.json


def test_creating_a_plan_returns_version_1_with_amounts_as_decimal_strings(client, keys):
    body = create(client, keys["admin"], example("urbain"))
    assert (body["code"], body["version"], body["status"]) == ("urbain", 1, "active")
    assert body["locked_at"] is None and body["archived_at"] is None
    assert body["vat_rate"] == "20.00"
    distance = body["charges"][1]
    assert distance["included"] == "50"
    assert distance["tiers"][1] == {"up_to": "500", "unit_amount": "0.08", "flat_amount": "1.00"}
    assert distance["tiers"][2]["up_to"] is None
    fetched = client.get("/api/v1/plans/urbain", headers=auth(keys["customer"]))
    assert fetched.json == body


def test_numbers_sent_as_json_numbers_are_read_exactly(client, keys):
    body = copy.deepcopy(SIMPLE)
    body["charges"][1]["unit_amount"] = 0.1
    created = create(client, keys["admin"], body)
    assert created["charges"][1]["unit_amount"] == "0.1"


def test_a_plan_code_can_be_created_only_once(client, keys):
    create(client, keys["admin"], SIMPLE)
    again = client.post("/api/v1/plans", json=SIMPLE, headers=auth(keys["admin"]))
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"


def test_every_role_lists_the_plans_page_by_page(client, keys, example_plans):
    first = client.get("/api/v1/plans?per_page=2", headers=auth(keys["customer"])).json
    second = client.get("/api/v1/plans?per_page=2&page=2", headers=auth(keys["operator"])).json
    assert first["total"] == 3
    codes = [plan["code"] for page in (first, second) for plan in page["items"]]
    assert codes == ["flotte-pro", "liberte", "urbain"]


def test_listing_by_status_separates_archived_plans(client, keys, example_plans):
    headers = auth(keys["admin"])
    client.delete("/api/v1/plans/liberte", headers=headers)
    active = client.get("/api/v1/plans?status=active", headers=headers).json
    archived = client.get("/api/v1/plans?status=archived", headers=headers).json
    assert [p["code"] for p in active["items"]] == ["flotte-pro", "urbain"]
    assert [(p["code"], p["status"]) for p in archived["items"]] == [("liberte", "archived")]


def test_an_unknown_plan_is_not_found(client, keys):
    response = client.get("/api/v1/plans/nope", headers=auth(keys["admin"]))
    assert response.status_code == 404
    assert response.json["error"]["message"] == "plan nope not found"
    missing_version = client.get("/api/v1/plans/nope?version=2", headers=auth(keys["admin"]))
    assert missing_version.status_code == 404


def test_archiving_a_plan_keeps_it_readable_and_refuses_edits(client, keys, example_plans):
    headers = auth(keys["admin"])
    archived = client.delete("/api/v1/plans/liberte", headers=headers)
    assert (archived.status_code, archived.json["status"]) == (200, "archived")
    assert client.delete("/api/v1/plans/liberte", headers=headers).status_code == 200
    assert client.get("/api/v1/plans/liberte", headers=headers).json["status"] == "archived"
    edited = {**example("liberte"), "name": "Liberté 2"}
    assert client.put("/api/v1/plans/liberte", json=edited, headers=headers).status_code == 409


def test_an_archived_plan_cannot_be_assigned(client, keys, registry, example_plans):
    headers = auth(keys["admin"])
    client.delete("/api/v1/plans/liberte", headers=headers)
    response = client.post(
        f"/api/v1/vehicles/{registry.vehicle_id}/plan",
        json={"plan_code": "liberte", "effective_at": "2026-11-01T00:00:00+01:00"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"plan_code": ["plan liberte is archived"]}


def test_assigning_an_unknown_plan_names_plan_code(client, keys, registry):
    response = client.post(
        f"/api/v1/vehicles/{registry.vehicle_id}/plan",
        json={"plan_code": "nope", "effective_at": "2026-11-01T00:00:00+01:00"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"plan_code": ["plan nope not found"]}


def invalid(**changes) -> dict:
    body = copy.deepcopy(example("urbain"))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return body


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (invalid(charges__1__metric="kilometres"), "charges.1.metric", "unknown metric"),
        (invalid(charges__1__tiers__2__up_to="400"), "charges.1.tiers.2.up_to", "must be null"),
        (
            invalid(charges__1__tiers__1__up_to="80"),
            "charges.1.tiers.1.up_to",
            "must be greater than the previous tier's up_to (100)",
        ),
        (invalid(charges__2__unit_amount="-0.10"), "charges.2.unit_amount", "must not be negative"),
        (invalid(currency="ZZZ"), "currency", "unknown currency 'ZZZ'"),
        (invalid(charges__3__colour="red"), "charges.3.colour", "unknown field"),
        (invalid(colour="red"), "colour", "unknown field"),
        (invalid(charges__2__tiers=[]), "charges.2.tiers", "not allowed for model per_unit"),
        (invalid(vat_rate="20.005"), "vat_rate", "at most 2 decimal places"),
        (invalid(charges="all"), "charges", "must be a list"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_an_invalid_plan_is_refused_with_the_path_of_the_faulty_field(
    client, keys, body, path, message
):
    response = client.post("/api/v1/plans", json=body, headers=auth(keys["admin"]))
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == [path]
    assert message in error["details"][path][0]


def test_every_error_of_a_plan_is_reported_at_once(client, keys):
    body = invalid(currency="ZZZ", charges__1__tiers__2__up_to="400", charges__3__model="bulk")
    response = client.post("/api/v1/plans", json=body, headers=auth(keys["admin"]))
    assert sorted(response.json["error"]["details"]) == [
        "charges.1.tiers.2.up_to",
        "charges.3.model",
        "currency",
    ]


def test_a_plan_body_must_be_an_object(client, keys):
    response = client.post("/api/v1/plans", json=[SIMPLE], headers=auth(keys["admin"]))
    assert response.status_code == 422


def test_the_code_in_the_body_must_be_the_code_in_the_url(client, keys, example_plans):
    response = client.put(
        "/api/v1/plans/urbain",
        json={**example("urbain"), "code": "autre"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"code": ["must be 'urbain', the plan edited"]}


def test_an_edit_may_leave_the_code_out(client, keys, example_plans):
    body = {key: value for key, value in example("urbain").items() if key != "code"}
    body["name"] = "Urbain — nouveau nom"
    response = client.put("/api/v1/plans/urbain", json=body, headers=auth(keys["admin"]))
    assert response.status_code == 200, response.json
    assert (response.json["code"], response.json["name"]) == ("urbain", "Urbain — nouveau nom")


def test_the_currency_of_a_plan_never_changes(client, keys, example_plans):
    response = client.put(
        "/api/v1/plans/urbain",
        json={**example("urbain"), "currency": "CHF"},
        headers=auth(keys["admin"]),
    )
    assert response.status_code == 422
    assert list(response.json["error"]["details"]) == ["currency"]


# --- preview -----------------------------------------------------------------------------


def preview(client, key, code, body):
    response = client.post(f"/api/v1/plans/{code}/preview", json=body, headers=auth(key))
    assert response.status_code == 200, response.json
    return response.json


def amounts(body) -> list[str]:
    return [line["amount"] for line in body["lines"]]


def test_preview_of_urbain_prices_each_charge_to_the_cent(client, keys, example_plans):
    body = preview(
        client,
        keys["customer"],
        "urbain",
        {"usage": {"distance_km": "612.5", "trips": "40", "energy_kwh": 23}, "period": "2026-11"},
    )
    # Subscription: 19.00 for the whole of November (30 days of 30).
    # Kilometres: 612.5 - 50 included = 562.5 billable, graduated:
    #   tier 1, 0 to 100 at 0: 0.00; tier 2, 100 to 500: 400 x 0.08 + 1.00 flat = 33.00;
    #   tier 3, above 500: 62.5 x 0.05 = 3.125; 36.125 rounds half-up to 36.13.
    # Trips: 40 x 0.10 = 4.00 (under the 30.00 cap).
    # Energy: 23 kWh is 3 started blocks of 10 x 2.50 = 7.50.
    # Subtotal 66.63; VAT 20 % = 13.326 -> 13.33; total 79.96.
    assert amounts(body) == ["19.00", "36.13", "4.00", "7.50"]
    assert (body["subtotal"], body["vat"], body["total"]) == ("66.63", "13.33", "79.96")
    assert (body["currency"], body["vat_rate"], body["days"], body["days_in_period"]) == (
        "EUR",
        "20.00",
        "30",
        30,
    )
    distance = body["lines"][1]
    assert (distance["quantity"], distance["billable_quantity"]) == ("612.5", "562.5")
    assert [(t["tier"], t["quantity"], t["amount"]) for t in distance["tiers"]] == [
        (1, "100", "0"),
        (2, "400", "33.00"),
        (3, "62.5", "3.125"),
    ]
    assert distance["name"] == "Kilomètres"


def test_preview_of_liberte_caps_kilometres_prorated_for_half_a_month(client, keys, example_plans):
    body = preview(
        client, keys["finance"], "liberte", {"usage": {"distance_km": "300"}, "days": "15"}
    )
    # 15 days of the default 30: insurance 6.90 x 15/30 = 3.45.
    # Kilometres: 300 x 0.15 = 45.00, above the cap of 79.00 x 15/30 = 39.50: 39.50.
    # Subtotal 42.95; VAT 20 % = 8.59; total 51.54.
    assert amounts(body) == ["3.45", "39.50"]
    assert body["lines"][1]["maximum_applied"] is True
    assert (body["subtotal"], body["vat"], body["total"]) == ("42.95", "8.59", "51.54")


def test_preview_of_flotte_pro_prices_a_pool_of_one_vehicle(client, keys, example_plans):
    body = preview(
        client,
        keys["operator"],
        "flotte-pro",
        {"usage": {"distance_km": 12000}, "days": 10, "period": "2026-02"},
    )
    # February 2026 has 28 days; 10 of them: subscription 29.00 x 10/28 = 10.357… -> 10.36.
    # Kilometres, pooled: 12000 - 1000 included = 11000, graduated:
    #   10000 x 0.060 = 600.00, then 1000 x 0.045 = 45.00; 645.00.
    # Subtotal 655.36; VAT 20 % = 131.072 -> 131.07; total 786.43.
    assert amounts(body) == ["10.36", "645.00"]
    pooled = body["lines"][1]
    assert (pooled["scope"], pooled["pooled_quantity"], pooled["pooled_billable_quantity"]) == (
        "pooled",
        "12000",
        "11000",
    )
    assert pooled["pooled_amount"] == "645.00"
    assert (body["subtotal"], body["vat"], body["total"]) == ("655.36", "131.07", "786.43")
    assert body["days_in_period"] == 28


def test_preview_without_usage_gives_the_fixed_fees(client, keys, example_plans):
    body = preview(client, keys["customer"], "urbain", {})
    # Subscription 19.00; 0 km is in tier 1 (0 each, no flat amount); the rest is 0.
    assert amounts(body) == ["19.00", "0.00", "0.00", "0.00"]
    assert body["total"] == "22.80"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"usage": {"kilometres": "10"}}, "usage.kilometres.key"),
        ({"usage": {"vehicle_days": "10"}}, "usage.vehicle_days.key"),
        ({"usage": {"distance_km": "-1"}}, "usage.distance_km.value"),
        ({"days": "31"}, "days"),
        ({"days": "-1"}, "days"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-02", "days_in_period": 30}, "days_in_period"),
        ({"usage": {}, "colour": "red"}, "colour"),
    ],
)
def test_a_faulty_preview_request_names_the_field(client, keys, example_plans, body, path):
    response = client.post("/api/v1/plans/urbain/preview", json=body, headers=auth(keys["admin"]))
    assert response.status_code == 422
    assert list(response.json["error"]["details"]) == [path]


def test_the_plans_api_is_described_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/api/v1/plans/{code}"]) >= {"get", "put", "delete"}
    assert "post" in paths["/api/v1/plans/{code}/preview"]
