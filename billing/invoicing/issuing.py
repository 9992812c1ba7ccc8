"""The two writes behind the invoicing services, for one invoice or a batch of them:
bringing drafts up to date, and issuing them. Callers own the transaction.

Batches keep a month of ten thousand customers to a few queries per hundred invoices:
their statements are computed together, their lines written with one bulk insert, their
numbers taken as one block of the series.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Mapping, Sequence

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session, selectinload

from billing.db import bulk_insert
from billing.devices.models import Customer
from billing.errors import Conflict, Invalid
from billing.ids import new_id
from billing.invoicing import numbering, rendering
from billing.invoicing.documents import check_document
from billing.invoicing.drafts import (
    DraftContent,
    document_language,
    drafts_content,
    invoices_in_window,
    line_data,
)
from billing.invoicing.models import DRAFT, FINALIZED, INVOICE, Invoice, InvoiceLine
from billing.periods import Period
from billing.pricing.services import lock_plan_version
from billing.settings import InvoicingSettings, Settings
from billing.webhooks.events import INVOICE_FINALIZED, invoice_data
from billing.webhooks.services import Occurrence, emit_events


@dataclasses.dataclass
class DraftOutcome:
    """Invoice ids by what bringing them up to date did."""

    created: list[str] = dataclasses.field(default_factory=list)
    refreshed: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    discarded: list[str] = dataclasses.field(default_factory=list)


def write_drafts(
    session: Session,
    customers: Sequence[Customer],
    period: Period,
    now: dt.datetime,
    adjustment_months: int,
    with_history: Container[str] | None = None,
) -> DraftOutcome:
    """Give each customer's invoice for `period` its content of today: create the missing
    drafts, update the others, discard those left with nothing to bill (an invoice needs
    a line, EN 16931 BR-16). Issued invoices are left as they are."""
    outcome = DraftOutcome()
    existing = {
        invoice.customer_id: invoice
        for invoice in _locked(
            session,
            select(Invoice).where(
                Invoice.customer_id.in_([customer.id for customer in customers]),
                Invoice.kind == INVOICE,
                Invoice.period == str(period),
            ),
        )
    }
    contents = drafts_content(
        session, customers, period, adjustment_months, with_history=with_history
    )
    writer = _LineWriter()
    for customer, content in zip(customers, contents, strict=True):
        invoice = existing.get(customer.id)
        if invoice is not None and not invoice.is_draft:
            continue  # issued since the caller looked
        if not content.lines:
            if invoice is not None:
                session.delete(invoice)
                outcome.discarded.append(invoice.id)
            continue
        if invoice is None:
            invoice = Invoice(
                id=new_id("inv"), customer_id=customer.id, period=str(period), kind=INVOICE,
                status=DRAFT, created_at=now,
            )  # fmt: skip
            session.add(invoice)
            outcome.created.append(invoice.id)
            _set_content(invoice, content, now, writer, new=True)
        elif _set_content(invoice, content, now, writer):
            outcome.refreshed.append(invoice.id)
        else:
            outcome.unchanged.append(invoice.id)
    writer.write(session)
    return outcome


# What issuing sets going outside invoicing, run in the transaction that issues once the
# documents are numbered, checked and announced, so that it happens iff the issuing
# commits. Invoicing imports neither payments nor dunning, which sit above it: the callers
# of issuing pass it in (`billing.payments.collection`: queued for Stripe; for a credit note,
# the customer's overdue block lifted at once when it settles what was due).
OnIssued = Callable[[Session, Sequence[Invoice], dt.datetime, Settings], None]

# The key of `IssuingHooks` in the application's extensions (Flask's and the CLI's).
ISSUING_HOOKS = "billing.issuing_hooks"


@dataclasses.dataclass(frozen=True)
class IssuingHooks:
    """What issuing sets going beyond invoicing, for invoices and for credit notes: given
    by the composition root (`billing.wiring`), since what it sets going sits above."""

    invoices: OnIssued
    credit_notes: OnIssued


def issuing_hooks(extensions: Mapping[str, object]) -> IssuingHooks:
    """The hooks the application was given at start."""
    hooks = extensions.get(ISSUING_HOOKS)
    if not isinstance(hooks, IssuingHooks):
        raise RuntimeError(f"the application was started without {ISSUING_HOOKS}")
    return hooks


def issue(
    session: Session,
    invoices: Sequence[Invoice],
    now: dt.datetime,
    settings: Settings,
    on_issued: OnIssued,
) -> None:
    """Issue locked drafts, numbered in the order given: the one place where invoices are
    issued, `on_issued` the hook of what it sets going outside invoicing.

    Each draft is brought up to date a last time, the plan versions it rates are locked
    first (see `lock_plan_version`: a plan edited meanwhile becomes a new version instead
    of changing under the invoice), the customer's and the seller's identity are copied,
    and the next numbers of the series are taken once all that is written, so that
    concurrent finalizations wait on the counter briefly. Raises Conflict for a draft
    with nothing left to bill and Invalid for a document that would break a rule of
    EN 16931 or French law; the caller rolls back, which gives the numbers back.
    """
    customers = _customers(session, invoices)
    contents = _final_contents(session, invoices, customers, now, settings)
    rewritten = _freeze(session, invoices, contents, customers, now, settings)
    _number(session, invoices, now, settings.invoicing)
    _check_documents(session, invoices, rewritten)
    emit_events(
        session,
        INVOICE_FINALIZED,
        [Occurrence(invoice.customer_id, invoice_data(invoice)) for invoice in invoices],
        now,
    )  # told iff issued
    on_issued(session, invoices, now, settings)  # collected iff issued


def _customers(session: Session, invoices: Sequence[Invoice]) -> dict[str, Customer]:
    return {
        customer.id: customer
        for customer in session.scalars(
            select(Customer).where(Customer.id.in_({invoice.customer_id for invoice in invoices}))
        )
    }


def _final_contents(
    session: Session,
    invoices: Sequence[Invoice],
    customers: dict[str, Customer],
    now: dt.datetime,
    settings: Settings,
) -> list[DraftContent]:
    """The content each draft is issued with, rated on locked plan versions only; Conflict
    for a draft left with nothing to bill."""
    months = settings.invoicing.adjustment_months
    locked = _lock_versions(session, _rated_versions(invoices), now)
    contents = _contents(session, invoices, customers, months)
    unlocked = set().union(*(content.plan_versions for content in contents)) - locked
    if unlocked:  # a plan assigned since the last refresh: lock it, then rate again
        _lock_versions(session, unlocked, now)
        contents = _contents(session, invoices, customers, months)
    empty = [
        invoice.id for invoice, content in zip(invoices, contents, strict=True) if not content.lines
    ]
    if empty:
        raise Conflict(f"nothing left to bill on {', '.join(empty)}; discard it")
    return contents


def _freeze(
    session: Session,
    invoices: Sequence[Invoice],
    contents: Sequence[DraftContent],
    customers: dict[str, Customer],
    now: dt.datetime,
    settings: Settings,
) -> list[Invoice]:
    """Write each draft's final content, the identities and the payment terms it states;
    the invoices whose lines were written anew."""
    writer = _LineWriter()
    for invoice, content in zip(invoices, contents, strict=True):
        _set_content(invoice, content, now, writer)
        _copy_identities(invoice, customers[invoice.customer_id], settings)
        invoice.payment_terms = rendering.payment_terms(
            invoice.buyer_language or "fr", settings.invoicing.payment_terms_days
        )
    writer.write(session)
    return writer.invoices


def _number(
    session: Session, invoices: Sequence[Invoice], now: dt.datetime, terms: InvoicingSettings
) -> None:
    """Take the next numbers of the series, in order, and make the drafts finalized
    invoices of today's date, due by the payment terms."""
    numbers, issue_date = numbering.take_numbers(
        session, numbering.INVOICE_PREFIX, numbering.seller_day(now, terms.timezone), len(invoices)
    )
    for invoice, number in zip(invoices, numbers, strict=True):
        invoice.number, invoice.issue_date = number, issue_date
        invoice.due_date = issue_date + dt.timedelta(days=terms.payment_terms_days)
        invoice.status, invoice.finalized_at = FINALIZED, now
    session.flush()


