"""Plans: reading them from YAML and JSON data, and every rule that rejects a bad one."""

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import yaml

from billing.pricing.plans import Charge, Plan, PlanInvalid, Tier, parse_plan, plan_to_dict
from billing.pricing.rating import VehicleUsage, preview_plan, rate_vehicles

PLANS_DIR = Path(__file__).resolve().parents[3] / "config" / "plans"

DOCUMENTED_EXAMPLE = """
code: urbain
name: Urbain — usage
currency: EUR
vat_rate: "20.00"
charges:
  - metric: vehicle_days
    model: flat
    amount: "19.00"
  - metric: distance_km
    model: graduated
    included: "50"
    tiers:
      - {up_to: "100", unit_amount: "0"}
      - {up_to: "500", unit_amount: "0.08", flat_amount: "1.00"}
      - {up_to: null,  unit_amount: "0.05"}
  - metric: trips
    model: per_unit
    unit_amount: "0.10"
    maximum: "30.00"
  - metric: energy_kwh
    model: package
    package_size: "10"
    package_amount: "2.50"
"""

PER_KM = {"metric": "distance_km", "model": "per_unit", "unit_amount": "0.15"}
TIERED_KM = {
    "metric": "distance_km",
    "model": "graduated",
    "tiers": [{"up_to": "100", "unit_amount": "0.10"}, {"up_to": None, "unit_amount": "0.05"}],
}
FLAT = {"metric": "vehicle_days", "model": "flat", "amount": "9"}
PACKAGE = {"metric": "energy_kwh", "model": "package", "package_size": "10", "package_amount": "1"}


def plan_data(*charges: dict, **fields: Any) -> dict[str, Any]:
    data = {"code": "urbain", "name": "Urbain", "currency": "EUR", "vat_rate": "20.00"}
    return {**data, "charges": list(charges) or [PER_KM], **fields}


def errors_of(data: Any) -> dict[str, list[str]]:
    with pytest.raises(PlanInvalid) as raised:
        parse_plan(data)
    return raised.value.errors


def tier(up_to: str | None, unit_amount: str = "1", **extra: Any) -> dict[str, Any]:
    return {"up_to": up_to, "unit_amount": unit_amount, **extra}


def test_the_design_example_reads_as_a_plan_of_decimals() -> None:
    plan = parse_plan(yaml.safe_load(DOCUMENTED_EXAMPLE))
    assert plan == Plan(
        code="urbain",
        name="Urbain — usage",
        currency="EUR",
        vat_rate=D("20.00"),
        charges=(
            Charge("vehicle_days", "flat", amount=D("19.00")),
            Charge(
                "distance_km",
                "graduated",
                included=D(50),
                tiers=(
                    Tier(D(100), D(0)),
                    Tier(D(500), D("0.08"), D("1.00")),
                    Tier(None, D("0.05")),
                ),
            ),
            Charge("trips", "per_unit", unit_amount=D("0.10"), maximum=D("30.00")),
            Charge("energy_kwh", "package", package_size=D(10), package_amount=D("2.50")),
        ),
    )


def test_yaml_floats_and_ints_read_as_the_decimals_they_show() -> None:
    plan = parse_plan(
        yaml.safe_load("""
        code: x
        name: X
        currency: EUR
        vat_rate: 20
        charges: [{metric: trips, model: per_unit, unit_amount: 0.1, minimum: 3}]
    """)
    )
    [charge] = plan.charges
    assert (plan.vat_rate, charge.unit_amount, charge.minimum) == (D(20), D("0.1"), D(3))
    assert str(charge.unit_amount) == "0.1"  # not 0.1000000000000000055511151231257827…


def test_null_optional_fields_count_as_absent() -> None:
    charge = {**PER_KM, "minimum": None, "name": None, "scope": None, "tiers": None}
    [parsed] = parse_plan(plan_data(charge, description=None)).charges
    assert parsed == Charge("distance_km", "per_unit", unit_amount=D("0.15"))


