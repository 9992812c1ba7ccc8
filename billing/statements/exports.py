"""A statement as CSV, for spreadsheets and accounting tools.

One row per vehicle, segment and charge, then the discount of a spending cap (a row per
VAT rate), then the totals: a row per VAT rate (base and
VAT), then HT, VAT and TTC; for a month in progress, the projected totals follow. Numbers
are exact decimals with a dot and no thousands separator; times are RFC 3339 UTC; UTF-8.
The `row` column says what each row is. Text that a spreadsheet would run as a formula
is written with a leading apostrophe (`spreadsheet_safe`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from billing.csv_cells import spreadsheet_safe
from billing.pricing.caps import CAP_METRIC, CAP_MODEL
from billing.statements.services import CustomerStatement
from billing.vat import Totals

COLUMNS = (
    "row", "vehicle_id", "plan_code", "plan_version", "segment_start", "segment_end",
    "vehicle_days", "charge", "charge_name", "metric", "model", "scope", "quantity",
    "billable_quantity", "pooled_quantity", "unit_price", "amount", "vat_category",
    "vat_rate", "currency",
)  # fmt: skip
LINE = "line"
# The discount of a spending cap at one VAT rate: quantity is what the charges it covers
# cost, unit_price the cap.
CAP_DISCOUNT = "cap_discount"


def statement_csv(result: CustomerStatement) -> str:
    """The statement as CSV text, header row first."""
    buffer = io.StringIO()
    writer = _SafeDictWriter(buffer, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    currency = result.statement.currency
    for vehicle in result.vehicles:
        for segment in vehicle.segments:
            for line in segment.lines:
                rated = line.rated
                writer.writerow(
                    {
                        "row": LINE,
                        "vehicle_id": vehicle.vehicle_id,
                        "plan_code": line.plan_code,
                        "plan_version": line.plan_version,
                        "segment_start": line.segment_start.isoformat(),
                        "segment_end": line.segment_end.isoformat(),
                        "vehicle_days": _number(segment.vehicle_days),
                        "charge": line.charge_index,
                        "charge_name": line.charge_name or "",
                        "metric": rated.metric,
                        "model": rated.model,
                        "scope": rated.scope,
                        "quantity": _number(rated.quantity),
                        "billable_quantity": _number(rated.billable_quantity),
                        "pooled_quantity": _number(rated.pooled_quantity),
                        "unit_price": _number(rated.unit_amount),
                        "amount": _number(rated.amount),
                        "vat_category": line.vat_category,
                        "vat_rate": _number(line.vat_rate),
                        "currency": currency,
                    }
                )
    cap = result.statement.cap
    if cap is not None:
        for discount in cap.discounts:
            writer.writerow(
                {
                    "row": CAP_DISCOUNT,
                    "metric": CAP_METRIC,
                    "model": CAP_MODEL,
                    "quantity": _number(cap.capped_amount),
                    "unit_price": _number(cap.cap.amount),
                    "amount": _number(discount.amount),
                    "vat_category": discount.vat_category,
                    "vat_rate": _number(discount.vat_rate),
                    "currency": currency,
                }
            )
    if result.statement.totals is not None:  # None for a caller who sees no money
        writer.writerows(_total_rows(result.statement.totals, "", currency))
    if result.projection is not None:
        writer.writerows(_total_rows(result.projection.totals, "projected_", currency))
    return buffer.getvalue()


class _SafeDictWriter(csv.DictWriter):
    """Every cell through `spreadsheet_safe`, whichever column it is in."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow(
            {k: "" if v is None else spreadsheet_safe(str(v)) for k, v in rowdict.items()}
        )

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)


def csv_filename(result: CustomerStatement) -> str:
    """statement-<customer>-<period>.csv; ids are [A-Za-z0-9_-], safe in a header."""
    return f"statement-{result.statement.customer_id}-{result.statement.period}.csv"


def _total_rows(totals: Totals, prefix: str, currency: str) -> list[dict[str, str]]:
    rows = []
    for subtotal in totals.subtotals:
        for row, amount in (("vat_base", subtotal.base), ("vat", subtotal.vat)):
            rows.append(
                {
                    "row": prefix + row,
                    "amount": _number(amount),
                    "vat_category": subtotal.category,
                    "vat_rate": _number(subtotal.rate),
                    "currency": currency,
                }
            )
    for row, amount in (("total_net", totals.net), ("total_vat", totals.vat),
                        ("total_gross", totals.gross)):  # fmt: skip
        rows.append({"row": prefix + row, "amount": _number(amount), "currency": currency})
    return rows


def _number(value: Decimal | None) -> str:
    # Plain notation: str(Decimal) would write 1E+2 for some values.
    return "" if value is None else format(value, "f")
