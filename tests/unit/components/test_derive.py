"""The price of use derived from a BOM: hand-computed to the cent, accepted and rated by the
pricing engine like any plan, and properties that hold for any BOM."""

from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.components.bom import Bom, BomComponent, Lifetime, parse_bom
from billing.components.derive import DeriveInvalid, DeriveOptions, derive_plan, plan_code
from billing.pricing.plans import parse_plan
from billing.pricing.rating import preview_plan

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "bom" / "s1.yaml"
PROPERTIES = settings(deadline=None, database=None, max_examples=100)


@pytest.fixture(scope="module")
def s1() -> Bom:
    return parse_bom(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


def test_the_s1_at_300_km_a_month_is_priced_as_computed_by_hand(s1):
    derived = derive_plan(s1, DeriveOptions(km_per_month=D(300), margin=D("0.25")))
    # At 300 km and 4.5 kWh a month, distance ends the fork, motor, tyres, brakes and deck
    # first; months end the frame, controller, battery (128 months of cycles > 60),
    # charger port and lights. No part is priced per kWh.
    # per km: 65/20000 + 150/20000 + 30/4000 + 30/3000 + 15/2500 + 25/7500 + 18/10000
    assert derived.cost_per_km == D("0.039383")  # 0.0393833…
    # per month: 180/240 + 80/72 + 420/60 + 12/60 + 20/48
    assert derived.cost_per_month == D("9.477778")
    assert derived.cost_per_kwh == 0
    # price = cost / (1 - 0.25)
    assert derived.plan["charges"] == [
        {"metric": "vehicle_days", "model": "flat", "name": "Usage du véhicule (mois)",
         "amount": "12.64"},  # 12.637037…
        {"metric": "distance_km", "model": "per_unit", "name": "Kilomètres",
         "unit_amount": "0.052511"},  # 0.0525111…
    ]  # fmt: skip
    battery = next(c for c in derived.contributions if c.code == "battery")
    assert (battery.limiting_unit, battery.basis, battery.cost_per_unit) == (
        "months", "per_month", D("7.000000"),
    )  # fmt: skip
    assert derived.expected_cost_per_month == D("21.29")  # 0.0393833 × 300 + 9.477778
    assert derived.expected_price_per_month == D("28.39")  # 12.64 + 0.052511 × 300


def test_heavy_use_prices_the_battery_per_kwh_of_throughput(s1):
    derived = derive_plan(
        s1,
        DeriveOptions(
            km_per_month=D(3000), margin=D("0.25"), overhead_rate=D("0.10"),
            overhead_per_month=D("5.00"),
        ),
    )  # fmt: skip
    # 45 kWh a month: the battery's 576 kWh (800 × 0.72) last 12.8 months, before its 60;
    # the charger port's 2160 kWh 48 months, before its 60.
    battery = next(c for c in derived.contributions if c.code == "battery")
    assert (battery.limiting_unit, battery.cost_per_unit) == ("cycles", D("0.729167"))
    # (420/576 + 12/2160) × 1.10 = 0.8081944…; / 0.75 = 1.0775925…
    assert derived.cost_per_kwh == D("0.808194")
    energy = next(c for c in derived.plan["charges"] if c["metric"] == "energy_kwh")
    assert energy["unit_amount"] == "1.077593"
    # (180/240 + 80/72 + 20/48) × 1.10 + 5.00 = 7.5055556; / 0.75 = 10.007407…
    fee = next(c for c in derived.plan["charges"] if c["metric"] == "vehicle_days")
    assert fee["amount"] == "10.01"


def test_the_derived_plan_rates_a_month_through_the_engine(s1):
    derived = derive_plan(s1, DeriveOptions(km_per_month=D(300), margin=D("0.25")))
    plan = parse_plan(derived.plan)
    rated = preview_plan(plan, {"distance_km": D(300)}, D(30), 30)
    assert [line.amount for line in rated.lines] == [D("12.64"), D("15.75")]  # 300 × 0.052511
    assert (rated.subtotal, rated.vat, rated.total) == (D("28.39"), D("5.68"), D("34.07"))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"km_per_month": D(0)}, "km_per_month"),
        ({"km_per_month": D(1), "margin": D(1)}, "margin"),
        ({"km_per_month": D(1), "margin": D("-0.1")}, "margin"),
        ({"km_per_month": D(1), "kwh_per_km": D(0)}, "kwh_per_km"),
        ({"km_per_month": D(1), "overhead_rate": D(-1)}, "overhead_rate"),
    ],
)
def test_options_out_of_range_are_named(s1, options, field):
    with pytest.raises(DeriveInvalid) as raised:
        derive_plan(s1, DeriveOptions(**options))
    assert field in raised.value.errors


