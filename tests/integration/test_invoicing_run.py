"""A month of a small fleet, from readings to a finalized invoice, checked to the cent; the
run is idempotent, survives a crash midway, and waits for the grace period."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from billing.charges.compute import compute_statement
from billing.devices.models import Customer
from billing.invoicing import issuing, rendering, services
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.validation import schematron_failures, xsd_errors
from billing.payments import collection
from billing.pricing.services import create_plan
from tests.conftest import NOW
from tests.integration.invoicing import (
    CLOSED,
    DUE,
    IN_GRACE,
    NOVEMBER,
    assign,
    invoice_of,
    november_rides,
    ride,
)

D = Decimal


def amounts(invoice: Invoice) -> list[tuple[str, str, Decimal]]:
    return [(line.vehicle_id, line.metric, line.amount) for line in invoice.lines]


def test_a_month_of_a_small_fleet_is_invoiced_to_the_cent(session, settings, fleet):
    november_rides(session, fleet)

    report = services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)

    invoice = invoice_of(session, fleet.customer_id)
    assert report.created == [invoice.id]
    assert invoice.status == "draft" and invoice.number is None
    assert amounts(invoice) == [
        # Liberté (plan versions are rated in code order), VEH-A2 from 16 November:
        # 15 of 30 days of the 6.90 fee = 3.45; 100 km at 0.15 = 15.00 (the cap, 79.00
        # prorated to 39.50, is not reached).
        ("VEH-A2", "vehicle_days", D("3.45")),
        ("VEH-A2", "distance_km", D("15.00")),
        # Urbain, VEH-A all month: the 19.00 fee; 312 km - 50 included = 262, of which
        # 100 at 0 and 162 at 0.08 = 12.96, plus the second tier's 1.00 = 13.96;
        # 18 trips at 0.10 = 1.80; 21 kWh = 3 started blocks of 10 at 2.50 = 7.50.
        ("VEH-A", "vehicle_days", D("19.00")),
        ("VEH-A", "distance_km", D("13.96")),
        ("VEH-A", "trips", D("1.80")),
        ("VEH-A", "energy_kwh", D("7.50")),
    ]
    # HT 3.45 + 15.00 + 19.00 + 13.96 + 1.80 + 7.50 = 60.71; VAT 20 % = 12.142 → 12.14;
    # TTC 72.85.
    assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
        D("60.71"), D("12.14"), D("72.85"),
    )  # fmt: skip
    # Customer B's vehicle is on no plan: nothing to bill, no invoice.
    assert invoice_of(session, fleet.other_customer_id) is None

    collection.finalize_due_invoices(session, DUE, settings=settings)

    session.refresh(invoice)
    assert invoice.status == "finalized"
    assert invoice.number == "F-2026-000001"
    assert invoice.issue_date == dt.date(2026, 12, 4)
    assert invoice.due_date == dt.date(2027, 1, 3)  # 30 days
    assert (invoice.buyer_name, invoice.buyer_siren) == ("Client A", "123456789")


def test_the_statement_of_a_closed_period_and_its_invoice_agree_to_the_cent(
    session, settings, fleet
):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    invoice = collection.finalize_invoice(
        session, invoice_of(session, fleet.customer_id).id, DUE, settings=settings
    )

    customer = session.get(Customer, fleet.customer_id)
    statement = compute_statement(session, customer, NOVEMBER)
    assert [line.amount for line in statement.lines] == [line.amount for line in invoice.lines]
    assert (statement.totals.net, statement.totals.vat, statement.totals.gross) == (
        invoice.total_net, invoice.total_vat, invoice.total_gross,
    )  # fmt: skip


def test_running_the_period_twice_changes_nothing(session, settings, fleet):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    before = snapshot(session)

    report = services.generate_invoices(
        session, NOVEMBER, CLOSED + dt.timedelta(hours=1), settings=settings
    )

    assert report.created == report.refreshed == [] and report.failed == {}
    assert len(report.unchanged) == 1
    assert snapshot(session) == before


def test_a_period_still_open_in_the_customers_time_zone_is_not_invoiced(session, settings, fleet):
    november_rides(session, fleet)
    # 22:30 UTC on 30 November is 23:30 in Paris: November is still running there.
    services.generate_invoices(session, NOVEMBER, dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.UTC),
                               settings=settings)  # fmt: skip
    assert invoice_of(session, fleet.customer_id) is None


def test_a_crash_for_one_customer_leaves_no_half_invoice_and_spares_the_others(
    session, settings, fleet, monkeypatch
):
    from tests.integration.invoicing import assign

    assign(session, "VEH-B", "urbain", "2026-11-01T00:00:00+01:00")
    november_rides(session, fleet)
    real_bulk_insert = issuing.bulk_insert

    def crash_on_customer_b(session_, model, rows):
        # The invoices are flushed, their lines half written: then the process fails.
        real_bulk_insert(session_, model, rows[:1])
        if invoice_id_of(session_, fleet.other_customer_id) in {row["invoice_id"] for row in rows}:
            raise RuntimeError("power cut")
        real_bulk_insert(session_, model, rows[1:])

    monkeypatch.setattr(issuing, "bulk_insert", crash_on_customer_b)
    report = services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)

    assert report.failed == {fleet.other_customer_id: "power cut"}
    assert invoice_of(session, fleet.other_customer_id) is None
    assert session.scalar(select(func.count()).select_from(InvoiceLine)) == 6
    monkeypatch.undo()

    report = services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)

    assert len(report.created) == 1 and len(report.unchanged) == 1
    assert len(invoice_of(session, fleet.other_customer_id).lines) == 4


def invoice_id_of(session, customer_id: str) -> str | None:
    return session.scalar(
        select(Invoice.id).where(Invoice.customer_id == customer_id, Invoice.period == "2026-11")
    )


def test_drafts_follow_late_telemetry_until_they_are_finalized_after_the_grace_period(
    session, settings, fleet
):
    from tests.integration.invoicing import ride

    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    # Readings of 29 November stored on the scooter arrive after the period closed.
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")

    report = collection.finalize_due_invoices(session, IN_GRACE, settings=settings)
    assert report.finalized == []
    services.generate_invoices(session, NOVEMBER, IN_GRACE, settings=settings)

    invoice = invoice_of(session, fleet.customer_id)
    assert invoice.status == "draft"
    # 100 + 20 km on Liberté at 0.15 = 18.00.
    assert amounts(invoice)[1] == ("VEH-A2", "distance_km", D("18.00"))
    report = collection.finalize_due_invoices(session, DUE, settings=settings)
    assert report.finalized == [invoice.id]


def test_the_grace_period_is_a_setting(session, fleet, tmp_path):
    from billing.settings import load_settings

    november_rides(session, fleet)
    patient = load_settings(data_dir=tmp_path, invoicing={"grace_days": 10})
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=patient)

    assert collection.finalize_due_invoices(session, DUE, settings=patient).finalized == []
    later = DUE + dt.timedelta(days=7)
    assert len(collection.finalize_due_invoices(session, later, settings=patient).finalized) == 1


def snapshot(session) -> list[tuple]:
    session.expire_all()
    return [
        (invoice.id, invoice.status, invoice.total_net, invoice.total_vat,
         [(line.position, line.description, line.amount, line.quantity) for line in invoice.lines])
        for invoice in session.scalars(select(Invoice).order_by(Invoice.id))
    ]  # fmt: skip


def test_statements_computed_together_equal_each_customers_own(session, fleet):
    from billing.auth import SYSTEM
    from billing.charges.compute import compute_statements
    from billing.devices import services as devices
    from tests.integration.invoicing import assign

    # Customer B in another time zone, on the pooled plan: grouped and cut apart again.
    devices.update_customer(session, SYSTEM, fleet.other_customer_id,
                            {"timezone": "America/New_York"})  # fmt: skip
    assign(session, "VEH-B", "flotte-pro", "2026-11-01T00:00:00-04:00")
    november_rides(session, fleet)
    customers = [session.get(Customer, fleet.other_customer_id),
                 session.get(Customer, fleet.customer_id)]  # fmt: skip

    together = compute_statements(session, customers, NOVEMBER)

    assert together == [compute_statement(session, customer, NOVEMBER) for customer in customers]
    assert [statement.customer_id for statement in together] == [c.id for c in customers]


def test_refreshing_a_draft_follows_the_data_and_discards_it_when_nothing_is_left(
    session, settings, fleet
):
    from billing.pricing.assignments import PlanAssignment
    from tests.integration.invoicing import ride

    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    draft = invoice_of(session, fleet.customer_id)
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")

    assert services.refresh_draft(session, draft.id, IN_GRACE, settings=settings) is draft
    assert draft.total_net == D("60.71") + D("3.00")  # 20 km more on Liberté at 0.15
    # The plans were assigned by mistake and the assignments removed: nothing to bill.
    for assignment in session.scalars(select(PlanAssignment)):
        session.delete(assignment)
    session.commit()

    assert services.refresh_draft(session, draft.id, IN_GRACE, settings=settings) is None
    assert invoice_of(session, fleet.customer_id) is None


def test_an_invoice_of_a_plan_at_0_percent_is_zero_rated_and_finalizes(session, settings, fleet):
    create_plan(
        session,
        {"code": "solidaire", "name": "Solidaire", "currency": "EUR", "vat_rate": "0",
         "charges": [{"metric": "distance_km", "model": "per_unit", "unit_amount": "0.05"}]},
        NOW,
    )  # fmt: skip
    assign(session, "VEH-B", "solidaire", "2026-11-01T00:00:00+01:00")
    ride(session, "VEH-B", "2026-11-12", 180, 12, 8, (2_000_000, 90_000))
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)

    report = collection.finalize_due_invoices(session, DUE, settings=settings)

    invoice = invoice_of(session, fleet.other_customer_id)
    assert invoice.id in report.finalized and invoice.status == "finalized"
    # 180 km at 0.05 = 9.00, zero rated: no VAT.
    assert [(line.vat_category, line.vat_rate, line.amount) for line in invoice.lines] == [
        ("Z", D(0), D("9.00"))
    ]
    assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
        D("9.00"), D("0.00"), D("9.00"),
    )  # fmt: skip
    xml = invoice_xml(rendering.invoice_document(invoice))
    assert xsd_errors(xml) == [] and schematron_failures(xml) == []
