"""Usage that changes after an invoice is issued is billed as adjustment lines on the
customer's next invoice, referring to the period it belongs to."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.auth import SYSTEM
from billing.invoicing import services
from billing.payments import collection
from billing.periods import Period
from billing.pricing import assignments
from tests.integration.invoicing import (
    CLOSED,
    DUE,
    NOVEMBER,
    at,
    invoice_of,
    november_rides,
    ride,
)

D = Decimal
DECEMBER = Period(2026, 12)
JANUARY = Period(2027, 1)
DECEMBER_CLOSED = dt.datetime(2027, 1, 1, 6, 0, tzinfo=dt.UTC)
JANUARY_CLOSED = dt.datetime(2027, 2, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def november_issued(session, settings, fleet):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    collection.finalize_due_invoices(session, DUE, settings=settings)
    return invoice_of(session, fleet.customer_id)


def lines(invoice) -> list[tuple]:
    return [(line.period, line.vehicle_id, line.metric, line.quantity, line.amount)
            for line in invoice.lines]  # fmt: skip


def test_late_usage_is_billed_on_the_next_invoice_as_an_adjustment(
    session, settings, fleet, november_issued
):
    before = lines(november_issued)
    # 29 November, stored on the scooter, reaches us after the invoice was issued.
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")

    services.generate_invoices(session, DECEMBER, DECEMBER_CLOSED, settings=settings)

    december = invoice_of(session, fleet.customer_id, DECEMBER)
    assert lines(november_issued) == before
    adjustment = december.lines[-1]
    # 20 more km on Liberté at 0.15 = 3.00, for November.
    assert (adjustment.period, adjustment.vehicle_id, adjustment.metric) == (
        "2026-11", "VEH-A2", "distance_km",
    )  # fmt: skip
    assert (adjustment.quantity, adjustment.amount) == (D("20"), D("3.00"))
    assert adjustment.description.startswith("Régularisation période 2026-11 — ")
    assert (adjustment.period_start, adjustment.period_end) == (
        dt.date(2026, 11, 1), dt.date(2026, 11, 30),
    )  # fmt: skip
    # December: the fees 6.90 + 19.00, no usage; with the adjustment 28.90 HT,
    # 5.78 VAT, 34.68 TTC.
    assert (december.total_net, december.total_vat, december.total_gross) == (
        D("28.90"), D("5.78"), D("34.68"),
    )  # fmt: skip


def test_an_adjustment_is_billed_once(session, settings, fleet, november_issued):
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")
    services.generate_invoices(session, DECEMBER, DECEMBER_CLOSED, settings=settings)
    collection.finalize_due_invoices(session, DECEMBER_CLOSED + dt.timedelta(days=4),
                                     settings=settings)  # fmt: skip

    services.generate_invoices(session, JANUARY, JANUARY_CLOSED, settings=settings)

    january = invoice_of(session, fleet.customer_id, JANUARY)
    assert {line.period for line in january.lines} == {"2027-01"}


def test_less_usage_than_billed_gives_a_negative_adjustment(
    session, settings, fleet, november_issued
):
    # The Liberté contract ended on 26 November, recorded late: 10 days, not 15.
    assignments.end_plan_assignment(session, SYSTEM, fleet.liberte, at("2026-11-26T00:00:00+01:00"))

    services.generate_invoices(session, DECEMBER, DECEMBER_CLOSED, settings=settings)

    december = invoice_of(session, fleet.customer_id, DECEMBER)
    # 6.90 x 10/30 = 2.30 instead of 3.45: -1.15 for 5 days fewer.
    assert lines(december)[-1] == ("2026-11", "VEH-A2", "vehicle_days", D("-5"), D("-1.15"))
    assert december.total_net == D("19.00") - D("1.15")


def test_a_voided_period_is_not_adjusted(session, settings, fleet, november_issued):
    collection.void_invoice(session, november_issued.id, "erreur", DUE, settings=settings)
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")

    services.generate_invoices(session, DECEMBER, DECEMBER_CLOSED, settings=settings)

    december = invoice_of(session, fleet.customer_id, DECEMBER)
    assert {line.period for line in december.lines} == {"2026-12"}
