"""Wear from plain numbers: life used and left per unit, the unit that runs out first, the
projected end of life, the next service, the cost of life used, learned lifetimes."""

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.components.bom import BomComponent, Lifetime, ServiceInterval, parse_bom
from billing.components.wear import (
    DueBound,
    LifeUsed,
    UsageRate,
    compute_wear,
    could_be_due,
    due_of,
    learned_lifetimes,
    life_fraction,
    percentile,
    usage_rate,
    used_in_units,
    wear_cost,
)

TODAY = dt.date(2026, 11, 15)
BATTERY = BomComponent(
    "battery", "Batterie", "energy", D("420.00"), Lifetime(cycles=D(800), months=D(60)),
    capacity_kwh=D("0.72"), service=ServiceInterval(every_months=D(6), urgent_within_days=D(14)),
)  # fmt: skip
TYRE = BomComponent(
    "tyre", "Pneu", "wear", D("30.00"), Lifetime(km=D(4000)),
    service=ServiceInterval(every_km=D(1000), urgent_within_km=D(200)),
)  # fmt: skip
PROPERTIES = settings(deadline=None, database=None, max_examples=80)


def test_cycles_are_throughput_over_capacity_and_months_days_over_the_mean_month():
    life = LifeUsed(km=D(1200), kwh=D(36), days=365)
    assert used_in_units(BATTERY, life) == {"cycles": D(50), "months": D("11.992033")}


def test_the_tyre_is_projected_at_the_recent_rate_and_its_service_too():
    rate = UsageRate(km=D(560), kwh=D("8.4"), days=28)  # 20 km a day
    life = LifeUsed(km=D(2500), days=120, km_since_service=D(900), days_since_service=40)
    wear = compute_wear(TYRE, life, rate, TODAY)
    [km] = wear.units
    assert (km.used, km.remaining, km.fraction_used) == (D(2500), D(1500), D("0.625"))
    assert km.projected_end == TODAY + dt.timedelta(days=75)  # 1500 km at 20 a day
    assert wear.limiting_unit == "km" and not wear.worn_out
    assert wear.service.km_remaining == D(100)
    assert wear.service.urgent and not wear.service.overdue  # within the 200 km margin
    assert wear.service.due_on == TODAY + dt.timedelta(days=5)
    assert wear.due_on == TODAY + dt.timedelta(days=5)


def test_without_history_only_months_are_projected():
    life = LifeUsed(kwh=D(288), days=900, days_since_service=100)
    wear = compute_wear(BATTERY, life, None, TODAY)
    cycles, months = wear.units
    assert cycles.used == D(400) and cycles.projected_end is None
    # 60 months − 900 days (29.569… months) = 30.430… months left, floor of 926.2 days
    assert months.projected_end == TODAY + dt.timedelta(days=926)
    assert not wear.history_sufficient
    assert wear.projected_end_of_life == months.projected_end
    assert wear.limiting_unit == "cycles"  # the most used, without a rate: 0.5 > 0.49
    # every 6 months = 182 days; 100 gone
    assert wear.service.days_remaining == 82 and not wear.service.urgent


def test_a_part_past_its_life_is_worn_out_and_due_today():
    wear = compute_wear(TYRE, LifeUsed(km=D(4100), days=200), None, TODAY)
    assert wear.worn_out and wear.units[0].remaining == D(-100)
    assert wear.needs_attention_now


def test_an_unused_vehicle_never_reaches_the_end_of_a_distance_life():
    wear = compute_wear(TYRE, LifeUsed(km=D(10)), UsageRate(D(0), D(0), 28), TODAY)
    assert wear.projected_end_of_life is None and wear.history_sufficient


def test_a_projection_that_falls_on_a_whole_day_is_that_day():
    # 340 km left at 170 km per 14 days: exactly 28 days (a quotient 12.142857… per day
    # would give 27.999… and lose a day).
    rate = UsageRate(km=D(170), kwh=D(3), days=14)
    wear = compute_wear(TYRE, LifeUsed(km=D(3660)), rate, TODAY)
    assert wear.units[0].projected_end == TODAY + dt.timedelta(days=28)


def test_a_rate_needs_seven_days():
    assert usage_rate(D(60), D(1), 6) is None
    assert usage_rate(D(70), D(1), 7) == UsageRate(D(70), D(1), 7)


def test_the_cost_of_life_used_is_the_largest_share_of_any_unit():
    life = LifeUsed(kwh=D("5.76"), days=31)  # 8 cycles = 1 %; 1.018501 months = 1.70 %
    assert life_fraction(BATTERY, used_in_units(BATTERY, life)) == D("1.018501") / 60
    assert wear_cost(BATTERY, life).quantize(D("0.01")) == D("7.13")


def test_learned_lifetimes_give_count_median_and_percentiles_per_unit():
    lives = [LifeUsed(km=D(km), days=days) for km, days in [(2000, 100), (2500, 120), (3000, 90),
                                                           (3500, 200), (1800, 60)]]  # fmt: skip
    km, months = learned_lifetimes(TYRE, lives)
    assert (km.unit, km.bom_lifetime, km.count) == ("km", D(4000), 5)
    # sorted 1800 2000 2500 3000 3500: rank 0.4 → 1880, rank 2 → 2500, rank 3.6 → 3300
    assert (km.p10, km.median, km.p90) == (D(1880), D(2500), D(3300))
    assert months.bom_lifetime is None and months.count == 5
    assert learned_lifetimes(TYRE, []) == ()