@pytest.mark.parametrize("path", sorted(PLANS_DIR.glob("*.yaml")), ids=lambda path: path.stem)
def test_example_plans_in_config_are_valid(path: Path) -> None:
    plan = parse_plan(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert plan.code == path.stem
    assert plan.currency == "EUR" and plan.vat_rate == D("20.00")


def test_the_three_example_plans_are_in_config() -> None:
    assert {path.stem for path in PLANS_DIR.glob("*.yaml")} >= {"liberte", "urbain", "flotte-pro"}


def example_plan(code: str) -> Plan:
    return parse_plan(yaml.safe_load((PLANS_DIR / f"{code}.yaml").read_text(encoding="utf-8")))


def test_liberte_caps_a_busy_month_of_kilometres() -> None:
    preview = preview_plan(example_plan("liberte"), {"distance_km": D(600)}, D(30), 30)
    # 6.90 + 600 km x 0.15 = 90.00, capped at 79.00
    assert [line.amount for line in preview.lines] == [D("6.90"), D("79.00")]
    assert preview.total == D("103.08")


def test_flotte_pro_prices_the_fleets_kilometres_together() -> None:
    fleet = [VehicleUsage(f"MOB-{n}", {"distance_km": D(800 + 100 * n)}, D(31)) for n in range(10)]
    lines = rate_vehicles(example_plan("flotte-pro"), fleet, 31)
    # 12,500 km - 1,000 included: 10,000 x 0.060 + 1,500 x 0.045 = 667.50 for the fleet
    assert {line.pooled_amount for line in lines if line.metric == "distance_km"} == {D("667.50")}
    assert sum(line.amount for line in lines) == D("957.50")  # + 10 x 29.00


def test_plan_to_dict_is_json_ready_and_reads_back_to_the_same_plan() -> None:
    plan = parse_plan(yaml.safe_load(DOCUMENTED_EXAMPLE))
    data = json.loads(json.dumps(plan_to_dict(plan)))
    assert parse_plan(data) == plan
    assert data["charges"][1]["tiers"][2] == {
        "up_to": None,
        "unit_amount": "0.05",
        "flat_amount": "0",
    }
    assert data["charges"][0] == {
        "metric": "vehicle_days",
        "model": "flat",
        "scope": "vehicle",
        "amount": "19.00",
    }


def test_plan_to_dict_never_writes_exponents() -> None:
    plan = parse_plan(plan_data({**PER_KM, "unit_amount": "1E-6", "maximum": "1E+3"}))
    charge = plan_to_dict(plan)["charges"][0]
    assert (charge["unit_amount"], charge["maximum"]) == ("0.000001", "1000")


# (what is wrong, plan fields, field path, message)
PLAN_RULES = [
    ("bad code", {"code": "Urbain 2"}, "code", "must match [a-z0-9-]{1,40}"),
    ("code too long", {"code": "a" * 41}, "code", "must match [a-z0-9-]{1,40}"),
    ("no code", {"code": None}, "code", "required"),
    ("blank name", {"name": "  "}, "name", "must not be blank"),
    ("name not text", {"name": 12}, "name", "must be a string"),
    ("NUL in name", {"name": "Urbain\x00"}, "name", "control character U+0000"),
    ("bidi override in name", {"name": "Urbain \u202e"}, "name", "bidirectional control U+202E"),
    ("escape in description", {"description": "a\x1b[31m"}, "description", "U+001B"),
    ("unknown currency", {"currency": "XBT"}, "currency", "unknown currency 'XBT'"),
    ("vat rate 100", {"vat_rate": "100"}, "vat_rate", "must be less than 100"),
    ("negative vat rate", {"vat_rate": "-5.5"}, "vat_rate", "must not be negative"),
    ("vat rate 3 decimals", {"vat_rate": "5.555"}, "vat_rate", "at most 2 decimal places"),
    ("vat rate not a number", {"vat_rate": "vingt"}, "vat_rate", "must be a finite number"),
    ("unknown plan key", {"colour": "red"}, "colour", "unknown field"),
    ("no charges", {"charges": []}, "charges", "must have at least one charge"),
    ("charges not a list", {"charges": {"a": 1}}, "charges", "must be a list"),
    ("charge not an object", {"charges": ["flat"]}, "charges.0", "must be an object"),
]

# (what is wrong, the plan's only charge, field path under charges.0, message)
CHARGE_RULES = [
    ("blank charge name", {**PER_KM, "name": " "}, "name", "must not be blank"),
    ("tab in charge name", {**PER_KM, "name": "km\tprix"}, "name", "control character U+0009"),
    ("unknown metric", {**PER_KM, "metric": "miles"}, "metric", "unknown metric 'miles'"),
    ("unknown model", {**PER_KM, "model": "tiered"}, "model", "unknown model 'tiered'"),
    ("unknown scope", {**PER_KM, "scope": "fleet"}, "scope", "unknown scope 'fleet'"),
    ("no metric", {"model": "per_unit", "unit_amount": "1"}, "metric", "required"),
    ("no model", {"metric": "trips", "unit_amount": "1"}, "model", "required"),
    ("unknown charge key", {**PER_KM, "price": "1"}, "price", "unknown field"),
    (
        "flat on km",
        {**FLAT, "metric": "distance_km"},
        "metric",
        "must be vehicle_days for model flat",
    ),
    ("flat pooled", {**FLAT, "scope": "pooled"}, "scope", "must be vehicle for model flat"),
    ("flat without amount", {**FLAT, "amount": None}, "amount", "required for model flat"),
    ("flat with included", {**FLAT, "included": "2"}, "included", "not allowed for model flat"),
    ("flat with maximum", {**FLAT, "maximum": "2"}, "maximum", "not allowed for model flat"),
    (
        "per_unit without price",
        {**PER_KM, "unit_amount": None},
        "unit_amount",
        "required for model per_unit",
    ),
    (
        "tiers on per_unit",
        {**PER_KM, **TIERED_KM, "model": "per_unit"},
        "tiers",
        "not allowed for model per_unit",
    ),
    (
        "amount on volume",
        {**TIERED_KM, "model": "volume", "amount": "1"},
        "amount",
        "not allowed for model volume",
    ),
    (
        "graduated without tiers",
        {**TIERED_KM, "tiers": None},
        "tiers",
        "required for model graduated",
    ),
    (
        "package without amount",
        {**PACKAGE, "package_amount": None},
        "package_amount",
        "required for model package",
    ),
    ("package size 0", {**PACKAGE, "package_size": "0"}, "package_size", "must be greater than 0"),
    ("negative price", {**PER_KM, "unit_amount": "-0.15"}, "unit_amount", "must not be negative"),
    (
        "7 decimals",
        {**PER_KM, "unit_amount": "0.1234567"},
        "unit_amount",
        "must have at most 6 decimal places",
    ),
    ("huge amount", {**PER_KM, "maximum": "1E+12"}, "maximum", "must be less than 1000000000000"),
    ("NaN", {**PER_KM, "unit_amount": "NaN"}, "unit_amount", "must be a finite number"),
    ("boolean", {**PER_KM, "unit_amount": True}, "unit_amount", "must be a finite number"),
    ("negative included", {**PER_KM, "included": "-1"}, "included", "must not be negative"),
    (
        "minimum above maximum",
        {**PER_KM, "minimum": "20", "maximum": "10.00"},
        "minimum",
        "must not be greater than maximum (10.00)",
    ),
]

# (what is wrong, the tiers of a graduated charge, field path under charges.0.tiers, message)
TIER_RULES = [
    ("no tiers", [], "", "must have at least one tier"),
    ("tiers not a list", "100", "", "must be a list"),
    ("tier not an object", ["0.1"], ".0", "must be an object"),
    ("tier without price", [{"up_to": None}], ".0.unit_amount", "required"),
    ("unknown tier key", [tier(None, price="1")], ".0.price", "unknown field"),
    ("equal bounds", [tier("100"), tier("100"), tier(None)], ".1.up_to",
     "must be greater than the previous tier's up_to (100)"),
    ("decreasing bounds", [tier("100"), tier("50"), tier(None)], ".1.up_to",
     "must be greater than the previous tier's up_to (100)"),
    ("first bound 0", [tier("0"), tier(None)], ".0.up_to", "must be greater than 0"),
    ("last tier bounded", [tier("100"), tier("200")], ".1.up_to",
     "must be null on the last tier (no upper bound)"),
    ("middle tier unbounded", [tier(None), tier(None)], ".0.up_to",
     "must be set on every tier but the last"),
    ("infinite bound", [tier("inf")], ".0.up_to", "must be a finite number"),
    ("negative tier price", [tier(None, "-0.01")], ".0.unit_amount", "must not be negative"),
    ("negative tier flat amount", [tier(None, flat_amount="-1")], ".0.flat_amount",
     "must not be negative"),
    ("tier price with 7 decimals", [tier(None, "0.0000001")], ".0.unit_amount",
     "must have at most 6 decimal places"),
]  # fmt: skip


def params(rules: list[tuple]) -> list[Any]:
    return [pytest.param(*rule[1:], id=rule[0]) for rule in rules]


@pytest.mark.parametrize(("fields", "path", "message"), params(PLAN_RULES))
def test_a_broken_plan_rule_is_reported_at_its_field(fields: dict, path: str, message: str) -> None:
    assert_reported(plan_data(**fields), path, message)


@pytest.mark.parametrize(("charge", "path", "message"), params(CHARGE_RULES))
def test_a_broken_charge_rule_is_reported_at_its_field(
    charge: dict, path: str, message: str
) -> None:
    assert_reported(plan_data(charge), f"charges.0.{path}", message)


@pytest.mark.parametrize(("tiers", "path", "message"), params(TIER_RULES))
def test_a_broken_tier_rule_is_reported_at_its_field(tiers: Any, path: str, message: str) -> None:
    assert_reported(plan_data({**TIERED_KM, "tiers": tiers}), f"charges.0.tiers{path}", message)


def assert_reported(data: dict, path: str, message: str) -> None:
    errors = errors_of(data)
    assert path in errors, errors
    assert any(message in text for text in errors[path]), errors[path]


def test_all_errors_are_reported_together() -> None:
    data = plan_data(
        {"metric": "distance_km", "model": "flat", "amount": "-1"},
        {**TIERED_KM, "scope": "fleet"},
        code="Nope",
    )
    assert errors_of(data) == {
        "code": ["must match [a-z0-9-]{1,40}"],
        "charges.0.metric": ["must be vehicle_days for model flat"],
        "charges.0.amount": ["must not be negative"],
        "charges.1.scope": ["unknown scope 'fleet'; known: vehicle, pooled"],
    }


def test_unknown_field_message_lists_the_known_ones() -> None:
    [message] = errors_of(plan_data(vat="20"))["vat"]
    assert message == "unknown field (known: charges, code, currency, description, name, vat_rate)"


def test_a_document_that_is_not_an_object_is_refused() -> None:
    assert errors_of(["urbain"]) == {"_schema": ["must be an object"]}


def test_plan_invalid_message_summarises_the_errors() -> None:
    with pytest.raises(PlanInvalid, match=r"invalid plan: vat_rate: must be less than 100"):
        parse_plan(plan_data(vat_rate=100))


def test_plan_names_are_stored_in_nfc() -> None:
    plan = parse_plan(plan_data(name="Urbain — e\u0301te\u0301"))  # e + combining acute

    assert plan.name == "Urbain — été"
