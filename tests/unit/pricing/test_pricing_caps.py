"""Spending caps on a customer's priced period: hand-computed cases and invariants."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.money import MINOR_UNITS, quantum
from billing.pricing.caps import (
    CapDiscount,
    PricedLine,
    SpendingCap,
    apply_spending_cap,
)
from billing.pricing.plans import parse_plan
from billing.pricing.rating import VehicleUsage, rate_vehicles
from billing.vat import compute_totals

PROPERTIES = settings(deadline=None, database=None, max_examples=200)

FLEET_PLAN = parse_plan(
    {
        "code": "fleet",
        "name": "Fleet",
        "currency": "EUR",
        "vat_rate": "20.00",
        "charges": [
            {"metric": "vehicle_days", "model": "flat", "amount": "19.00"},
            {
                "metric": "distance_km",
                "model": "graduated",
                "scope": "pooled",
                "tiers": [
                    {"up_to": "100", "unit_amount": "0"},
                    {"up_to": "500", "unit_amount": "0.08", "flat_amount": "1.00"},
                    {"up_to": None, "unit_amount": "0.05"},
                ],
            },
            {"metric": "trips", "model": "per_unit", "unit_amount": "0.10"},
        ],
    }
)


def fleet_lines() -> list[PricedLine]:
    """Two vehicles over a 30-day period, the second on the plan for 15 days.

    Flat fees: 19.00 and 19.00 x 15/30 = 9.50. Pooled km: 300 + 400 = 700; tier 1 100 x 0,
    tier 2 400 x 0.08 + 1.00 = 33.00, tier 3 200 x 0.05 = 10.00: 43.00, split 3:4 to
    18.43 and 24.57 (18.428 and 24.571, the leftover cent to the larger remainder).
    Trips: 40 x 0.10 = 4.00 and 10 x 0.10 = 1.00. Usage charges: 48.00; flat fees 28.50.
    """
    rated = rate_vehicles(
        FLEET_PLAN,
        [
            VehicleUsage("MOB-1", {"distance_km": D(300), "trips": D(40)}, D(30)),
            VehicleUsage("MOB-2", {"distance_km": D(400), "trips": D(10)}, D(15)),
        ],
        30,
    )
    assert [line.amount for line in rated] == [
        D("19.00"), D("18.43"), D("4.00"), D("9.50"), D("24.57"), D("1.00"),
    ]  # fmt: skip
    return [PricedLine(line.amount, line.model, "S", D(20)) for line in rated]


def net_total(lines: list[PricedLine], discounts: tuple[CapDiscount, ...]) -> D:
    items = [(line.vat_category, line.vat_rate, line.amount) for line in lines]
    items += [(d.vat_category, d.vat_rate, d.amount) for d in discounts]
    return compute_totals(items, "EUR").net


def test_a_cap_brings_pooled_and_prorated_usage_charges_down_to_it_flat_fees_on_top():
    lines = fleet_lines()
    outcome = apply_spending_cap(SpendingCap(D("30.00")), lines, "EUR")
    assert outcome.capped_amount == D("48.00")
    assert outcome.discounts == (CapDiscount("S", D(20), D("-18.00")),)
    assert outcome.reached
    # 28.50 of flat fees + 30.00 of capped usage.
    assert net_total(lines, outcome.discounts) == D("58.50")


def test_a_cap_that_includes_flat_fees_caps_the_whole_period():
    lines = fleet_lines()
    outcome = apply_spending_cap(SpendingCap(D("30.00"), include_flat_fees=True), lines, "EUR")
    assert outcome.capped_amount == D("76.50")
    assert outcome.discount == D("-46.50")
    assert net_total(lines, outcome.discounts) == D("30.00")


def test_a_period_under_its_cap_gets_no_discount():
    outcome = apply_spending_cap(SpendingCap(D("48.01")), fleet_lines(), "EUR")
    assert (outcome.capped_amount, outcome.discounts, outcome.reached) == (D("48.00"), (), False)


def test_usage_exactly_at_the_cap_reaches_it_without_a_discount():
    outcome = apply_spending_cap(SpendingCap(D("48.00")), fleet_lines(), "EUR")
    assert (outcome.discounts, outcome.reached) == ((), True)


def test_the_discount_is_shared_between_vat_rates_in_proportion_to_the_capped_amounts():
    lines = [
        PricedLine(D("60.00"), "per_unit", "S", D(20)),
        PricedLine(D("40.00"), "graduated", "S", D("5.5")),
    ]
    outcome = apply_spending_cap(SpendingCap(D("50.00")), lines, "EUR")
    assert outcome.discounts == (
        CapDiscount("S", D("5.5"), D("-20.00")),
        CapDiscount("S", D(20), D("-30.00")),
    )


def test_a_discount_that_does_not_divide_evenly_gives_the_leftover_cent_to_the_first_rate():
    lines = [
        PricedLine(D("10.00"), "per_unit", "S", D(10)),
        PricedLine(D("10.00"), "per_unit", "S", D(20)),
        PricedLine(D("10.00"), "per_unit", "Z", D(0)),
    ]
    outcome = apply_spending_cap(SpendingCap(D("20.00")), lines, "EUR")
    assert [d.amount for d in outcome.discounts] == [D("-3.34"), D("-3.33"), D("-3.33")]


def test_a_zero_cap_makes_the_usage_free():
    outcome = apply_spending_cap(SpendingCap(D(0)), fleet_lines(), "EUR")
    assert outcome.discount == D("-48.00")


@pytest.mark.parametrize("amount", ["-1.00", "10.005"])
def test_a_cap_that_is_negative_or_finer_than_a_cent_is_refused(amount):
    with pytest.raises(ValueError, match="not a non-negative amount in EUR"):
        apply_spending_cap(SpendingCap(D(amount)), fleet_lines(), "EUR")


currencies = st.sampled_from(sorted(MINOR_UNITS))


@st.composite
def capped_periods(draw: st.DrawFn) -> tuple[str, list[PricedLine], SpendingCap]:
    currency = draw(currencies)
    places = -quantum(currency).as_tuple().exponent
    amounts = st.decimals(min_value=0, max_value=100_000, places=places)
    rates = st.sampled_from([("S", D(20)), ("S", D(10)), ("S", D("5.5")), ("Z", D(0))])
    models = st.sampled_from(["flat", "per_unit", "graduated", "volume", "package"])
    lines = [
        PricedLine(draw(amounts), draw(models), *draw(rates))
        for _ in range(draw(st.integers(0, 12)))
    ]
    cap = SpendingCap(draw(amounts), include_flat_fees=draw(st.booleans()))
    return currency, lines, cap


@PROPERTIES
@given(capped_periods())
def test_the_charges_a_cap_covers_never_cost_more_than_the_cap(period):
    currency, lines, cap = period
    outcome = apply_spending_cap(cap, lines, currency)
    covered = sum((line.amount for line in lines if cap.include_flat_fees or line.model != "flat"),
                  D(0))  # fmt: skip
    assert outcome.capped_amount == covered
    assert covered + outcome.discount == min(covered, cap.amount)
    uncovered = sum(line.amount for line in lines) - covered
    assert sum(line.amount for line in lines) + outcome.discount <= cap.amount + uncovered


@PROPERTIES
@given(capped_periods())
def test_lines_and_discounts_sum_to_the_totals_to_the_cent_and_no_vat_base_turns_negative(period):
    currency, lines, cap = period
    outcome = apply_spending_cap(cap, lines, currency)
    items = [(line.vat_category, line.vat_rate, line.amount) for line in lines]
    items += [(d.vat_category, d.vat_rate, d.amount) for d in outcome.discounts]
    totals = compute_totals(items, currency)
    assert totals.net == sum(amount for _, _, amount in items)
    assert all(subtotal.base >= 0 for subtotal in totals.subtotals)
    assert all(d.amount < 0 for d in outcome.discounts)
    assert all(d.amount == d.amount.quantize(quantum(currency)) for d in outcome.discounts)