def test_one_part_gives_its_own_figure_for_every_percentile():
    [km, _months] = learned_lifetimes(TYRE, [LifeUsed(km=D(2222), days=1)])
    assert km.p10 == km.median == km.p90 == D(2222)


quantities = st.decimals(min_value=D(0), max_value=D(100000), places=3)


@PROPERTIES
@given(quantities, quantities, st.integers(min_value=0, max_value=20000))
def test_used_and_remaining_always_add_up_to_the_lifetime(km, kwh, days):
    for component in (BATTERY, TYRE):
        wear = compute_wear(component, LifeUsed(km=km, kwh=kwh, days=days), None, TODAY)
        for unit in wear.units:
            assert unit.used + unit.remaining == unit.lifetime
        assert wear.worn_out == any(u.remaining <= 0 for u in wear.units)


@PROPERTIES
@given(quantities, quantities, st.integers(min_value=0, max_value=5000))
def test_more_use_never_costs_less_nor_ends_life_later(km, extra, days):
    rate = UsageRate(D(420), D("5.6"), 28)
    less = LifeUsed(km=km, kwh=km / 50, days=days)
    more = LifeUsed(km=km + extra, kwh=(km + extra) / 50, days=days)
    assert wear_cost(TYRE, more) >= wear_cost(TYRE, less)
    ends = [compute_wear(TYRE, life, rate, TODAY).projected_end_of_life for life in (less, more)]
    assert ends[1] <= ends[0]


@PROPERTIES
@given(st.lists(quantities, min_size=1, max_size=30))
def test_percentiles_are_ordered_and_within_the_values(values):
    ordered = sorted(values)
    p10, p50, p90 = (percentile(ordered, D(p)) for p in ("0.1", "0.5", "0.9"))
    assert ordered[0] <= p10 <= p50 <= p90 <= ordered[-1]


S1 = parse_bom(
    yaml.safe_load(
        (Path(__file__).resolve().parents[3] / "config" / "bom" / "s1.yaml").read_text("utf-8")
    )
)


@settings(deadline=None, database=None, max_examples=300)
@given(
    st.sampled_from(S1.components),
    st.integers(min_value=0, max_value=30_000_000),  # metres
    st.integers(min_value=0, max_value=900_000),  # watt-hours
    st.integers(min_value=0, max_value=8000),  # days in service
    st.integers(min_value=0, max_value=6_000_000),
    st.integers(min_value=0, max_value=800),
    st.one_of(
        st.none(),
        st.tuples(
            st.integers(min_value=0, max_value=2_000_000),
            st.integers(min_value=0, max_value=30_000),
            st.integers(min_value=7, max_value=28),
        ),
    ),
    st.integers(min_value=0, max_value=400),
)
def test_the_float_bound_never_skips_a_part_the_exact_wear_finds_due(
    component, metres, watt_hours, days, since_m, days_since, rate, horizon
):
    usage = None if rate is None else UsageRate(D(rate[0]) / 1000, D(rate[1]) / 1000, rate[2])
    life = LifeUsed(
        km=D(metres) / 1000, kwh=D(watt_hours) / 1000, days=days,
        km_since_service=D(min(since_m, metres)) / 1000, days_since_service=days_since,
    )  # fmt: skip
    wear = compute_wear(component, life, usage, TODAY)
    due = wear.needs_attention_now or (
        wear.due_on is not None and wear.due_on <= TODAY + dt.timedelta(days=horizon)
    )
    if due:
        assert could_be_due(
            DueBound.of(component), metres, watt_hours, days, min(since_m, metres), days_since,
            usage, horizon,
        )  # fmt: skip


@settings(deadline=None, database=None, max_examples=200)
@given(
    st.sampled_from(S1.components),
    st.integers(min_value=0, max_value=30_000_000),
    st.integers(min_value=0, max_value=900_000),
    st.integers(min_value=0, max_value=8000),
    st.integers(min_value=0, max_value=800),
    st.one_of(
        st.none(), st.tuples(st.integers(0, 2_000_000), st.integers(0, 30_000), st.integers(7, 28))
    ),
)
def test_when_a_part_is_due_is_what_its_whole_wear_says(component, metres, watt_hours, days,
                                                        days_since, rate):  # fmt: skip
    usage = None if rate is None else UsageRate(D(rate[0]) / 1000, D(rate[1]) / 1000, rate[2])
    life = LifeUsed(km=D(metres) / 1000, kwh=D(watt_hours) / 1000, days=days,
                    km_since_service=D(metres) / 2000, days_since_service=days_since)  # fmt: skip
    whole, due = compute_wear(component, life, usage, TODAY), due_of(component, life, usage, TODAY)
    assert (due.due_on, due.projected_end_of_life, due.worn_out, due.needs_attention_now) == (
        whole.due_on, whole.projected_end_of_life, whole.worn_out, whole.needs_attention_now,
    )  # fmt: skip
