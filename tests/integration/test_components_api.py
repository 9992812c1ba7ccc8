"""The components API and CLI: BOMs through the API with their field errors, the price of
use derived from a BOM (API and `billing plans derive`, loaded as any plan), parts fitted,
swapped, removed and serviced by hand, and hostile input on each of them."""

from pathlib import Path

import pytest
import yaml

from billing.components.services import DEFAULT_BOM_DIRECTORY
from tests.conftest import auth
from tests.integration.components import load_example_bom, register_s1

S1 = yaml.safe_load((DEFAULT_BOM_DIRECTORY / "s1.yaml").read_text(encoding="utf-8"))


def test_a_bom_posted_twice_is_one_version_and_reads_back(client, keys):
    first = client.post("/api/v1/bom", json=S1, headers=auth(keys["admin"]))
    assert first.status_code == 201, first.json
    assert (first.json["model"], first.json["version"], first.json["locked_at"]) == ("s1", 1, None)
    again = client.post("/api/v1/bom", json=S1, headers=auth(keys["admin"]))
    assert again.json["version"] == 1
    read = client.get("/api/v1/bom/s1", headers=auth(keys["finance"])).json
    battery = next(c for c in read["components"] if c["code"] == "battery")
    assert battery["unit_cost"] == "420.00" and battery["lifetime"] == {
        "cycles": "800",
        "months": "60",
    }


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            {
                "components": [
                    {
                        "code": "x",
                        "name": "X",
                        "category": "wear",
                        "unit_cost": "1",
                        "lifetime": {"km": "-1"},
                    }
                ]
            },
            "components.0.lifetime.km",
        ),
        ({"components": "all of them"}, "components"),
        ({"model": "a/b"}, "model"),
        ({"currency": 12}, "currency"),
        ({"unknown": True}, "unknown"),
    ],
)
def test_a_faulty_bom_is_refused_naming_the_field(client, keys, change, path):
    response = client.post("/api/v1/bom", json={**S1, **change}, headers=auth(keys["admin"]))
    assert response.status_code == 422
    assert path in response.json["error"]["details"], response.json


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'"s1"', b"{" * 40 + b"}" * 40],
)
def test_a_bom_body_that_is_not_an_object_is_a_4xx(client, keys, body):
    response = client.post(
        "/api/v1/bom", data=body, content_type="application/json", headers=auth(keys["admin"])
    )
    assert response.status_code in (400, 422), response.json
    assert response.json["error"]["details"]


def test_an_unknown_model_or_version_is_not_found(client, keys):
    assert client.get("/api/v1/bom/s9", headers=auth(keys["admin"])).status_code == 404
    client.post("/api/v1/bom", json=S1, headers=auth(keys["admin"]))
    assert client.get("/api/v1/bom/s1?version=7", headers=auth(keys["admin"])).status_code == 404
    assert client.get("/api/v1/bom/s1?version=0", headers=auth(keys["admin"])).status_code == 422


def test_derive_plan_over_http_gives_the_hand_computed_prices(client, keys):
    client.post("/api/v1/bom", json=S1, headers=auth(keys["admin"]))
    response = client.post(
        "/api/v1/bom/s1/derive-plan", json={"km_per_month": "300"}, headers=auth(keys["finance"])
    )
    assert response.status_code == 200, response.json
    prices = {
        c["metric"]: c.get("amount") or c["unit_amount"] for c in response.json["plan"]["charges"]
    }
    assert prices == {"vehicle_days": "12.64", "distance_km": "0.052511"}
    assert len(response.json["breakdown"]) == 12
    created = client.post("/api/v1/plans", json=response.json["plan"], headers=auth(keys["admin"]))
    assert created.status_code == 201, created.json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "km_per_month"),
        ({"km_per_month": "0"}, "km_per_month"),
        ({"km_per_month": "1e30"}, "km_per_month"),
        ({"km_per_month": "300", "margin": "1"}, "margin"),
        ({"km_per_month": "300", "code": "Not A Code"}, "code"),
        ({"km_per_month": "300", "name": "a\u202eb"}, "name"),
        ({"km_per_month": "300", "colour": "red"}, "colour"),
    ],
)
def test_derive_plan_options_out_of_range_are_named(client, keys, body, field):
    client.post("/api/v1/bom", json=S1, headers=auth(keys["admin"]))
    response = client.post("/api/v1/bom/s1/derive-plan", json=body, headers=auth(keys["admin"]))
    assert response.status_code == 422
    assert field in response.json["error"]["details"], response.json


def test_plans_derive_writes_a_plan_that_plans_load_accepts(cli, tmp_path: Path):
    assert cli("db", "upgrade").exit_code == 0
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    result = cli("plans", "derive", "--bom", str(DEFAULT_BOM_DIRECTORY / "s1.yaml"),
                 "--km-per-month", "300", "--margin", "0.25",
                 "--output", str(plans_dir / "s1-usage.yaml"))  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (plans_dir / "s1-usage.yaml").read_text(encoding="utf-8")
    assert "#   battery          months         per_month       7.000000" in text
    loaded = cli("plans", "load", str(plans_dir))
    assert loaded.output == "created: s1-usage version 1 (s1-usage.yaml)\n"


