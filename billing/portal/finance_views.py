"""The finance pages: invoices, drafts, corrections, exports, usage billed to nobody.

Roles as the API's: admin and finance handle invoices and exports; unbilled usage is
also the operators'. Every action goes through a confirmation page first.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Response, redirect, request, stream_with_context, url_for
from marshmallow import fields, validate

from billing.charges import unattributed
from billing.invoicing import files, schemas
from billing.invoicing.models import STATUSES
from billing.invoicing.services import get_invoice
from billing.payments import collection
from billing.periods import Period
from billing.portal import finance_pages as pages
from billing.portal.forms import parse
from billing.portal.web import blp, download, now, principal, render, settings, signed_in, zone
from billing.pricing.schemas import PeriodField
from billing.validators import BoundedDecimal, Text
from billing.web import db_session

FINANCE = ("admin", "finance")
UNBILLED_READERS = ("admin", "finance", "operator")


class InvoiceFilters(ma.Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    period = PeriodField()
    status = fields.String(validate=validate.OneOf(STATUSES))
    customer_id = fields.String(validate=validate.Length(max=32))


class PeriodArgs(ma.Schema):
    period = PeriodField()


class ConfirmedVoid(schemas.VoidSchema):
    confirm = fields.String(validate=validate.Equal("yes"))


class CreditNoteForm(ma.Schema):
    """A credit note of an amount before VAT, spread over the invoice's VAT rates (the
    API's amount form; crediting chosen lines stays in the API)."""

    reason = Text(required=True, multiline=True, validate=validate.Length(1, 500))
    amount = BoundedDecimal(required=True)
    confirm = fields.String(validate=validate.Equal("yes"))


def _today():
    return now().astimezone(zone()).date()


@blp.get("/finance/invoices/")
@signed_in(*FINANCE)
def finance_invoices() -> Any:
    filters = parse(InvoiceFilters(), request.args)
    listing = pages.invoice_listing(db_session(), principal(), _today(), **filters)
    return render("finance/invoices.html", listing=listing, filters=filters, statuses=STATUSES)


@blp.get("/finance/drafts/")
@signed_in(*FINANCE)
def finance_drafts() -> Any:
    return render("finance/drafts.html", drafts=pages.drafts(db_session(), principal()))


@blp.get("/finance/invoices/<invoice_id>")
@signed_in(*FINANCE)
def finance_invoice(invoice_id: str) -> Any:
    invoice = get_invoice(db_session(), principal(), invoice_id)
    return render("finance/invoice.html", invoice=invoice, done=request.args.get("done"))


@blp.post("/finance/invoices/<invoice_id>/finalize")
@signed_in(*FINANCE)
def finance_finalize(invoice_id: str) -> Any:
    invoice = get_invoice(db_session(), principal(), invoice_id)
    if request.form.get("confirm") != "yes":
        return render("finance/confirm.html", invoice=invoice, action="finalize")
    issued = collection.finalize_invoice(db_session(), invoice.id, now(), settings=settings())
    return redirect(url_for("portal.finance_invoice", invoice_id=issued.id, done=issued.number))


@blp.post("/finance/invoices/<invoice_id>/void")
@signed_in(*FINANCE)
def finance_void(invoice_id: str) -> Any:
    invoice = get_invoice(db_session(), principal(), invoice_id)
    form = parse(ConfirmedVoid(), request.form)
    if form.get("confirm") != "yes":
        return render("finance/confirm.html", invoice=invoice, action="void", form=form)
    note = collection.void_invoice(
        db_session(), invoice.id, form["reason"], now(), settings=settings()
    )
    return redirect(url_for("portal.finance_invoice", invoice_id=note.id, done=note.number))


@blp.post("/finance/invoices/<invoice_id>/credit-notes")
@signed_in(*FINANCE)
def finance_credit_note(invoice_id: str) -> Any:
    invoice = get_invoice(db_session(), principal(), invoice_id)
    form = parse(CreditNoteForm(), request.form)
    if form.get("confirm") != "yes":
        return render("finance/confirm.html", invoice=invoice, action="credit", form=form)
    note = collection.issue_credit_note(
        db_session(), invoice.id, form["reason"], now(), settings=settings(), amount=form["amount"]
    )
    return redirect(url_for("portal.finance_invoice", invoice_id=note.id, done=note.number))


@blp.get("/finance/collection/")
@signed_in(*FINANCE)
def finance_collection() -> Any:
    return render("finance/collection.html", collection=pages.collection(db_session()), zone=zone())


@blp.get("/finance/exports/")
@signed_in(*FINANCE)
def finance_exports() -> Any:
    args = parse(PeriodArgs(), request.args)
    period = args.get("period") or _current_period()
    return render("finance/exports.html", period=period)


def _current_period() -> Period:
    return Period.containing(now(), zone())


EXPORTS = ("invoices.csv", "invoice-lines.csv", "fec", "facturx.zip")


@blp.get("/finance/exports/<any('invoices.csv', 'invoice-lines.csv', 'fec', 'facturx.zip'):kind>")
@signed_in(*FINANCE)
def finance_export(kind: str) -> Any:
    period = parse(PeriodArgs(), request.args).get("period") or _current_period()
    session = db_session()
    if kind == "invoices.csv":
        return download(files.invoices_csv(session, period))
    if kind == "invoice-lines.csv":
        return download(files.invoice_lines_csv(session, period))
    if kind == "fec":
        return download(files.fec(session, period, settings().seller.siren))
    filename, chunks = files.facturx_zip(session, period)
    return Response(
        stream_with_context(chunks),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blp.get("/finance/unbilled/")
@signed_in(*UNBILLED_READERS)
def finance_unbilled() -> Any:
    args = parse(PeriodArgs(), request.args)
    report = unattributed.list_unattributed_usage(
        db_session(), principal(), args.get("period"), now(), zone()
    )
    return render("finance/unbilled.html", report=report, report_zone=ZoneInfo(report.timezone))
