"""Invoice documents as plain data: what the Factur-X XML, the PDF and the exports render.

No database and no Flask here. The invoicing services build an `InvoiceDocument` from a
finalized invoice; `facturx_xml`, `pdf` and `exports` only read it.

Rules the data follows (EN 16931), checked by `check_document`:
- Credit notes (`kind="credit_note"`, type code 381) carry POSITIVE amounts, like the invoice
  they correct: the type code gives the direction, not the sign (the EN 16931 convention).
  Exports that need a sign, like the FEC, take it from `kind`.
- Line arithmetic: `amount == round_half_up(quantity × unit_price)` to the currency's minor
  unit, with base quantity 1 (BT-131 = BT-129 × BT-146 / BT-149). The unit price is never
  negative (BR-27): a negative line, such as a late-usage adjustment, has a negative quantity.
- A charge whose amount is not one quantity times one price (graduated or volume tiers,
  packages, minimum or maximum clamps, prorated flat fees) becomes a lump-sum line: quantity
  1 (or -1 for a negative amount) "C62" at a unit price equal to the amount's magnitude. The
  measured usage is kept in `usage_quantity` / `usage_unit_code` and the tier breakdown in
  `tiers`; both appear on the PDF and in the line note (BT-127). `usage_line` picks the form.
- VAT is computed per (category, rate) on the sum of the line amounts, rounded half-up once
  (BR-CO-17, BR-S-08): see `document_totals`.
- VAT categories: "S" (standard, a positive rate), "Z" (zero rated: a plan whose rate is 0,
  lines and breakdown at 0 % with no exemption reason, BR-Z-05, BR-Z-09, BR-Z-10) and "AE"
  (reverse charge: 0 % with the exemption reason BR-AE-10 requires).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypedDict

from billing.money import exponent, is_known_currency, minor_units, quantum, round_money
from billing.vat import (
    REVERSE_CHARGE,
    REVERSE_CHARGE_REASON,
    REVERSE_CHARGE_REASON_CODE,
    STANDARD,
    ZERO_RATED,
    compute_totals,
)
from billing.words import LANGUAGES, words

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
TYPE_CODES = {INVOICE: "380", CREDIT_NOTE: "381"}  # UNTDID 1001

# The VAT categories a document may carry (see billing.vat for all of EN 16931's).
DOCUMENT_VAT_CATEGORIES = (STANDARD, ZERO_RATED, REVERSE_CHARGE)
# Categories whose lines are at 0 %: their name, and the rule that says so.
_AT_ZERO_PERCENT = {
    ZERO_RATED: ("zero-rated", "BR-Z-05"),
    REVERSE_CHARGE: ("reverse charge", "BR-AE-05"),
}

LUMP_SUM_UNIT = "C62"  # UN/ECE rec. 20 "one"


@dataclass(frozen=True)
class Address:
    line1: str
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    line2: str = ""


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    siren: str | None = None
    vat_number: str | None = None
    email: str | None = None
    iban: str | None = None
    bic: str | None = None
    legal_form: str | None = None  # "SAS au capital de 50 000 €"
    rcs: str | None = None  # "RCS Amiens 123 456 789"


@dataclass(frozen=True)
class TierDetail:
    label: str  # "101–500 km à 0,08 €"
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal


@dataclass(frozen=True)
class DocumentLine:
    line_id: str
    vehicle_id: str | None
    description: str
    metric: str | None
    quantity: Decimal  # invoiced quantity (BT-129); ±1 for a lump-sum line
    unit_code: str  # UN/ECE rec. 20: KMT, KWH, C62, MIN, DAY
    unit_price: Decimal  # net price for one unit (BT-146), never negative
    amount: Decimal  # line net amount (BT-131), rounded to the minor unit
    vat_category: str
    vat_rate: Decimal  # percent
    period_start: date | None
    period_end: date | None
    tiers: tuple[TierDetail, ...] = ()
    note: str = ""
    # Measured usage behind a lump-sum line (e.g. 620 KMT billed as 1 C62); None otherwise.
    usage_quantity: Decimal | None = None
    usage_unit_code: str | None = None

    @property
    def is_lump_sum(self) -> bool:
        return self.usage_quantity is not None

    @property
    def measured_quantity(self) -> Decimal:
        """The usage the line prices, whichever form it is billed in."""
        return self.quantity if self.usage_quantity is None else self.usage_quantity

    @property
    def measured_unit_code(self) -> str:
        return self.usage_unit_code or self.unit_code


@dataclass(frozen=True)
class VatBreakdown:
    category: str
    rate: Decimal
    base: Decimal
    amount: Decimal
    exemption_reason: str | None = None  # BT-120
    exemption_reason_code: str | None = None  # BT-121, VATEX code list


@dataclass(frozen=True)
class InvoiceDocument:
    kind: str  # INVOICE or CREDIT_NOTE
    number: str
    issue_date: date
    due_date: date
    currency: str
    seller: Party
    buyer: Party
    language: str  # of the PDF only; the XML is always French
    period_start: date  # BT-73
    period_end: date  # BT-74, inclusive
    lines: tuple[DocumentLine, ...]
    vat_breakdown: tuple[VatBreakdown, ...]
    total_net: Decimal
    total_vat: Decimal
    total_gross: Decimal
    amount_due: Decimal
    payment_terms: str
    late_penalty_rate: str
    recovery_indemnity: Decimal = Decimal("40.00")
    early_payment_discount: str = "Pas d'escompte pour paiement anticipé"
    preceding_invoice_number: str | None = None  # BT-25, required for credit notes
    preceding_invoice_date: date | None = None  # BT-26
    # The seller's identifier of the customer: Buyer identifier BT-46 in the XML (BT-10 is a
    # reference the buyer assigns, which we do not have).
    buyer_reference: str | None = None
    notes: tuple[str, ...] = ()
    usage_summary: tuple[tuple[str, str, str], ...] = ()  # (vehicle_id, metric label, quantity)

    @property
    def type_code(self) -> str:
        return TYPE_CODES[self.kind]

    @property
    def is_credit_note(self) -> bool:
        return self.kind == CREDIT_NOTE

    @property
    def is_reverse_charge(self) -> bool:
        return any(line.vat_category == REVERSE_CHARGE for line in self.lines)


@dataclass(frozen=True)
class DocumentTotals:
    """What `document_totals` derives from the lines; the fields are InvoiceDocument's."""

    vat_breakdown: tuple[VatBreakdown, ...]
    total_net: Decimal
    total_vat: Decimal
    total_gross: Decimal


