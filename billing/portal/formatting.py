"""Numbers, amounts, dates and times as the reader's locale writes them (Babel), in the
reader's time zone: `1 234,56 €` and `2 décembre 2026` in French, `€1,234.56` and
`December 2, 2026` in English."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from babel import dates, numbers

from billing.money import MINOR_UNITS
from billing.periods import Period

LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def locale_of(language: str) -> str:
    return LOCALES.get(language, LOCALES["en"])


# A page shows hundreds of amounts (a row per vehicle, a chart's table): Babel's
# format_currency costs about 0.1 ms each, as it parses its pattern every time. The layout
# of each locale and currency is taken once from Babel's own rendering of a sample amount
# (separators, symbol, sign) and applied with str.format; tests/unit/portal compares the
# two on many amounts.
_SAMPLE = Decimal("1234567.89")


@dataclass(frozen=True)
class _Layout:
    group: str
    decimal: str
    positive: str  # "{}\u00a0€", "€{}"
    negative: str


@functools.cache
def _money_layout(currency: str, locale: str) -> _Layout:
    positive = numbers.format_currency(_SAMPLE, currency, locale=locale)
    negative = numbers.format_currency(-_SAMPLE, currency, locale=locale)
    digits = re.search(r"1(?P<g>\D*)234(?P=g)567(\D+)89", positive)
    if digits is None:  # a layout this shortcut does not know: Babel every time
        return _Layout("", "", "", "")
    group, decimal = digits.group("g"), digits.group(2)
    placeholder = f"1{group}234{group}567{decimal}89"
    return _Layout(group, decimal, positive.replace(placeholder, "{}"),
                   negative.replace(placeholder, "{}"))  # fmt: skip


def money(amount: Decimal | None, currency: str, language: str) -> str:
    """An amount as the locale writes it, with its currency: `1 234,56 €`, `€1,234.56`."""
    if amount is None:
        return "—"
    locale = locale_of(language)
    layout = _money_layout(currency, locale)
    places = MINOR_UNITS.get(currency)
    if not layout.positive or places is None or amount != round(amount, places):
        return numbers.format_currency(amount, currency, locale=locale)
    digits = _grouped(abs(amount), places, layout.group, layout.decimal)
    return (layout.negative if amount < 0 else layout.positive).format(digits)


def _grouped(value: Decimal, places: int, group: str, decimal: str) -> str:
    text = f"{value:,.{places}f}"
    return text.replace(",", "\x00").replace(".", decimal).replace("\x00", group)


@functools.cache
def _number_separators(locale: str) -> tuple[str, str]:
    sample = numbers.format_decimal(_SAMPLE, format="#,##0.##", locale=locale)
    found = re.search(r"1(?P<g>\D*)234(?P=g)567(\D+)89", sample)
    return (found.group("g"), found.group(2)) if found else (",", ".")


def number(value: Decimal | int | float | None, language: str, places: int = 1) -> str:
    """A quantity with at most `places` decimals (km, kWh), grouped as the locale groups,
    rounded half-even as Babel rounds."""
    if value is None:
        return "—"
    group, decimal = _number_separators(locale_of(language))
    quantized = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    text = _grouped(abs(quantized), places, group, decimal)
    if places:
        text = text.rstrip("0").removesuffix(decimal)
    return ("-" + text) if quantized < 0 and text.strip("0" + group + decimal) else text


def percent(rate: Decimal, language: str) -> str:
    return numbers.format_decimal(rate, format="#,##0.##", locale=locale_of(language)) + " %"


def long_date(
    day: dt.date | dt.datetime | None, language: str, zone: ZoneInfo | None = None
) -> str:
    if day is None:
        return "—"
    if isinstance(day, dt.datetime):
        day = day.astimezone(zone).date() if zone else day.date()
    return dates.format_date(day, format="long", locale=locale_of(language))


def short_date(day: dt.date | None, language: str) -> str:
    if day is None:
        return "—"
    return dates.format_date(day, format="short", locale=locale_of(language))


def time_of_day(instant: dt.datetime | None, zone: ZoneInfo, language: str) -> str:
    if instant is None:
        return "—"
    return dates.format_time(instant.astimezone(zone), format="short", locale=locale_of(language))


def date_time(instant: dt.datetime | None, zone: ZoneInfo, language: str) -> str:
    """`2 décembre 2026 à 14:05` (in `zone`)."""
    if instant is None:
        return "—"
    local = instant.astimezone(zone)
    return dates.format_datetime(local, format="d MMMM y HH:mm", locale=locale_of(language))


def month(period: Period | str, language: str) -> str:
    """`décembre 2026`, `December 2026` (of a Period or its "2026-12")."""
    if isinstance(period, str):
        period = Period.parse(period)
    first = dt.date(period.year, period.month, 1)
    return dates.format_date(first, format="LLLL y", locale=locale_of(language))


def day_label(day: dt.date, language: str) -> str:
    return dates.format_date(day, format="d MMM", locale=locale_of(language))
