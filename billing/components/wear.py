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
    """The vehicle's recent use per day, from `days` days of rollups."""

    km_per_day: Decimal
    kwh_per_day: Decimal
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
    return UsageRate(km / days, kwh / days, days)


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
    per_day = _per_day(unit, rate, component)
    return UnitWear(
        unit=unit,
        lifetime=limit,
        used=used,
        remaining=remaining,
        fraction_used=_q(used / limit),
        projected_end=None if per_day is None else _projected(today, remaining, per_day),
    )


def _per_day(unit: str, rate: UsageRate | None, component: BomComponent) -> Decimal | None:
    """How much of `unit` a day takes: a month is 1/DAYS_PER_MONTH of a day's worth."""
    if unit == "months":
        return 1 / DAYS_PER_MONTH
    if rate is None:
        return None
    if unit == "km":
        return rate.km_per_day
    if unit == "kwh":
        return rate.kwh_per_day
    return rate.kwh_per_day / component.capacity_kwh  # type: ignore[operator]


def _projected(today: dt.date, remaining: Decimal, per_day: Decimal) -> dt.date | None:
    """The day `remaining` runs out at `per_day`: today when already out, None when the
    vehicle is not used (it never runs out) or the date is past the calendar."""
    if remaining <= 0:
        return today
    if per_day <= 0:
        return None
    days = math.floor(remaining / per_day)
    if days > (dt.date.max - today).days:
        return None
    return today + dt.timedelta(days=days)


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
            by_km = _projected(today, km_remaining, rate.km_per_day)
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
