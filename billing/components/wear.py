"""Component wear from usage: life used and left, end of life, the next service, the cost of
the life a month consumed, and the lifetimes parts really had (docs/components.md).

Everything here works on plain numbers the caller has summed from the metering rollups:
distance (km), energy throughput (kWh) and days in service of one part over all the
vehicles it was fitted to. Rules:

- Life used per lifetime unit: km and kWh as measured; cycles = kWh ÷ the part's
  `capacity_kwh`; months = days in service ÷ DAYS_PER_MONTH (the mean Gregorian month).
- A part is worn out when any unit's remaining life is 0 or less; the unit that runs out
  first is the one whose projected date is earliest (by the vehicle's recent rate), or,
  without a rate, the one most used.
- Projections need a usage rate (km and kWh per day); with too little history the distance
  and energy units have no projected date, and the result says so. Months need no rate.
- A service is due `inspect_every_km` after the last inspection (or the fitting) or
  `inspect_every_months` after it, whichever first; it is urgent within the margins.
- The cost of use of some life is unit_cost × the largest share of any lifetime unit that
  life took (whichever-first, as the lifetime itself).

Values are Decimal, rounded half-up to 6 decimals (QUANTUM) where a division makes them
inexact. Pure: the standard library only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing.components.bom import LIFETIME_UNITS, BomComponent

ZERO = Decimal(0)
ONE = Decimal(1)
DAYS_PER_MONTH = Decimal("30.436875")  # 365.2425 / 12
QUANTUM = Decimal("0.000001")
# A rate from fewer days than this says little about the next months.
MIN_HISTORY_DAYS = 7
RATE_WINDOW_DAYS = 28


@dataclass(frozen=True, slots=True)
class LifeUsed:
    """What one part went through: over its whole life, and since its last service."""

    km: Decimal = ZERO
    kwh: Decimal = ZERO
    days: int = 0
    km_since_service: Decimal = ZERO
    days_since_service: int = 0


@dataclass(frozen=True, slots=True)
class UsageRate:
    """The vehicle's recent use: `km` and `kwh` over its last `days` days of rollups.

    Kept as totals, not quotients, so that a projection is exact: the days a remaining
    distance lasts are floor(remaining × days ÷ km), never off by one at a boundary."""

    km: Decimal
    kwh: Decimal
    days: int


@dataclass(frozen=True, slots=True)
class UnitWear:
    unit: str
    lifetime: Decimal
    used: Decimal
    remaining: Decimal
    fraction_used: Decimal
    projected_end: dt.date | None


@dataclass(frozen=True, slots=True)
class ServiceDue:
    km_remaining: Decimal | None
    days_remaining: int | None
    due_on: dt.date | None
    urgent: bool
    overdue: bool


@dataclass(frozen=True, slots=True)
class Wear:
    units: tuple[UnitWear, ...]
    limiting_unit: str
    worn_out: bool
    projected_end_of_life: dt.date | None
    history_sufficient: bool
    service: ServiceDue | None

    @property
    def due_on(self) -> dt.date | None:
        """The first of the projected end of life and the next service."""
        dates = [self.projected_end_of_life]
        if self.service is not None:
            dates.append(self.service.due_on)
        known = [date for date in dates if date is not None]
        return min(known) if known else None

    @property
    def needs_attention_now(self) -> bool:
        """Worn out, or a service urgent or overdue: due whatever the horizon."""
        service = self.service
        return self.worn_out or (service is not None and (service.urgent or service.overdue))


def usage_rate(km: Decimal, kwh: Decimal, days: int) -> UsageRate | None:
    """The rate of `km` and `kwh` over `days` days; None with fewer than MIN_HISTORY_DAYS."""
    if days < MIN_HISTORY_DAYS:
        return None
    return UsageRate(km, kwh, days)


def used_in_units(component: BomComponent, life: LifeUsed) -> dict[str, Decimal]:
    """The life `life` represents in each lifetime unit of `component`."""
    values = _all_units(component, life)
    return {unit: values[unit] for unit in component.lifetime.limits()}


def compute_wear(
    component: BomComponent, life: LifeUsed, rate: UsageRate | None, today: dt.date
) -> Wear:
    """The wear of one part of kind `component` that went through `life`, as of `today`."""
    used = used_in_units(component, life)
    units = tuple(
        _unit_wear(unit, limit, used[unit], rate, component, today)
        for unit, limit in component.lifetime.limits().items()
    )
    projected = [u.projected_end for u in units if u.projected_end is not None]
    if len(projected) == len(units):
        limiting = min(units, key=lambda u: (u.projected_end, -u.fraction_used))
    else:
        limiting = max(units, key=lambda u: u.fraction_used)
    return Wear(
        units=units,
        limiting_unit=limiting.unit,
        worn_out=any(u.remaining <= 0 for u in units),
        projected_end_of_life=min(projected) if projected else None,
        history_sufficient=rate is not None,
        service=_service_due(component, life, rate, today),
    )


def _unit_wear(
    unit: str,
    limit: Decimal,
    used: Decimal,
    rate: UsageRate | None,
    component: BomComponent,
    today: dt.date,
) -> UnitWear:
    remaining = limit - used
    return UnitWear(
        unit=unit,
        lifetime=limit,
        used=used,
        remaining=remaining,
        fraction_used=_q(used / limit),
        projected_end=_unit_end(unit, remaining, rate, component, today),
    )


def _unit_end(
    unit: str, remaining: Decimal, rate: UsageRate | None, component: BomComponent, today: dt.date
) -> dt.date | None:
    """The day `remaining` of `unit` runs out at the vehicle's rate."""
    if unit == "months":
        # A month of life is DAYS_PER_MONTH days, whatever the use.
        return _projected(today, remaining * DAYS_PER_MONTH, ONE, 1)
    if rate is None:
        return None
    if unit == "km":
        return _projected(today, remaining, rate.km, rate.days)
    if unit == "kwh":
        return _projected(today, remaining, rate.kwh, rate.days)
    # cycles: each is capacity_kwh of throughput
    return _projected(today, remaining * component.cycle_kwh(), rate.kwh, rate.days)