def _check_documents(
    session: Session, invoices: Sequence[Invoice], rewritten: Sequence[Invoice]
) -> None:
    """Invalid, naming each problem, unless every invoice makes a valid document."""
    _load_lines(session, rewritten)
    problems = [
        f"{invoice.id}: {problem}"
        for invoice in invoices
        for problem in check_document(rendering.invoice_document(invoice))
    ]
    if problems:
        raise Invalid("the invoice cannot be issued", {"document": problems})


def locked_invoices(session: Session, invoice_ids: Iterable[str]) -> list[Invoice]:
    """The invoices, for a change: their rows locked until commit (PostgreSQL; SQLite's
    BEGIN IMMEDIATE has already serialised writers) and read afresh, since a concurrent
    run may just have issued them; with their lines."""
    return _locked(session, select(Invoice).where(Invoice.id.in_(list(invoice_ids))))


def _locked(session: Session, query: Select[Invoice]) -> list[Invoice]:
    # In a stable order, so that two batches locking the same rows cannot deadlock.
    return list(
        session.scalars(
            query.order_by(Invoice.id)
            .with_for_update()
            .options(selectinload(Invoice.lines))
            .execution_options(populate_existing=True)
        )
    )


def _contents(
    session: Session,
    invoices: Sequence[Invoice],
    customers: dict[str, Customer],
    months: int,
) -> list[DraftContent]:
    """The content of each draft today, in order, the customers of a period together."""
    by_period: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        by_period[invoice.period].append(invoice)
    found: dict[str, DraftContent] = {}
    for text, group in by_period.items():
        period = Period.parse(text)
        contents = drafts_content(
            session,
            [customers[invoice.customer_id] for invoice in group],
            period,
            months,
            with_history=invoices_in_window(session, period, months),
        )
        found.update(
            (invoice.id, content) for invoice, content in zip(group, contents, strict=True)
        )
    return [found[invoice.id] for invoice in invoices]


