"""Corrections of issued invoices: credit notes, and voids.

French rules: an issued invoice is never changed nor deleted; it is corrected by a credit
note ("avoir"), itself a numbered document of its own series (AV-2026-000007) that cites
the invoice's number and date (CGI art. 289, I-1; EN 16931 BT-25, BT-26).

- A partial credit note credits chosen lines, in full or in part, or an amount before
  VAT spread over the invoice's VAT rates in proportion to their bases. Nothing is
  credited beyond what the invoice billed, line by line and in total.
- Voiding issues the credit note of everything not credited yet, then marks the invoice
  void. Only a finalized invoice is voided: a paid one is refunded by credit notes.
- Credit notes carry positive amounts (their type says they are credits). They are born
  finalized: there is no draft of a correction.
- Credit notes do not change what later adjustments bill: they are decisions of finance,
  while adjustments follow the usage (see `drafts`).
- What a credit note sets going outside invoicing is the caller's `on_issued`, run in the
  transaction that issues it (see `issuing.OnIssued`): `billing.payments.collection` queues
  it for Stripe when its invoice is collected there, so that Stripe stops asking for what
  it cancels, and lifts the customer's overdue block at once when it settles what was due.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.errors import Conflict, Invalid
from billing.ids import new_id
from billing.invoicing import document_files, numbering, rendering
from billing.invoicing.documents import check_document
from billing.invoicing.issuing import OnIssued
from billing.invoicing.models import (
    BILLED,
    BUYER_COLUMNS,
    CREDIT_NOTE,
    FINALIZED,
    INVOICE,
    VOID,
    Invoice,
    InvoiceLine,
)
from billing.invoicing.services import locked_invoice
from billing.money import ZERO, round_money, split_proportionally
from billing.settings import Settings
from billing.vat import compute_totals
from billing.webhooks.events import CREDIT_NOTE_ISSUED, invoice_data
from billing.webhooks.services import emit_event
from billing.words import words


@dataclass(frozen=True)
class CreditedLine:
    """A line of the invoice to credit, by position: `amount` of it, or all that is left."""

    position: int
    amount: Decimal | None = None


def issue_credit_note(
    session: Session,
    invoice_id: str,
    reason: str,
    now: dt.datetime,
    *,
    settings: Settings,
    on_issued: OnIssued,
    lines: Sequence[CreditedLine] = (),
    amount: Decimal | None = None,
) -> Invoice:
    """Issue a partial credit note of a finalized or paid invoice, for `lines` or for an
    `amount` before VAT (one of the two), and return it.

    Raises Conflict when the invoice cannot be credited (a draft, a credit note, a void
    invoice) and Invalid naming the field when a line or an amount goes beyond what is
    left to credit.
    """
    invoice = locked_invoice(session, invoice_id)
    _refuse_unless_billed(invoice)
    if not reason.strip():
        raise Invalid("a credit note states its reason", {"reason": ["must not be empty"]})
    if bool(lines) == (amount is not None):
        raise Invalid(
            "give the lines to credit or an amount", {"lines": ["give lines or an amount"]}
        )
    credited = _credited(session, invoice)
    language = invoice.buyer_language or "fr"
    if lines:
        new_lines = _line_credits(invoice, lines, credited, language)
    else:
        new_lines = _amount_credits(invoice, amount or ZERO, credited, language)
    note = _issue(session, invoice, new_lines, reason, now, settings, on_issued)
    session.commit()
    document_files.store_issued(session, note, now)
    return note


def void_invoice(
    session: Session,
    invoice_id: str,
    reason: str,
    now: dt.datetime,
    *,
    settings: Settings,
    on_issued: OnIssued,
) -> Invoice:
    """Void a finalized invoice: issue the credit note of all it billed and that was not
    credited yet (earlier global credits are deducted), mark it void, and return the
    credit note. The invoice itself stays, numbered, as French law requires."""
    invoice = locked_invoice(session, invoice_id)
    if invoice.kind != INVOICE or invoice.status != FINALIZED:
        raise Conflict(
            f"{invoice.number or invoice.id} is {invoice.status}: only a finalized invoice is "
            "voided (a paid one is refunded with credit notes)"
        )
    credited = _credited(session, invoice)
    language = invoice.buyer_language or "fr"
    deduction = words(language).credit_notes["deduction"]
    new_lines = [
        _credit_of(line, line.amount - credited.by_position[line.position], language)
        for line in invoice.lines
        if line.amount != credited.by_position[line.position]
    ]
    new_lines += [
        InvoiceLine(**{**_columns(line), "credited_position": None,
                       "description": deduction.format(number=number),
                       "quantity": -line.quantity, "billable_quantity": -line.billable_quantity,
                       "amount": -line.amount})
        for number, line in credited.global_lines
    ]  # fmt: skip
    if not new_lines:
        raise Conflict(f"{invoice.number} is credited in full already")
    note = _issue(session, invoice, new_lines, reason, now, settings, on_issued)
    invoice.status, invoice.voided_at = VOID, now
    session.commit()
    document_files.store_issued(session, note, now)
    return note


@dataclass
class _Credited:
    by_position: dict[int, Decimal]  # amount credited per line of the invoice
    global_lines: list[tuple[str, InvoiceLine]]  # (credit note number, line) of amount credits
    total_net: Decimal


def _credited(session: Session, invoice: Invoice) -> _Credited:
    notes = session.scalars(
        select(Invoice).where(Invoice.credited_invoice_id == invoice.id).order_by(Invoice.number)
    ).all()
    by_position: dict[int, Decimal] = defaultdict(lambda: ZERO)
    global_lines = []
    for note in notes:
        for line in note.lines:
            if line.credited_position is None:
                global_lines.append((note.number or "", line))
            else:
                by_position[line.credited_position] += line.amount
    return _Credited(by_position, global_lines, sum((n.total_net for n in notes), ZERO))


def _line_credits(
    invoice: Invoice, requested: Sequence[CreditedLine], credited: _Credited, language: str
) -> list[InvoiceLine]:
    lines = {line.position: line for line in invoice.lines}
    errors: dict[str, list[str]] = {}
    credits = []
    for index, item in enumerate(requested):
        field = f"lines.{index}"
        line = lines.get(item.position)
        if line is None:
            errors[f"{field}.position"] = [f"invoice {invoice.number} has no line {item.position}"]
            continue
        left = line.amount - credited.by_position[line.position]
        amount = left if item.amount is None else item.amount
        problem = _amount_problem(amount, left, invoice.currency)
        if problem:
            errors[f"{field}.amount"] = [problem]
            continue
        credits.append(_credit_of(line, amount, language))
    if len({item.position for item in requested}) != len(requested):
        errors["lines"] = ["a line is credited once per credit note"]
    if errors:
        raise Invalid("cannot credit these lines", errors)
    total = sum((credit.amount for credit in credits), ZERO)
    problem = _amount_problem(total, invoice.total_net - credited.total_net, invoice.currency)
    if problem:
        raise Invalid("cannot credit these lines", {"lines": [f"in total: {problem}"]})
    return credits


def _amount_credits(
    invoice: Invoice, amount: Decimal, credited: _Credited, language: str
) -> list[InvoiceLine]:
    problem = _amount_problem(amount, invoice.total_net - credited.total_net, invoice.currency)
    if problem:
        raise Invalid("cannot credit this amount", {"amount": [problem]})
    groups = [group for group in json.loads(invoice.vat_breakdown) if Decimal(group["base"]) > 0]
    shares = split_proportionally(
        amount, [Decimal(group["base"]) for group in groups], invoice.currency
    )
    one, gesture = Decimal(1), words(language).credit_notes["gesture"]
    return [
        InvoiceLine(
            period=invoice.period, period_start=invoice.period_start,
            period_end=invoice.period_end, description=gesture, note="",
            quantity=one, billable_quantity=one, unit_code="C62", unit_price=share,
            amount=share, vat_category=group["category"], vat_rate=Decimal(group["rate"]),
            tiers="[]",
        )
        for group, share in zip(groups, shares, strict=True)
        if share
    ]  # fmt: skip


def _amount_problem(amount: Decimal, left: Decimal, currency: str) -> str | None:
    left = round_money(left, currency)  # PostgreSQL gives NUMERIC(20, 6): 14.000000
    if amount != round_money(amount, currency):
        return f"{amount} is not a whole number of cents"
    if amount <= 0:
        return "must be above 0 (nothing is left to credit)" if left <= 0 else "must be above 0"
    if amount > left:
        return f"{amount} is more than the {left} left to credit"
    return None


def _credit_of(line: InvoiceLine, amount: Decimal, language: str) -> InvoiceLine:
    """The credit of `amount` of an invoice line: the line itself when all of it is
    credited at once, else a lump sum saying what it credits."""
    columns = {**_columns(line), "credited_position": line.position}
    if amount == line.amount:
        return InvoiceLine(**columns)
    one = Decimal(1)
    return InvoiceLine(
        **{**columns, "description": words(language).credit_notes["partial"].format(
               description=line.description),
           "model": None, "note": "", "quantity": one, "billable_quantity": one,
           "unit_code": "C62", "unit_price": amount, "amount": amount, "tiers": "[]"}
    )  # fmt: skip


def _columns(line: InvoiceLine) -> dict:
    names = (
        "period", "period_start", "period_end", "vehicle_id", "plan_code", "plan_version",
        "charge_index", "metric", "model", "description", "note", "quantity",
        "billable_quantity", "unit_code", "unit_price", "amount", "vat_category", "vat_rate",
        "tiers",
    )  # fmt: skip
    return {name: getattr(line, name) for name in names}


def _issue(
    session: Session,
    invoice: Invoice,
    lines: list[InvoiceLine],
    reason: str,
    now: dt.datetime,
    settings: Settings,
    on_issued: OnIssued,
) -> Invoice:
    """Number and store the credit note of `lines`, checked as a document first, announce
    it, then run `on_issued` on it."""
    totals = compute_totals(
        [(line.vat_category, line.vat_rate, line.amount) for line in lines], invoice.currency
    )
    number, issue_date = numbering.take_number(
        session,
        numbering.CREDIT_NOTE_PREFIX,
        numbering.seller_day(now, settings.invoicing.timezone),
    )
    for position, line in enumerate(lines, start=1):
        line.position = position
    buyer = {name: getattr(invoice, name) for name in BUYER_COLUMNS}
    note = Invoice(
        id=new_id("inv"), customer_id=invoice.customer_id, period=invoice.period,
        kind=CREDIT_NOTE, status=FINALIZED, number=number, currency=invoice.currency,
        period_start=invoice.period_start, period_end=invoice.period_end,
        period_ends_at=invoice.period_ends_at, issue_date=issue_date, due_date=issue_date,
        total_net=totals.net, total_vat=totals.vat, total_gross=totals.gross,
        vat_breakdown=rendering.vat_breakdown_json(totals), usage_summary="{}",
        payment_terms=rendering.credit_note_terms(invoice.buyer_language or "fr"),
        seller=rendering.seller_json(settings.seller), credited_invoice=invoice,
        reason=reason.strip(), created_at=now, refreshed_at=now, finalized_at=now,
        lines=lines, **buyer,
    )  # fmt: skip
    session.add(note)
    session.flush()
    problems = check_document(rendering.invoice_document(note))
    if problems:
        session.rollback()
        raise Invalid(f"a credit note of {invoice.number} cannot be issued", {"document": problems})
    emit_event(session, CREDIT_NOTE_ISSUED, note.customer_id, invoice_data(note), now)
    on_issued(session, [note], now, settings)  # mirrored iff issued; unblocked when settled
    return note


def _refuse_unless_billed(invoice: Invoice) -> None:
    if invoice.kind != INVOICE or invoice.status not in BILLED:
        what = "a credit note" if invoice.kind == CREDIT_NOTE else invoice.status
        raise Conflict(
            f"{invoice.number or invoice.id} is {what}: only finalized and paid invoices "
            "are credited"
        )
