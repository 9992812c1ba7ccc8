"""The customer pages: the month in progress, past statements equal to the invoice to the
cent, invoices with their stored documents, vehicles, plan comparison; and another
account's pages answer 404 whatever the URL says."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from billing.auth import SYSTEM
from billing.invoicing import drafts
from billing.invoicing.models import InvoiceFile
from billing.invoicing.services import generate_invoices
from billing.payments.collection import finalize_invoice
from billing.portal.formatting import money
from billing.statements.exports import statement_csv
from billing.statements.services import get_statement
from billing.users import services as users
from tests.integration.invoicing import DUE, IN_GRACE, NOVEMBER, invoice_of, ride
from tests.portal import fix_clock, signed_in_client

DECEMBER_10 = dt.datetime(2026, 12, 10, 13, 5, tzinfo=dt.UTC)


@pytest.fixture
def rides(session, fleet):
    counters = ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))
    counters = ride(session, fleet.urbain, "2026-11-04", 112, 8, 9, counters)
    ride(session, fleet.liberte, "2026-11-20", 100, 10, 5, (500_000, 20_000))
    return ride(session, fleet.urbain, "2026-12-02", 30, 3, 2, counters)


@pytest.fixture
def invoiced(session, settings, fleet, rides):
    """November invoiced and finalized (its documents rendered and kept)."""
    generate_invoices(session, NOVEMBER, IN_GRACE, settings=settings)
    return finalize_invoice(
        session, invoice_of(session, fleet.customer_id).id, DUE, settings=settings
    )


@pytest.fixture
def customer_client(app, session, fleet):
    fix_clock(app, DECEMBER_10)
    user = users.add_user(session, "m@lp.example", "customer", DUE, customer_id=fleet.customer_id)
    return signed_in_client(app, session, user, DECEMBER_10)


def text(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[-500:]
    return response.get_data(as_text=True)


def by_id(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page)
    assert found, f"no #{element_id}"
    return found.group(1).strip()


def test_the_closed_month_page_shows_the_invoice_totals_to_the_cent(
    session, customer_client, fleet, invoiced
):
    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/statements/2026-11"))
    assert by_id(page, "invoiced").count(invoiced.number) == 1
    totals = re.findall(r'data-total="(\w+)">([^<]+)<', page)
    assert dict(totals) == {
        "net": money(invoiced.total_net, "EUR", "fr"),
        "vat": money(invoiced.total_vat, "EUR", "fr"),
        "gross": money(invoiced.total_gross, "EUR", "fr"),
    }
    assert money(invoiced.total_net, "EUR", "fr") == "60,71\u00a0€"
    assert "pending-adjustment" not in page


def test_usage_arriving_after_the_invoice_shows_as_a_pending_adjustment(
    session, customer_client, fleet, invoiced, rides
):
    ride(session, fleet.liberte, "2026-11-25", 20, 2, 1, (600_000, 25_000))
    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/statements/2026-11"))
    result = get_statement(
        session, SYSTEM, fleet.customer_id, NOVEMBER, DECEMBER_10, history=drafts
    )
    pending = result.invoiced.pending.net
    assert pending > 0
    assert money(pending, "EUR", "fr") in by_id(page, "pending-adjustment")


def test_the_overview_shows_the_month_to_date_as_the_statement_does(
    session, customer_client, fleet, rides
):
    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/"))
    result = get_statement(session, SYSTEM, fleet.customer_id, None, DECEMBER_10, history=drafts)
    assert by_id(page, "amount-to-date") == money(result.statement.totals.net, "EUR", "fr")
    assert by_id(page, "projection") == money(result.projection.totals.net, "EUR", "fr")
    assert "extrapolated" in by_id(page, "projection-method").lower() or "extrapol" in page
    # Data up to the last reading, in the customer's zone (Paris, UTC+1).
    assert "2 décembre 2026" in by_id(page, "freshness")
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and "<title id=" in page
    assert "Valeurs du graphique en tableau" in page  # the text alternative
    assert f'href="/accounts/{fleet.customer_id}/vehicles/{fleet.urbain}"' in page
    rows = re.findall(r"<tr><th scope=\"row\"><a [^>]+>([^<]+)</a></th>\s*<td>([^<]*)</td>", page)
    assert (fleet.urbain, "urbain") in rows


def test_daily_kilometres_come_by_local_day(session, fleet, rides):
    from zoneinfo import ZoneInfo

    from billing.metering.queries import customer_segments
    from billing.periods import Period
    from billing.portal.customer_pages import daily_distance

    paris = ZoneInfo("Europe/Paris")

    def segments(period):
        start, end = period.bounds(paris)
        return customer_segments(session, fleet.customer_id, start, end)

    november = daily_distance(session, segments(Period(2026, 11)), Period(2026, 11), paris)
    assert november[2] == Decimal("200") and november[3] == Decimal("112")
    assert november[19] == Decimal("100")
    assert sum(november) == Decimal("412")
    december = daily_distance(
        session, segments(Period(2026, 12)), Period(2026, 12), paris, until=dt.date(2026, 12, 10)
    )
    assert december[1] == Decimal("30") and december[10] is None and len(december) == 31


def test_the_invoice_pdf_downloaded_is_the_stored_one(session, customer_client, fleet, invoiced):
    listing = text(customer_client.get(f"/accounts/{fleet.customer_id}/invoices/"))
    assert invoiced.number in listing
    assert by_id(listing, "total-invoiced") == money(invoiced.total_gross, "EUR", "fr")
    for kind, file_format in (("pdf", "pdf"), ("facturx.pdf", "facturx.pdf")):
        path = f"/accounts/{fleet.customer_id}/invoices/{invoiced.id}/{kind}"
        assert path in listing
        download = customer_client.get(path)
        assert download.status_code == 200
        stored = session.get(InvoiceFile, (invoiced.id, file_format))
        assert download.data == stored.content


def test_an_invoice_past_its_due_date_reads_overdue(app, session, customer_client, fleet, invoiced):
    fix_clock(app, dt.datetime(2027, 1, 20, tzinfo=dt.UTC))
    customer_client.set_cookie(
        "billing_session",
        users.start_page_session(
            session,
            users.find_user(session, "m@lp.example"),
            dt.datetime(2027, 1, 20, tzinfo=dt.UTC),
        ),
    )
    listing = text(customer_client.get(f"/accounts/{fleet.customer_id}/invoices/"))
    assert "en retard" in listing
    assert by_id(listing, "total-overdue") == money(invoiced.total_gross, "EUR", "fr")


def test_the_statement_csv_is_the_apis(session, customer_client, fleet, invoiced):
    download = customer_client.get(f"/accounts/{fleet.customer_id}/statements/2026-11.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    result = get_statement(
        session, SYSTEM, fleet.customer_id, NOVEMBER, DECEMBER_10, history=drafts
    )
    assert download.get_data(as_text=True) == statement_csv(result)


def test_the_vehicle_page_shows_its_plan_and_history(customer_client, fleet, rides):
    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/vehicles/{fleet.urbain}"))
    assert by_id(page, "vehicle-plan") == "urbain"
    assert 'id="day-chart"' in page and 'id="month-chart"' in page
    assert "novembre 2026" in page  # the month of the rides, by month


def test_the_plan_comparison_prices_the_last_three_months_on_each_public_plan(
    session, customer_client, fleet, rides, example_plans
):
    from billing.portal.customer_pages import compare_plans

    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/plans"))
    comparison = compare_plans(session, SYSTEM, fleet.customer_id, DECEMBER_10)
    assert [str(m) for m in comparison.months] == ["2026-09", "2026-10", "2026-11"]
    assert {code for code, *_ in comparison.plans} == set(example_plans)
    for _code, name, amounts, total in comparison.plans:
        assert name in page
        assert money(total, "EUR", "fr") in page
        assert total == sum(amounts)
    urbain = next(p for p in comparison.plans if p[0] == "urbain")
    assert urbain[2][2] > 0  # November's usage priced


ACCOUNT_PAGES = [
    "/accounts/{customer}/",
    "/accounts/{customer}/statements/",
    "/accounts/{customer}/statements/2026-11",
    "/accounts/{customer}/statements/2026-11.csv",
    "/accounts/{customer}/invoices/",
    "/accounts/{customer}/invoices/{invoice}/pdf",
    "/accounts/{customer}/vehicles/{vehicle}",
    "/accounts/{customer}/plans",
]


@pytest.mark.parametrize("path", ACCOUNT_PAGES)
def test_another_accounts_page_answers_404(
    session, settings, customer_client, fleet, invoiced, path
):
    generate_invoices(session, NOVEMBER, IN_GRACE, settings=settings)
    ids = {"customer": fleet.other_customer_id, "invoice": invoiced.id, "vehicle": "VEH-B"}
    response = customer_client.get(path.format(**ids))
    assert response.status_code == 404
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/{customer}/invoices/{other_invoice}/pdf",  # own account, another's invoice
        "/accounts/{customer}/vehicles/VEH-B",  # own account, another's vehicle
        "/accounts/{customer}/vehicles/NOPE",
        "/accounts/{customer}/statements/2026-13",
        "/accounts/{customer}/statements/99999-01",
        "/accounts/{customer}/statements/..%2f..%2f",
        "/accounts/{customer}/statements/" + "9" * 5000,
        "/accounts/{customer}/invoices/inv_nothing/facturx.pdf",
        "/accounts/%00/",
    ],
)
def test_hostile_paths_answer_404_pages(session, customer_client, fleet, invoiced, path):
    from tests.integration.invoicing import issued_invoice

    other = issued_invoice(session, fleet.other_customer_id, "F-2026-000099")
    response = customer_client.get(path.format(customer=fleet.customer_id, other_invoice=other.id))
    assert response.status_code == 404, response.get_data(as_text=True)[-300:]


def test_a_future_month_is_refused_naming_the_period(customer_client, fleet):
    response = customer_client.get(f"/accounts/{fleet.customer_id}/statements/2027-03")
    assert response.status_code == 422
    assert "2027-03" in response.get_data(as_text=True)


def test_a_contact_who_reads_english_gets_english_amounts_and_dates(
    session, customer_client, fleet, invoiced
):
    user = users.find_user(session, "m@lp.example")
    user.language = "en"
    session.commit()
    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/invoices/"))
    assert "€72.85" in page and "Total invoiced" in page
    assert "November 2026" in page


def test_staff_read_the_account_pages_too(app, session, fleet, invoiced):
    fix_clock(app, DECEMBER_10)
    finance = users.add_user(session, "f@x.example", "finance", DUE)
    client = signed_in_client(app, session, finance, DECEMBER_10)
    assert client.get(f"/accounts/{fleet.customer_id}/statements/2026-11").status_code == 200
    assert client.get(f"/accounts/{fleet.other_customer_id}/").status_code == 200


def test_the_overview_compares_the_month_with_last_months_invoice(customer_client, fleet, invoiced):
    page = text(customer_client.get(f"/accounts/{fleet.customer_id}/"))
    chart = re.search(r'id="amount-chart".*?</figure>', page, re.S).group(0)
    assert "mois dernier, facturé" in chart
    assert money(invoiced.total_net, "EUR", "fr") in chart  # in the chart's table


def test_a_vehicle_that_joined_mid_month_counts_from_its_first_day(session, fleet, rides):
    from zoneinfo import ZoneInfo

    from billing.metering.queries import customer_segments
    from billing.periods import Period
    from billing.portal.customer_pages import daily_distance

    paris = ZoneInfo("Europe/Paris")
    start, end = Period(2026, 11).bounds(paris)
    segments = customer_segments(session, fleet.customer_id, start, end)
    # Only the segments from the 16th: the rides of the 3rd and 4th are not counted.
    late = [s for s in segments if s.start.astimezone(paris).day >= 16]
    november = daily_distance(session, late, Period(2026, 11), paris)
    assert november[2] == 0 and november[19] == Decimal("100")
