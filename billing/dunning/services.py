"""Following up overdue invoices: each step of the plan once per invoice, recorded, and
stopped as soon as the invoice is paid or credited in full.

The scheduler's `dunning` job calls `run_dunning`. A step is recorded, with what it does
(the `invoice.overdue` event, the block of the customer's vehicles), in one transaction;
its e-mail is sent after that commit and its outcome recorded, so a step never happens
twice, and a mail that fails is retried at the next passes (MAX_MAIL_ATTEMPTS in all).
When the job missed days (an outage) and several steps are due at once, each is
recorded, but only the latest step's e-mail is sent.

Paying (the Stripe webhook) or crediting an invoice lifts the block at once
(`release_settled_blocks`), not at the next pass.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.access.models import OVERDUE as OVERDUE_BLOCK
from billing.access.models import AccessBlock
from billing.access.state import block_customer, unblock_customer
from billing.devices.models import Customer
from billing.dunning.messages import Overdue, dunning_mail
from billing.dunning.models import (
    MAIL_GIVEN_UP,
    MAIL_NONE,
    MAIL_PENDING,
    MAIL_SENT,
    MAIL_SKIPPED,
    MAX_MAIL_ATTEMPTS,
    DunningRecord,
)
from billing.dunning.steps import BLOCK, OVERDUE, Step, due_steps, parse_steps
from billing.invoicing.models import CREDIT_NOTE, FINALIZED, INVOICE, Invoice
from billing.invoicing.numbering import seller_day
from billing.mail import MailError, send_mail
from billing.money import ZERO, round_money
from billing.settings import Settings
from billing.webhooks.events import INVOICE_OVERDUE, invoice_data
from billing.webhooks.services import emit_event

log = logging.getLogger(__name__)

Mailer = Callable[[Settings, str, str, str], None]


@dataclass
class DunningReport:
    """What a pass did: the steps taken ("inv_… D+7 reminder"), mails sent and failed,
    and the customers whose vehicles were unblocked."""

    steps: list[str] = field(default_factory=list)
    mailed: list[str] = field(default_factory=list)
    mail_failures: dict[str, str] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)


def run_dunning(
    session: Session, now: dt.datetime, settings: Settings, *, mailer: Mailer = send_mail
) -> DunningReport:
    """Take the steps that are due on every unpaid invoice past its due date, lift the
    blocks of customers who settled, and send the e-mails waiting."""
    plan = parse_steps(settings.dunning.steps)
    today = seller_day(now, settings.invoicing.timezone)
    report = DunningReport()
    late = session.scalars(
        select(Invoice.id)
        .where(Invoice.kind == INVOICE, Invoice.status == FINALIZED, Invoice.due_date < today)
        .order_by(Invoice.due_date, Invoice.id)
    ).all()
    for invoice_id in late:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            continue
        taken = _follow_up(session, invoice, plan, (today - _due_date(invoice)).days, now)
        try:
            session.commit()
        except IntegrityError:  # another pass took these steps meanwhile
            session.rollback()
            continue
        report.steps += [f"{invoice.id} {step.key}" for step in taken]
    blocked = session.scalars(
        select(AccessBlock.customer_id).where(AccessBlock.cause == OVERDUE_BLOCK)
    ).all()
    for customer_id in blocked:
        if release_settled_blocks(session, customer_id, now):
            report.released.append(customer_id)
        session.commit()
    _send_pending_mails(session, settings, mailer, report, today)
    return report


def amount_due(session: Session, invoice: Invoice) -> Decimal:
    """What is left to pay on an invoice: nothing once paid or void, else its total less
    its credit notes."""
    if invoice.status != FINALIZED:
        return ZERO
    credited = session.scalar(
        select(func.coalesce(func.sum(Invoice.total_gross), 0)).where(
            Invoice.kind == CREDIT_NOTE, Invoice.credited_invoice_id == invoice.id
        )
    )
    return max(round_money(invoice.total_gross - Decimal(credited or 0), invoice.currency), ZERO)


def release_settled_blocks(session: Session, customer_id: str, now: dt.datetime) -> bool:
    """Lift the customer's overdue block once no invoice that reached the block step is
    still due, in the caller's transaction; whether it was lifted."""
    if session.get(AccessBlock, (customer_id, OVERDUE_BLOCK)) is None:
        return False
    blocking = session.scalars(
        select(Invoice)
        .join(DunningRecord, DunningRecord.invoice_id == Invoice.id)
        .where(DunningRecord.customer_id == customer_id, DunningRecord.kind == BLOCK)
    ).all()
    if any(amount_due(session, invoice) > 0 for invoice in blocking):
        return False
    return unblock_customer(session, customer_id, OVERDUE_BLOCK, now)


