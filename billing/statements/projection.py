"""Projection of a period in progress to its end: what the usage will be if each vehicle
keeps its pace, priced afterwards by the same engine as the statement.

Pure functions on plain data; the service supplies the segments and rates the result.

The rule, for each segment of the whole period (the customer's vehicles cut at the plan
and fleet changes known today, scheduled ones included):

    projected quantity = measured so far + pace x vehicle-days still to come

- pace: for each vehicle and metric, its quantity so far this period divided by its
  vehicle-days so far (all its segments with the customer, on a plan or not). Vehicle-days
  are local days, as for prorated fees, so on a vehicle held since the 1st this is the
  statement's quantities x (period days / elapsed days).
- vehicle-days still to come: the segment's vehicle-days over the whole period minus
  those already elapsed. Segments that are over get nothing more; segments that start
  later (a scheduled plan change) get the pace of their vehicle.
- The extrapolated part is rounded half-up to 3 decimals (metres and Wh); measured
  quantities stay exact. Projected active days never exceed the local days a segment spans.
- A vehicle with less than one vehicle-day so far has no meaningful pace: its usage is not
  extrapolated, only what it measured is kept (this is every vehicle in the first day of
  a period). Flat fees are unaffected: they always count the segment's full vehicle-days.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from billing.periods import local_days, vehicle_days
from billing.pricing.fees import Segment, SegmentQuantities

ZERO = Decimal(0)
MINIMUM_HISTORY_DAYS = Decimal(1)
EXTRAPOLATED_PLACES = Decimal("0.001")
# The quantities a plan can price besides vehicle_days (see billing.metering.usage.quantities).
USAGE_METRICS = ("distance_km", "energy_kwh", "trips", "trip_minutes", "active_days")

METHOD = (
    "Usage to date extrapolated by elapsed time, vehicle by vehicle: each metric's quantity "
    "so far divided by the vehicle-days the vehicle has been with the customer this period, "
    "times the vehicle-days still to come on each of its plans, added to the quantity "
    "measured (for a vehicle present since the 1st: quantities x period days / elapsed "
    "days). Known plan and fleet changes are followed; otherwise vehicles are assumed to "
    "stay where they are. Extrapolated quantities are rounded half-up to 3 decimals. Flat "
    "fees count the full vehicle-days of each vehicle still assigned. Vehicles with less "
    "than one vehicle-day of history are not extrapolated (not enough data): their usage so "
    "far is kept. The projected quantities are rated by the same engine as the statement, "
    "pooled charges on the projected pool."
)
NOT_ENOUGH_DATA = (
    "Less than one day of the period has elapsed: not enough data to extrapolate usage. "
    "The projection is the usage so far plus the fees of the full period."
)


@dataclass(frozen=True)
class ProjectedUsage:
    """The period's segments with projected quantities and full vehicle-days."""

    segments: tuple[SegmentQuantities, ...]
    elapsed_days: Decimal  # local days of the period elapsed at `as_of`, 6 decimals
    extrapolated: bool  # False in the first day of the period: nothing was extrapolated
    not_extrapolated: tuple[str, ...]  # vehicles with under one vehicle-day of history


def project_usage(
    measured: Sequence[SegmentQuantities],
    planned: Sequence[Segment],
    start: dt.datetime,
    as_of: dt.datetime,
    zone: ZoneInfo,
) -> ProjectedUsage:
    """Project the segments `planned` for the whole period from those `measured` up to
    `as_of` (the same segments cut at `as_of`), by the rule of this module."""
    history = _history(measured)
    so_far = {_key(item.segment): item for item in measured}
    # Most segments of a month share their bounds: compute the calendar once per bounds.
    days_of = functools.cache(lambda lo, hi: vehicle_days([(lo, hi)], lo, hi, zone))
    spanned_of = functools.cache(lambda lo, hi: Decimal(len(local_days(lo, hi, zone))))
    projected = []
    for segment in planned:
        full_days = days_of(segment.start, segment.end)
        measured_part = so_far.get(_key(segment))
        quantities = dict(measured_part.quantities) if measured_part else {}
        remaining = full_days - (measured_part.vehicle_days if measured_part else ZERO)
        past = history.get(segment.vehicle_id)
        for metric in USAGE_METRICS:
            quantity = quantities.get(metric, ZERO)
            if past is not None and remaining > 0:
                totals, days = past
                # Multiply before dividing: the product is exact, the division rounds once.
                extra = totals[metric] * remaining / days
                quantity += extra.quantize(EXTRAPOLATED_PLACES, ROUND_HALF_UP)
            quantities[metric] = quantity
        spanned = spanned_of(segment.start, segment.end)
        quantities["active_days"] = min(quantities["active_days"], spanned)
        projected.append(SegmentQuantities(segment, quantities, full_days))
    elapsed = vehicle_days([(start, as_of)], start, as_of, zone)
    vehicles = sorted({segment.vehicle_id for segment in planned})
    return ProjectedUsage(
        segments=tuple(projected),
        elapsed_days=elapsed,
        extrapolated=elapsed >= MINIMUM_HISTORY_DAYS,
        not_extrapolated=tuple(v for v in vehicles if v not in history),
    )


def _key(segment: Segment) -> tuple[str, dt.datetime, str | None]:
    # A segment cut at `as_of` keeps its vehicle, start and assignment.
    return segment.vehicle_id, segment.start, segment.assignment_id


def _history(
    measured: Sequence[SegmentQuantities],
) -> dict[str, tuple[Mapping[str, Decimal], Decimal]]:
    """Per vehicle with at least one vehicle-day so far: its quantities and vehicle-days."""
    totals: dict[str, dict[str, Decimal]] = {}
    days: dict[str, Decimal] = {}
    for item in measured:
        vehicle = item.segment.vehicle_id
        total = totals.setdefault(vehicle, dict.fromkeys(USAGE_METRICS, ZERO))
        for metric in USAGE_METRICS:
            total[metric] += item.quantities.get(metric, ZERO)
        days[vehicle] = days.get(vehicle, ZERO) + item.vehicle_days
    return {
        vehicle: (total, days[vehicle])
        for vehicle, total in totals.items()
        if days[vehicle] >= MINIMUM_HISTORY_DAYS
    }