class InvalidDocument(ValueError):
    def __init__(self, number: str, problems: Sequence[str]):
        super().__init__(f"document {number} is inconsistent: " + "; ".join(problems))
        self.problems = tuple(problems)


class _UsageLineFields(TypedDict):
    """The fields of a usage line whichever form it is billed in."""

    line_id: str
    vehicle_id: str | None
    description: str
    metric: str | None
    amount: Decimal
    vat_category: str
    vat_rate: Decimal
    period_start: date | None
    period_end: date | None
    tiers: tuple[TierDetail, ...]
    note: str


def usage_line(
    *,
    line_id: str,
    description: str,
    quantity: Decimal,
    unit_code: str,
    amount: Decimal,
    currency: str,
    vat_category: str,
    vat_rate: Decimal,
    unit_price: Decimal | None = None,
    vehicle_id: str | None = None,
    metric: str | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
    tiers: tuple[TierDetail, ...] = (),
    note: str = "",
) -> DocumentLine:
    """A line for a rated charge, per unit when it can be, as a lump sum otherwise.

    The per-unit form (quantity in its unit at `unit_price`) is used when a non-negative
    `unit_price` is given and `round_half_up(quantity × unit_price) == amount`; anything
    else (tiers, packages, clamps, proration) is billed as ±1 C62 at |amount|, keeping
    `quantity` / `unit_code` as the measured usage.
    """
    common: _UsageLineFields = {
        "line_id": line_id,
        "vehicle_id": vehicle_id,
        "description": description,
        "metric": metric,
        "amount": amount,
        "vat_category": vat_category,
        "vat_rate": vat_rate,
        "period_start": period_start,
        "period_end": period_end,
        "tiers": tiers,
        "note": note,
    }
    if (
        unit_price is not None
        and unit_price >= 0
        and round_money(quantity * unit_price, currency) == amount
    ):
        return DocumentLine(quantity=quantity, unit_code=unit_code, unit_price=unit_price, **common)
    return DocumentLine(
        quantity=Decimal(-1 if amount < 0 else 1),
        unit_code=LUMP_SUM_UNIT,
        unit_price=abs(amount),
        usage_quantity=quantity,
        usage_unit_code=unit_code,
        **common,
    )


def document_totals(lines: Iterable[DocumentLine], currency: str) -> DocumentTotals:
    """VAT breakdown per (category, rate) and document totals, the EN 16931 way.

    The arithmetic is `billing.vat.compute_totals` (VAT rounded once per rate on
    the sum of line amounts, BR-CO-17); this adds the exemption reason BR-AE-10 requires on
    reverse-charge groups.
    """
    items = ((line.vat_category, line.vat_rate, line.amount) for line in lines)
    totals = compute_totals(items, currency)
    breakdown = tuple(
        VatBreakdown(subtotal.category, subtotal.rate, subtotal.base, subtotal.vat)
        if subtotal.category != REVERSE_CHARGE
        else VatBreakdown(
            subtotal.category,
            subtotal.rate,
            subtotal.base,
            subtotal.vat,
            REVERSE_CHARGE_REASON,
            REVERSE_CHARGE_REASON_CODE,
        )
        for subtotal in totals.subtotals
    )
    return DocumentTotals(breakdown, totals.net, totals.vat, totals.gross)


