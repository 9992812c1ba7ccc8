"""The price of use derived from a bill of materials (docs/components.md).

Each component costs `unit_cost ÷ lifetime` in the unit that ends its life first at the
expected use (`km_per_month`, and `kwh_per_km` for the energy): a part whose distance runs
out first costs per km, one whose energy throughput or cycles run out first per kWh (a
cycle is `capacity_kwh` of throughput), one whose months run out first per month. The
costs are summed per basis, overheads added, and the price set so that the margin is the
given share of the price:

    cost  = parts × (1 + overhead_rate)  [+ overhead_per_month on the monthly fee]
    price = cost ÷ (1 − margin)

The plan has a flat monthly fee (`vehicle_days`, prorated by the engine), a price per km
and one per kWh, each only when some part is priced on that basis. Unit prices are rounded
half-up to 6 decimals (what a plan carries), the monthly fee to the currency's minor unit.
The result is a plan definition `billing.pricing.plans.parse_plan` accepts, with what each
component contributes. Pure: the standard library and `billing.money`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billing.components.bom import Bom, BomComponent
from billing.money import round_money

ZERO = Decimal(0)
ONE = Decimal(1)
UNIT_PRICE_QUANTUM = Decimal("0.000001")
PER_KM, PER_KWH, PER_MONTH = "per_km", "per_kwh", "per_month"
BASIS_OF_UNIT = {"km": PER_KM, "kwh": PER_KWH, "cycles": PER_KWH, "months": PER_MONTH}
DEFAULT_KWH_PER_KM = Decimal("0.015")  # a 350 W scooter in town: 15 Wh per km
DEFAULT_VAT_RATE = Decimal("20.00")


@dataclass(frozen=True, slots=True)
class DeriveOptions:
    km_per_month: Decimal
    margin: Decimal = Decimal("0.25")
    kwh_per_km: Decimal = DEFAULT_KWH_PER_KM
    overhead_rate: Decimal = ZERO
    overhead_per_month: Decimal = ZERO
    vat_rate: Decimal = DEFAULT_VAT_RATE
    code: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one component adds: its cost per unit of its basis, and per month at the
    expected use."""

    code: str
    name: str
    limiting_unit: str
    basis: str
    cost_per_unit: Decimal
    months_of_life: Decimal
    cost_per_month: Decimal


@dataclass(frozen=True, slots=True)
class DerivedPlan:
    plan: dict[str, Any]
    contributions: tuple[Contribution, ...]
    cost_per_km: Decimal
    cost_per_kwh: Decimal
    cost_per_month: Decimal
    expected_cost_per_month: Decimal
    expected_price_per_month: Decimal


class DeriveInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))


def derive_plan(bom: Bom, options: DeriveOptions) -> DerivedPlan:
    """The plan pricing the use of `bom`'s vehicle at cost plus overhead and margin."""
    _check(options)
    kwh_per_month = options.km_per_month * options.kwh_per_km
    totals = {PER_KM: ZERO, PER_KWH: ZERO, PER_MONTH: ZERO}
    contributions = []
    for component in bom.components:
        contribution, exact_cost = _contribution(component, options.km_per_month, kwh_per_month)
        totals[contribution.basis] += exact_cost  # summed exact, rounded once at the end
        contributions.append(contribution)
    uplift = ONE + options.overhead_rate
    per_km, per_kwh = totals[PER_KM] * uplift, totals[PER_KWH] * uplift
    per_month = totals[PER_MONTH] * uplift + options.overhead_per_month
    keep = ONE - options.margin
    price_km, price_kwh = _unit_price(per_km / keep), _unit_price(per_kwh / keep)
    fee = round_money(per_month / keep, bom.currency)
    charges: list[dict[str, Any]] = []
    if fee:
        charges.append(_charge("vehicle_days", "flat", "Usage du véhicule (mois)", amount=fee))
    if price_km:
        charges.append(_charge("distance_km", "per_unit", "Kilomètres", unit_amount=price_km))
    if price_kwh:
        charges.append(_charge("energy_kwh", "per_unit", "Énergie", unit_amount=price_kwh))
    if not charges:
        raise DeriveInvalid(
            {"_schema": ["every price rounds to 0: the parts cost less than the smallest "
                         "price a plan carries (0.000001 a unit, the currency's minor unit "
                         "a month)"]}
        )  # fmt: skip
    expected_cost = per_km * options.km_per_month + per_kwh * kwh_per_month + per_month
    expected_price = fee + price_km * options.km_per_month + price_kwh * kwh_per_month
    return DerivedPlan(
        plan={
            "code": options.code or plan_code(bom.model),
            "name": options.name or f"{bom.name or bom.model} — prix d'usage",
            "description": _description(bom, options),
            "currency": bom.currency,
            "vat_rate": format(options.vat_rate, "f"),
            "charges": charges,
        },
        contributions=tuple(contributions),
        cost_per_km=_unit_price(per_km),
        cost_per_kwh=_unit_price(per_kwh),
        cost_per_month=_unit_price(per_month),
        expected_cost_per_month=round_money(expected_cost, bom.currency),
        expected_price_per_month=round_money(expected_price, bom.currency),
    )