def test_parts_too_cheap_for_any_price_are_refused():
    bom = Bom(
        "x1", "EUR", (BomComponent("bolt", "Bolt", "wear", D("0.01"), Lifetime(months=D(99999))),)
    )
    with pytest.raises(DeriveInvalid) as raised:
        derive_plan(bom, DeriveOptions(km_per_month=D(100)))
    assert list(raised.value.errors) == ["_schema"]


def test_a_model_name_becomes_a_valid_plan_code():
    assert plan_code("S1.Pro_2") == "s1-pro-2-usage"


amounts = st.decimals(min_value=D("0.01"), max_value=D(5000), places=2)
lifetimes = st.decimals(min_value=D(1), max_value=D(100000), places=0)


@st.composite
def boms(draw) -> Bom:
    count = draw(st.integers(min_value=1, max_value=6))
    components = []
    for n in range(count):
        units = draw(st.sets(st.sampled_from(["km", "kwh", "cycles", "months"]), min_size=1))
        limits = {unit: draw(lifetimes) for unit in units}
        capacity = draw(st.decimals(min_value=D("0.1"), max_value=D(5), places=2))
        components.append(
            BomComponent(
                code=f"part-{n}", name=f"Part {n}", category="wear", unit_cost=draw(amounts),
                lifetime=Lifetime(**limits), capacity_kwh=capacity if "cycles" in units else None,
            )
        )  # fmt: skip
    return Bom(model="x1", currency="EUR", components=tuple(components))


@PROPERTIES
@given(
    boms(),
    st.decimals(min_value=D(1), max_value=D(20000), places=0),
    st.decimals(min_value=D(0), max_value=D("0.9"), places=2),
)
def test_any_derived_plan_is_valid_and_covers_the_cost_at_the_expected_use(bom, km, margin):
    try:
        derived = derive_plan(bom, DeriveOptions(km_per_month=km, margin=margin))
    except DeriveInvalid as error:  # parts so cheap and long-lived that no price is left
        assert error.errors["_schema"][0].startswith("every price rounds to 0")
        return
    parse_plan(derived.plan)  # the pricing engine's own validation
    # What the price brings in at the expected use keeps the margin over the cost, to the
    # rounding of each price (half a cent on the fee, half a millionth per km and kWh).
    slack = D("0.005") + D("0.0000005") * km * (1 + D("0.015"))
    kept = derived.expected_price_per_month * (1 - margin)
    assert kept >= derived.expected_cost_per_month - slack - D("0.01")


def prices(derived) -> dict:
    return {c["metric"]: D(c.get("amount") or c["unit_amount"]) for c in derived.plan["charges"]}


@PROPERTIES
@given(boms(), st.decimals(min_value=D(1), max_value=D(20000), places=0))
def test_a_larger_margin_never_lowers_a_price(bom, km):
    try:
        low = derive_plan(bom, DeriveOptions(km_per_month=km, margin=D("0.10")))
    except DeriveInvalid:
        return
    high = derive_plan(bom, DeriveOptions(km_per_month=km, margin=D("0.40")))
    for metric, price in prices(low).items():
        assert prices(high)[metric] >= price
