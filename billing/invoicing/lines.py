"""Invoice lines as plain data: from a statement, and the adjustments of a billed period.

No database here. `statement_lines` turns the priced lines of a statement into invoice
lines one for one, so that an invoice and the statement of its period agree to the cent.
`adjustment_lines` bills what changed in a period already invoiced:

- Lines are compared per (vehicle, plan version, charge, VAT category and rate): what the
  period's statement says now, against what the issued invoices already billed for that
  period (its own invoice and the adjustments of later ones).
- Each difference of amount becomes one line of that period, positive or negative, with
  the difference of quantities. A difference of quantity alone (units still within the
  included ones) bills nothing and gives no line.
- A change of VAT treatment gives two lines: the old rate taken back, the new one billed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.charges.compute import Statement
from billing.invoicing.documents import format_money, format_quantity
from billing.money import ZERO
from billing.periods import Period
from billing.pricing.caps import CAP_METRIC, CAP_MODEL, CapDiscount, CapOutcome
from billing.pricing.fees import StatementLine
from billing.pricing.rating import TierLine
from billing.words import words

UNIT_CODES = {  # UN/ECE recommendation 20
    "distance_km": "KMT",
    "energy_kwh": "KWH",
    "trips": "C62",
    "trip_minutes": "MIN",
    "active_days": "DAY",
    "vehicle_days": "DAY",
}
CAP_UNIT_CODE = "C62"  # the discount is one lump sum
SUMMARY_METRICS = ("distance_km", "trips", "trip_minutes", "energy_kwh", "active_days")


@dataclass(frozen=True)
class LineData:
    """The content of one invoice line (the columns of InvoiceLine but its place)."""

    period: str
    period_start: dt.date
    period_end: dt.date  # inclusive
    vehicle_id: str | None
    plan_code: str | None
    plan_version: int | None
    charge_index: int | None
    metric: str | None
    model: str | None
    description: str
    note: str
    quantity: Decimal  # measured
    billable_quantity: Decimal  # after included units
    unit_code: str
    unit_price: Decimal | None  # the one price per unit, when the charge has one
    amount: Decimal
    vat_category: str
    vat_rate: Decimal
    tiers: str = "[]"  # JSON, see tiers_json
    credited_position: int | None = None

    def columns(self) -> dict[str, object]:
        """The line as the columns of InvoiceLine (a shallow `dataclasses.asdict`)."""
        return {name: getattr(self, name) for name in LINE_FIELDS}

    @property
    def adjustment_key(self) -> tuple:
        return (
            self.vehicle_id, self.plan_code, self.plan_version, self.charge_index,
            self.metric, self.vat_category, self.vat_rate,
        )  # fmt: skip


LINE_FIELDS = tuple(field.name for field in fields(LineData))  # in declaration order


def statement_lines(statement: Statement, language: str) -> list[LineData]:
    """One invoice line per statement line, in the statement's order."""
    zone = ZoneInfo(statement.timezone)
    period = str(statement.period)
    lines = [_statement_line(line, period, zone, language) for line in statement.lines]
    if statement.cap is not None:
        bounds = (
            statement.start.astimezone(zone).date(),
            (statement.end - dt.timedelta(microseconds=1)).astimezone(zone).date(),
        )
        lines += [
            _cap_line(statement.cap, discount, period, bounds, statement.currency, language)
            for discount in statement.cap.discounts
        ]
    return lines


def _cap_line(
    outcome: CapOutcome,
    discount: CapDiscount,
    period: str,
    bounds: tuple[dt.date, dt.date],
    currency: str,
    language: str,
) -> LineData:
    """The discount of a spending cap at one VAT rate: a negative lump sum naming the cap."""
    wording = words(language).lines
    capped = format_money(outcome.capped_amount, currency, language)
    note = wording["cap_note_all" if outcome.cap.include_flat_fees else "cap_note_usage"]
    note = note.format(capped=capped)
    one = Decimal(1)
    return LineData(
        period=period,
        period_start=bounds[0],
        period_end=bounds[1],
        vehicle_id=None,
        plan_code=None,
        plan_version=None,
        charge_index=None,
        metric=CAP_METRIC,
        model=CAP_MODEL,
        description=wording["cap"].format(cap=format_money(outcome.cap.amount, currency, language)),
        note=note[:1].upper() + note[1:],
        quantity=one,
        billable_quantity=one,
        unit_code=CAP_UNIT_CODE,
        unit_price=None,
        amount=discount.amount,
        vat_category=discount.vat_category,
        vat_rate=discount.vat_rate,
    )


