"""Invoicing services: the invoice run of a closed period, drafts that follow late
telemetry, and finalization. Credit notes and voids are in `credit_notes`.

Rules:
- Every customer with something to bill in a closed period (a vehicle on a plan, or an
  adjustment of an earlier period) has exactly one invoice for it; the database refuses
  a second one. A period is closed for a customer at midnight on the 1st of the next
  month in the customer's time zone.
- An invoice starts as a draft whose lines follow the statement of its period
  (`billing.charges.compute`), so that the two agree to the cent; each run brings it
  up to date. Runs work in batches of customers, one transaction each: a run that stops
  midway leaves complete drafts and nothing half made, and running it again finishes
  the job. A batch that fails is run again one customer per transaction, so that a
  failing customer is reported and spares the others.
- Finalizing brings the draft up to date a last time, locks the plan versions it rated
  (they can no longer be edited), copies the customer's and the seller's identity, and
  takes the next number of its series (`issuing.issue`, the one place where invoices
  are issued). What issuing sets going outside invoicing (collection through Stripe) is
  the caller's `on_issued`: the API, the commands and the scheduler issue through
  `billing.payments.collection`, which passes it. From then on the invoice never changes
  and is never deleted (French rule, CGI art. 289): corrections are credit notes, and
  usage that arrives later is billed as adjustment lines on the customer's next invoice.
- Drafts are finalized `grace_days` after their period closed (3 by default), so that
  telemetry stored on the vehicles during a connectivity gap still makes it in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session, selectinload

from billing.auth import Principal
from billing.charges.unattributed import period_unattributed_usage
from billing.devices.models import Customer, Fleet, FleetMembership
from billing.errors import Conflict, NotFound
from billing.invoicing import document_files, issuing
from billing.invoicing.drafts import customers_invoiced_in_window, invoices_in_window
from billing.invoicing.issuing import OnIssued
from billing.invoicing.models import DRAFT, INVOICE, Invoice
from billing.metering.queries import UnattributedUsage
from billing.pagination import Page, paginate
from billing.periods import Period
from billing.settings import Settings

log = logging.getLogger(__name__)

# Time zones reach from UTC-12 to UTC+14: a month of some customer overlaps these bounds.
_EARLIEST_OFFSET, _LATEST_OFFSET = dt.timedelta(hours=14), dt.timedelta(hours=12)


@dataclass
class RunReport:
    """What a run did: invoice ids by outcome, the error of each failure, and the usage of
    the periods run that no invoice bills (vehicles in no customer's fleet or on no plan
    then), which a run must never pass over in silence."""

    created: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    finalized: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # customer or invoice id → error
    unattributed: list[UnattributedUsage] = field(default_factory=list)


# Told (items handled so far, items in all) as a long run goes; for progress bars.
Progress = Callable[[int, int], None]


# --- the invoice run ---------------------------------------------------------------------

BATCH_SIZE = 200  # customers or invoices per transaction


def generate_invoices(
    session: Session,
    period: Period,
    now: dt.datetime,
    *,
    settings: Settings,
    progress: Progress | None = None,
) -> RunReport:
    """Make sure every customer with something to bill in `period` has its invoice.

    Creates the missing drafts, brings the existing ones up to date and discards those
    left with nothing to bill; finalized, paid and void invoices are left alone.
    Customers whose period is not closed yet (in their time zone) are skipped. Running it
    twice changes nothing the second time. The report lists the period's unattributed
    usage (see billing.charges.unattributed).
    """
    months = settings.invoicing.adjustment_months
    status = dict(
        session.execute(
            select(Invoice.customer_id, Invoice.status).where(
                Invoice.kind == INVOICE, Invoice.period == str(period)
            )
        ).all()
    )
    with_history = invoices_in_window(session, period, months)
    customers = [
        customer
        for customer in _customers_to_invoice(session, period, months)
        if _is_closed(period, customer, now) and status.get(customer.id, DRAFT) == DRAFT
    ]

    def draft(batch: list[Customer]) -> RunReport:
        outcome = issuing.write_drafts(session, batch, period, now, months, with_history)
        return RunReport(**dataclasses.asdict(outcome))

    report = _in_batches(session, customers, draft, lambda customer: customer.id, progress)
    zone = ZoneInfo(settings.default_timezone)
    report.unattributed = list(period_unattributed_usage(session, period, zone).stretches)
    return report


def _customers_to_invoice(session: Session, period: Period, months: int) -> list[Customer]:
    """Customers holding a vehicle at some time of the period, in any time zone, and
    customers whose earlier invoices may need adjusting; by id."""
    start = dt.datetime.combine(period.first_day(), dt.time(), dt.UTC) - _EARLIEST_OFFSET
    end = dt.datetime.combine(period.next().first_day(), dt.time(), dt.UTC) + _LATEST_OFFSET
    holders = (
        select(Fleet.customer_id)
        .join(FleetMembership, FleetMembership.fleet_id == Fleet.id)
        .where(FleetMembership.started_at < end)
        .where(or_(FleetMembership.ended_at.is_(None), FleetMembership.ended_at > start))
    )
    return list(
        session.scalars(
            select(Customer)
            .where(
                or_(
                    Customer.id.in_(holders),
                    Customer.id.in_(customers_invoiced_in_window(period, months)),
                )
            )
            .order_by(Customer.id)
        )
    )


def _is_closed(period: Period, customer: Customer, now: dt.datetime) -> bool:
    return now >= period.bounds(ZoneInfo(customer.timezone))[1]


def refresh_draft(
    session: Session, invoice_id: str, now: dt.datetime, *, settings: Settings
) -> Invoice | None:
    """Bring a draft up to date with its period's statement and the adjustments due.

    Returns the draft, or None when nothing is left to bill and the draft was discarded
    (the next run creates it again if usage appears). Raises Conflict for an issued one.
    """
    invoice = locked_invoice(session, invoice_id)
    _refuse_unless_draft(invoice, "refreshed")
    customer = session.get_one(Customer, invoice.customer_id)
    outcome = issuing.write_drafts(
        session, [customer], Period.parse(invoice.period), now,
        settings.invoicing.adjustment_months,
    )  # fmt: skip
    session.commit()
    return None if outcome.discarded else invoice


def discard_draft(session: Session, invoice_id: str) -> None:
    """Delete a draft. Issued invoices are never deleted (void them instead). The period's
    next run makes the draft again, from the data of the day."""
    invoice = locked_invoice(session, invoice_id)
    _refuse_unless_draft(invoice, "discarded; void it instead")
    session.delete(invoice)
    session.commit()


# --- finalization ------------------------------------------------------------------------


def finalize_invoice(
    session: Session, invoice_id: str, now: dt.datetime, *, settings: Settings, on_issued: OnIssued
) -> Invoice:
    """Issue a draft now (see `issuing.issue`) and commit: brought up to date, its plan
    versions locked, identities copied, numbered, frozen; then render and keep its files.

    Raises Conflict when the invoice is not a draft or has nothing left to bill, and
    Invalid when the document would break a rule of EN 16931 or French law (the seller's
    settings lack a SIREN, a reverse-charge customer has no VAT number…); nothing is
    numbered then.
    """
    invoice = locked_invoice(session, invoice_id)
    _refuse_unless_draft(invoice, "finalized again")
    try:
        issuing.issue(session, [invoice], now, settings, on_issued)
    except Exception:
        session.rollback()  # gives the number back
        raise
    session.commit()
    # Once committed, not while the number series is locked.
    document_files.store_issued(session, invoice, now)
    return invoice


def finalize_due_invoices(
    session: Session,
    now: dt.datetime,
    *,
    settings: Settings,
    on_issued: OnIssued,
    period: Period | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Finalize the drafts whose period closed at least `grace_days` ago (of `period` only,
    when given), oldest period first, then by customer: numbers follow that order."""
    grace = dt.timedelta(days=settings.invoicing.grace_days)
    query = select(Invoice.id).where(Invoice.status == DRAFT, Invoice.period_ends_at <= now - grace)
    if period is not None:
        query = query.where(Invoice.period == str(period))
    due = session.scalars(query.order_by(Invoice.period, Invoice.customer_id)).all()

    def finalize(batch: list[str]) -> RunReport:
        locked = {invoice.id: invoice for invoice in issuing.locked_invoices(session, batch)}
        drafts = [locked[i] for i in batch if i in locked and locked[i].is_draft]
        if drafts:
            issuing.issue(session, drafts, now, settings, on_issued)
        return RunReport(finalized=[invoice.id for invoice in drafts])

    return _in_batches(session, list(due), finalize, str, progress)


