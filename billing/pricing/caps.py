"""Spending caps: a customer-level maximum on what one period's usage charges cost.

Rules, applied to the priced lines of a customer's period (after the rating engine):

1. The capped amount is the sum of the rounded line amounts the cap covers: every line,
   or every line but the flat fees when the cap excludes them (`include_flat_fees` false).
2. When the capped amount exceeds the cap, a discount of (cap - capped amount), negative,
   is added; otherwise nothing is. The discount is a separate line: the charges keep their
   own amounts, so statements and invoices still show what the usage cost.
3. Lines at different VAT rates share the discount in proportion to their capped amounts,
   to the minor unit (largest remainder), one discount line per VAT category and rate; no
   rate's discount exceeds its capped amount, so no VAT base turns negative.

So the covered lines plus the discount add up to min(capped amount, cap) exactly, and the
lines a cap does not cover (flat fees, when excluded) are billed in full on top.

Pure: plain data in, plain data out; no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.money import ZERO, round_money, split_proportionally

# The metric and model a cap's discount line carries where a charge's line has its own.
CAP_METRIC = "spending_cap"
CAP_MODEL = "cap"
FLAT_MODEL = "flat"


@dataclass(frozen=True, slots=True)
class SpendingCap:
    """At most `amount` (net of VAT, in the customer's currency) per period."""

    amount: Decimal
    include_flat_fees: bool = False


@dataclass(frozen=True, slots=True)
class PricedLine:
    """What the cap needs of a priced line: its rounded amount, model and VAT rate."""

    amount: Decimal
    model: str
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True, slots=True)
class CapDiscount:
    """The discount of one VAT category and rate: a negative amount."""

    vat_category: str
    vat_rate: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CapOutcome:
    """The cap applied to one period: what it covered, and the discount lines it gave."""

    cap: SpendingCap
    capped_amount: Decimal  # before the discount
    discounts: tuple[CapDiscount, ...]  # empty when under the cap

    @property
    def discount(self) -> Decimal:
        return sum((d.amount for d in self.discounts), ZERO)

    @property
    def reached(self) -> bool:
        """The covered charges cost the cap or more: further usage is free this period."""
        return self.capped_amount >= self.cap.amount


def covered(cap: SpendingCap, line: PricedLine) -> bool:
    """Whether `cap` covers the line (flat fees only when it includes them)."""
    return cap.include_flat_fees or line.model != FLAT_MODEL


def apply_spending_cap(cap: SpendingCap, lines: Iterable[PricedLine], currency: str) -> CapOutcome:
    """The cap on the priced lines of one period, by the rules of this module.

    Raises ValueError for a cap that is negative or not rounded to the currency's minor
    unit, and `UnknownCurrency` for an unknown currency.
    """
    if cap.amount < 0 or round_money(cap.amount, currency) != cap.amount:
        raise ValueError(f"cap {cap.amount} is not a non-negative amount in {currency}")
    by_rate: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        if covered(cap, line):
            key = (line.vat_category, line.vat_rate)
            by_rate[key] = by_rate.get(key, ZERO) + line.amount
    capped = round_money(sum(by_rate.values(), ZERO), currency)
    excess = capped - cap.amount
    if excess <= 0:
        return CapOutcome(cap, capped, ())
    keys = sorted(by_rate)
    shares = split_proportionally(excess, [by_rate[key] for key in keys], currency)
    discounts = tuple(
        CapDiscount(category, rate, -share)
        for (category, rate), share in zip(keys, shares, strict=True)
        if share
    )
    return CapOutcome(cap, capped, discounts)
