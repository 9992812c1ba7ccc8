"""The priced lines of a period: one plan version's segments rated into lines, their totals
and the customer's spending cap on them, whatever the period's usage was measured or
projected from.

Plain data and no database, so that statements, invoices and forecasts price a period by
the one rule: segments of one plan version are rated together (pooled charges see the
customer's whole pool on that version), and each line takes the VAT of the customer's
treatment at its plan's rate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.money import ZERO, round_money
from billing.periods import Period
from billing.pricing import rating
from billing.pricing.caps import CapOutcome, PricedLine, SpendingCap, apply_spending_cap
from billing.pricing.plans import Plan
from billing.vat import Totals, VatTreatment, compute_totals, line_vat


@dataclass(frozen=True)
class Segment:
    """A vehicle, its plan (None: no plan) and the stretch [start, end) they cover."""

    vehicle_id: str
    plan_code: str | None
    plan_version: int | None
    start: dt.datetime
    end: dt.datetime
    assignment_id: str | None = None


@dataclass(frozen=True)
class StatementLine:
    """One charge of one plan on one vehicle's segment of the month."""

    vehicle_id: str
    plan_code: str
    plan_version: int
    segment_start: dt.datetime
    segment_end: dt.datetime
    charge_index: int
    charge_name: str | None
    rated: rating.RatedLine
    vat_category: str
    vat_rate: Decimal

    @property
    def amount(self) -> Decimal:
        return self.rated.amount


@dataclass(frozen=True)
class SegmentQuantities:
    """What rating needs of a segment: the quantities a plan can price and its vehicle days.

    Measured usage for a statement or an invoice; projected usage for a forecast.
    """

    segment: Segment
    quantities: Mapping[str, Decimal]
    vehicle_days: Decimal


def rate_version(
    plan: Plan,
    key: tuple[str, int],
    items: Sequence[SegmentQuantities],
    period: Period,
    vat: VatTreatment,
) -> list[StatementLine]:
    """The lines of the segments on one plan version (`key`: its code and number), rated
    together so that pooled charges see them all; each segment's lines in charge order."""
    vehicles = [
        rating.VehicleUsage(
            vehicle_id=item.segment.vehicle_id,
            quantities=item.quantities,
            days_on_plan=item.vehicle_days,
        )
        for item in items
    ]
    rated = rating.rate_vehicles(plan, vehicles, period.days())
    category, rate = line_vat(vat, plan.vat_rate)
    per_vehicle = len(plan.charges)
    return [
        StatementLine(
            vehicle_id=line.vehicle_id,
            plan_code=key[0],
            plan_version=key[1],
            segment_start=items[index // per_vehicle].segment.start,
            segment_end=items[index // per_vehicle].segment.end,
            charge_index=line.charge_index,
            charge_name=plan.charges[line.charge_index].name,
            rated=line,
            vat_category=category,
            vat_rate=rate,
        )
        for index, line in enumerate(rated)
    ]


def statement_totals(
    lines: Sequence[StatementLine], currency: str, cap: CapOutcome | None = None
) -> Totals:
    """The VAT breakdown and totals of rated lines, with the discount of `cap` if any."""
    items = [(line.vat_category, line.vat_rate, line.amount) for line in lines]
    if cap is not None:
        items += [(d.vat_category, d.vat_rate, d.amount) for d in cap.discounts]
    return compute_totals(items, currency)


def apply_cap(
    cap: SpendingCap | None, lines: Sequence[StatementLine], currency: str
) -> CapOutcome | None:
    """The spending cap on a customer's priced lines of a period (None without a cap)."""
    if cap is None:
        return None
    priced = (PricedLine(i.amount, i.rated.model, i.vat_category, i.vat_rate) for i in lines)
    return apply_spending_cap(cap, priced, currency)


def vehicle_amounts(
    lines: Iterable[StatementLine], vehicle_ids: Iterable[str], currency: str
) -> dict[str, Decimal]:
    """What the lines bill each of `vehicle_ids`, before VAT and any spending-cap discount;
    a vehicle without lines is billed zero in the currency's minor unit."""
    amounts = dict.fromkeys(vehicle_ids, round_money(ZERO, currency))
    for line in lines:
        amounts[line.vehicle_id] += line.amount
    return amounts
