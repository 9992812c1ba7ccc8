"""Bills of materials: reading them from YAML, and every rule that rejects a bad one with
the path of the faulty field."""

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml

from billing.components.bom import BomInvalid, Lifetime, ServiceInterval, bom_to_dict, parse_bom

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "bom" / "s1.yaml"


def minimal(**component) -> dict:
    base = {
        "code": "tyre-front",
        "name": "Pneu avant",
        "category": "wear",
        "unit_cost": "30.00",
        "lifetime": {"km": 4000},
    }
    return {"model": "s1", "currency": "EUR", "components": [{**base, **component}]}


def errors_of(data) -> dict[str, list[str]]:
    with pytest.raises(BomInvalid) as raised:
        parse_bom(data)
    return raised.value.errors


def test_the_example_bom_reads_with_its_twelve_components_and_figures():
    bom = parse_bom(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    assert bom.model == "s1" and bom.currency == "EUR"
    assert len(bom.components) == 12
    battery = bom.component("battery")
    assert battery.unit_cost == D("420.00")
    assert battery.capacity_kwh == D("0.72")
    assert battery.lifetime == Lifetime(cycles=D(800), months=D(60))
    assert battery.refurbishable and battery.refurbish_cost == D("150.00")
    tyre = bom.component("tyre-front")
    assert tyre.lifetime.limits() == {"km": D(4000)}
    assert tyre.service == ServiceInterval(every_km=D(1000), urgent_within_km=D(200))
    assert bom.component("frame").lifetime.months == D(240)


def test_a_bom_written_out_reads_back_equal_through_json():
    bom = parse_bom(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    assert parse_bom(json.loads(json.dumps(bom_to_dict(bom)))) == bom


def test_floats_are_read_through_their_text():
    bom = parse_bom(minimal(unit_cost=0.1, lifetime={"km": 2500.5}))
    assert bom.components[0].unit_cost == D("0.1")
    assert bom.components[0].lifetime.km == D("2500.5")


@pytest.mark.parametrize(
    ("component", "path", "message"),
    [
        ({"unit_cost": "-1"}, "components.0.unit_cost", "must not be negative"),
        ({"unit_cost": "1.001"}, "components.0.unit_cost", "at most 2 decimal places"),
        ({"unit_cost": "NaN"}, "components.0.unit_cost", "finite number"),
        ({"unit_cost": True}, "components.0.unit_cost", "finite number"),
        ({"unit_cost": "1e13"}, "components.0.unit_cost", "less than"),
        ({"lifetime": {"km": 0}}, "components.0.lifetime.km", "greater than 0"),
        ({"lifetime": {}}, "components.0.lifetime", "at least one of km, kwh, cycles, months"),
        ({"lifetime": {"miles": 3}}, "components.0.lifetime.miles", "unknown field"),
        ({"lifetime": "4000 km"}, "components.0.lifetime", "must be an object"),
        ({"lifetime": {"cycles": 800}}, "components.0.capacity_kwh", "required when"),
        ({"repair_cost": "10.00"}, "components.0.repair_cost", "needs repairable: true"),
        ({"refurbish_cost": "5"}, "components.0.refurbish_cost", "needs refurbishable: true"),
        ({"repairable": "yes"}, "components.0.repairable", "must be true or false"),
        ({"code": "Tyre Front"}, "components.0.code", "must match"),
        ({"category": ""}, "components.0.category", "must not be blank"),
        ({"name": "a\u202eb"}, "components.0.name", "unprintable character U+202E"),
        ({"name": "x" * 201}, "components.0.name", "at most 200 characters"),
        ({"colour": "red"}, "components.0.colour", "unknown field"),
        ({"service": {}}, "components.0.service", "inspect_every_km or inspect_every_months"),
        (
            {"service": {"inspect_every_km": "-5"}},
            "components.0.service.inspect_every_km",
            "must not be negative",
        ),
        (
            {"service": {"inspect_every_km": 500, "urgent_within_km": "x"}},
            "components.0.service.urgent_within_km",
            "finite number",
        ),
    ],
)
def test_each_faulty_component_field_is_named_by_its_path(component, path, message):
    errors = errors_of(minimal(**component))
    assert path in errors, errors
    assert any(message in text for text in errors[path]), errors[path]


def test_the_document_fields_are_checked_and_every_error_is_reported_at_once():
    errors = errors_of({"model": "s 1", "currency": "XXX", "components": [], "extra": 1})
    assert set(errors) == {"model", "currency", "components", "extra"}
    assert "must have at least one component" in errors["components"]


def test_a_duplicate_component_code_names_the_first_one():
    data = minimal()
    data["components"].append(dict(data["components"][0]))
    assert errors_of(data) == {"components.1.code": ["duplicate of components.0"]}


@pytest.mark.parametrize("document", [None, [], "s1", 3])
def test_a_document_that_is_not_an_object_is_refused(document):
    assert errors_of(document) == {"_schema": ["must be an object"]}


def test_a_huge_list_of_components_is_refused_without_reading_each():
    data = minimal()
    data["components"] = data["components"] * 201
    assert errors_of(data) == {"components": ["must have at most 200 components"]}


def test_a_yen_cost_takes_no_decimals():
    data = minimal(unit_cost="30.5")
    data["currency"] = "JPY"
    assert "components.0.unit_cost" in errors_of(data)
