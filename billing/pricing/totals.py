"""Invoice and statement totals with the VAT breakdown per category and rate (EN 16931).

VAT is computed once per (category, rate) on the sum of the rounded line amounts of that
rate (BR-CO-17, BR-S-08), never per line: per-line VAT would drift by a cent per few lines
from what the tax authority recomputes.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.money import HUNDRED, ZERO, round_money, vat_amount

# UNTDID 5305 VAT category codes used by EN 16931: standard, zero rated, exempt, reverse
# charge, intra-community supply, export, outside scope, Canary Islands IGIC, Ceuta/Melilla
# IPSI. The standard rate is above 0 (BR-S-05); L and M may be 0 or more (BR-IG-05,
# BR-IP-05); the others are at 0 % (BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05; O has
# no rate, written 0 here).
VAT_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M")
_ZERO_RATED_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G", "O"})


@dataclass(frozen=True, slots=True)
class VatSubtotal:
    """One line of the VAT breakdown (EN 16931 BG-23): taxable base and VAT of one rate."""

    category: str
    rate: Decimal
    base: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    """Document totals: net (BT-109), VAT (BT-110), gross (BT-112) and the breakdown."""

    subtotals: tuple[VatSubtotal, ...]
    net: Decimal
    vat: Decimal
    gross: Decimal
    currency: str


def compute_totals(items: Iterable[tuple[str, Decimal, Decimal]], currency: str) -> Totals:
    """Total (VAT category, VAT rate percent, rounded line amount) items.

    Rules: lines are grouped by (category, rate); each group's VAT is its base (the sum of
    its lines) times the rate, rounded half-up to the currency's minor unit, so a negative
    base (credit notes, adjustments) gets exactly the opposite VAT of the same positive base.
    Subtotals are sorted by (category, rate). net is the sum of the bases, vat the sum of
    the groups' VAT, gross their sum. Raises ValueError for an unknown category, a rate
    outside 0 <= rate < 100 or not allowed for its category (S above 0; L, M any; others 0), or
    a line amount not rounded to the currency; `UnknownCurrency` for an unknown currency.
    """
    zero = round_money(ZERO, currency)
    bases: dict[tuple[str, Decimal], Decimal] = {}
    for category, rate, amount in items:
        _check_item(category, rate, amount, currency)
        key = (category, rate)
        bases[key] = bases.get(key, zero) + amount
    subtotals = tuple(
        VatSubtotal(category, rate, base, vat_amount(base, rate, currency))
        for (category, rate), base in sorted(bases.items())
    )
    net = sum((subtotal.base for subtotal in subtotals), zero)
    vat = sum((subtotal.vat for subtotal in subtotals), zero)
    return Totals(subtotals, net, vat, net + vat, currency)


def _check_item(category: str, rate: Decimal, amount: Decimal, currency: str) -> None:
    if category not in VAT_CATEGORIES:
        raise ValueError(f"unknown VAT category {category!r}; known: {', '.join(VAT_CATEGORIES)}")
    if not ZERO <= rate < HUNDRED:
        raise ValueError(f"VAT rate {rate} is not within 0 <= rate < 100")
    if category == "S" and rate == 0:
        raise ValueError("VAT rate for category S must be above 0")
    if category in _ZERO_RATED_CATEGORIES and rate != 0:
        raise ValueError(f"VAT rate for category {category} must be 0, not {rate}")
    if amount != round_money(amount, currency):
        raise ValueError(f"line amount {amount} is not rounded to {currency}")