def invoice_closed_periods(
    session: Session, now: dt.datetime, *, settings: Settings, on_issued: OnIssued
) -> RunReport:
    """The scheduler's invoicing: the invoices of the last `catch_up_months` closed periods
    made or brought up to date, then the drafts past their grace period finalized.

    It works from the database alone, so a run after an outage catches up on everything
    it missed within that window. Runs on two schedulers at once are safe (the unique
    invoice per period, locked rows and numbering) though wasteful: the job's lease
    prevents them.
    """
    report = RunReport()
    for period in closed_periods(now, settings.invoicing.catch_up_months):
        _merge(report, generate_invoices(session, period, now, settings=settings))
    _merge(report, finalize_due_invoices(session, now, settings=settings, on_issued=on_issued))
    return report


def closed_periods(now: dt.datetime, months: int) -> list[Period]:
    """The last `months` periods, oldest first, ending with the latest one closed in some
    time zone (they close first at UTC+14)."""
    latest = Period.containing(now + _EARLIEST_OFFSET, ZoneInfo("UTC")).previous()
    periods = [latest]
    while len(periods) < months:
        periods.insert(0, periods[0].previous())
    return periods


def _merge(report: RunReport, other: RunReport) -> None:
    for name in ("created", "refreshed", "unchanged", "finalized", "discarded", "unattributed"):
        getattr(report, name).extend(getattr(other, name))
    report.failed.update(other.failed)