def check_document(doc: InvoiceDocument) -> list[str]:
    """Every way `doc` breaks the rules above or the EN 16931 rules its data decides.

    The schematron checks the XML; this checks the data first, so that an inconsistent
    document is refused with a readable reason before anything is rendered.
    """
    problems = _check_header(doc)
    if not is_known_currency(doc.currency):
        return [*problems, f"unknown currency {doc.currency!r}"]
    line_problems = [problem for line in doc.lines for problem in _check_line(line, doc.currency)]
    if len({line.line_id for line in doc.lines}) != len(doc.lines):
        problems.append("line identifiers are not unique")
    if line_problems:  # totals of broken lines would only repeat the same faults
        return problems + line_problems
    return problems + _check_totals(doc)


def ensure_valid(doc: InvoiceDocument) -> None:
    """Raise InvalidDocument listing every problem `check_document` finds."""
    problems = check_document(doc)
    if problems:
        raise InvalidDocument(doc.number, problems)


def _check_header(doc: InvoiceDocument) -> list[str]:
    problems = []
    if doc.kind not in TYPE_CODES:
        problems.append(f"kind must be one of {sorted(TYPE_CODES)}, not {doc.kind!r}")
    if doc.language not in LANGUAGES:
        problems.append(f"language must be one of {LANGUAGES}, not {doc.language!r}")
    if not doc.lines:
        problems.append("a document needs at least one line (BR-16)")
    if doc.period_end < doc.period_start:
        problems.append("billing period ends before it starts (BR-29)")
    if doc.due_date < doc.issue_date:
        problems.append("due date is before the issue date")
    if not doc.seller.siren or not doc.seller.vat_number:
        problems.append("the seller needs a SIREN and a VAT number (French mandatory mentions)")
    if doc.is_credit_note and not doc.preceding_invoice_number:
        problems.append("a credit note must cite the invoice it corrects (BT-25)")
    if doc.is_reverse_charge and not doc.buyer.vat_number:
        problems.append("reverse charge needs the buyer's VAT number (BR-AE-02)")
    return problems


def _check_line(line: DocumentLine, currency: str) -> list[str]:
    where = f"line {line.line_id}"
    problems = []
    if line.vat_category not in DOCUMENT_VAT_CATEGORIES:
        problems.append(f"{where}: VAT category {line.vat_category!r} is not supported")
    if line.vat_category in _AT_ZERO_PERCENT and line.vat_rate != 0:
        name, rule = _AT_ZERO_PERCENT[line.vat_category]
        problems.append(f"{where}: {name} lines have a 0 % rate ({rule})")
    if not 0 <= line.vat_rate < 100:
        problems.append(f"{where}: VAT rate {line.vat_rate} % is not a percentage below 100")
    elif line.vat_category == STANDARD and line.vat_rate == 0:
        problems.append(f"{where}: standard-rated lines have a positive rate (BR-S-05)")
    if line.unit_price < 0:
        problems.append(f"{where}: unit price is negative (BR-27); negate the quantity")
    if line.amount != round_money(line.amount, currency):
        problems.append(f"{where}: amount {line.amount} is not rounded to {quantum(currency)}")
    elif round_money(line.quantity * line.unit_price, currency) != line.amount:
        problems.append(f"{where}: {line.quantity} × {line.unit_price} ≠ {line.amount}")
    if line.period_start and line.period_end and line.period_end < line.period_start:
        problems.append(f"{where}: period ends before it starts (BR-30)")
    return problems


def _check_totals(doc: InvoiceDocument) -> list[str]:
    expected = document_totals(doc.lines, doc.currency)
    problems = []
    given = {(group.category, group.rate): group for group in doc.vat_breakdown}
    wanted = {(group.category, group.rate): group for group in expected.vat_breakdown}
    if given.keys() != wanted.keys():
        problems.append("the VAT breakdown does not have one group per line category and rate")
    for key, group in wanted.items():
        if key in given and (given[key].base, given[key].amount) != (group.base, group.amount):
            problems.append(
                f"VAT {key[0]} {key[1]} %: base {given[key].base} and VAT {given[key].amount}"
                f" should be {group.base} and {group.amount} (BR-S-08, BR-CO-17)"
            )
    if doc.is_reverse_charge and any(
        not (group.exemption_reason or group.exemption_reason_code)
        for group in doc.vat_breakdown
        if group.category == REVERSE_CHARGE
    ):
        problems.append("the reverse-charge VAT group needs an exemption reason (BR-AE-10)")
    if any(
        group.exemption_reason or group.exemption_reason_code
        for group in doc.vat_breakdown
        if group.category == ZERO_RATED
    ):
        problems.append("the zero-rated VAT group must not give an exemption reason (BR-Z-10)")
    for name in ("total_net", "total_vat", "total_gross"):
        if getattr(doc, name) != getattr(expected, name):
            problems.append(f"{name} {getattr(doc, name)} should be {getattr(expected, name)}")
    if doc.amount_due != round_money(doc.amount_due, doc.currency):
        problems.append(f"amount due {doc.amount_due} is not rounded to {quantum(doc.currency)}")
    return problems