def _rated_versions(invoices: Iterable[Invoice]) -> set[tuple[str, int]]:
    return {
        (line.plan_code, line.plan_version)
        for invoice in invoices
        for line in invoice.lines
        if line.plan_code is not None and line.plan_version is not None
    }


def _lock_versions(
    session: Session, versions: Iterable[tuple[str, int]], now: dt.datetime
) -> set[tuple[str, int]]:
    locked = set()
    for code, version in sorted(versions):
        lock_plan_version(session, code, version, now)
        locked.add((code, version))
    return locked


def _set_content(
    invoice: Invoice,
    content: DraftContent,
    now: dt.datetime,
    writer: _LineWriter,
    *,
    new: bool = False,
) -> bool:
    """Give the draft `content`; whether anything changed. Its lines are replaced only
    when they differ, so an unchanged draft keeps them as they were."""
    totals = content.totals
    header = {
        "currency": content.currency,
        "period_start": content.period_start,
        "period_end": content.period_end,
        "period_ends_at": content.period_ends_at,
        "total_net": totals.net,
        "total_vat": totals.vat,
        "total_gross": totals.gross,
        "vat_breakdown": rendering.vat_breakdown_json(totals),
        "usage_summary": content.usage_summary,
    }
    changed = [name for name, value in header.items() if getattr(invoice, name) != value]
    for name in changed:
        setattr(invoice, name, header[name])
    invoice.refreshed_at = now
    if not new and [line_data(line) for line in invoice.lines] == list(content.lines):
        return bool(changed)
    writer.replace(invoice, content.lines, stale=not new)
    return True


class _LineWriter:
    """Lines of many invoices, written with one delete and one bulk insert."""

    def __init__(self) -> None:
        self.stale: list[str] = []
        self.rows: list[dict] = []
        self.invoices: list[Invoice] = []

    def replace(self, invoice: Invoice, lines: Sequence, *, stale: bool) -> None:
        if stale:
            self.stale.append(invoice.id)
        self.invoices.append(invoice)
        self.rows += [
            {"invoice_id": invoice.id, "position": position, **line.columns()}
            for position, line in enumerate(lines, start=1)
        ]

    def write(self, session: Session) -> None:
        if self.stale:
            for invoice in self.invoices:
                for line in invoice.lines:
                    session.expunge(line)  # replaced below, behind the session's back
            session.execute(
                delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(self.stale)),
                execution_options={"synchronize_session": False},
            )
        session.flush()  # the invoices first: their lines refer to them
        bulk_insert(session, InvoiceLine, self.rows)
        for invoice in self.invoices:
            session.expire(invoice, ["lines"])


def _load_lines(session: Session, invoices: Sequence[Invoice]) -> None:
    """Load again, in one query, the lines just written, for the documents' check."""
    if not invoices:
        return
    session.scalars(
        select(Invoice)
        .where(Invoice.id.in_([invoice.id for invoice in invoices]))
        .options(selectinload(Invoice.lines))
    ).all()


def _copy_identities(invoice: Invoice, customer: Customer, settings: Settings) -> None:
    """Freeze who sells and who buys as they are today (French mandatory mentions)."""
    invoice.seller = rendering.seller_json(settings.seller)
    invoice.buyer_name = customer.name
    invoice.buyer_email = customer.email
    invoice.buyer_address_line1 = customer.address_line1
    invoice.buyer_address_line2 = customer.address_line2
    invoice.buyer_postal_code = customer.postal_code
    invoice.buyer_city = customer.city
    invoice.buyer_country = customer.country
    invoice.buyer_siren = customer.siren
    invoice.buyer_vat_number = customer.vat_number
    invoice.buyer_language = document_language(customer)
