"""The customer pages: /accounts/<customer_id>/… (staff who may read the account see them
too). Each view: the request in, one function of billing.portal.customer_pages, a page out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response

from billing.components.costs import vehicle_cost_of_use
from billing.errors import NotFound
from billing.invoicing import files
from billing.periods import Period
from billing.portal import customer_pages as pages
from billing.portal import formatting, i18n
from billing.portal.charts import Chart, Series, render_svg
from billing.portal.web import (
    blp,
    download,
    language,
    now,
    principal,
    render,
    settings,
    signed_in,
)
from billing.statements import exports
from billing.web import db_session

ACCOUNT_READERS = ("customer", "admin", "finance")


def _adjustment_months() -> int:
    return settings().invoicing.adjustment_months


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError:
        raise NotFound("statement", text[:20]) from None


def _statement(customer_id: str, period: str) -> pages.CustomerStatement:
    return pages.customer_statement(
        db_session(), principal(), customer_id, _period(period), now(),
        adjustment_months=_adjustment_months(),
    )  # fmt: skip


def _t(message: str, **values: Any) -> str:
    return i18n.translate(language(), message, **values)


@blp.get("/accounts/<customer_id>/")
@signed_in(*ACCOUNT_READERS)
def overview(customer_id: str) -> Any:
    data = pages.customer_overview(
        db_session(), principal(), customer_id, now(), adjustment_months=_adjustment_months()
    )
    return render("customer/overview.html", data=data, **_overview_charts(data))


def _overview_charts(data: pages.Overview) -> dict[str, Any]:
    lang = language()
    days = [str(n + 1) for n in range(max(len(data.daily_km), len(data.previous_daily_km)))]
    km = Chart(
        _t("Daily kilometres"),
        days,
        [
            Series(_t("this month"), data.daily_km),
            Series(_t("previous month"), data.previous_daily_km),
        ],
        label_heading=_t("Day"),
    )
    charts = {
        "km_chart": km,
        "km_svg": render_svg(km, "km-chart", lambda v: formatting.number(v, lang, 0)),
    }
    statement = data.statement
    if statement.shows_money:
        currency = statement.statement.currency
        labels = [_t("to date"), _t("projected"), _t("last month, invoiced")]
        amounts = [
            statement.statement.totals.net if statement.statement.totals else None,
            statement.projection.totals.net if statement.projection else None,
            data.previous_invoice.total_net if data.previous_invoice else None,
        ]
        amount = Chart(_t("Amount"), labels, [Series(_t("Excluding VAT"), amounts)])
        charts["amount_chart"] = amount

        def amount_format(value: Decimal) -> str:
            return formatting.money(value, currency, lang)

        charts["amount_format"] = amount_format
        charts["amount_svg"] = render_svg(amount, "amount-chart", amount_format)
    return charts


@blp.get("/accounts/<customer_id>/statements/")
@signed_in(*ACCOUNT_READERS)
def statements(customer_id: str) -> Any:
    customer = pages.get_customer(db_session(), principal(), customer_id)
    return render(
        "customer/statements.html",
        customer=customer,
        months=pages.statement_months(customer, now()),
    )


@blp.get("/accounts/<customer_id>/statements/<period>")
@signed_in(*ACCOUNT_READERS)
def statement(customer_id: str, period: str) -> Any:
    result = _statement(customer_id, period)
    customer = pages.get_customer(db_session(), principal(), customer_id)
    return render("customer/statement.html", customer=customer, result=result)


@blp.get("/accounts/<customer_id>/statements/<period>.csv")
@signed_in(*ACCOUNT_READERS)
def statement_csv(customer_id: str, period: str) -> Any:
    result = _statement(customer_id, period)
    return Response(
        exports.statement_csv(result),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{exports.csv_filename(result)}"'},
    )


@blp.get("/accounts/<customer_id>/invoices/")
@signed_in(*ACCOUNT_READERS)
def invoices(customer_id: str) -> Any:
    customer = pages.get_customer(db_session(), principal(), customer_id)
    today = now().astimezone(ZoneInfo(customer.timezone)).date()
    listing = pages.customer_invoices(db_session(), principal(), customer_id, today)
    return render("customer/invoices.html", customer=customer, listing=listing)


DOCUMENT_FORMATS = {"pdf": files.PDF, "facturx.pdf": files.FACTURX_PDF}


@blp.get("/accounts/<customer_id>/invoices/<invoice_id>/<any('pdf', 'facturx.pdf'):kind>")
@signed_in(*ACCOUNT_READERS)
def invoice_document(customer_id: str, invoice_id: str, kind: str) -> Any:
    invoice = pages.customer_invoice(db_session(), principal(), customer_id, invoice_id)
    return download(
        files.document_file(db_session(), principal(), invoice.id, DOCUMENT_FORMATS[kind])
    )


@blp.get("/accounts/<customer_id>/vehicles/<vehicle_id>")
@signed_in(*ACCOUNT_READERS)
def vehicle(customer_id: str, vehicle_id: str) -> Any:
    history = pages.vehicle_history(db_session(), principal(), customer_id, vehicle_id, now())
    lang = language()
    zone = ZoneInfo(history.customer.timezone)
    by_day = Chart(
        _t("Usage by day"),
        [formatting.day_label(at.astimezone(zone).date(), lang) for at, _, _ in history.by_day],
        [Series(_t("Kilometres"), [km for _, km, _ in history.by_day])],
        label_heading=_t("Day"),
    )
    by_month = Chart(
        _t("Usage by month"),
        [formatting.month(Period(at.year, at.month), lang) for at, _, _ in history.by_month],
        [Series(_t("Kilometres"), [km for _, km, _ in history.by_month])],
        label_heading=_t("Period"),
    )
    axis = lambda v: formatting.number(v, lang, 0)  # noqa: E731
    return render(
        "customer/vehicle.html",
        history=history,
        # What this month's use consumed of the vehicle's parts (docs/components.md).
        cost_of_use=vehicle_cost_of_use(db_session(), principal(), vehicle_id, None, now()),
        charts=[
            (by_day, render_svg(by_day, "day-chart", axis)),
            (by_month, render_svg(by_month, "month-chart", axis)),
        ],
    )


@blp.get("/accounts/<customer_id>/plans")
@signed_in(*ACCOUNT_READERS)
def compare(customer_id: str) -> Any:
    comparison = pages.compare_plans(db_session(), principal(), customer_id, now())
    customer = pages.get_customer(db_session(), principal(), customer_id)
    return render("customer/plans.html", customer=customer, comparison=comparison)
