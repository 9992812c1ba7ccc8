"""The rating engine, checked to the cent against amounts worked out by hand."""

import dataclasses
from decimal import Decimal as D

import pytest

from billing.pricing.plans import Charge, Plan, PlanInvalid, parse_plan
from billing.pricing.rating import (
    RatedLine,
    TierLine,
    VehicleUsage,
    preview_plan,
    rate_vehicles,
)

# The distance charge of config/plans/urbain.yaml: 50 km included, then tiers on the billable km.
URBAIN_KM = {
    "metric": "distance_km",
    "model": "graduated",
    "included": "50",
    "tiers": [
        {"up_to": "100", "unit_amount": "0"},
        {"up_to": "500", "unit_amount": "0.08", "flat_amount": "1.00"},
        {"up_to": None, "unit_amount": "0.05"},
    ],
}
VOLUME_KM = {
    "metric": "distance_km",
    "model": "volume",
    "tiers": [
        {"up_to": "100", "unit_amount": "0.10"},
        {"up_to": "500", "unit_amount": "0.08", "flat_amount": "1.00"},
        {"up_to": None, "unit_amount": "0.05", "flat_amount": "5.00"},
    ],
}
ENERGY_BLOCKS = {
    "metric": "energy_kwh",
    "model": "package",
    "package_size": "10",
    "package_amount": "2.50",
}
MONTHLY_FEE = {"metric": "vehicle_days", "model": "flat", "amount": "19.00"}
TRIPS_CAPPED = {"metric": "trips", "model": "per_unit", "unit_amount": "0.10", "maximum": "30.00"}
KM_FLOOR = {"metric": "distance_km", "model": "per_unit", "unit_amount": "0.10", "minimum": "5.00"}


def plan_with(*charges: dict, currency: str = "EUR") -> Plan:
    return parse_plan(
        {
            "code": "test",
            "name": "Test",
            "currency": currency,
            "vat_rate": "20.00",
            "charges": list(charges),
        }
    )


def rate_one(charge: dict, quantity: str, days: str = "30", days_in_period: int = 30) -> RatedLine:
    usage = VehicleUsage("MOB-1", {charge["metric"]: D(quantity)}, D(days))
    [line] = rate_vehicles(plan_with(charge), [usage], days_in_period)
    return line


def pooled(charge: dict) -> dict:
    return {**charge, "scope": "pooled"}


@pytest.mark.parametrize(
    ("km", "billable", "amount"),
    [
        ("0", "0", "0.00"),
        ("30", "0", "0.00"),  # fewer km than included
        ("150", "100", "0.00"),  # exactly at tier 1's bound: tier 2's flat not due
        ("150.5", "100.5", "1.04"),  # 0.5 km into tier 2: 0.5 x 0.08 + 1.00
        ("550", "500", "33.00"),  # 400 x 0.08 + 1.00
        ("551", "501", "33.05"),
        ("1050", "1000", "58.00"),  # 33.00 + 500 x 0.05
    ],
)
def test_graduated_prices_each_km_at_the_rate_of_its_tier_after_included_km(
    km: str, billable: str, amount: str
) -> None:
    line = rate_one(URBAIN_KM, km)
    assert (line.quantity, line.billable_quantity, line.amount) == (D(km), D(billable), D(amount))
    assert line.unit_amount is None


def test_graduated_breakdown_lists_every_tier_reached_with_exact_amounts() -> None:
    line = rate_one(URBAIN_KM, "650.25")
    assert line.tiers == (
        TierLine(1, D(0), D(100), D(100), D(0), D(0), D(0)),
        TierLine(2, D(100), D(500), D(400), D("0.08"), D("1.00"), D("33.00")),
        TierLine(3, D(500), None, D("100.25"), D("0.05"), D(0), D("5.0125")),
    )
    assert line.amount == D("38.01")


def test_graduated_first_tier_flat_amount_is_due_at_zero_usage() -> None:
    charge = {**URBAIN_KM, "included": "0"}
    charge["tiers"] = [
        {"up_to": "10", "unit_amount": "0.5", "flat_amount": "2.00"},
        {"up_to": None, "unit_amount": "0.25"},
    ]
    line = rate_one(charge, "0")
    assert line.amount == D("2.00")
    assert line.tiers == (TierLine(1, D(0), D(10), D(0), D("0.5"), D("2.00"), D("2.00")),)


