"""Properties of plans, rating and totals that must hold for any valid input."""

import dataclasses
import json
import string
import unicodedata
from collections import defaultdict
from decimal import Decimal as D
from decimal import localcontext
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.money import MINOR_UNITS, money_rounder, round_money, vat_amount
from billing.pricing import rating
from billing.pricing.plans import (
    METRICS,
    MODELS,
    SCOPES,
    Charge,
    Plan,
    Tier,
    parse_plan,
    plan_to_dict,
    validate_plan,
)
from billing.pricing.rating import RatedLine, VehicleUsage, rate_vehicles
from billing.vat import compute_totals

# No example database: property tests must leave nothing behind in the checkout.
PRICING = settings(deadline=None, database=None, max_examples=40)

DAYS_IN_PERIOD = 30
prices = st.decimals(min_value=0, max_value=50, places=6)
amounts = st.decimals(min_value=0, max_value=500, places=2)
quantities = st.decimals(min_value=0, max_value=5000, places=3)


@st.composite
def tier_lists(draw: st.DrawFn, max_bounds: int = 4) -> tuple[Tier, ...]:
    bounds = draw(
        st.lists(st.decimals(min_value="0.001", max_value=5000, places=3), max_size=max_bounds)
    )
    bounds = sorted(set(bounds))
    tiers = [Tier(bound, draw(prices), draw(amounts)) for bound in bounds]
    return (*tiers, Tier(None, draw(prices), draw(amounts)))


def texts(*, min_size: int = 0, max_size: int, multiline: bool = False) -> st.SearchStrategy:
    """Text the text rule takes: in NFC, without control (but tabs and line breaks in
    multi-line text), format (bidirectional controls among them) or surrogate characters."""
    allowed = st.characters(
        exclude_categories=("Cc", "Cf", "Cs"), include_characters="\t\n" if multiline else ""
    )
    return st.text(allowed, min_size=min_size, max_size=max_size).map(
        lambda text: unicodedata.normalize("NFC", text)
    )


@st.composite
def charges(draw: st.DrawFn) -> Charge:
    model = draw(st.sampled_from(MODELS))
    name = draw(st.none() | texts(min_size=1, max_size=20).filter(str.strip))
    if model == "flat":
        return Charge("vehicle_days", "flat", name=name, amount=draw(amounts))
    minimum, maximum = draw(st.none() | amounts), draw(st.none() | amounts)
    if minimum is not None and maximum is not None and minimum > maximum:
        minimum, maximum = maximum, minimum
    return Charge(
        draw(st.sampled_from(METRICS)),
        model,
        draw(st.sampled_from(SCOPES)),
        name,
        included=draw(st.just(D(0)) | quantities),
        minimum=minimum,
        maximum=maximum,
        **draw(model_fields(model)),
    )


def model_fields(model: str) -> st.SearchStrategy[dict]:
    if model == "per_unit":
        return st.fixed_dictionaries({"unit_amount": prices})
    if model == "package":
        size = st.decimals(min_value="0.5", max_value=100, places=1)
        return st.fixed_dictionaries({"package_size": size, "package_amount": amounts})
    return st.fixed_dictionaries({"tiers": tier_lists()})


plans = st.builds(
    Plan,
    code=st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=40),
    name=texts(min_size=1, max_size=40).filter(str.strip),
    currency=st.sampled_from(sorted(MINOR_UNITS)),
    vat_rate=st.decimals(min_value=0, max_value="99.99", places=2),
    charges=st.lists(charges(), min_size=1, max_size=4).map(tuple),
    description=texts(max_size=40, multiline=True),
)


@st.composite
def fleets(draw: st.DrawFn) -> list[VehicleUsage]:
    size = draw(st.integers(min_value=1, max_value=5))
    days = st.decimals(min_value=0, max_value=DAYS_IN_PERIOD, places=2)
    usage = st.dictionaries(st.sampled_from(METRICS), quantities)
    return [VehicleUsage(f"MOB-{n}", draw(usage), draw(days)) for n in range(size)]


def one_charge_plan(charge: Charge) -> Plan:
    return Plan("p", "P", "EUR", D(20), (charge,))


def amount_for(plan: Plan, quantity: D) -> D:
    usage = VehicleUsage("MOB-1", {"distance_km": quantity}, D(DAYS_IN_PERIOD))
    [line] = rate_vehicles(plan, [usage], DAYS_IN_PERIOD)
    return line.amount


@PRICING
@given(plans)
def test_a_plan_reads_back_from_its_json_form_unchanged(plan: Plan) -> None:
    assert parse_plan(json.loads(json.dumps(plan_to_dict(plan)))) == plan


@PRICING
@given(plans, fleets())
def test_no_line_amount_is_ever_negative(plan: Plan, fleet: list[VehicleUsage]) -> None:
    lines = rate_vehicles(plan, fleet, DAYS_IN_PERIOD)
    assert len(lines) == len(fleet) * len(plan.charges)
    assert all(line.amount >= 0 for line in lines)


@PRICING
@given(tier_lists(), quantities, quantities)
def test_graduated_amount_never_decreases_when_usage_grows(
    tiers: tuple[Tier, ...], first: D, second: D
) -> None:
    plan = one_charge_plan(Charge("distance_km", "graduated", tiers=tiers))
    low, high = sorted((first, second))
    assert amount_for(plan, low) <= amount_for(plan, high)


@PRICING
@given(prices, amounts, quantities)
def test_a_single_unbounded_tier_prices_the_same_graduated_or_volume(
    unit_amount: D, flat_amount: D, quantity: D
) -> None:
    tiers = (Tier(None, unit_amount, flat_amount),)
    graduated = one_charge_plan(Charge("distance_km", "graduated", tiers=tiers))
    volume = one_charge_plan(Charge("distance_km", "volume", tiers=tiers))
    assert amount_for(graduated, quantity) == amount_for(volume, quantity)


