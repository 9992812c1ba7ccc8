"""Property: a finalized invoice never changes, whatever happens after — late readings,
plan edits and migrations, customer edits, runs of any period, credit notes and voids."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.auth import SYSTEM
from billing.devices import services as devices
from billing.errors import DomainError
from billing.invoicing import rendering, services
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.models import Invoice
from billing.payments import collection
from billing.periods import Period
from billing.pricing import assignments
from billing.pricing import services as plans
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from tests.integration.invoicing import CLOSED, DUE, NOVEMBER, at, invoice_of, november_rides, ride

DECEMBER = Period(2026, 12)
LATER = dt.datetime(2027, 1, 6, 9, 0, tzinfo=dt.UTC)  # December closed and due by then
# Columns an issued invoice may still change: its status moves and its collection.
MOVING = {"status", "voided_at", "stripe_invoice_id", "payment_status", "paid_at"}
_tags = itertools.count()

NAME_CHARACTERS = st.characters(categories=("L", "N", "P"))  # what a company name holds
VEHICLES = st.sampled_from(["VEH-A", "VEH-A2", "VEH-B"])
DAYS = st.integers(1, 30)
ACTIONS = st.one_of(
    st.tuples(st.just("ride"), VEHICLES, DAYS, st.integers(1, 20)),
    st.tuples(st.just("edit_plan"), st.sampled_from(["12.00", "25.00", "19.50"])),
    st.tuples(st.just("migrate_plan"), DAYS),
    st.tuples(st.just("end_plan"), VEHICLES, DAYS),
    st.tuples(st.just("edit_customer"), st.text(NAME_CHARACTERS, min_size=1, max_size=30)),
    st.tuples(st.just("move_customer_to_germany")),
    st.tuples(st.just("run"), st.sampled_from([NOVEMBER, DECEMBER])),
    st.tuples(st.just("finalize_due")),
    st.tuples(st.just("finalize_again")),
    st.tuples(st.just("credit"), st.integers(1, 3000)),
    st.tuples(st.just("void")),
)


def frozen(invoice: Invoice) -> tuple:
    """Everything of an issued invoice that must never change, its document included."""
    columns = {
        column.key: getattr(invoice, column.key)
        for column in Invoice.__table__.columns
        if column.key not in MOVING
    }
    lines = [
        {column.key: getattr(line, column.key) for column in line.__table__.columns}
        for line in invoice.lines
    ]
    return columns, lines, invoice_xml(rendering.invoice_document(invoice))


def act(session, app_settings, fleet, invoice_id: str, action: tuple) -> None:
    name, *args = action
    if name == "ride":
        vehicle, day, km = args
        tag = next(_tags)
        start = 5_000_000 + 100_000 * tag
        ride(session, vehicle, f"2026-11-{day:02d}", km, 2, 1, (start, start), tag=f"p{tag}")
    elif name == "edit_plan":
        plans.update_plan(session, "urbain", urbain_with_fee(args[0]), LATER)
    elif name == "migrate_plan":
        assignments.migrate_plan_assignments(
            session, "urbain", at(f"2026-11-{args[0]:02d}T12:00:00Z")
        )
    elif name == "end_plan":
        vehicle, day = args
        assignments.end_plan_assignment(
            session, SYSTEM, vehicle, at(f"2026-11-{day:02d}T12:00:00Z")
        )
    elif name == "edit_customer":
        devices.update_customer(session, SYSTEM, fleet.customer_id, {"name": args[0]})
    elif name == "move_customer_to_germany":
        devices.update_customer(
            session, SYSTEM, fleet.customer_id,
            {"vat_number": "DE811234567", "address": {"country": "DE", "city": "Freiburg"}},
        )  # fmt: skip
    elif name == "run":
        services.generate_invoices(session, args[0], LATER, settings=app_settings)
    elif name == "finalize_due":
        collection.finalize_due_invoices(session, LATER, settings=app_settings)
    elif name == "finalize_again":
        collection.finalize_invoice(session, invoice_id, LATER, settings=app_settings)
    elif name == "credit":
        amount = Decimal(args[0]).scaleb(-2)
        collection.issue_credit_note(
            session, invoice_id, "geste", LATER, settings=app_settings, amount=amount
        )
    elif name == "void":
        collection.void_invoice(session, invoice_id, "erreur", LATER, settings=app_settings)


def urbain_with_fee(fee: str) -> dict:
    """The shipped Urbain plan with another monthly fee."""
    body = yaml.safe_load((DEFAULT_PLANS_DIRECTORY / "urbain.yaml").read_text(encoding="utf-8"))
    body["charges"][0]["amount"] = fee
    return body


@pytest.fixture
def issued_november(session, settings, fleet) -> str:
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    return collection.finalize_invoice(
        session, invoice_of(session, fleet.customer_id).id, DUE, settings=settings
    ).id


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=st.lists(ACTIONS, min_size=1, max_size=6))
def test_a_finalized_invoice_never_changes_whatever_happens_after(
    database, settings, fleet, issued_november, actions
):
    with database.session() as session:
        before = frozen(session.get(Invoice, issued_november))
    example = database.bind.begin_nested()  # each example starts from the same state
    try:
        with database.session() as session:
            for action in actions:
                try:
                    act(session, settings, fleet, issued_november, action)
                except DomainError:
                    session.rollback()  # refused (e.g. finalizing twice): nothing changed
            session.expire_all()
            assert frozen(session.get(Invoice, issued_november)) == before
    finally:
        example.rollback()
