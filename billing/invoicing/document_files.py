"""The files of issued documents: rendered once, soon after issue, kept, served as kept.

Every issued invoice and credit note gets its PDF and its Factur-X PDF as `InvoiceFile`
rows, rendered from what it froze when it was issued (see `rendering`). Nobody waits for
a rendering: the invoice run leaves the month's documents to `render_missing_documents`,
which the scheduler runs right after it, and a document issued one at a time (finalized,
credited or voided through the API or the CLI) is rendered as soon as its issue is
committed, so that it exists when the caller gets the answer. Downloads and exports only
read kept files (see `files`).

A kept file never changes: the same document renders to the same bytes today, but a
newer layout or Typst would not, and an issued document is what was sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from billing.invoicing import pdf, rendering
from billing.invoicing.documents import InvoiceDocument
from billing.invoicing.models import Invoice, InvoiceFile

PDF = "pdf"
FACTURX_PDF = "facturx.pdf"
RENDERERS: dict[str, Callable[[InvoiceDocument], bytes]] = {
    PDF: pdf.render_pdf,
    FACTURX_PDF: pdf.render_facturx_pdf,
}
BATCH_SIZE = 100

log = logging.getLogger(__name__)


def store_documents(session: Session, invoices: Sequence[Invoice], now: dt.datetime) -> int:
    """Render and add the files the issued `invoices` do not have yet; how many were
    rendered. The caller commits."""
    ids = [invoice.id for invoice in invoices]
    kept = {
        (invoice_id, file_format)
        for invoice_id, file_format in session.execute(
            select(InvoiceFile.invoice_id, InvoiceFile.format).where(
                InvoiceFile.invoice_id.in_(ids)
            )
        )
    }
    rendered = 0
    for invoice in invoices:
        missing = [fmt for fmt in RENDERERS if (invoice.id, fmt) not in kept]
        if not missing:
            continue
        document = rendering.invoice_document(invoice)
        for file_format in missing:
            content = RENDERERS[file_format](document)
            session.add(InvoiceFile(invoice_id=invoice.id, format=file_format,
                                    content=content, created_at=now))  # fmt: skip
            rendered += 1
    return rendered


def store_issued(session: Session, invoice: Invoice, now: dt.datetime) -> None:
    """Keep the files of a document whose issue was just committed, and commit. Should the
    rendering fail, the document stays issued and `render_missing_documents` tries again."""
    try:
        store_documents(session, [invoice], now)
        session.commit()
    except IntegrityError:
        session.rollback()  # kept meanwhile by `render_missing_documents`
    except Exception:
        # The issue is committed and stands; the caller is answered, the failure logged.
        session.rollback()
        log.exception("the documents of %s could not be rendered; retried later", invoice.number)


def render_missing_documents(
    session: Session,
    now: dt.datetime,
    *,
    budget: dt.timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render and keep the files of every issued document that lacks one, oldest first, a
    batch committed at a time; how many files were rendered. Stops once `budget` is spent
    (the next run goes on with the rest)."""
    started = time.monotonic()
    total = missing_count(session)
    rendered = done = 0
    while budget is None or time.monotonic() - started < budget.total_seconds():
        batch = session.scalars(
            _missing()
            .options(selectinload(Invoice.lines), selectinload(Invoice.credited_invoice))
            .order_by(Invoice.issue_date, Invoice.number)
            .limit(BATCH_SIZE)
        ).all()
        if not batch:
            break
        try:
            rendered += store_documents(session, batch, now)
            session.commit()
        except IntegrityError:
            session.rollback()  # another process kept some of them first: take the rest
            continue
        done += len(batch)
        if progress is not None:
            progress(min(done, total), total)
    return rendered


def missing_count(session: Session, invoice_ids: Sequence[str] | None = None) -> int:
    """How many issued documents (of `invoice_ids`, or all) lack a kept file."""
    query = _missing().with_only_columns(Invoice.id)
    if invoice_ids is not None:
        query = query.where(Invoice.id.in_(invoice_ids))
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _missing() -> Select[Invoice]:
    lacking = [
        ~exists().where(and_(InvoiceFile.invoice_id == Invoice.id, InvoiceFile.format == fmt))
        for fmt in RENDERERS
    ]
    return select(Invoice).where(Invoice.number.is_not(None), or_(*lacking))
