"""Numbers, amounts, dates and times as the reader's locale writes them (Babel), in the
reader's time zone: `1 234,56 €` and `2 décembre 2026` in French, `€1,234.56` and
`December 2, 2026` in English."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import dates, numbers

from billing.periods import Period

LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def locale_of(language: str) -> str:
    return LOCALES.get(language, LOCALES["en"])


def money(amount: Decimal | None, currency: str, language: str) -> str:
    if amount is None:
        return "—"
    return numbers.format_currency(amount, currency, locale=locale_of(language))


def number(value: Decimal | int | None, language: str, places: int = 1) -> str:
    """A quantity with at most `places` decimals (km, kWh), grouped as the locale groups."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "#" * places if places else "")
    return numbers.format_decimal(value, format=pattern, locale=locale_of(language))


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
