"""Invoices endpoints: read invoices and their documents (finance, admin, and customers
their own), issue and correct them (finance, admin), and the finance exports. Operators
have no access to invoices."""

from flask import Response, current_app, stream_with_context
from flask.views import MethodView

from billing.db import utcnow
from billing.invoicing import credit_notes, files, schemas, services
from billing.invoicing.credit_notes import CreditedLine
from billing.invoicing.issuing import IssuingHooks, issuing_hooks
from billing.settings import Settings
from billing.web import Blueprint, current_principal, db_session, page_body, page_schema, roles

blp = Blueprint(
    "invoices", __name__, url_prefix="/api/v1", description="Invoices, credit notes, exports"
)

READERS = ("admin", "finance", "customer")
FINANCE = ("admin", "finance")


def _settings() -> Settings:
    return current_app.extensions["billing.settings"]


def _hooks() -> IssuingHooks:
    return issuing_hooks(current_app.extensions)


def _download(file: files.File) -> Response:
    return Response(
        file.content,
        # The type as the file states it: `mimetype=` would add a second charset.
        content_type=file.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"'},
    )


def _binary(mimetype: str) -> dict:
    file = {"schema": {"type": "string", "format": "binary"}}
    return {"responses": {200: {"description": "The file", "content": {mimetype: file}}}}


def _kept_binary(mimetype: str) -> dict:
    """A kept document: 503 `document_not_ready` in the minutes its rendering takes."""
    responses = _binary(mimetype)["responses"]
    responses[503] = {
        "description": "Issued, its files still being rendered (document_not_ready): retry",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {"responses": responses}


@blp.route("/invoices")
class Invoices(MethodView):
    @roles(*READERS)
    @blp.arguments(schemas.InvoiceListArgs, location="query")
    @blp.response(200, page_schema(schemas.InvoiceSummarySchema))
    def get(self, args):
        """Invoices and credit notes, newest period first; a customer key sees its own."""
        return page_body(services.list_invoices(db_session(), current_principal(), **args))


@blp.route("/invoices/<invoice_id>")
class InvoiceResource(MethodView):
    @roles(*READERS)
    @blp.response(200, schemas.InvoiceSchema)
    def get(self, invoice_id):
        """An invoice or credit note with its lines (a draft shows its lines as of now)."""
        return services.get_invoice(db_session(), current_principal(), invoice_id)

    @roles(*FINANCE)
    @blp.response(204)
    def delete(self, invoice_id):
        """Discard a draft; the next run of its period makes it again. Issued invoices are
        never deleted: void them."""
        services.discard_draft(db_session(), invoice_id)


@blp.route("/invoices/<invoice_id>/finalize")
class InvoiceFinalization(MethodView):
    @roles(*FINANCE)
    @blp.response(200, schemas.InvoiceSchema)
    def post(self, invoice_id):
        """Issue a draft now, before its grace period ends: brought up to date, numbered,
        frozen."""
        return services.finalize_invoice(
            db_session(), invoice_id, utcnow(), settings=_settings(), on_issued=_hooks().invoices
        )


@blp.route("/invoices/<invoice_id>/void")
class InvoiceVoid(MethodView):
    @roles(*FINANCE)
    @blp.arguments(schemas.VoidSchema)
    @blp.response(201, schemas.InvoiceSchema)
    def post(self, data, invoice_id):
        """Void a finalized invoice: returns the credit note of all it billed."""
        return credit_notes.void_invoice(
            db_session(),
            invoice_id,
            data["reason"],
            utcnow(),
            settings=_settings(),
            on_issued=_hooks().credit_notes,
        )


@blp.route("/invoices/<invoice_id>/credit-notes")
class InvoiceCreditNotes(MethodView):
    @roles(*FINANCE)
    @blp.arguments(schemas.CreditNoteRequestSchema)
    @blp.response(201, schemas.InvoiceSchema)
    def post(self, data, invoice_id):
        """Issue a partial credit note: lines of the invoice (by position, in full or an
        amount of each), or an amount before VAT spread over its VAT rates."""
        return credit_notes.issue_credit_note(
            db_session(),
            invoice_id,
            data["reason"],
            utcnow(),
            settings=_settings(),
            on_issued=_hooks().credit_notes,
            lines=[CreditedLine(**line) for line in data["lines"]],
            amount=data.get("amount"),
        )


def _document_route(file_format: str, summary: str):
    responses = _binary if file_format == files.XML else _kept_binary  # the XML: made anew

    @roles(*READERS)
    @blp.doc(summary=summary, **responses(files.MIMETYPES[file_format]))
    def get(self, invoice_id):
        principal = current_principal()
        return _download(files.document_file(db_session(), principal, invoice_id, file_format))

    return get


@blp.route("/invoices/<invoice_id>/pdf")
class InvoicePdf(MethodView):
    get = _document_route(files.PDF, "The PDF of an issued invoice or credit note")


@blp.route("/invoices/<invoice_id>/facturx.pdf")
class InvoiceFacturxPdf(MethodView):
    get = _document_route(files.FACTURX_PDF, "The Factur-X PDF/A-3 e-invoice (EN 16931)")


@blp.route("/invoices/<invoice_id>/facturx.xml")
class InvoiceFacturxXml(MethodView):
    get = _document_route(files.XML, "The Factur-X CII XML (EN 16931)")


# --- finance exports: documents issued in a month ----------------------------------------


@blp.route("/exports/invoices.csv")
class InvoicesExport(MethodView):
    @roles(*FINANCE)
    @blp.arguments(schemas.ExportArgs, location="query")
    @blp.doc(**_binary("text/csv"))
    def get(self, args):
        """One row per invoice and credit note issued in the month."""
        return _download(files.invoices_csv(db_session(), args["period"]))


@blp.route("/exports/invoice-lines.csv")
class InvoiceLinesExport(MethodView):
    @roles(*FINANCE)
    @blp.arguments(schemas.ExportArgs, location="query")
    @blp.doc(**_binary("text/csv"))
    def get(self, args):
        """One row per line of the documents issued in the month."""
        return _download(files.invoice_lines_csv(db_session(), args["period"]))


@blp.route("/exports/fec")
class FecExport(MethodView):
    @roles(*FINANCE)
    @blp.arguments(schemas.ExportArgs, location="query")
    @blp.doc(**_binary("text/plain"))
    def get(self, args):
        """The sales journal of the month as a FEC file, `{SIREN}FEC{YYYYMMDD}.txt`."""
        return _download(files.fec(db_session(), args["period"], _settings().seller.siren))


@blp.route("/exports/facturx.zip")
class FacturxExport(MethodView):
    @roles(*FINANCE)
    @blp.arguments(schemas.ExportArgs, location="query")
    @blp.doc(**_kept_binary("application/zip"))
    def get(self, args):
        """The Factur-X PDFs of the documents issued in the month, as kept, streamed as a
        ZIP; 503 while any is still being rendered."""
        filename, chunks = files.facturx_zip(db_session(), args["period"])
        return Response(
            stream_with_context(chunks),
            mimetype="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