@pytest.mark.parametrize(
    ("km", "tier", "unit_amount", "amount"),
    [
        ("0", 1, "0.10", "0.00"),
        ("100", 1, "0.10", "10.00"),  # up_to is inclusive
        ("100.5", 2, "0.08", "9.04"),  # all 100.5 km at 0.08, plus 1.00
        ("500", 2, "0.08", "41.00"),
        ("501", 3, "0.05", "30.05"),  # cheaper than 500 km: that is what volume pricing does
    ],
)
def test_volume_prices_all_km_at_the_rate_of_the_tier_the_total_falls_in(
    km: str, tier: int, unit_amount: str, amount: str
) -> None:
    line = rate_one(VOLUME_KM, km)
    assert (line.amount, line.unit_amount) == (D(amount), D(unit_amount))
    [tier_line] = line.tiers
    assert (tier_line.tier, tier_line.quantity) == (tier, D(km))


@pytest.mark.parametrize(
    ("kwh", "included", "amount"),
    [
        ("0", "0", "0.00"),  # no block started
        ("0.001", "0", "2.50"),  # a started block counts
        ("10", "0", "2.50"),
        ("10.001", "0", "5.00"),
        ("25", "0", "7.50"),
        ("15", "5", "2.50"),  # included units come off before counting blocks
        ("4", "5", "0.00"),
    ],
)
def test_package_charges_each_started_block(kwh: str, included: str, amount: str) -> None:
    line = rate_one({**ENERGY_BLOCKS, "included": included}, kwh)
    assert line.amount == D(amount)
    assert line.unit_amount is None


@pytest.mark.parametrize(
    ("unit_amount", "quantity", "included", "amount"),
    [
        ("0.10", "0", "0", "0.00"),
        ("0.10", "12.5", "0", "1.25"),
        ("0.125", "1", "0", "0.13"),  # half-up, not half-even
        ("0.123456", "3.5", "0", "0.43"),  # 0.432096
        ("0.10", "20", "30", "0.00"),  # more included than used
    ],
)
def test_per_unit_multiplies_billable_quantity_by_unit_price_and_rounds_half_up(
    unit_amount: str, quantity: str, included: str, amount: str
) -> None:
    charge = {
        "metric": "trips",
        "model": "per_unit",
        "unit_amount": unit_amount,
        "included": included,
    }
    line = rate_one(charge, quantity)
    assert (line.amount, line.unit_amount) == (D(amount), D(unit_amount))
    assert line.billable_quantity == max(D(quantity) - D(included), D(0))


@pytest.mark.parametrize(
    ("amount", "days", "days_in_period", "expected"),
    [
        ("19.00", "30", 30, "19.00"),
        ("19.00", "15", 30, "9.50"),
        ("19.00", "10", 30, "6.33"),  # 6.333…
        ("19.00", "0", 30, "0.00"),
        ("19.00", "7.5", 31, "4.60"),  # 4.5967…
        ("0.05", "15", 30, "0.03"),  # 0.025, half-up
    ],
)
def test_flat_fee_is_prorated_by_days_on_the_plan(
    amount: str, days: str, days_in_period: int, expected: str
) -> None:
    line = rate_one({**MONTHLY_FEE, "amount": amount}, "0", days, days_in_period)
    assert line.amount == D(expected)
    assert (line.quantity, line.billable_quantity) == (D(days), D(days))
    assert line.unit_amount == D(amount)


def test_vehicle_days_is_always_the_days_on_the_plan_not_a_reported_quantity() -> None:
    charge = {"metric": "vehicle_days", "model": "per_unit", "unit_amount": "0.50"}
    usage = VehicleUsage("MOB-1", {"vehicle_days": D(99)}, D(12))
    [line] = rate_vehicles(plan_with(charge), [usage], 30)
    assert (line.quantity, line.amount) == (D(12), D("6.00"))


