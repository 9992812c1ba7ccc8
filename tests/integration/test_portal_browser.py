"""The web pages end to end, in headless Chromium (Debian's, driven by Playwright), against
the production HTTP server, a committed database and a real SMTP server (aiosmtpd).

A customer signs in from the e-mail, sees the right amounts, follows a vehicle and
downloads the stored invoice PDF; finance finalizes a draft and downloads the FEC; an
operator revokes a broker credential; another account's URL answers 404; a form without
its CSRF token, an expired link and a used link are refused. Screenshots of each step are
kept in test-artifacts/screenshots/ (not versioned).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from billing import create_app
from billing.auth import SYSTEM
from billing.db import Database
from billing.devices import services as devices
from billing.invoicing import drafts, files
from billing.invoicing.models import Invoice, InvoiceFile
from billing.invoicing.services import generate_invoices
from billing.payments.collection import finalize_invoice
from billing.periods import Period
from billing.portal.formatting import money
from billing.pricing import assignments
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory
from billing.registry import vehicle_changes
from billing.settings import load_settings
from billing.statements.services import get_statement
from billing.users import services as users
from tests.conftest import customer_payload
from tests.databases import fresh_database_url
from tests.integration.invoicing import DUE, IN_GRACE, NOVEMBER, at, invoice_of, ride
from tests.live_server import live_server
from tests.services import require_program
from tests.smtp_server import smtp_server

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
DECEMBER_10 = dt.datetime(2026, 12, 10, 13, 5, tzinfo=dt.UTC)
PASSWORD = "correct horse battery 42"


@dataclass
class Site:
    url: str
    app: object
    database: Database
    mailbox: object
    customer_id: str
    other_customer_id: str
    fleet_id: str
    invoice_id: str  # customer A's November invoice, finalized
    draft_id: str  # customer B's November draft

    def at(self, instant: dt.datetime) -> None:
        self.app.extensions["billing.clock"] = lambda: instant


def seed(database: Database, settings) -> dict[str, str]:
    """Two customers on urbain since October with November rides; A's November invoice
    finalized (its documents rendered and kept), B's left a draft; users of each role."""
    with database.session() as session:
        load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, at("2026-09-01T00:00:00Z"))
        ids = {}
        for suffix, name in (("A", "Livraisons Picardes SAS"), ("B", "Coursiers du Nord")):
            customer = devices.create_customer(session, customer_payload(name), DUE)
            fleet = devices.create_fleet(
                session, SYSTEM, {"customer_id": customer.id, "name": f"Flotte {suffix}"}, DUE
            )
            since = at("2026-10-01T00:00:00+02:00")
            vehicle_changes.enroll_vehicle(
                session, SYSTEM,
                {"id": f"MOB-{suffix}", "fleet_id": fleet.id, "model": "s1",
                 "serial": f"S1-{suffix}", "effective_at": since},
                DUE,
            )  # fmt: skip
            assignments.assign_plan(session, SYSTEM, f"MOB-{suffix}", "urbain", since)
            ids[suffix] = (customer.id, fleet.id)
        counters = ride(session, "MOB-A", "2026-11-03", 200, 10, 12, (1_000_000, 50_000))
        ride(session, "MOB-A", "2026-12-02", 30, 3, 2, counters)
        ride(session, "MOB-B", "2026-11-05", 80, 4, 3, (2_000_000, 60_000))
        generate_invoices(session, NOVEMBER, IN_GRACE, settings=settings)
        invoice = invoice_of(session, ids["A"][0])
        finalize_invoice(session, invoice.id, DUE, settings=settings)
        draft = invoice_of(session, ids["B"][0])
        users.add_user(session, "compta@lp.example", "customer", DUE, customer_id=ids["A"][0])
        users.add_user(session, "finance@seller.example", "finance", DUE, password=PASSWORD)
        users.add_user(session, "ops@lp.example", "operator", DUE, fleet_ids=[ids["A"][1]])
        devices.issue_vehicle_credential(session, SYSTEM, "MOB-A", DUE)
        return {
            "customer_id": ids["A"][0],
            "other_customer_id": ids["B"][0],
            "fleet_id": ids["A"][1],
            "invoice_id": invoice.id,
            "draft_id": draft.id,
        }


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_program("chromium", "chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium_path) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("browser")
    with fresh_database_url(tmp_path) as url, smtp_server() as (smtp_port, mailbox):
        database = Database.from_url(url)
        settings = load_settings(
            data_dir=tmp_path,
            secret_key="browser-test-secret",
            smtp={"host": "127.0.0.1", "port": smtp_port, "starttls": False},
        )
        ids = seed(database, settings)
        app = create_app(settings, database)
        app.extensions["billing.clock"] = lambda: DECEMBER_10
        with live_server(app) as base:
            # Links in the mails point at this server (in production: BILLING_PORTAL_BASE_URL).
            app.extensions["billing.settings"] = dataclasses.replace(
                settings, portal=dataclasses.replace(settings.portal, base_url=base)
            )
            yield Site(base, app, database, mailbox, **ids)
        database.engine.dispose()


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # As root (CI), Chromium runs only without its sandbox.
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site):
    site.at(DECEMBER_10)
    context = browser.new_context(locale="fr-FR", accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def link_from_mail(site: Site, page, email: str) -> str:
    """Ask for a link on the sign-in page and read it in the mail the SMTP server got."""
    before = len(site.mailbox.messages)
    page.goto(f"{site.url}/sign-in")
    page.fill("#email", email)
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#link-sent")
    mail = site.mailbox.wait_for(before + 1)
    assert mail["To"] == email
    [url] = re.findall(r"http://\S+/sign-in/link/\S+", mail.get_content())
    return url


def sign_in_by_mail(site: Site, page, email: str) -> None:
    page.goto(link_from_mail(site, page, email))
    page.click("#continue")
    page.wait_for_load_state()


def test_a_customer_signs_in_from_the_mail_and_sees_the_right_amounts(site, page):
    sign_in_by_mail(site, page, "compta@lp.example")
    assert page.url == f"{site.url}/accounts/{site.customer_id}/"
    with site.database.session() as session:
        result = get_statement(session, SYSTEM, site.customer_id, None, DECEMBER_10, history=drafts)
    assert page.inner_text("#amount-to-date") == money(result.statement.totals.net, "EUR", "fr")
    assert page.inner_text("#projection") == money(result.projection.totals.net, "EUR", "fr")
    assert "2 décembre 2026" in page.inner_text("#freshness")
    assert page.locator("#km-chart").is_visible()
    screenshot(page, "customer-overview")

    page.click("#vehicles a:text('MOB-A')")
    assert page.inner_text("#vehicle-plan") == "urbain"
    screenshot(page, "customer-vehicle")


def test_the_closed_month_page_equals_the_invoice_and_the_pdf_is_the_stored_one(site, page):
    sign_in_by_mail(site, page, "compta@lp.example")
    with site.database.session() as session:
        invoice = session.get(Invoice, site.invoice_id)
        stored = session.get(InvoiceFile, (site.invoice_id, "pdf")).content
    page.goto(f"{site.url}/accounts/{site.customer_id}/statements/2026-11")
    assert page.inner_text("[data-total=net]") == money(invoice.total_net, "EUR", "fr")
    assert page.inner_text("[data-total=vat]") == money(invoice.total_vat, "EUR", "fr")
    assert page.inner_text("[data-total=gross]") == money(invoice.total_gross, "EUR", "fr")
    assert invoice.number in page.inner_text("#invoiced")
    screenshot(page, "customer-statement")

    page.goto(f"{site.url}/accounts/{site.customer_id}/invoices/")
    screenshot(page, "customer-invoices")
    with page.expect_download() as download:
        page.click(f"a[aria-label='PDF {invoice.number}']")
    assert Path(download.value.path()).read_bytes() == stored


def test_a_customer_editing_the_url_to_another_account_gets_404(site, page):
    sign_in_by_mail(site, page, "compta@lp.example")
    for path in ("/", "/invoices/", f"/invoices/{site.draft_id}/pdf", "/statements/2026-11"):
        response = page.goto(f"{site.url}/accounts/{site.other_customer_id}{path}")
        assert response.status == 404
    screenshot(page, "customer-other-account-404")


def test_finance_finalizes_a_draft_and_downloads_the_fec(site, page):
    page.goto(f"{site.url}/sign-in")
    page.click("details summary")
    page.fill("#staff-email", "finance@seller.example")
    page.fill("#password", PASSWORD)
    page.click("details button[type=submit]")
    page.wait_for_url(f"{site.url}/finance/invoices/")
    page.goto(f"{site.url}/finance/drafts/")
    screenshot(page, "finance-drafts")
    page.click(f"form[action='/finance/invoices/{site.draft_id}/finalize'] button")
    page.click("#confirm")
    page.wait_for_selector("#done")
    with site.database.session() as session:
        draft = session.get(Invoice, site.draft_id)
        assert draft.status == "finalized"
        number = draft.number
        fec = files.fec(session, Period(2026, 12), load_settings().seller.siren).content
    assert number in page.inner_text("#done")
    screenshot(page, "finance-finalized")

    page.goto(f"{site.url}/finance/exports/?period=2026-12")
    with page.expect_download() as download:
        page.click("#export-fec")
    content = Path(download.value.path()).read_bytes()
    assert content == fec
    assert number.encode() in content


def test_an_operator_revokes_a_broker_credential(site, page):
    from billing.devices.models import BrokerCredential

    with site.database.session() as session:
        url = users.issue_sign_in_link(
            session, site.app.extensions["billing.settings"], "ops@lp.example", site.url,
            DECEMBER_10,
        )  # fmt: skip
    page.goto(url)
    page.click("#continue")
    page.goto(f"{site.url}/fleets/{site.fleet_id}")
    assert "€" not in page.content()
    screenshot(page, "operator-fleet")
    page.click("button[aria-label='Revoke MOB-A']")
    page.click("#confirm")
    page.wait_for_selector("#revoked")
    with site.database.session() as session:
        credential = session.query(BrokerCredential).filter_by(vehicle_id="MOB-A").one()
        assert credential.revoked_at is not None


def test_a_form_without_its_csrf_token_is_refused(site, page):
    sign_in_by_mail(site, page, "compta@lp.example")
    # The sign-out form, its token taken out as a forged cross-site form would lack it.
    page.eval_on_selector("form.sign-out input[name=csrf_token]", "input => input.remove()")
    with page.expect_navigation() as navigation:
        page.click("form.sign-out button")
    assert navigation.value.status == 400
    screenshot(page, "csrf-refused")
    # Still signed in: the forged sign-out did nothing.
    assert page.goto(f"{site.url}/accounts/{site.customer_id}/").status == 200


def test_a_used_or_expired_link_is_refused(site, page):
    used = link_from_mail(site, page, "compta@lp.example")
    page.goto(used)
    page.click("#continue")
    assert page.url.endswith(f"/accounts/{site.customer_id}/")
    page.context.clear_cookies()
    page.goto(used)
    page.click("#continue")
    assert "déjà servi" in page.inner_text(".error")
    screenshot(page, "link-used")

    expired = link_from_mail(site, page, "compta@lp.example")
    site.at(DECEMBER_10 + dt.timedelta(minutes=16))
    page.goto(expired)
    page.click("#continue")
    assert "expiré" in page.inner_text(".error")
    screenshot(page, "link-expired")


def test_the_pages_fit_a_phone_and_work_from_the_keyboard(site, browser):
    context = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{site.url}/sign-in")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "email"
        page.keyboard.type("compta@lp.example")
        before = len(site.mailbox.messages)
        page.keyboard.press("Enter")
        page.wait_for_selector("#link-sent")
        [url] = re.findall(
            r"http://\S+/sign-in/link/\S+", site.mailbox.wait_for(before + 1).get_content()
        )
        page.goto(url)
        page.focus("#continue")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{site.url}/accounts/{site.customer_id}/")
        # Nothing wider than the screen but the tables, which scroll in their own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for label in page.locator("input:not([type=hidden]), select").all():
            assert label.get_attribute("id"), "a field without its label"
        screenshot(page, "customer-overview-phone")
    finally:
        context.close()