def _statement_line(line: StatementLine, period: str, zone: ZoneInfo, language: str) -> LineData:
    rated = line.rated
    wording = words(language).lines
    unit_code = UNIT_CODES[rated.metric]
    notes = []
    if rated.scope == "pooled":
        pooled = format_quantity(rated.pooled_quantity or ZERO, unit_code, language)
        notes.append(wording["pooled"].format(quantity=pooled))
    elif rated.billable_quantity < rated.quantity and rated.metric != "vehicle_days":
        included = format_quantity(rated.quantity - rated.billable_quantity, unit_code, language)
        notes.append(wording["included"].format(quantity=included))
    if rated.maximum_applied:
        notes.append(wording["maximum"])
    if rated.minimum_applied:
        notes.append(wording["minimum"])
    note = "; ".join(notes)
    return LineData(
        period=period,
        period_start=line.segment_start.astimezone(zone).date(),
        period_end=(line.segment_end - dt.timedelta(microseconds=1)).astimezone(zone).date(),
        vehicle_id=line.vehicle_id,
        plan_code=line.plan_code,
        plan_version=line.plan_version,
        charge_index=line.charge_index,
        metric=rated.metric,
        model=rated.model,
        description=charge_description(
            line.charge_name, rated.metric, line.plan_code, line.plan_version, language
        ),
        note=note[:1].upper() + note[1:],
        quantity=rated.quantity,
        billable_quantity=rated.billable_quantity,
        unit_code=unit_code,
        unit_price=rated.unit_amount,
        amount=rated.amount,
        vat_category=line.vat_category,
        vat_rate=line.vat_rate,
        tiers=tiers_json(rated.tiers),
    )


def charge_description(
    charge_name: str | None, metric: str, plan_code: str, plan_version: int, language: str
) -> str:
    """'Kilomètres (plan urbain v1)': the charge's name, else its metric, and the plan."""
    catalogue = words(language)
    name = charge_name or catalogue.metrics[metric]
    plan = catalogue.lines["plan"].format(code=plan_code, version=plan_version)
    return f"{name} ({plan})"


def tiers_json(tiers: Iterable[TierLine]) -> str:
    """The tier breakdown as JSON, every number an exact decimal string."""
    return json.dumps(
        [
            {
                "tier": tier.tier,
                "from": _text(tier.from_quantity),
                "up_to": None if tier.up_to is None else _text(tier.up_to),
                "quantity": _text(tier.quantity),
                "unit_amount": _text(tier.unit_amount),
                "flat_amount": _text(tier.flat_amount),
                "amount": _text(tier.amount),
            }
            for tier in tiers
        ]
    )


def _text(value: Decimal) -> str:
    """Exact and without needless zeros: 162.000 km is written 162."""
    return format(value.normalize(), "f") if value else "0"


def usage_summary(statement: Statement) -> dict[str, dict[str, str]]:
    """Each vehicle's usage over the period (all its segments), for the PDF's overview."""
    totals: dict[str, dict[str, Decimal]] = {}
    for item in statement.segments:
        vehicle = totals.setdefault(item.segment.vehicle_id, dict.fromkeys(SUMMARY_METRICS, ZERO))
        for metric in SUMMARY_METRICS:
            vehicle[metric] += Decimal(getattr(item.usage, metric))
    return {
        vehicle: {metric: _text(quantity) for metric, quantity in metrics.items()}
        for vehicle, metrics in sorted(totals.items())
    }


def adjustment_lines(
    period: Period,
    bounds: tuple[dt.date, dt.date],
    measured: Sequence[LineData],
    billed: Sequence[LineData],
    language: str,
) -> list[LineData]:
    """The lines that bring what was billed for `period` to what is `measured` now.

    `measured` are the lines of the period's statement today, `billed` every line already
    issued for it; `bounds` are the period's first and last days. Lines come in the order
    of their first appearance, measured lines first.
    """
    wording = words(language).lines
    now = _sum_by_key(measured)
    before = _sum_by_key(billed)
    lines = []
    for key in [*now, *(key for key in before if key not in now)]:
        current, previous = now.get(key), before.get(key)
        amount = _amount(current) - _amount(previous)
        if not amount:
            continue
        reference = current if current is not None else before[key]
        quantity = _quantity(current) - _quantity(previous)
        billable = _billable(current) - _billable(previous)
        # A per-unit price still holds for the difference when both sides have it; the
        # document checks quantity × price against the amount before showing it per unit.
        one_price = current is None or previous is None or current.unit_price == previous.unit_price
        unit_code = reference.unit_code
        note = wording["adjustment_note"].format(
            billed=format_quantity(_quantity(previous), unit_code, language),
            measured=format_quantity(_quantity(current), unit_code, language),
        )
        lines.append(
            replace(
                reference,
                period=str(period),
                period_start=bounds[0],
                period_end=bounds[1],
                description=f"{wording['adjustment'].format(period=period)} — "
                f"{reference.description}",
                note=note[:1].upper() + note[1:],
                quantity=quantity,
                billable_quantity=billable,
                unit_price=reference.unit_price if one_price else None,
                amount=amount,
                tiers="[]",
            )
        )
    return lines


def _sum_by_key(lines: Sequence[LineData]) -> dict[tuple, LineData]:
    """Lines of one key added up (a vehicle can have several segments on one plan)."""
    sums: dict[tuple, LineData] = {}
    for line in lines:
        key = line.adjustment_key
        if key in sums:
            total = sums[key]
            sums[key] = replace(
                total,
                quantity=total.quantity + line.quantity,
                billable_quantity=total.billable_quantity + line.billable_quantity,
                amount=total.amount + line.amount,
                unit_price=total.unit_price if total.unit_price == line.unit_price else None,
            )
        else:
            sums[key] = line
    return sums


def _amount(line: LineData | None) -> Decimal:
    return line.amount if line else ZERO


def _quantity(line: LineData | None) -> Decimal:
    return line.quantity if line else ZERO


def _billable(line: LineData | None) -> Decimal:
    return line.billable_quantity if line else ZERO
