"""Calendar arithmetic in a customer's time zone: billing months, local days, vehicle days.

A billing period is a calendar month in the customer's IANA time zone. Every
instant that leaves this module is a timezone-aware UTC `datetime`; naive datetimes are
refused because they would silently mean "whatever zone the server runs in".

Local days are cut at local midnight, so across a DST change a day lasts 23 or 25 hours
(Europe/Paris: 2026-03-29 and 2026-10-25). When a DST gap swallows midnight (zones such as
America/Santiago jump from 24:00 to 01:00), the day starts at the transition instant: a
local midnight that does not exist is read with the offset in force before the jump, which
lands exactly on the transition because IANA zones put such gaps at midnight.
"""

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

_PERIOD_PATTERN = re.compile(r"([0-9]{4})-([0-9]{2})")
_ONE_DAY = timedelta(days=1)
_ONE_MICROSECOND = timedelta(microseconds=1)
_VEHICLE_DAY_PLACES = 6


def as_utc(instant: datetime, name: str = "instant") -> datetime:
    """Return `instant` in UTC; raise ValueError, naming the argument, if it is naive."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive {instant.isoformat()}; "
            "give an offset or use datetime.UTC"
        )
    return instant.astimezone(UTC)


# The span of instants and periods taken from outside (API, CLI): from the Unix epoch, which
# telemetry timestamps count from, to the last month whose following month and local
# bounds exist in every time zone (Period(9999, 12).next() does not).
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """A calendar month, the billing period; ordered chronologically."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month} is out of range; months run from 1 to 12")
        if not 1 <= self.year <= 9999:
            raise ValueError(f"year {self.year} is out of range; years run from 1 to 9999")

    @classmethod
    def parse(cls, text: str) -> "Period":
        """Parse "YYYY-MM" (e.g. "2026-11") from 1970-01 to 9998-12; raise ValueError
        saying what is wrong."""
        match = _PERIOD_PATTERN.fullmatch(text)
        if match is None:
            raise ValueError(f"period {text!r} is not in the form YYYY-MM, e.g. 2026-11")
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ValueError(f"period {text!r} has month {match[2]}; months run from 01 to 12")
        if not FIRST_PERIOD.year <= year <= LAST_PERIOD.year:
            raise ValueError(
                f"period {text!r} is out of range; periods run from {FIRST_PERIOD} to {LAST_PERIOD}"
            )
        return cls(year, month)

    @classmethod
    def containing(cls, instant: datetime, tz: ZoneInfo) -> "Period":
        """The month that contains `instant` on the local calendar of `tz`."""
        local = as_utc(instant).astimezone(tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> "Period":
        """The following month."""
        if self.month == 12:
            return Period(self.year + 1, 1)
        return Period(self.year, self.month + 1)

    def previous(self) -> "Period":
        """The preceding month."""
        if self.month == 1:
            return Period(self.year - 1, 12)
        return Period(self.year, self.month - 1)

    def first_day(self) -> date:
        """The 1st of the month, a calendar date (no time zone)."""
        return date(self.year, self.month, 1)

    def days(self) -> int:
        """Number of calendar days in the month (28 to 31)."""
        return calendar.monthrange(self.year, self.month)[1]

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """UTC instants [start, end) of local midnight on the 1st and on the next month's 1st."""
        return _day_start(self.first_day(), tz), _day_start(self.next().first_day(), tz)


FIRST_PERIOD = Period(EARLIEST_INSTANT.year, 1)
LAST_PERIOD = Period(LATEST_INSTANT.year - 1, 12)


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    # fold=0 picks the first of two midnights (clocks set back) and, for a skipped
    # midnight, the offset before the gap, which is the transition instant itself.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants [start, end) of local calendar `day` in `tz`; 23 or 25 hours on DST days."""
    return _day_start(day, tz), _day_start(day + _ONE_DAY, tz)


def local_days(
    start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """The local days of `tz` overlapping [start, end), as (day, utc_start, utc_end).

    Each day's bounds are clipped to the interval, so the first and last entries may be
    partial days; the pieces tile [start, end) exactly. An empty interval has no days.
    """
    start, end = _interval(start, end)
    days: list[tuple[date, datetime, datetime]] = []
    if start == end:
        return days
    day = start.astimezone(tz).date()
    while True:
        day_start, day_end = local_day_bounds(day, tz)
        if day_start >= end:
            return days
        days.append((day, max(day_start, start), min(day_end, end)))
        day += _ONE_DAY


def vehicle_days(
    intervals: Iterable[tuple[datetime, datetime | None]],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> Decimal:
    """Days a vehicle was assigned within [start, end), for prorating per-period fees.

    `intervals` are assignment intervals [assigned_from, assigned_until), `None` meaning
    still assigned; overlapping intervals count once. Each local day contributes the
    assigned share of its own length, so a whole day counts 1 even when it lasts 23 or 25
    hours. The exact sum is rounded once, half-up to 6 decimals. Hazard: when one day is
    split between plans and each part is computed separately, the rounded parts may miss
    1 by a millionth (thirds of a day: 0.333333 * 3).
    """
    start, end = _interval(start, end)
    assigned = _union(_clipped(intervals, start, end))
    total = Fraction(0)
    for day, part_start, part_end in local_days(start, end, tz):
        day_start, day_end = local_day_bounds(day, tz)
        covered = _covered(assigned, part_start, part_end)
        total += Fraction(covered // _ONE_MICROSECOND, (day_end - day_start) // _ONE_MICROSECOND)
    return _round_half_up(total, _VEHICLE_DAY_PLACES)


def split_interval(
    start: datetime, end: datetime, cut_points: Iterable[datetime]
) -> list[tuple[datetime, datetime]]:
    """Cut [start, end) at the given instants, e.g. at a mid-period plan or owner change.

    Cut points outside the open interval (start, end) and repeated ones are ignored; the
    pieces are in order and tile [start, end). An empty interval gives no pieces.
    """
    start, end = _interval(start, end)
    if start == end:
        return []
    cuts = (as_utc(cut, "cut point") for cut in cut_points)
    inside = sorted({cut for cut in cuts if start < cut < end})
    return list(pairwise([start, *inside, end]))


def _interval(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = as_utc(start, "start"), as_utc(end, "end")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return start, end


def _clipped(
    intervals: Iterable[tuple[datetime, datetime | None]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    clipped = []
    for since, until in intervals:
        since = as_utc(since, "assigned_from")
        if until is not None and as_utc(until, "assigned_until") < since:
            raise ValueError(
                f"assignment ends {until.isoformat()} before it starts {since.isoformat()}"
            )
        since, until = max(since, start), end if until is None else min(until, end)
        if since < until:
            clipped.append((since, until))
    return clipped


def _union(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for since, until in sorted(intervals):
        if merged and since <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], until))
        else:
            merged.append((since, until))
    return merged


def _covered(
    assigned: list[tuple[datetime, datetime]], start: datetime, end: datetime
) -> timedelta:
    overlaps = (min(until, end) - max(since, start) for since, until in assigned)
    return sum((overlap for overlap in overlaps if overlap > timedelta(0)), timedelta(0))


def _round_half_up(value: Fraction, places: int) -> Decimal:
    scaled, remainder = divmod(value.numerator * 10**places, value.denominator)
    if 2 * remainder >= value.denominator:
        scaled += 1
    return Decimal(scaled).scaleb(-places)