def test_plans_derive_names_a_faulty_option_or_bom(cli, tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: s1\ncurrency: EUR\ncomponents: [{code: x}]\n")
    result = cli("plans", "derive", "--bom", str(broken), "--km-per-month", "100")
    assert result.exit_code == 1
    assert "components.0.name: required" in result.output
    margin = cli("plans", "derive", "--bom", str(DEFAULT_BOM_DIRECTORY / "s1.yaml"),
                 "--km-per-month", "100", "--margin", "1.5")  # fmt: skip
    assert margin.exit_code == 1 and "margin: must be at least 0 and less than 1" in margin.output


@pytest.fixture
def s1_vehicle(session, registry):
    load_example_bom(session)
    register_s1(session, registry.fleet_id, "S1-H", "2026-11-01T00:00:00+01:00")
    return "S1-H"


def part_of(client, keys, vehicle_id, code):
    items = client.get(
        f"/api/v1/vehicles/{vehicle_id}/components", headers=auth(keys["operator"])
    ).json
    return next(item for item in items if item["component_code"] == code)


def test_an_operator_swaps_removes_refits_and_inspects_parts(client, keys, s1_vehicle):
    headers = auth(keys["operator"])
    tyre = part_of(client, keys, s1_vehicle, "tyre-front")
    swapped = client.post(
        f"/api/v1/components/{tyre['part_id']}/swap",
        json={"reason": "worn", "serial": "PNEU-0001"},
        headers=headers,
    )
    assert swapped.status_code == 201, swapped.json
    assert swapped.json["serial"] == "PNEU-0001"
    assert part_of(client, keys, s1_vehicle, "tyre-front")["serial"] == "PNEU-0001"
    old = client.get(f"/api/v1/components/{tyre['part_id']}", headers=headers).json
    assert old["status"] == "scrapped" and old["wear"] is None
    assert old["fittings"][0]["removal_reason"] == "worn"
    battery = part_of(client, keys, s1_vehicle, "battery")
    removed = client.post(
        f"/api/v1/components/{battery['part_id']}/removal",
        json={"reason": "damaged"},
        headers=headers,
    )
    assert removed.json["status"] == "spare"
    repair = client.post(
        f"/api/v1/components/{battery['part_id']}/events",
        json={"kind": "repair", "cost": "35.50", "notes": "cellule remplacée"},
        headers=headers,
    )
    assert repair.status_code == 201 and repair.json["cost"] == "35.50"
    refit = client.post(
        f"/api/v1/vehicles/{s1_vehicle}/components",
        json={"part_id": battery["part_id"]},
        headers=headers,
    )
    assert refit.status_code == 201 and refit.json["status"] == "fitted"
    inspected = client.post(
        f"/api/v1/components/{battery['part_id']}/events",
        json={"kind": "inspection"},
        headers=headers,
    )
    assert inspected.status_code == 201
    detail = client.get(f"/api/v1/components/{battery['part_id']}", headers=headers).json
    assert [e["kind"] for e in detail["events"]] == ["repair", "inspection"]
    assert len(detail["fittings"]) == 2
    assert detail["wear"]["wear"]["service"]["days_remaining"] == 182  # inspected today


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/vehicles/S1-H/components", {"component_code": "battery"}, 409, None),
        ("/vehicles/S1-H/components", {"component_code": "jetpack"}, 422, "component_code"),
        ("/vehicles/S1-H/components", {}, 422, "_schema"),
        ("/vehicles/S1-H/components", {"part_id": "cmp_nothing"}, 422, "part_id"),
        (
            "/vehicles/S1-H/components",
            {"component_code": "lights", "installed_at": "2999-01-01T00:00:00Z"},
            422,
            "installed_at",
        ),
        (
            "/vehicles/S1-H/components",
            {"component_code": "lights", "serial": "x" * 65},
            422,
            "serial",
        ),
        ("/components/{battery}/swap", {"reason": "bored"}, 422, "reason"),
        (
            "/components/{battery}/swap",
            {"reason": "worn", "replacement_id": "cmp_x"},
            422,
            "replacement_id",
        ),
        ("/components/{battery}/swap", {"reason": "worn", "at": "2020-01-01T00:00:00Z"}, 422, "at"),
        ("/components/{battery}/events", {"kind": "polish"}, 422, "kind"),
        ("/components/{battery}/events", {"kind": "repair", "cost": "-3"}, 422, "cost"),
        ("/components/{battery}/events", {"kind": "repair", "notes": "\x00"}, 422, "notes"),
        ("/components/cmp_unknown/events", {"kind": "repair"}, 404, None),
    ],
)
def test_hostile_part_requests_are_clear_4xx(client, keys, s1_vehicle, path, body, status, field):
    battery = part_of(client, keys, s1_vehicle, "battery")["part_id"]
    response = client.post(
        "/api/v1" + path.format(battery=battery), json=body, headers=auth(keys["operator"])
    )
    assert response.status_code == status, response.json
    if field is not None:
        assert field in response.json["error"]["details"], response.json


def test_a_spare_of_another_model_or_a_fitted_part_cannot_be_fitted(
    client, keys, session, s1_vehicle
):
    battery = part_of(client, keys, s1_vehicle, "battery")["part_id"]
    response = client.post(
        f"/api/v1/vehicles/{s1_vehicle}/components", json={"part_id": battery},
        headers=auth(keys["operator"]),
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"part_id": [f"component {battery} is fitted"]}


def test_components_due_on_the_command_line(cli):
    assert cli("db", "upgrade").exit_code == 0
    assert cli("bom", "load").exit_code == 0
    result = cli("components", "due", "--horizon-days", "3660")
    assert result.exit_code == 0
    assert result.output.endswith("0 part(s) due within 3660 days\n")
    bad = cli("components", "due", "--horizon-days", "-1")
    assert bad.exit_code == 2