@PRICING
@given(plans, fleets())
def test_a_pooled_amount_split_over_the_vehicles_sums_to_the_pooled_amount(
    plan: Plan, fleet: list[VehicleUsage]
) -> None:
    by_charge = defaultdict(list)
    for line in rate_vehicles(plan, fleet, DAYS_IN_PERIOD):
        if line.scope == "pooled":
            by_charge[line.charge_index].append(line)
    for lines in by_charge.values():
        [pooled_amount] = {line.pooled_amount for line in lines}
        assert sum(line.amount for line in lines) == pooled_amount


@PRICING
@given(plans, fleets(), st.randoms(use_true_random=False))
def test_rating_does_not_depend_on_the_order_of_the_charges(
    plan: Plan, fleet: list[VehicleUsage], random: Random
) -> None:
    order = list(range(len(plan.charges)))
    random.shuffle(order)
    shuffled = dataclasses.replace(plan, charges=tuple(plan.charges[i] for i in order))
    lines = rate_vehicles(plan, fleet, DAYS_IN_PERIOD)
    shuffled_lines = [
        dataclasses.replace(line, charge_index=order[line.charge_index])
        for line in rate_vehicles(shuffled, fleet, DAYS_IN_PERIOD)
    ]
    in_plan_order = sorted(shuffled_lines, key=lambda line: (line.vehicle_id, line.charge_index))
    assert in_plan_order == lines  # vehicle ids MOB-0 to MOB-4 sort as the fleet is given


vat_items = st.tuples(
    st.sampled_from([("S", D(20)), ("S", D(10)), ("S", D("5.5")), ("S", D("2.1")), ("AE", D(0))]),
    st.decimals(min_value=-1000, max_value=1000, places=2),
)


@PRICING
@given(st.lists(vat_items, max_size=30))
def test_totals_vat_is_the_vat_of_each_rates_summed_base(
    items: list[tuple[tuple[str, D], D]],
) -> None:
    totals = compute_totals([(category, rate, amount) for (category, rate), amount in items], "EUR")
    bases: dict[tuple[str, D], D] = defaultdict(D)
    for key, amount in items:
        bases[key] += amount
    expected = {key: vat_amount(base, key[1], "EUR") for key, base in bases.items()}
    assert {(s.category, s.rate): s.vat for s in totals.subtotals} == expected
    assert totals.vat == sum(expected.values(), D(0))
    assert totals.net == sum((amount for _, amount in items), D(0))
    assert totals.gross == totals.net + totals.vat


@PRICING
@given(st.sampled_from(sorted(MINOR_UNITS)), st.decimals(-1_000_000, 1_000_000, places=8))
def test_the_rating_rounder_rounds_like_round_money(currency: str, amount: D) -> None:
    assert money_rounder(currency)(amount) == round_money(amount, currency)


@st.composite
def varied_fleets(draw: st.DrawFn) -> list[VehicleUsage]:
    """Fleets whose vehicles are often on the plan the whole period, with quantities of any
    exponent (whole numbers, metres, exact zeros written 0.000)."""
    size = draw(st.integers(min_value=1, max_value=5))
    days = st.just(D(DAYS_IN_PERIOD)) | st.decimals(min_value=0, max_value=DAYS_IN_PERIOD, places=1)
    quantity = st.integers(0, 5000).map(D) | quantities | st.just(D("0.000"))
    usage = st.dictionaries(st.sampled_from(METRICS), quantity)
    return [VehicleUsage(f"MOB-{n}", draw(usage), draw(days)) for n in range(size)]


def general_vehicle_line(index: int, charge: Charge, usage: VehicleUsage) -> RatedLine:
    """A per-vehicle line by the engine's general pricing (the price functions and the
    clamp that pools use), against which its inline per-vehicle raters are held."""
    days, period = usage.days_on_plan, D(DAYS_IN_PERIOD)
    if charge.model == "flat":
        amount = charge.amount * days / period
        return RatedLine(
            usage.vehicle_id, index, "vehicle_days", "flat", "vehicle", days, days,
            charge.amount, round_money(amount, "EUR"), (),
        )  # fmt: skip
    if charge.metric == "vehicle_days":
        quantity = days
    else:
        quantity = usage.quantities.get(charge.metric, D(0))
    billable = quantity - charge.included if quantity > charge.included else D(0)
    amount, unit_amount, tiers = rating._price_function(charge)(billable)

    def prorated(bound: D | None) -> D | None:
        return None if bound is None else bound * days / period

    amount, at_minimum, at_maximum = rating._clamp(
        amount, prorated(charge.minimum), prorated(charge.maximum)
    )
    return RatedLine(
        usage.vehicle_id, index, charge.metric, charge.model, "vehicle", quantity, billable,
        unit_amount, round_money(amount, "EUR"), tiers, None, None, None, at_minimum, at_maximum,
    )  # fmt: skip


@settings(deadline=None, database=None, max_examples=200)
@given(plans.map(lambda plan: dataclasses.replace(plan, currency="EUR")), varied_fleets())
def test_per_vehicle_lines_are_the_general_pricing_of_each_charge(
    plan: Plan, fleet: list[VehicleUsage]
) -> None:
    lines = iter(rate_vehicles(plan, fleet, DAYS_IN_PERIOD))
    with localcontext(rating._CONTEXT):
        for usage in fleet:
            for index, charge in enumerate(validate_plan(plan).charges):
                line = next(lines)
                if charge.scope == "vehicle":
                    expected = general_vehicle_line(index, charge, usage)
                    # repr, not ==: the same numbers written with the same exponents.
                    assert repr(line) == repr(expected)