@dataclass(frozen=True, slots=True)
class Due:
    """When a part is due, without the rest of its wear: what a fleet-wide list sorts on."""

    due_on: dt.date | None
    projected_end_of_life: dt.date | None
    worn_out: bool
    needs_attention_now: bool


def due_of(component: BomComponent, life: LifeUsed, rate: UsageRate | None, today: dt.date) -> Due:
    """What `compute_wear` finds of when the part is due (its `due_on`,
    `projected_end_of_life`, `worn_out`, `needs_attention_now`), by the same rules, for
    less: no per-unit figures are kept."""
    used = used_in_units(component, life)
    ends, worn = [], False
    for unit, limit in component.lifetime.limits().items():
        remaining = limit - used[unit]
        worn = worn or remaining <= 0
        end = _unit_end(unit, remaining, rate, component, today)
        if end is not None:
            ends.append(end)
    end_of_life = min(ends) if ends else None
    service = _service_due(component, life, rate, today)
    dates = [d for d in (end_of_life, service.due_on if service else None) if d is not None]
    return Due(
        due_on=min(dates) if dates else None,
        projected_end_of_life=end_of_life,
        worn_out=worn,
        needs_attention_now=worn or (service is not None and service.urgent),
    )


def _projected(today: dt.date, remaining: Decimal, amount: Decimal, days: int) -> dt.date | None:
    """The day `remaining` runs out when `amount` is used every `days` days: today when
    already out, None when nothing is used (it never runs out) or past the calendar.

    floor(remaining × days ÷ amount), by Decimal floor division: exact, since the
    quotient of numbers of a few decimals is an integer exactly when it should be."""
    if remaining <= 0:
        return today
    if amount <= 0:
        return None
    whole_days = int((remaining * days) // amount)
    if whole_days > (dt.date.max - today).days:
        return None
    return today + dt.timedelta(days=whole_days)


def _service_due(
    component: BomComponent, life: LifeUsed, rate: UsageRate | None, today: dt.date
) -> ServiceDue | None:
    service = component.service
    if service is None:
        return None
    km_remaining = days_remaining = None
    dates: list[dt.date] = []
    urgent = overdue = False
    if service.every_km is not None:
        km_remaining = service.every_km - life.km_since_service
        overdue |= km_remaining <= 0
        if service.urgent_within_km is not None:
            urgent |= km_remaining <= service.urgent_within_km
        if rate is not None:
            by_km = _projected(today, km_remaining, rate.km, rate.days)
            if by_km is not None:
                dates.append(by_km)
    if service.every_months is not None:
        interval_days = math.floor(service.every_months * DAYS_PER_MONTH)
        days_remaining = interval_days - life.days_since_service
        overdue |= days_remaining <= 0
        if service.urgent_within_days is not None:
            urgent |= days_remaining <= service.urgent_within_days
        dates.append(today + dt.timedelta(days=max(days_remaining, 0)))
    return ServiceDue(
        km_remaining=km_remaining,
        days_remaining=days_remaining,
        due_on=min(dates) if dates else None,
        urgent=urgent or overdue,
        overdue=overdue,
    )


@dataclass(frozen=True, slots=True)
class DueBound:
    """A component's limits as floats in metres, watt-hours and days, for `could_be_due`."""

    distance_m: float | None
    energy_wh: float | None
    life_days: float | None
    service_every_m: float | None
    service_every_days: float | None
    urgent_m: float
    urgent_days: float

    @classmethod
    def of(cls, component: BomComponent) -> DueBound:
        lifetime, service = component.lifetime, component.service
        energy = [
            float(kwh) * 1000
            for kwh in (lifetime.kwh, component.cycles_in_kwh())
            if kwh is not None
        ]
        return cls(
            distance_m=None if lifetime.km is None else float(lifetime.km) * 1000,
            energy_wh=min(energy) if energy else None,
            life_days=None if lifetime.months is None else float(lifetime.months * DAYS_PER_MONTH),
            service_every_m=_float(service.every_km if service else None, 1000),
            service_every_days=_float(service.every_months if service else None, DAYS_PER_MONTH),
            urgent_m=_float(service.urgent_within_km if service else None, 1000) or 0.0,
            urgent_days=_float(service.urgent_within_days if service else None, 1) or 0.0,
        )


def _float(value: Decimal | None, scale: Decimal | int) -> float | None:
    return None if value is None else float(value * scale)


def could_be_due(
    bound: DueBound,
    distance_m: int,
    energy_wh: int,
    days: int,
    since_service_m: int,
    days_since_service: int,
    rate: UsageRate | None,
    horizon_days: int,
) -> bool:
    """Whether a part might be due within `horizon_days`, in floats: False only when
    `compute_wear` would find it neither due by then nor needing attention now (margins of
    two days and a metre cover the floats' rounding and the floors). Lets a fleet-wide list
    compute the exact wear of the few parts that can be due, not of every part."""
    reach = horizon_days + 2
    per_day_m = per_day_wh = 0.0
    if rate is not None:
        per_day_m = float(rate.km) * 1000 / rate.days
        per_day_wh = float(rate.kwh) * 1000 / rate.days
    for limit, used, per_day in (
        (bound.distance_m, distance_m, per_day_m),
        (bound.energy_wh, energy_wh, per_day_wh),
    ):
        if limit is not None and limit - used <= max(per_day * reach, 1.0):
            return True
    if bound.life_days is not None and bound.life_days - days <= reach:
        return True
    if bound.service_every_m is not None:
        left = bound.service_every_m - since_service_m
        if left <= max(bound.urgent_m + 1, per_day_m * reach, 1.0):
            return True
    if bound.service_every_days is not None:
        left = bound.service_every_days - days_since_service
        if left <= max(bound.urgent_days, reach) + 1:
            return True
    return False


def life_fraction(component: BomComponent, used: Mapping[str, Decimal]) -> Decimal:
    """The share of the part's life that `used` (per unit) took: the largest of any unit."""
    limits = component.lifetime.limits()
    return max((used.get(unit, ZERO) / limit for unit, limit in limits.items()), default=ZERO)


def wear_cost(component: BomComponent, life: LifeUsed) -> Decimal:
    """What the life `life` cost: unit_cost × its share of the part's life (unrounded)."""
    return component.unit_cost * life_fraction(component, used_in_units(component, life))


# --- learned lifetimes --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LearnedLifetime:
    """The lifetimes parts of one kind really had in one unit, next to the BOM's figure."""

    unit: str
    bom_lifetime: Decimal | None
    count: int
    median: Decimal
    p10: Decimal
    p90: Decimal


def learned_lifetimes(
    component: BomComponent, worn_parts: Iterable[LifeUsed]
) -> tuple[LearnedLifetime, ...]:
    """Count, median, 10th and 90th percentiles of the life of `worn_parts` in each unit of
    the component's lifetime (and km and months, which every part has). Percentiles
    interpolate linearly between the closest ranks (rank (n − 1) × p), so one part gives its
    own figure for all three. Empty when no part was removed worn."""
    parts = list(worn_parts)
    if not parts:
        return ()
    limits = component.lifetime.limits()
    units = [unit for unit in LIFETIME_UNITS if unit in limits or unit in ("km", "months")]
    if "cycles" in units and not component.capacity_kwh:
        units.remove("cycles")
    values = {unit: sorted(_all_units(component, life)[unit] for life in parts) for unit in units}
    return tuple(
        LearnedLifetime(
            unit=unit,
            bom_lifetime=limits.get(unit),
            count=len(values[unit]),
            median=percentile(values[unit], Decimal("0.5")),
            p10=percentile(values[unit], Decimal("0.1")),
            p90=percentile(values[unit], Decimal("0.9")),
        )
        for unit in units
    )


def _all_units(component: BomComponent, life: LifeUsed) -> dict[str, Decimal]:
    """`life` in every unit the part can be measured in (cycles only with a capacity)."""
    values = {"km": life.km, "kwh": life.kwh, "months": _q(Decimal(life.days) / DAYS_PER_MONTH)}
    if component.capacity_kwh:
        values["cycles"] = _q(life.kwh / component.capacity_kwh)
    return values


def percentile(ordered: Sequence[Decimal], p: Decimal) -> Decimal:
    """The `p` quantile (0 ≤ p ≤ 1) of ascending `ordered` values, linearly interpolated."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return _q(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _q(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)