def plan_code(model: str) -> str:
    """The default code of a model's derived plan: "<model>-usage" in plan code letters."""
    letters = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in model)
    return f"{letters.lower()[:34]}-usage"


def _check(options: DeriveOptions) -> None:
    errors: dict[str, list[str]] = {}
    if not options.km_per_month > 0:
        errors["km_per_month"] = ["must be greater than 0"]
    if not 0 <= options.margin < 1:
        errors["margin"] = ["must be at least 0 and less than 1 (a share of the price)"]
    if not options.kwh_per_km > 0:
        errors["kwh_per_km"] = ["must be greater than 0"]
    if options.overhead_rate < 0:
        errors["overhead_rate"] = ["must not be negative"]
    if options.overhead_per_month < 0:
        errors["overhead_per_month"] = ["must not be negative"]
    if errors:
        raise DeriveInvalid(errors)


def _contribution(
    component: BomComponent, km_per_month: Decimal, kwh_per_month: Decimal
) -> tuple[Contribution, Decimal]:
    """What `component` contributes, and its exact cost per unit of its basis."""
    months_of_life: dict[str, Decimal] = {}
    per_unit: dict[str, Decimal] = {}
    for unit, limit in component.lifetime.limits().items():
        if unit == "km":
            months_of_life[unit], per_unit[unit] = limit / km_per_month, component.unit_cost / limit
        elif unit == "months":
            months_of_life[unit], per_unit[unit] = limit, component.unit_cost / limit
        else:  # kwh, or cycles of cycle_kwh() each
            kwh = limit if unit == "kwh" else limit * component.cycle_kwh()
            months_of_life[unit], per_unit[unit] = kwh / kwh_per_month, component.unit_cost / kwh
    # The unit that ends the part's life first at the expected use; ties go to the first
    # unit of LIFETIME_UNITS (km, kwh, cycles, months), the order of `limits()`.
    limiting = min(months_of_life, key=lambda unit: months_of_life[unit])
    months = months_of_life[limiting]
    contribution = Contribution(
        code=component.code,
        name=component.name,
        limiting_unit=limiting,
        basis=BASIS_OF_UNIT[limiting],
        cost_per_unit=_unit_price(per_unit[limiting]),
        months_of_life=_unit_price(months),
        cost_per_month=_unit_price(component.unit_cost / months),
    )
    return contribution, per_unit[limiting]


def _charge(metric: str, model: str, name: str, **numbers: Decimal) -> dict[str, Any]:
    return {
        "metric": metric,
        "model": model,
        "name": name,
        **{k: format(v, "f") for k, v in numbers.items()},
    }


def _unit_price(value: Decimal) -> Decimal:
    return value.quantize(UNIT_PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def _description(bom: Bom, options: DeriveOptions) -> str:
    return (
        f"Prix d'usage dérivé de la nomenclature {bom.model} : coût ÷ durée de vie de chaque "
        f"pièce, pour {format(options.km_per_month, 'f')} km par mois, frais généraux "
        f"{format(options.overhead_rate, 'f')} et {format(options.overhead_per_month, 'f')} "
        f"{bom.currency} par mois, marge {format(options.margin, 'f')} du prix."
    )
