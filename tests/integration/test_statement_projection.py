"""The month in progress: priced to date and projected to its end, at its start, middle and
end, checked to the cent by hand; the month cut at midnight in the customer's time zone;
how fresh the usage is. `now` is passed to the service, so the tests set the clock."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.auth import SYSTEM
from billing.devices import services as devices
from billing.devices.models import FleetMembership
from billing.invoicing import drafts
from billing.periods import Period
from billing.pricing import assignments
from billing.registry import vehicle_changes
from billing.statements.projection import METHOD, NOT_ENOUGH_DATA
from billing.statements.services import get_statement
from tests.rides import at, meter, ride, store

NOVEMBER = Period(2026, 11)
MIDDLE = at("2026-11-16T00:00:00+01:00")  # 15 of November's 30 days have elapsed


@pytest.fixture
def customer(session, registry, example_plans):
    """Customer A (Europe/Paris); its VEH-A held since October and on urbain from 1 November."""
    for membership in session.scalars(select(FleetMembership)):
        membership.started_at = at("2026-10-01T00:00:00+02:00")
    session.commit()
    assignments.assign_plan(session, SYSTEM, "VEH-A", "urbain", at("2026-11-01T00:00:00+01:00"))
    return registry.customer_id


def totals(totals) -> tuple[str, str, str]:
    return str(totals.net), str(totals.vat), str(totals.gross)


def ride_half_a_month(session) -> None:
    """160 km, 8 trips and 18 kWh by the 10th."""
    counters = ride(session, "VEH-A", "2026-11-03T07:00:00+01:00", km=100, trips=5, kwh=12)
    ride(session, "VEH-A", "2026-11-10T07:00:00+01:00", km=60, trips=3, kwh=6, counters=counters)
    meter(session)


def test_in_the_middle_of_the_month_usage_is_extrapolated_by_elapsed_days(session, customer):
    ride_half_a_month(session)
    result = get_statement(session, SYSTEM, customer, None, MIDDLE, history=drafts)
    assert (result.statement.period, result.status, result.as_of) == (
        NOVEMBER, "in_progress", MIDDLE,
    )  # fmt: skip
    # To date, 15 of 30 days: flat 19.00 x 15 / 30 = 9.50. 160 km - 50 = 110: 100 at 0, 10
    # at 0.08 = 0.80, plus 1.00 = 1.80. 8 trips: 0.80. 18 kWh: 2 blocks, 5.00. HT 17.10,
    # VAT 3.42, TTC 20.52.
    assert totals(result.statement.totals) == ("17.10", "3.42", "20.52")
    projection = result.projection
    assert projection.method == METHOD
    assert (projection.elapsed_days, projection.period_days) == (Decimal("15.000000"), 30)
    assert (projection.usage_extrapolated, projection.note) == (True, None)
    # Projected: 160 km x 30 / 15 = 320 km, 16 trips, 36 kWh, over all 30 days.
    [vehicle] = projection.vehicles
    assert vehicle.vehicle_days == Decimal("30.000000")
    assert (vehicle.quantities["distance_km"], vehicle.quantities["trips"]) == (
        Decimal("320.000"), Decimal("16.000"),
    )  # fmt: skip
    assert vehicle.quantities["energy_kwh"] == Decimal("36.000")
    assert vehicle.quantities["active_days"] == Decimal("4.000")
    # Flat 19.00. 320 - 50 = 270: 100 at 0, 170 at 0.08 = 13.60, plus 1.00 = 14.60.
    # 16 trips: 1.60. 36 kWh: 4 blocks, 10.00. HT 45.20, VAT 9.04, TTC 54.24.
    assert totals(projection.totals) == ("45.20", "9.04", "54.24")
    assert vehicle.amount == Decimal("45.20")


def test_in_the_first_day_usage_is_not_extrapolated_and_fees_are_for_the_whole_month(
    session, customer
):
    # Two trips of 10 km between 02:00 and 03:00 on the 1st, 5 kWh.
    ride(session, "VEH-A", "2026-11-01T02:00:00+01:00", km=20, trips=2, kwh=5)
    meter(session)
    result = get_statement(
        session, SYSTEM, customer, None, at("2026-11-01T06:00:00+01:00"), history=drafts
    )
    # To date, a quarter of a day: 19.00 x 0.25 / 30 = 0.158333 -> 0.16. 20 km, all free:
    # 0.00. 2 trips: 0.20. 5 kWh: one block, 2.50. HT 2.86, VAT 0.572 -> 0.57, TTC 3.43.
    assert totals(result.statement.totals) == ("2.86", "0.57", "3.43")
    projection = result.projection
    assert projection.elapsed_days == Decimal("0.250000")
    assert (projection.usage_extrapolated, projection.note) == (False, NOT_ENOUGH_DATA)
    assert projection.vehicles_not_extrapolated == ("VEH-A",)
    # The usage so far is kept as it is; the fee is the whole month's 19.00.
    # HT 19.00 + 0.20 + 2.50 = 21.70, VAT 4.34, TTC 26.04.
    assert projection.vehicles[0].quantities["distance_km"] == Decimal("20.000")
    assert totals(projection.totals) == ("21.70", "4.34", "26.04")


def test_at_the_first_instant_of_the_month_the_projection_is_the_fees(session, customer):
    result = get_statement(
        session, SYSTEM, customer, None, at("2026-11-01T00:00:00+01:00"), history=drafts
    )
    assert totals(result.statement.totals) == ("0.00", "0.00", "0.00")
    assert result.projection.elapsed_days == Decimal("0.000000")
    assert result.projection.usage_extrapolated is False
    assert totals(result.projection.totals) == ("19.00", "3.80", "22.80")


def test_at_the_end_of_the_month_the_projection_meets_the_closed_statement(session, customer):
    ride_half_a_month(session)
    last_second = get_statement(
        session, SYSTEM, customer, None, at("2026-11-30T23:59:59+01:00"), history=drafts
    )
    closed = get_statement(
        session, SYSTEM, customer, NOVEMBER, at("2026-12-02T12:00:00+01:00"), history=drafts
    )
    assert (closed.status, closed.projection) == ("closed", None)
    # Flat 19.00 + 1.80 + 0.80 + 5.00 = 26.60, VAT 5.32, TTC 31.92: nothing more to come.
    assert totals(closed.statement.totals) == ("26.60", "5.32", "31.92")
    assert totals(last_second.statement.totals) == totals(closed.statement.totals)
    assert totals(last_second.projection.totals) == totals(closed.statement.totals)


def test_a_scheduled_plan_change_and_a_pool_are_followed_by_the_projection(
    session, customer, registry
):
    vehicle_changes.register_vehicle(
        session, SYSTEM,
        {"id": "VEH-A2", "fleet_id": registry.fleet_id, "model": "s1", "serial": "VEH-A2"},
        at("2026-10-01T00:00:00+02:00"),
    )  # fmt: skip
    assignments.assign_plan(
        session, SYSTEM, "VEH-A2", "flotte-pro", at("2026-11-01T00:00:00+01:00")
    )
    # Decided on the 12th: VEH-A moves to the pooled plan on the 21st.
    assignments.assign_plan(session, SYSTEM, "VEH-A", "flotte-pro", at("2026-11-21T00:00:00+01:00"))
    ride(session, "VEH-A", "2026-11-03T07:00:00+01:00", km=150, trips=5, kwh=10)
    ride(session, "VEH-A2", "2026-11-04T06:00:00+01:00", km=900, trips=18, kwh=60)
    meter(session)
    result = get_statement(session, SYSTEM, customer, None, MIDDLE, history=drafts)
    # To date: VEH-A on urbain 15 days: 9.50 + 0.00 (150 - 50 = 100, all in the free tier)
    # + 0.50 (5 trips) + 2.50 (10 kWh) = 12.50. VEH-A2: 29.00 x 15 / 30 = 14.50, 900 km of
    # the 1000 included: 0.00. HT 27.00, VAT 5.40, TTC 32.40.
    assert totals(result.statement.totals) == ("27.00", "5.40", "32.40")
    # Paces: VEH-A 10 km, 1/3 trip and 2/3 kWh a day; VEH-A2 60 km a day.
    # VEH-A on urbain 1st-21st: 150 + 10 x 5 = 200 km, 5 + 5/3 = 6.667 trips, 10 + 10/3 =
    # 13.333 kWh: flat 19.00 x 20 / 30 = 12.67; 200 - 50 = 150: 50 at 0.08 = 4.00 + 1.00 =
    # 5.00; trips 0.6667 -> 0.67; 2 blocks of energy 5.00. Segment: 23.34.
    # VEH-A on flotte-pro 21st-30th: 10 days x 10 km = 100 km; flat 29.00 x 10 / 30 = 9.67.
    # VEH-A2: 60 x 30 = 1800 km; flat 29.00.
    # Pool: 100 + 1800 = 1900 km, 900 billable at 0.060 = 54.00, split by km: 5400 cents x
    # 100 / 1900 = 284.21 and x 1800 / 1900 = 5115.79; the spare cent to VEH-A2: 2.84, 51.16.
    # VEH-A: 23.34 + 9.67 + 2.84 = 35.85; VEH-A2: 29.00 + 51.16 = 80.16.
    # HT 116.01, VAT 23.202 -> 23.20, TTC 139.21.
    projection = result.projection
    amounts = {vehicle.vehicle_id: str(vehicle.amount) for vehicle in projection.vehicles}
    assert amounts == {"VEH-A": "35.85", "VEH-A2": "80.16"}
    distances = {v.vehicle_id: v.quantities["distance_km"] for v in projection.vehicles}
    assert distances == {"VEH-A": Decimal("300.000"), "VEH-A2": Decimal("1800.000")}
    assert totals(projection.totals) == ("116.01", "23.20", "139.21")


def test_a_vehicle_with_less_than_a_day_of_history_is_not_extrapolated(session, customer, registry):
    ride_half_a_month(session)
    joined = MIDDLE - dt.timedelta(hours=6)
    vehicle_changes.register_vehicle(
        session, SYSTEM,
        {"id": "VEH-A2", "fleet_id": registry.fleet_id, "model": "s1", "serial": "VEH-A2"},
        joined,
    )  # fmt: skip
    assignments.assign_plan(session, SYSTEM, "VEH-A2", "urbain", joined)
    ride(session, "VEH-A2", "2026-11-15T19:00:00+01:00", km=30, trips=3, kwh=2)
    meter(session)
    projection = get_statement(session, SYSTEM, customer, None, MIDDLE, history=drafts).projection
    assert projection.usage_extrapolated is True
    assert projection.vehicles_not_extrapolated == ("VEH-A2",)
    [_, newcomer] = projection.vehicles
    # Its 30 km are kept as they are; its fee runs from 18:00 on the 15th to the month's
    # end: 0.25 + 15 = 15.25 days, 19.00 x 15.25 / 30 = 9.658333 -> 9.66; 3 trips 0.30;
    # 2 kWh: one block, 2.50. 12.46.
    assert (newcomer.quantities["distance_km"], newcomer.vehicle_days) == (
        Decimal("30.000"), Decimal("15.250000"),
    )  # fmt: skip
    assert newcomer.amount == Decimal("12.46")


def test_the_month_is_cut_at_midnight_in_the_customers_time_zone(session, customer):
    store(session, "VEH-A", [
        {"msg_id": "m0", "ts": "2026-10-31T23:00:00+01:00", "odometer_m": 1_000_000},
        {"msg_id": "m1", "ts": "2026-10-31T23:45:00+01:00", "odometer_m": 1_005_000},
        # 23:30 UTC on the 31st, but already 1 November in Paris.
        {"msg_id": "m2", "ts": "2026-11-01T00:30:00+01:00", "odometer_m": 1_012_000},
    ])  # fmt: skip
    meter(session)
    december = at("2026-12-02T12:00:00+01:00")

    def distance(period: Period) -> Decimal:
        result = get_statement(session, SYSTEM, customer, period, december, history=drafts)
        return sum((v.usage.distance_km for v in result.vehicles), Decimal(0))

    assert (distance(Period(2026, 10)), distance(NOVEMBER)) == (Decimal("5"), Decimal("7"))
    november = get_statement(
        session, SYSTEM, customer, NOVEMBER, december, history=drafts
    ).statement
    assert november.start == at("2026-11-01T00:00:00+01:00")
    # In New York both readings are in the evening of 31 October.
    devices.update_customer(session, SYSTEM, customer, {"timezone": "America/New_York"})
    assert (distance(Period(2026, 10)), distance(NOVEMBER)) == (Decimal("12"), Decimal("0"))


def test_freshness_tells_when_readings_wait_to_be_metered(session, customer):
    ride(session, "VEH-A", "2026-11-03T07:00:00+01:00", km=20, trips=1, kwh=1)
    waiting = get_statement(session, SYSTEM, customer, None, MIDDLE, history=drafts)
    assert waiting.metering_pending is True
    assert waiting.statement.freshness.latest_reading_at == at("2026-11-03T07:30:00+01:00")
    assert waiting.statement.totals.net == Decimal("9.50")  # the fee only, usage not in yet
    meter(session)
    metered = get_statement(session, SYSTEM, customer, None, MIDDLE, history=drafts)
    assert metered.metering_pending is False
    assert metered.vehicles[0].usage.distance_km == Decimal("20.000")