@pytest.mark.parametrize(
    ("charge", "quantity", "days", "amount", "at_minimum", "at_maximum"),
    [
        (TRIPS_CAPPED, "400", "30", "30.00", False, True),
        (TRIPS_CAPPED, "400", "15", "15.00", False, True),  # half a month: half the cap
        (TRIPS_CAPPED, "100", "15", "10.00", False, False),
        (TRIPS_CAPPED, "300", "30", "30.00", False, False),  # exactly at the cap
        (KM_FLOOR, "10", "30", "5.00", True, False),
        (KM_FLOOR, "10", "6", "1.00", False, False),  # floor prorated to 1.00: not below it
        (KM_FLOOR, "0", "10", "1.67", True, False),  # a third of 5.00
        (KM_FLOOR, "0", "0", "0.00", False, False),
    ],
)
def test_minimum_and_maximum_per_vehicle_are_prorated_by_days_on_the_plan(
    charge: dict, quantity: str, days: str, amount: str, at_minimum: bool, at_maximum: bool
) -> None:
    line = rate_one(charge, quantity, days)
    assert (line.amount, line.minimum_applied, line.maximum_applied) == (
        D(amount),
        at_minimum,
        at_maximum,
    )


def test_equal_minimum_and_maximum_make_a_fixed_price() -> None:
    charge = {**KM_FLOOR, "maximum": "5.00"}
    assert [rate_one(charge, km).amount for km in ("0", "50", "500")] == [D("5.00")] * 3


def test_pooled_tiers_price_the_fleet_total_and_split_it_back_to_the_cent() -> None:
    charge = pooled(
        {
            "metric": "distance_km",
            "model": "graduated",
            "included": "100",
            "tiers": [
                {"up_to": "1000", "unit_amount": "0.06"},
                {"up_to": None, "unit_amount": "0.04"},
            ],
        }
    )
    fleet = [
        VehicleUsage("A", {"distance_km": D("333.3")}, D(30)),
        VehicleUsage("B", {"distance_km": D("666.6")}, D(30)),
        VehicleUsage("C", {}, D(30)),
    ]
    lines = rate_vehicles(plan_with(charge), fleet, 30)
    # 999.9 km - 100 included = 899.9 x 0.06 = 53.994; A's third (17.9966…) takes the cent.
    assert [line.amount for line in lines] == [D("18.00"), D("35.99"), D("0.00")]
    assert {
        (line.pooled_quantity, line.pooled_billable_quantity, line.pooled_amount) for line in lines
    } == {(D("999.9"), D("899.9"), D("53.99"))}
    assert [line.quantity for line in lines] == [D("333.3"), D("666.6"), D(0)]
    assert lines[0].tiers == (TierLine(1, D(0), D(1000), D("899.9"), D("0.06"), D(0), D("53.994")),)


def test_pooled_minimum_applies_to_the_pool_and_is_not_prorated() -> None:
    charge = pooled({**KM_FLOOR, "unit_amount": "0.05", "minimum": "50.00"})
    fleet = [
        VehicleUsage("A", {"distance_km": D(100)}, D(10)),
        VehicleUsage("B", {"distance_km": D(300)}, D(30)),
    ]
    lines = rate_vehicles(plan_with(charge), fleet, 30)
    assert [line.amount for line in lines] == [D("12.50"), D("37.50")]
    assert all(line.minimum_applied and line.pooled_amount == D("50.00") for line in lines)


def test_pooled_amount_is_split_evenly_when_no_vehicle_used_the_metric() -> None:
    charge = pooled(
        {**VOLUME_KM, "tiers": [{"up_to": None, "unit_amount": "0.10", "flat_amount": "10.00"}]}
    )
    fleet = [VehicleUsage(name, {}, D(30)) for name in "ABC"]
    lines = rate_vehicles(plan_with(charge), fleet, 30)
    assert [line.amount for line in lines] == [D("3.34"), D("3.33"), D("3.33")]


def test_pooled_vehicle_days_sum_the_days_of_the_fleet() -> None:
    charge = pooled(
        {"metric": "vehicle_days", "model": "per_unit", "unit_amount": "0.70", "maximum": "40.00"}
    )
    fleet = [VehicleUsage("A", {}, D(30)), VehicleUsage("B", {}, D("22.5"))]
    lines = rate_vehicles(plan_with(charge), fleet, 30)
    assert lines[0].pooled_quantity == D("52.5")  # 36.75: under the cap
    assert [line.amount for line in lines] == [D("21.00"), D("15.75")]


