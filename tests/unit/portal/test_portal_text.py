"""The pages' words, numbers and charts, without Flask or a database."""

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from billing.periods import Period
from billing.portal import formatting, i18n
from billing.portal.charts import Chart, Series, render_svg

TEMPLATES = Path(__file__).parents[3] / "billing" / "portal" / "templates"
SOURCES = Path(__file__).parents[3] / "billing" / "portal"
# _("…") in templates, _t("…") and translate(language(), "…") in the views, whose
# messages may be string literals written one after the other.
CALL = re.compile(r'(?:\b_t?\(|translate\(\s*language\(\),)\s*(?=")')
LITERAL = re.compile(r'\s*"((?:[^"\\]|\\.)*)"')


def messages_in(text: str) -> set[str]:
    found = set()
    for call in CALL.finditer(text):
        position, parts = call.end(), []
        while literal := LITERAL.match(text, position):
            parts.append(literal.group(1).replace('\\"', '"'))
            position = literal.end()
        found.add("".join(parts))
    return found


def test_every_message_of_the_pages_has_its_french():
    used = set()
    for path in [*TEMPLATES.rglob("*.html"), *SOURCES.glob("*.py")]:
        used |= messages_in(path.read_text(encoding="utf-8"))
    used -= {"invoice", "credit_note"}  # kinds, translated by their catalogue keys below
    missing = sorted(m for m in used if m not in i18n.FRENCH)
    assert missing == []


def test_statuses_and_kinds_read_in_french():
    words = ("to pay", "paid", "overdue", "draft", "finalized", "void", "invoice", "credit_note")
    for word in (*words, "no_customer", "no_plan"):
        assert word in i18n.FRENCH, word


def test_a_missing_translation_falls_back_to_english_with_its_fields():
    assert i18n.translate("fr", "Vehicle {id}", id="MOB-1") == "Véhicule MOB-1"
    assert i18n.translate("de", "Vehicle {id}", id="MOB-1") == "Vehicle MOB-1"
    assert i18n.translate("fr", "An unknown sentence") == "An unknown sentence"


def test_amounts_and_dates_are_written_as_each_locale_writes_them():
    amount = Decimal("1234.56")
    assert formatting.money(amount, "EUR", "fr") == "1\u202f234,56\u00a0€"
    assert formatting.money(amount, "EUR", "en") == "€1,234.56"
    assert formatting.long_date(dt.date(2026, 12, 2), "fr") == "2 décembre 2026"
    assert formatting.long_date(dt.date(2026, 12, 2), "en") == "2 December 2026"
    assert formatting.month(Period(2026, 12), "fr") == "décembre 2026"
    assert formatting.month("2026-11", "en") == "November 2026"
    assert formatting.number(Decimal("1234.56"), "fr") == "1\u202f234,6"


def test_times_are_in_the_readers_zone():
    instant = dt.datetime(2026, 12, 2, 13, 5, tzinfo=dt.UTC)
    paris = ZoneInfo("Europe/Paris")
    assert formatting.time_of_day(instant, paris, "fr") == "14:05"
    assert (
        formatting.date_time(instant, ZoneInfo("America/Montreal"), "fr") == "2 décembre 2026 08:05"
    )


def test_a_chart_is_titled_svg_without_style_and_its_table_holds_every_value():
    chart = Chart(
        "Kilomètres <par> jour",
        ["1", "2", "3"],
        [Series("ce mois", [Decimal(3), Decimal("12.5"), None]), Series("avant", [Decimal(1)] * 3)],
    )
    svg = render_svg(chart, "km", lambda v: str(v))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert 'aria-labelledby="km-title"' in svg
    assert "Kilomètres &lt;par&gt; jour" in svg  # escaped
    assert "style=" not in svg  # the CSP allows no inline style
    assert svg.count("<rect") == 5  # the day without a value has no bar
    assert chart.rows == [
        ("1", [Decimal(3), Decimal(1)]),
        ("2", [Decimal("12.5"), Decimal(1)]),
        ("3", [None, Decimal(1)]),
    ]


def test_an_empty_chart_still_draws():
    chart = Chart("vide", [], [Series("x", [])], kind="lines")
    assert "<svg" in render_svg(chart, "empty", str)


def test_the_fast_amounts_are_babels_to_the_character():
    from babel import numbers

    amounts = [Decimal(f"{sign}{n}.{c:02d}") for sign in ("", "-") for n in (0, 1, 12, 999, 1000,
               123456, 98765432) for c in (0, 5, 99)]  # fmt: skip
    # Babel writes "-0,00 €" for a negative zero; the pages write no sign.
    amounts = [a for a in amounts if a or not a.is_signed()]
    for language, locale in formatting.LOCALES.items():
        for currency in ("EUR", "USD", "GBP", "CHF"):
            for amount in amounts:
                expected = numbers.format_currency(amount, currency, locale=locale)
                assert formatting.money(amount, currency, language) == expected, (amount, locale)
        assert formatting.money(Decimal(1234), "JPY", language) == numbers.format_currency(
            Decimal(1234), "JPY", locale=locale
        )


def test_the_fast_quantities_are_babels_to_the_character():
    from babel import numbers

    values = [Decimal(v) for v in ("0", "0.04", "0.05", "0.15", "1", "12.25", "999.95", "1000",
              "1234.5", "98765.432", "1234567.891")]  # fmt: skip
    for language, locale in formatting.LOCALES.items():
        for places in (0, 1, 3):
            pattern = "#,##0" + ("." + "#" * places if places else "")
            for value in values:
                expected = numbers.format_decimal(value, format=pattern, locale=locale)
                assert formatting.number(value, language, places) == expected, (value, places)