# --- Formatting shared by the XML notes and the PDF ---------------------------------------
# The words (month and unit names, separators, mentions) come from the language's catalogue;
# the French typographic rules are written below (a no-break space before the currency
# symbol and the percent sign, "1er" for the first of the month).

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def format_decimal(value: Decimal, language: str, min_decimals: int = 0) -> str:
    """`value` with its significant decimals (at least `min_decimals`), grouped by thousands."""
    catalogue = words(language)
    group, point = catalogue.thousands, catalogue.decimal_point
    decimals = min(-min_decimals, exponent(value.normalize()))
    text = format(abs(value).quantize(Decimal(1).scaleb(decimals)), ",f")
    integer, _, fraction = text.partition(".")
    sign = "-" if value < 0 else ""
    return sign + integer.replace(",", group) + (point + fraction if fraction else "")


def format_quantity(quantity: Decimal, unit_code: str | None, language: str) -> str:
    """'1 234,5 km', '17 jours', '38': the unit as people write it, the code if unknown."""
    singular, plural = words(language).units.get(unit_code or "C62", (unit_code, unit_code))
    # French keeps the singular below 2 ("1,5 jour"); English only for exactly one.
    is_singular = abs(quantity) < 2 if language == "fr" else abs(quantity) == 1
    unit = singular if is_singular else plural
    number = format_decimal(quantity, language)
    return f"{number}\u00a0{unit}" if unit else number


def format_money(amount: Decimal, currency: str, language: str) -> str:
    """'1 234,56 €' in French, '€1,234.56' in English; unknown symbols fall back to the code."""
    digits = minor_units(currency)
    sign = "-" if amount < 0 else ""
    return sign + _with_symbol(format_decimal(abs(amount), language, digits), currency, language)


def format_unit_price(price: Decimal, currency: str, language: str) -> str:
    """A price with up to 6 decimals, but never fewer than the currency's."""
    digits = minor_units(currency)
    return _with_symbol(format_decimal(price, language, digits), currency, language)


def _with_symbol(number: str, currency: str, language: str) -> str:
    symbol = _SYMBOLS.get(currency, currency)
    if language == "fr" or symbol == currency:
        return f"{number}\u00a0{symbol}"
    return f"{symbol}{number}"


def format_percent(rate: Decimal, language: str) -> str:
    number = format_decimal(rate, language)
    return f"{number}\u00a0%" if language == "fr" else f"{number}%"


def format_date(day: date, language: str) -> str:
    """'1er décembre 2026' / '1 December 2026'."""
    return f"{_day(day, language)} {words(language).months[day.month - 1]} {day.year}"


def format_period(start: date, end: date, language: str) -> str:
    """'1er – 30 novembre 2026' when both dates share a month, else two full dates."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{_day(start, language)} – {format_date(end, language)}"
    return f"{format_date(start, language)} – {format_date(end, language)}"


def _day(day: date, language: str) -> str:
    return "1er" if language == "fr" and day.day == 1 else str(day.day)


def legal_mentions(doc: InvoiceDocument, language: str = "fr") -> tuple[tuple[str, str], ...]:
    """The mentions French law requires, as (UNTDID 4451 subject code, sentence) pairs.

    Late-payment penalties and the fixed recovery indemnity (Code de commerce L441-10 and
    D441-5), the early-payment discount terms, and the "Autoliquidation" mention (CGI annexe
    II art. 242 nonies A) with the directive 2006/112/CE article that makes the customer
    liable (196). They are printed on credit notes too, which French practice treats as
    invoices for the mandatory mentions.
    """
    legal = words(language).legal
    indemnity = format_money(doc.recovery_indemnity, doc.currency, language)
    mentions = [
        ("PMD", legal["late_penalties"].format(rate=doc.late_penalty_rate)),
        ("PMT", legal["recovery_indemnity"].format(indemnity=indemnity)),
        ("AAB", doc.early_payment_discount),
    ]
    if doc.is_reverse_charge:
        mentions.append(("TXD", legal["reverse_charge"]))
    return tuple(mentions)