_Item = TypeVar("_Item")


def _in_batches(
    session: Session,
    items: list[_Item],
    work: Callable[[list[_Item]], RunReport],
    key: Callable[[_Item], str],
    progress: Progress | None,
) -> RunReport:
    """`work` on batches of `items`, each committed on its own; a batch that fails is
    done again one item per transaction, so that a failure is reported, with the item's
    `key`, and spares the rest. (An invoice another run created meanwhile makes the batch
    fail on the unique invoice per period; done again alone, it is found and refreshed.)"""
    report = RunReport()
    for start in range(0, len(items), BATCH_SIZE):
        batch = items[start : start + BATCH_SIZE]
        if len(batch) > 1:
            try:
                outcome = work(batch)
                session.commit()
                _merge(report, outcome)
                batch = []
            except Exception:
                session.rollback()
        for item in batch:
            try:
                outcome = work([item])
                session.commit()
                _merge(report, outcome)
            except Exception as error:
                session.rollback()
                log.exception("invoicing %s failed", key(item))
                report.failed[key(item)] = str(error)
        if progress is not None:
            progress(min(start + BATCH_SIZE, len(items)), len(items))
    return report


# --- reading -----------------------------------------------------------------------------


def get_invoice(session: Session, principal: Principal, invoice_id: str) -> Invoice:
    """An invoice or credit note the principal may see; NotFound otherwise (a customer
    key sees only its own)."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or not _visible(principal, invoice):
        raise NotFound("invoice", invoice_id)
    return invoice


def list_invoices(
    session: Session,
    principal: Principal,
    page: int,
    per_page: int,
    *,
    customer_id: str | None = None,
    period: Period | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> Page:
    """Invoices and credit notes the principal may see, newest period first, then by
    number (drafts last within a period)."""
    query = select(Invoice)
    if principal.role == "customer":
        query = query.where(Invoice.customer_id == principal.customer_id)
    elif not principal.sees_everything:
        query = query.where(false())
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    if period is not None:
        query = query.where(Invoice.period == str(period))
    if status is not None:
        query = query.where(Invoice.status == status)
    if kind is not None:
        query = query.where(Invoice.kind == kind)
    order = (Invoice.period.desc(), Invoice.number.is_(None), Invoice.number, Invoice.id)
    query = query.order_by(*order).options(selectinload(Invoice.credited_invoice))
    return paginate(session, query, page, per_page)


def _visible(principal: Principal, invoice: Invoice) -> bool:
    if principal.sees_everything:
        return True
    return principal.role == "customer" and invoice.customer_id == principal.customer_id


# --- shared ------------------------------------------------------------------------------


def locked_invoice(session: Session, invoice_id: str) -> Invoice:
    """The invoice, for a change: its row locked until commit and read afresh (see
    `issuing.locked_invoices`). Raises NotFound."""
    found = issuing.locked_invoices(session, [invoice_id])
    if not found:
        raise NotFound("invoice", invoice_id)
    return found[0]


def _refuse_unless_draft(invoice: Invoice, action: str) -> None:
    if invoice.kind != INVOICE or not invoice.is_draft:
        name = invoice.number or invoice.id
        raise Conflict(f"{name} is {invoice.status.replace('_', ' ')} and cannot be {action}")
