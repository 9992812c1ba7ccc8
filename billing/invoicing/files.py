"""The files of issued documents, and the finance exports of a month.

The PDF and the Factur-X PDF of an issued document are rendered once, soon after it is
issued, and kept (see `document_files`); a download returns the kept file and never
renders one, and neither does the ZIP export. A document whose files are not rendered
yet (the minutes after the month's invoice run) answers DocumentNotReady. The XML is the
same at every rendering, cheap to make, and is not kept.

Exports select documents by issue date, the accounting view: an export of 2026-12 holds
what was issued in December (November's invoices, December's credit notes), so that each
document appears in exactly one month, as in the FEC.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from billing.auth import Principal
from billing.errors import Conflict, DomainError
from billing.invoicing import document_files, exports, rendering
from billing.invoicing.document_files import FACTURX_PDF, PDF
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.models import Invoice, InvoiceFile
from billing.invoicing.services import Progress, get_invoice
from billing.periods import Period

if TYPE_CHECKING:
    from typing_extensions import Buffer

XML = "facturx.xml"
FORMATS = (PDF, FACTURX_PDF, XML)
MIMETYPES = {PDF: "application/pdf", FACTURX_PDF: "application/pdf", XML: "application/xml"}


class DocumentNotReady(DomainError):
    """Issued, but its files are still being rendered: a matter of minutes, try again."""

    code = "document_not_ready"
    status = 503


@dataclass(frozen=True)
class File:
    filename: str
    mimetype: str
    content: bytes


def document_file(
    session: Session, principal: Principal, invoice_id: str, file_format: str
) -> File:
    """The PDF, Factur-X PDF or Factur-X XML of an issued invoice or credit note the
    principal may see. Raises Conflict for a draft, which has no document yet."""
    invoice = get_invoice(session, principal, invoice_id)
    if invoice.number is None:
        raise Conflict(f"invoice {invoice.id} is a draft: it has a document once finalized")
    if file_format == XML:
        content = invoice_xml(rendering.invoice_document(invoice))
    else:
        content = _kept(session, invoice, file_format)
    return File(_filename(invoice, file_format), MIMETYPES[file_format], content)


def _kept(session: Session, invoice: Invoice, file_format: str) -> bytes:
    kept = session.get(InvoiceFile, (invoice.id, file_format))
    if kept is None:
        raise DocumentNotReady(
            f"the documents of {invoice.number} are being rendered; try again in a minute"
        )
    return kept.content


def _filename(invoice: Invoice, file_format: str) -> str:
    suffix = {PDF: ".pdf", FACTURX_PDF: "-facturx.pdf", XML: "-facturx.xml"}[file_format]
    return f"{invoice.number}{suffix}"


# --- exports -----------------------------------------------------------------------------


def issued_in(session: Session, period: Period) -> list[Invoice]:
    """The invoices and credit notes issued during `period`, by issue date then number."""
    first_day, next_first = period.first_day(), period.next().first_day()
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.issue_date >= first_day, Invoice.issue_date < next_first)
            .options(selectinload(Invoice.lines), selectinload(Invoice.credited_invoice))
            .order_by(Invoice.issue_date, Invoice.number)
        )
    )


def invoices_csv(session: Session, period: Period) -> File:
    """One row per document issued in `period`."""
    documents = [rendering.invoice_document(invoice) for invoice in issued_in(session, period)]
    return File(f"invoices-{period}.csv", "text/csv", exports.invoices_csv(documents).encode())


def invoice_lines_csv(session: Session, period: Period) -> File:
    """One row per line of the documents issued in `period`."""
    documents = [rendering.invoice_document(invoice) for invoice in issued_in(session, period)]
    content = exports.invoice_lines_csv(documents).encode()
    return File(f"invoice-lines-{period}.csv", "text/csv", content)


def fec(session: Session, period: Period, siren: str) -> File:
    """The sales journal of `period` as a FEC, closed on its last day; each customer's
    auxiliary account is its id."""
    invoices = issued_in(session, period)
    documents = [rendering.invoice_document(invoice) for invoice in invoices]
    closing = period.next().first_day() - dt.timedelta(days=1)
    accounts = {invoice.customer_id: invoice.customer_id for invoice in invoices}
    filename, content = exports.fec_export(documents, siren, closing, accounts)
    return File(filename, "text/plain; charset=iso-8859-15", content)


def facturx_zip(
    session: Session, period: Period, progress: Progress | None = None
) -> tuple[str, Iterator[bytes]]:
    """The Factur-X PDFs of the documents issued in `period` as a ZIP, streamed: (file name,
    chunks), the kept files. Raises DocumentNotReady before anything is streamed while any
    of them is still to be rendered."""
    invoices = issued_in(session, period)
    missing = document_files.missing_count(session, [invoice.id for invoice in invoices])
    if missing:
        raise DocumentNotReady(
            f"{missing} document(s) issued in {period} are being rendered; try again in a "
            "few minutes"
        )

    def chunks() -> Iterator[bytes]:
        buffer = _Drain()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for done, invoice in enumerate(invoices, start=1):
                content = _kept(session, invoice, FACTURX_PDF)
                archive.writestr(_filename(invoice, FACTURX_PDF), content)
                if progress is not None:
                    progress(done, len(invoices))
                yield buffer.drain()
        yield buffer.drain()

    return f"facturx-{period}.zip", chunks()


class _Drain(io.RawIOBase):
    """A write-only stream whose content is taken away as it comes, for streaming a ZIP
    (zipfile writes to unseekable streams with data descriptors)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        content, self._chunks = b"".join(self._chunks), []
        return content
