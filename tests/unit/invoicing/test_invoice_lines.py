"""Adjustment lines bill what changed in a period already invoiced, line by line."""

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from billing.invoicing.lines import LineData, adjustment_lines
from billing.invoicing.services import closed_periods
from billing.periods import Period

D = Decimal
OCTOBER = Period(2026, 10)
BOUNDS = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
KM = LineData(
    period="2026-10", period_start=BOUNDS[0], period_end=BOUNDS[1], vehicle_id="MOB-1",
    plan_code="liberte", plan_version=1, charge_index=1, metric="distance_km",
    model="per_unit", description="Kilomètres (plan liberte v1)", note="",
    quantity=D("100"), billable_quantity=D("100"), unit_code="KMT", unit_price=D("0.15"),
    amount=D("15.00"), vat_category="S", vat_rate=D("20"),
)  # fmt: skip


def adjust(measured, billed):
    return adjustment_lines(OCTOBER, BOUNDS, measured, billed, "fr")


def test_more_usage_than_billed_is_billed_at_the_unit_price():
    later = replace(KM, quantity=D("112.5"), billable_quantity=D("112.5"), amount=D("16.88"))

    [line] = adjust([later], [KM])

    assert (line.quantity, line.unit_price, line.amount) == (D("12.5"), D("0.15"), D("1.88"))
    assert line.description == "Régularisation période 2026-10 — Kilomètres (plan liberte v1)"
    assert line.note == "Déjà facturé : 100\u00a0km ; mesuré depuis : 112,5\u00a0km"


def test_less_usage_than_billed_gives_a_negative_line():
    [line] = adjust([replace(KM, quantity=D(60), billable_quantity=D(60), amount=D("9.00"))], [KM])

    assert (line.quantity, line.amount) == (D(-40), D("-6.00"))


def test_nothing_changed_or_only_free_units_changed_gives_no_line():
    included = replace(KM, quantity=D(120), amount=KM.amount)  # 20 km more, all included

    assert adjust([KM], [KM]) == []
    assert adjust([included], [KM]) == []


def test_a_line_billed_twice_counts_its_adjustments_already_issued():
    billed = [KM, replace(KM, quantity=D(10), billable_quantity=D(10), amount=D("1.50"))]
    measured = replace(KM, quantity=D(110), billable_quantity=D(110), amount=D("16.50"))

    assert adjust([measured], billed) == []


def test_a_change_of_vat_takes_the_old_rate_back_and_bills_the_new_one():
    reverse_charge = replace(KM, vat_category="AE", vat_rate=D(0))

    lines = adjust([reverse_charge], [KM])

    assert [(line.vat_category, line.amount) for line in lines] == [
        ("AE", D("15.00")), ("S", D("-15.00")),
    ]  # fmt: skip


def test_the_scheduler_looks_back_from_the_last_period_closed_anywhere():
    # 11:00 UTC on 30 November is 1 December in Kiritimati (UTC+14): November has closed.
    assert closed_periods(dt.datetime(2026, 11, 30, 11, tzinfo=dt.UTC), 3) == [
        Period(2026, 9), Period(2026, 10), Period(2026, 11),
    ]  # fmt: skip
    assert closed_periods(dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC), 1) == [Period(2026, 10)]
