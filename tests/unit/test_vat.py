"""Document totals: VAT per category and rate on the sum of the lines (EN 16931)."""

from decimal import Decimal as D

import pytest

from billing.money import UnknownCurrency
from billing.vat import Totals, VatSubtotal, compute_totals


def test_vat_is_computed_on_the_sum_of_a_rates_lines_not_line_by_line() -> None:
    totals = compute_totals([("S", D(20), D("0.03"))] * 3, "EUR")
    # Per line: 0.006 → 0.01, three times 0.03. On the sum: 0.09 x 20 % = 0.018 → 0.02.
    assert totals == Totals(
        subtotals=(VatSubtotal("S", D(20), D("0.09"), D("0.02")),),
        net=D("0.09"),
        vat=D("0.02"),
        gross=D("0.11"),
        currency="EUR",
    )


def test_subtotals_are_one_per_category_and_rate_sorted() -> None:
    items = [
        ("S", D("20.00"), D("10.00")),
        ("AE", D(0), D("100.00")),
        ("S", D("5.5"), D("3.00")),
        ("S", D(20), D("5.00")),  # the same rate as 20.00
    ]
    totals = compute_totals(items, "EUR")
    assert totals.subtotals == (
        VatSubtotal("AE", D(0), D("100.00"), D("0.00")),
        VatSubtotal("S", D("5.5"), D("3.00"), D("0.17")),  # 0.165, half-up
        VatSubtotal("S", D(20), D("15.00"), D("3.00")),
    )
    assert (totals.net, totals.vat, totals.gross) == (D("118.00"), D("3.17"), D("121.17"))


def test_a_credit_note_gets_exactly_the_opposite_vat_of_the_invoice() -> None:
    invoice = compute_totals([("S", D("5.5"), D("3.00"))], "EUR")
    credit = compute_totals([("S", D("5.5"), D("-3.00"))], "EUR")
    assert (credit.net, credit.vat, credit.gross) == (-invoice.net, -invoice.vat, -invoice.gross)


def test_negative_adjustments_reduce_the_base_of_their_rate() -> None:
    totals = compute_totals([("S", D(20), D("19.00")), ("S", D(20), D("-4.50"))], "EUR")
    assert totals.subtotals == (VatSubtotal("S", D(20), D("14.50"), D("2.90")),)


def test_no_lines_make_zero_totals_in_the_currency() -> None:
    totals = compute_totals([], "EUR")
    assert (totals.subtotals, str(totals.net), str(totals.vat), str(totals.gross)) == (
        (),
        "0.00",
        "0.00",
        "0.00",
    )


def test_totals_round_to_the_currency_minor_unit() -> None:
    totals = compute_totals([("S", D(10), D(1005))], "JPY")
    assert (totals.vat, totals.gross) == (D(101), D(1106))  # 100.5, half-up


@pytest.mark.parametrize(
    ("item", "currency", "message"),
    [
        (("X", D(20), D(1)), "EUR", "unknown VAT category 'X'"),
        (("S", D(0), D(1)), "EUR", "VAT rate for category S must be above 0"),
        (("AE", D(20), D(1)), "EUR", "VAT rate for category AE must be 0, not 20"),
        (("S", D(100), D(1)), "EUR", "VAT rate 100 is not within 0 <= rate < 100"),
        (("S", D(-1), D(1)), "EUR", "VAT rate -1 is not within 0 <= rate < 100"),
        (("S", D(20), D("1.005")), "EUR", "line amount 1.005 is not rounded to EUR"),
    ],
)
def test_items_that_cannot_be_on_an_invoice_are_refused(
    item: tuple[str, D, D], currency: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compute_totals([item], currency)


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrency):
        compute_totals([("S", D(20), D(1))], "XBT")


def test_canary_islands_igic_may_be_at_zero_percent() -> None:
    assert compute_totals([("L", D(0), D(1))], "EUR").vat == D("0.00")