def test_lines_come_by_vehicle_then_charge_one_per_charge_even_at_zero() -> None:
    plan = plan_with(MONTHLY_FEE, pooled(URBAIN_KM), TRIPS_CAPPED)  # 850 km: 33.00 + 17.50
    fleet = [VehicleUsage("A", {"distance_km": D(900)}, D(30)), VehicleUsage("B", {}, D(30))]
    lines = rate_vehicles(plan, fleet, 30)
    assert [(line.vehicle_id, line.charge_index, line.scope, line.amount) for line in lines] == [
        ("A", 0, "vehicle", D("19.00")),
        ("A", 1, "pooled", D("50.50")),
        ("A", 2, "vehicle", D("0.00")),
        ("B", 0, "vehicle", D("19.00")),
        ("B", 1, "pooled", D("0.00")),
        ("B", 2, "vehicle", D("0.00")),
    ]


def test_no_vehicles_means_no_lines() -> None:
    assert rate_vehicles(plan_with(pooled(KM_FLOOR)), [], 30) == []


def test_amounts_round_to_the_minor_unit_of_the_plan_currency() -> None:
    plan = plan_with(
        {"metric": "trips", "model": "per_unit", "unit_amount": "12.5"}, currency="JPY"
    )
    [line] = rate_vehicles(plan, [VehicleUsage("A", {"trips": D(3)}, D(30))], 30)
    assert line.amount == D("38")  # 37.5, half-up to the yen


def test_rated_lines_are_ordinary_frozen_dataclass_instances() -> None:
    [line] = rate_vehicles(plan_with(TRIPS_CAPPED), [VehicleUsage("A", {}, D(30))], 30)
    rebuilt = RatedLine(
        **{field.name: getattr(line, field.name) for field in dataclasses.fields(RatedLine)}
    )
    assert type(line) is RatedLine
    assert line == rebuilt
    assert hash(line) == hash(rebuilt)
    assert repr(line) == repr(rebuilt)
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.amount = D(0)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("usage", "days_in_period", "message"),
    [
        (VehicleUsage("A", {}, D(31)), 30, "days_on_plan 31 is not within 0..30"),
        (VehicleUsage("A", {}, D(-1)), 30, "days_on_plan -1 is not within 0..30"),
        (VehicleUsage("A", {"trips": D(-1)}, D(30)), 30, "vehicle A: trips is negative"),
        (VehicleUsage("A", {}, D(30)), 0, "days_in_period must be positive"),
        (VehicleUsage("A", {}, D(30)), 30.0, "days_in_period must be an int"),
    ],
)
def test_impossible_usage_is_refused(
    usage: VehicleUsage, days_in_period: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rate_vehicles(plan_with(TRIPS_CAPPED), [usage], days_in_period)


def test_negative_quantity_in_a_pool_is_refused() -> None:
    usage = VehicleUsage("A", {"trips": D(-1)}, D(30))
    with pytest.raises(ValueError, match="vehicle A: trips is negative"):
        rate_vehicles(plan_with(pooled(TRIPS_CAPPED)), [usage], 30)


def test_a_plan_built_in_code_is_validated_before_rating() -> None:
    plan = Plan("test", "Test", "EUR", D(20), (Charge("distance_km", "flat", amount=D(1)),))
    with pytest.raises(PlanInvalid) as raised:
        rate_vehicles(plan, [VehicleUsage("A", {}, D(30))], 30)
    assert raised.value.errors == {"charges.0.metric": ["must be vehicle_days for model flat"]}


def test_preview_prices_one_vehicle_with_vat_on_the_subtotal() -> None:
    plan = plan_with(MONTHLY_FEE, URBAIN_KM, TRIPS_CAPPED, ENERGY_BLOCKS)
    quantities = {"distance_km": D("320.5"), "trips": D(400), "energy_kwh": D("12.3")}
    preview = preview_plan(plan, quantities, D(30), 30)
    # 19.00 + (100 x 0 + 170.5 x 0.08 + 1.00) + 40.00 capped at 30.00 + 2 blocks x 2.50
    assert [line.amount for line in preview.lines] == [
        D("19.00"),
        D("14.64"),
        D("30.00"),
        D("5.00"),
    ]
    assert (preview.subtotal, preview.vat, preview.total) == (D("68.64"), D("13.73"), D("82.37"))
    assert (preview.currency, preview.vat_rate) == ("EUR", D("20.00"))
