"""The priced statement of a customer's month, checked to the cent by hand."""

from decimal import Decimal

import pytest

from billing.auth import SYSTEM
from billing.charges.compute import compute_statement
from billing.devices import services as devices
from billing.devices.models import Customer
from billing.periods import Period
from billing.pricing import assignments
from tests.integration.invoicing import at, held_since_october, meter, ride

NOVEMBER = Period(2026, 11)


@pytest.fixture
def november_fleet(session, registry, example_plans):
    held_since_october(session)
    return registry


def test_a_month_on_urbain_is_priced_to_the_cent(session, november_fleet):
    vehicle = november_fleet.vehicle_id
    assignments.assign_plan(session, SYSTEM, vehicle, "urbain", at("2026-11-01T00:00:00+01:00"))
    counters = ride(session, vehicle, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))
    ride(session, vehicle, "2026-11-04", 112, 8, 9, counters)
    meter(session)
    customer = session.get(Customer, november_fleet.customer_id)
    statement = compute_statement(session, customer, NOVEMBER)
    amounts = {line.rated.metric: line.amount for line in statement.lines}
    # Flat 19.00 for the whole month. 312 km - 50 included = 262 billable: tier 1 takes
    # 100 at 0, tier 2 the other 162 at 0.08 = 12.96, plus its flat 1.00 = 13.96.
    # 18 trips at 0.10 = 1.80. 21 kWh: 3 started blocks of 10 at 2.50 = 7.50.
    assert amounts == {
        "vehicle_days": Decimal("19.00"),
        "distance_km": Decimal("13.96"),
        "trips": Decimal("1.80"),
        "energy_kwh": Decimal("7.50"),
    }
    # HT 42.26; VAT 20 % = 8.452 -> 8.45; TTC 50.71.
    assert (statement.totals.net, statement.totals.vat, statement.totals.gross) == (
        Decimal("42.26"), Decimal("8.45"), Decimal("50.71"),
    )  # fmt: skip
    assert statement.plan_versions == (("urbain", 1),)


def test_a_german_business_customer_is_invoiced_under_reverse_charge(session, november_fleet):
    devices.update_customer(
        session, SYSTEM, november_fleet.customer_id,
        {"vat_number": "DE123456789", "address": {"country": "DE", "city": "Berlin"}},
    )  # fmt: skip
    assignments.assign_plan(
        session, SYSTEM, november_fleet.vehicle_id, "urbain", at("2026-11-01T00:00:00+01:00")
    )
    customer = session.get(Customer, november_fleet.customer_id)
    statement = compute_statement(session, customer, NOVEMBER)
    assert statement.vat.category == "AE"
    assert {(line.vat_category, line.vat_rate) for line in statement.lines} == {("AE", Decimal(0))}
    assert (statement.totals.net, statement.totals.vat) == (Decimal("19.00"), Decimal("0.00"))
