"""Building invoice documents: line forms, VAT totals, consistency checks and wording."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing.invoicing.documents import (
    check_document,
    document_totals,
    format_date,
    format_money,
    format_percent,
    format_period,
    format_quantity,
    format_unit_price,
    legal_mentions,
)

D = Decimal


def test_a_line_priced_per_unit_keeps_its_quantity_and_price(make_line):
    line = make_line("1", quantity=D("412.3"), unit_price=D("0.08"), amount=D("32.98"))

    assert (line.quantity, line.unit_code, line.unit_price) == (D("412.3"), "KMT", D("0.08"))
    assert not line.is_lump_sum
    assert line.measured_quantity == D("412.3")


def test_a_line_whose_amount_is_not_quantity_times_price_becomes_a_lump_sum(make_line):
    line = make_line("1", quantity=D(620), unit_price=None, amount=D("36.50"))

    assert (line.quantity, line.unit_code, line.unit_price) == (D(1), "C62", D("36.50"))
    assert (line.usage_quantity, line.usage_unit_code) == (D(620), "KMT")
    assert line.measured_unit_code == "KMT"


def test_a_negative_lump_sum_has_quantity_minus_one_and_a_positive_price(make_line):
    line = make_line("1", quantity=D(-40), unit_price=D("0.0333"), amount=D("-1.25"))

    assert (line.quantity, line.unit_price, line.amount) == (D(-1), D("1.25"), D("-1.25"))


def test_vat_is_rounded_once_per_rate_on_the_sum_of_the_lines(make_line):
    # Per line, 20 % of 0.03 rounds to 0.01 three times (0.03); on the sum it is 0.02.
    lines = [make_line(str(i), quantity=D(1), unit_price=D("0.03"), amount=D("0.03"))
             for i in range(1, 4)]  # fmt: skip

    totals = document_totals(lines, "EUR")

    assert [(g.category, g.rate, g.base, g.amount) for g in totals.vat_breakdown] == [
        ("S", D(20), D("0.09"), D("0.02"))
    ]
    assert (totals.total_net, totals.total_vat, totals.total_gross) == (
        D("0.09"),
        D("0.02"),
        D("0.11"),
    )


def test_reverse_charge_groups_carry_their_exemption_reason(samples):
    (group,) = samples["reverse_charge"]().vat_breakdown

    assert (group.category, group.amount) == ("AE", D(0))
    assert (group.exemption_reason, group.exemption_reason_code) == (
        "Autoliquidation",
        "VATEX-EU-AE",
    )


def test_every_sample_document_is_consistent(any_document):
    assert check_document(any_document) == []


def test_check_document_names_each_broken_rule(samples, make_line):
    doc = samples["simple"]()
    bad_line = replace(make_line("1"), quantity=D(400))
    broken = replace(
        doc,
        lines=(bad_line, replace(doc.lines[1], line_id="1"), doc.lines[2]),
        due_date=date(2026, 11, 1),
        seller=replace(doc.seller, vat_number=None),
    )

    problems = check_document(broken)

    assert "line 1: 400 × 0.08 ≠ 32.98" in problems
    assert "line identifiers are not unique" in problems
    assert "due date is before the issue date" in problems
    assert "the seller needs a SIREN and a VAT number (French mandatory mentions)" in problems


def test_check_document_recomputes_the_totals_of_sound_lines(samples):
    doc = samples["simple"]()

    problems = check_document(replace(doc, total_net=D(0), total_gross=D("66.95")))

    assert problems == ["total_net 0 should be 55.78", "total_gross 66.95 should be 66.94"]


@pytest.mark.parametrize(
    ("sample", "change", "problem"),
    [
        ("credit_note", lambda doc: replace(doc, preceding_invoice_number=None), "BT-25"),
        (
            "reverse_charge",
            lambda doc: replace(doc, buyer=replace(doc.buyer, vat_number=None)),
            "BR-AE-02",
        ),
        ("simple", lambda doc: replace(doc, vat_breakdown=()), "one group per line category"),
        (
            "zero_rated",
            lambda doc: replace(doc, lines=(replace(doc.lines[0], vat_rate=D(20)), *doc.lines[1:])),
            "BR-Z-05",
        ),
        (
            "zero_rated",
            lambda doc: replace(
                doc, vat_breakdown=(replace(doc.vat_breakdown[0], exemption_reason="Exonéré"),)
            ),
            "BR-Z-10",
        ),
        ("simple", lambda doc: replace(doc, currency="XXX"), "unknown currency 'XXX'"),
    ],
)
def test_check_document_refuses_what_en16931_forbids(samples, sample, change, problem):
    problems = check_document(change(samples[sample]()))

    assert any(problem in text for text in problems), problems


def test_a_negative_unit_price_is_refused(make_line, make_document):
    line = replace(make_line("1"), quantity=D("-412.3"), unit_price=D("-0.08"))

    assert any("BR-27" in problem for problem in check_document(make_document([line])))


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        (D("1234.5"), "EUR", "fr", "1\u202f234,50\u00a0€"),
        (D("1234.5"), "EUR", "en", "€1,234.50"),
        (D("-1"), "EUR", "fr", "-1,00\u00a0€"),
        (D("-1"), "EUR", "en", "-€1.00"),
        (D("1234567"), "CHF", "en", "1,234,567.00\u00a0CHF"),
        (D("1E+2"), "EUR", "fr", "100,00\u00a0€"),
    ],
)
def test_money_is_written_the_way_each_language_writes_it(amount, currency, language, expected):
    assert format_money(amount, currency, language) == expected


def test_prices_quantities_rates_and_dates_are_localized():
    assert format_unit_price(D("0.0125"), "EUR", "fr") == "0,0125\u00a0€"
    assert format_unit_price(D("19"), "EUR", "en") == "€19.00"
    assert format_quantity(D("1234.50"), "KMT", "fr") == "1\u202f234,5\u00a0km"
    assert format_quantity(D("1"), "DAY", "en") == "1\u00a0day"
    assert format_quantity(D("17"), "DAY", "fr") == "17\u00a0jours"
    assert format_quantity(D("38"), "C62", "fr") == "38"
    assert format_percent(D("5.5"), "fr") == "5,5\u00a0%"
    assert format_percent(D("20.00"), "en") == "20%"
    assert format_date(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert format_date(date(2026, 12, 1), "en") == "1 December 2026"
    assert format_period(date(2026, 11, 1), date(2026, 11, 30), "fr") == "1er – 30 novembre 2026"
    assert format_period(date(2026, 10, 15), date(2026, 11, 14), "en") == (
        "15 October 2026 – 14 November 2026"
    )


def test_legal_mentions_add_reverse_charge_only_when_a_line_is_reverse_charged(samples):
    codes = [code for code, _ in legal_mentions(samples["simple"]())]
    reverse_codes = [code for code, _ in legal_mentions(samples["reverse_charge"](), "en")]

    assert codes == ["PMD", "PMT", "AAB"]
    assert reverse_codes == ["PMD", "PMT", "AAB", "TXD"]
