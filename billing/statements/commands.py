"""`billing statement CUSTOMER [--period YYYY-MM]`: a usage statement as a terminal table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

import click

from billing.auth import SYSTEM
from billing.charges.compute import CLOSED
from billing.charges.history import InvoicedPeriod, invoice_history
from billing.cli_context import AppContext, domain_failure
from billing.db import utcnow
from billing.errors import DomainError
from billing.periods import Period
from billing.pricing.rating import RatedLine
from billing.statements.services import CustomerStatement, get_statement
from billing.vat import Totals

COLUMNS = ("Vehicle", "Plan", "From", "To", "Charge", "Metric", "Quantity", "Billable",
           "Unit price", "Amount", "VAT %")  # fmt: skip
NAME_WIDTH = 28  # charge names can be long sentences; the table must stay readable
NUMERIC = frozenset(("Quantity", "Billable", "Unit price", "Amount", "VAT %"))


@click.command("statement")
@click.argument("customer_id")
@click.option("--period", help="YYYY-MM; default: the current month in the customer's zone")
@click.pass_obj
def statement(app: AppContext, customer_id: str, period: str | None) -> None:
    """Print the usage statement of CUSTOMER_ID for a month: vehicles, lines, totals."""
    try:
        month = Period.parse(period) if period else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None
    with app.database.session() as session:
        try:
            result = get_statement(
                session, SYSTEM, customer_id, month, utcnow(),
                history=invoice_history(app.extensions),
                adjustment_months=app.settings.invoicing.adjustment_months,
            )  # fmt: skip
        except DomainError as error:
            raise domain_failure(error) from None
    click.echo(render_statement(result))


def render_statement(result: CustomerStatement) -> str:
    """The statement as aligned text: a heading, one row per line, the pools, the totals."""
    statement = result.statement
    zone = ZoneInfo(statement.timezone)
    status = (
        "closed" if result.status == CLOSED else f"in progress, as of {_local(result.as_of, zone)}"
    )
    freshness = statement.freshness
    out = [
        f"Statement of {statement.customer_id} for {statement.period} ({status})",
        f"{_local(statement.start, zone)} to {_local(statement.end, zone)} {statement.timezone}"
        f", amounts in {statement.currency}",
        "Latest reading: "
        + (_local(freshness.latest_reading_at, zone) if freshness.latest_reading_at else "none")
        + (", some readings still being metered" if result.metering_pending else ""),
    ]
    if statement.vat.exemption:
        out.append(f"VAT: {statement.vat.exemption}")
    rows = [
        (
            vehicle.vehicle_id,
            f"{line.plan_code} v{line.plan_version}",
            _local(line.segment_start, zone),
            _local(line.segment_end, zone),
            _shortened(line.charge_name or f"charge {line.charge_index}"),
            line.rated.metric,
            _number(line.rated.quantity),
            _number(line.rated.billable_quantity),
            _number(line.rated.unit_amount),
            _number(line.amount) + _clamp_mark(line.rated),
            _number(line.vat_rate),
        )
        for vehicle in result.vehicles
        for segment in vehicle.segments
        for line in segment.lines
    ]
    out += ["", *_table(COLUMNS, rows), ""]
    if any(line.rated.maximum_applied or line.rated.minimum_applied for line in statement.lines):
        out += [CLAMP_LEGEND, ""]
    for pool in result.pools:
        out.append(
            f"Pooled {pool.metric} of {pool.plan_code} v{pool.plan_version}: "
            f"{_number(pool.quantity)}, billable {_number(pool.billable_quantity)}, "
            f"amount {_number(pool.amount)}, shared by {len(pool.shares)} vehicle(s)"
        )
    if result.pools:
        out.append("")
    if statement.cap is not None:
        cap = statement.cap
        out += [
            f"Spending cap {_number(cap.cap.amount)} HT: charges it covers "
            f"{_number(cap.capped_amount)}, discount {_number(cap.discount)}",
            "",
        ]
    out += _totals("To date" if result.projection else "Totals", statement.totals)
    if result.invoiced is not None:
        out += ["", *_invoiced(result.invoiced)]
    if result.projection is not None:
        projection = result.projection
        out += ["", *_totals(f"Projected to {_local(projection.end, zone)}", projection.totals)]
        out.append(projection.note or f"Method: {projection.method}")
        if projection.pending_adjustments is not None:
            out += ["", *_totals("Adjustments of invoiced months", projection.pending_adjustments)]
            out += ["", *_totals("Projected invoice", projection.totals_with_adjustments)]
    return "\n".join(out)


def _invoiced(invoiced: InvoicedPeriod) -> list[str]:
    """What a closed month's invoices billed, against the totals measured now above."""
    out = [
        f"Invoiced as {', '.join(invoiced.invoice_numbers)}: billed {_number(invoiced.billed.net)}"
        f" HT, {_number(invoiced.billed.gross)} TTC; the totals above are measured now"
    ]
    if not invoiced.adjustable:
        out.append("Out of the adjustment window: no further adjustment is billed")
    elif invoiced.pending.net or invoiced.pending.gross:
        out.append(
            f"Adjustment pending for the next invoice: {_number(invoiced.pending.net)} HT, "
            f"{_number(invoiced.pending.gross)} TTC"
        )
    else:
        out.append("Nothing measured since: no adjustment pending")
    return out


CLAMP_LEGEND = (
    "max / min: the charge's maximum or minimum for the period set the amount "
    "(per vehicle, prorated to its days on the plan)"
)


def _clamp_mark(rated: RatedLine) -> str:
    """Marks an amount that is the charge's maximum or minimum, not quantity × price."""
    if rated.maximum_applied:
        return " max"
    if rated.minimum_applied:
        return " min"
    return ""


def _totals(title: str, totals: Totals | None) -> list[str]:
    if totals is None:  # a statement shown without money
        return []
    rows = [(f"VAT {s.category} {_number(s.rate)} %", f"base {_number(s.base)}",
             f"VAT {_number(s.vat)}") for s in totals.subtotals]  # fmt: skip
    rows += [("Total HT", "", _number(totals.net)), ("VAT", "", _number(totals.vat)),
             ("Total TTC", "", _number(totals.gross))]  # fmt: skip
    return [title, *_table(("", "", ""), rows, header=False, right=frozenset((1, 2)))]


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    header: bool = True,
    right: frozenset[int] | None = None,
) -> list[str]:
    right = (
        right
        if right is not None
        else frozenset(i for i, name in enumerate(headers) if name in NUMERIC)
    )
    shown = [tuple(headers), *rows] if header else list(rows)
    widths = [max(len(row[i]) for row in shown) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in shown
    ]
    if header:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _shortened(text: str) -> str:
    return text if len(text) <= NAME_WIDTH else text[: NAME_WIDTH - 1] + "…"


def _local(instant: dt.datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")
