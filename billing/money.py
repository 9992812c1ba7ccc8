"""Money arithmetic: the one place where amounts are rounded.

Amounts are always `Decimal`. Quantities stay exact; an amount is rounded half-up to the
currency's minor unit only when it becomes an invoice line (EN 16931 BT-131) or a VAT total.
"""

from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units of the currencies a European fleet business plausibly bills in.
MINOR_UNITS = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "ISK": 0, "CAD": 2, "AUD": 2, "JPY": 0,
}  # fmt: skip

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class UnknownCurrency(ValueError):
    def __init__(self, currency: str):
        super().__init__(f"unknown currency {currency!r}; known: {', '.join(sorted(MINOR_UNITS))}")
        self.currency = currency


def is_known_currency(currency: str) -> bool:
    return currency in MINOR_UNITS


def minor_units(currency: str) -> int:
    """The decimals of the currency: 2 for EUR."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise UnknownCurrency(currency) from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of the currency: Decimal('0.01') for EUR."""
    return Decimal(1).scaleb(-minor_units(currency))


def exponent(value: Decimal) -> int:
    """The exponent of a finite `value`: -2 for Decimal('1.50')."""
    found = value.as_tuple().exponent
    if isinstance(found, str):
        # as_tuple gives a letter for NaN and infinities, which no amount or quantity is.
        raise ValueError(f"not a finite number: {value}")
    return found


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def money_rounder(currency: str) -> Callable[[Decimal], Decimal]:
    """`round_money` bound to one currency, for loops that round many amounts."""
    exponent = quantum(currency)
    return lambda amount: amount.quantize(exponent, rounding=ROUND_HALF_UP)


def vat_amount(base: Decimal, rate_percent: Decimal, currency: str) -> Decimal:
    """VAT on a base already rounded to the currency (EN 16931 BR-CO-17)."""
    return round_money(base * rate_percent / HUNDRED, currency)


def split_proportionally(
    total: Decimal, weights: Sequence[Decimal], currency: str
) -> list[Decimal]:
    """Split a rounded `total` into parts proportional to `weights` that sum exactly to it.

    Largest-remainder method in minor units: each part is first rounded down, then the
    leftover minor units go to the parts with the largest remainders (ties to the earliest),
    so statements per vehicle always add up to the pooled amount to the cent. With all
    weights zero, the total is split evenly.
    """
    if not weights:
        return []
    unit = quantum(currency)
    total_units = int((total / unit).to_integral_value())
    if total_units < 0:
        return [-part for part in split_proportionally(-total, weights, currency)]
    weight_sum = sum(weights, ZERO)
    if weight_sum == 0:
        weights = [Decimal(1)] * len(weights)
        weight_sum = Decimal(len(weights))
    exact = [Decimal(total_units) * w / weight_sum for w in weights]
    floors = [int(e) for e in exact]
    leftover = total_units - sum(floors)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in by_remainder[:leftover]:
        floors[i] += 1
    return [Decimal(units) * unit for units in floors]
