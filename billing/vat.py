"""VAT: the categories of EN 16931, the treatment of a buyer, and the totals of a document.

Pure: no database, no web. Every module that names a VAT category or totals VAT imports it
from here, so the reverse-charge code "AE" has one home.

The treatment of a buyer follows its country and VAT number: reverse charge (category AE,
0 %) for a business in another EU member state, the seller's French VAT otherwise.

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
STANDARD = "S"
ZERO_RATED = "Z"
EXEMPT = "E"
REVERSE_CHARGE = "AE"
INTRA_COMMUNITY = "K"
EXPORT = "G"
OUTSIDE_SCOPE = "O"
CANARY_ISLANDS = "L"
CEUTA_MELILLA = "M"
VAT_CATEGORIES = (
    STANDARD, ZERO_RATED, EXEMPT, REVERSE_CHARGE, INTRA_COMMUNITY, EXPORT, OUTSIDE_SCOPE,
    CANARY_ISLANDS, CEUTA_MELILLA,
)  # fmt: skip
_ZERO_RATED_CATEGORIES = frozenset(
    {ZERO_RATED, EXEMPT, REVERSE_CHARGE, INTRA_COMMUNITY, EXPORT, OUTSIDE_SCOPE}
)

# The exemption reason a reverse-charge VAT group carries (BT-120, BT-121; BR-AE-10).
REVERSE_CHARGE_REASON = "Autoliquidation"  # the French equivalent text BR-AE-10 accepts
REVERSE_CHARGE_REASON_CODE = "VATEX-EU-AE"

# Member states by ISO 3166 code (Greece is GR here; its VAT numbers start with EL).
EU_COUNTRIES = frozenset(
    ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
     "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
)  # fmt: skip
SELLER_COUNTRY = "FR"


@dataclass(frozen=True)
class VatTreatment:
    category: str  # UNTDID 5305
    exemption: str | None = None  # the mention the document must carry


def vat_treatment(country: str, vat_number: str | None) -> VatTreatment:
    """The treatment of a buyer in `country` (ISO 3166) with `vat_number` (None or empty
    for a consumer): reverse charge for a business in another EU member state (it has a VAT
    number); French VAT otherwise (French customers, consumers, and customers outside the
    EU are treated as French VAT here: exports of services are out of this product's scope).
    """
    if country != SELLER_COUNTRY and country in EU_COUNTRIES and vat_number:
        return VatTreatment(REVERSE_CHARGE, "Autoliquidation (article 283-2 du CGI)")
    return VatTreatment(STANDARD)


def line_vat(treatment: VatTreatment, plan_rate: Decimal) -> tuple[str, Decimal]:
    """The (category, rate percent) of a line priced at a plan's `plan_rate` for a buyer of
    `treatment`: 0 % under reverse charge; zero rated (Z) when the plan's rate is 0."""
    if treatment.category == REVERSE_CHARGE:
        return REVERSE_CHARGE, Decimal(0)
    return (treatment.category if plan_rate else ZERO_RATED), plan_rate


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
    if category == STANDARD and rate == 0:
        raise ValueError("VAT rate for category S must be above 0")
    if category in _ZERO_RATED_CATEGORIES and rate != 0:
        raise ValueError(f"VAT rate for category {category} must be 0, not {rate}")
    if amount != round_money(amount, currency):
        raise ValueError(f"line amount {amount} is not rounded to {currency}")