def records_of(session: Session, invoice_id: str) -> list[DunningRecord]:
    return list(
        session.scalars(
            select(DunningRecord)
            .where(DunningRecord.invoice_id == invoice_id)
            .order_by(DunningRecord.days)
        )
    )


def _follow_up(
    session: Session, invoice: Invoice, plan: tuple[Step, ...], days_late: int, now: dt.datetime
) -> list[Step]:
    """Record the steps that are due and not taken yet, and do what they do."""
    if amount_due(session, invoice) <= 0:
        return []  # credited in full by credit notes
    done = {record.step for record in records_of(session, invoice.id)}
    todo = [step for step in due_steps(plan, days_late) if step.key not in done]
    mailing = [step for step in todo if step.kind != OVERDUE]
    for step in todo:
        if step.kind == OVERDUE:
            status = MAIL_NONE
        else:
            status = MAIL_PENDING if step == mailing[-1] else MAIL_SKIPPED
        session.add(
            DunningRecord(
                invoice_id=invoice.id, customer_id=invoice.customer_id, step=step.key,
                kind=step.kind, days=step.days, done_at=now, mail_status=status,
                mail_to=None if status == MAIL_NONE else _recipient(invoice),
                mail_attempts=0,
            )
        )  # fmt: skip
        if step.kind == OVERDUE:
            emit_event(session, INVOICE_OVERDUE, invoice.customer_id, invoice_data(invoice), now)
        elif step.kind == BLOCK:
            message = (
                f"invoice {invoice.number} is unpaid {days_late} days after its due date "
                f"({_due_date(invoice).isoformat()})"
            )
            block_customer(session, invoice.customer_id, OVERDUE_BLOCK, message, now)
    session.flush()
    return todo


def _due_date(invoice: Invoice) -> dt.date:
    """The due date of an issued invoice (a draft has none, and is never followed up)."""
    if invoice.due_date is None:
        raise ValueError(f"invoice {invoice.id} is a draft: it has no due date")
    return invoice.due_date


def _recipient(invoice: Invoice) -> str:
    return invoice.buyer_email or invoice.customer.email


def _send_pending_mails(
    session: Session, settings: Settings, mailer: Mailer, report: DunningReport, today: dt.date
) -> None:
    pending = session.scalars(
        select(DunningRecord)
        .where(DunningRecord.mail_status == MAIL_PENDING)
        .order_by(DunningRecord.id)
    ).all()
    for record in pending:
        invoice = session.get(Invoice, record.invoice_id)
        due = amount_due(session, invoice) if invoice is not None else ZERO
        if invoice is None or due <= 0:
            record.mail_status = MAIL_SKIPPED  # settled before the mail left
            session.commit()
            continue
        customer = session.get(Customer, invoice.customer_id)
        subject, text = dunning_mail(
            record.kind,
            invoice.buyer_language or (customer.language if customer else "fr"),
            Overdue(
                number=invoice.number or invoice.id, due_date=_due_date(invoice),
                days_late=(today - _due_date(invoice)).days, amount_due=due,
                currency=invoice.currency, seller_name=settings.seller.name,
                late_penalty_rate=settings.seller.late_penalty_rate,
            ),
        )  # fmt: skip
        record.mail_attempts += 1
        try:
            mailer(settings, record.mail_to or "", subject, text)
        except (MailError, ValueError) as error:
            record.mail_error = str(error)
            if record.mail_attempts >= MAX_MAIL_ATTEMPTS:
                record.mail_status = MAIL_GIVEN_UP
            report.mail_failures[f"{record.invoice_id} {record.step}"] = str(error)
            log.warning("dunning mail %s of %s failed: %s", record.step, invoice.number, error)
        else:
            record.mail_status, record.mail_error = MAIL_SENT, None
            report.mailed.append(f"{record.invoice_id} {record.step}")
        session.commit()
