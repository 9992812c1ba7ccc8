"""Statements after invoicing: an invoiced month shows what was billed, the figures
measured since and the adjustment pending; the month in progress projects its invoice with
that adjustment. Operators read usage, never money."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.auth import SYSTEM
from billing.db import utcnow
from billing.invoicing import drafts, services
from billing.metering.usage import bucket_start
from billing.payments import collection
from billing.periods import Period
from billing.statements.schemas import StatementSchema
from billing.statements.services import get_statement
from tests.conftest import auth
from tests.integration.invoicing import (
    CLOSED,
    DUE,
    NOVEMBER,
    invoice_of,
    november_rides,
    ride,
)
from tests.integration.test_usage_api import readings

PARIS = ZoneInfo("Europe/Paris")
DECEMBER_CLOSED = dt.datetime(2027, 1, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def november_issued(session, settings, fleet):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    collection.finalize_due_invoices(session, DUE, settings=settings)
    return invoice_of(session, fleet.customer_id)


def test_an_invoiced_month_shows_billed_measured_and_pending_figures(
    session, settings, fleet, november_issued
):
    untouched = get_statement(
        session, SYSTEM, fleet.customer_id, NOVEMBER, DUE, history=drafts
    ).invoiced
    # 29 November, stored on the scooter, reaches us after the invoice was issued.
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")

    result = get_statement(session, SYSTEM, fleet.customer_id, NOVEMBER, DUE, history=drafts)

    assert (untouched.pending.net, untouched.pending.gross) == (0, 0)
    invoiced = result.invoiced
    assert invoiced.invoice_numbers == (november_issued.number,)
    assert invoiced.billed.net == november_issued.total_net
    assert invoiced.billed.gross == november_issued.total_gross
    assert result.statement.totals.net == invoiced.billed.net + invoiced.pending.net
    assert invoiced.pending.net > 0 and invoiced.adjustable
    # What the December invoice then bills for November is exactly what was pending.
    services.generate_invoices(session, NOVEMBER.next(), DECEMBER_CLOSED, settings=settings)
    december = invoice_of(session, fleet.customer_id, NOVEMBER.next())
    adjusted = sum(line.amount for line in december.lines if line.period == "2026-11")
    assert adjusted == invoiced.pending.net
    body = StatementSchema().dump(result)
    assert body["invoiced"]["invoices"] == [november_issued.number]
    assert body["invoiced"]["pending_adjustment"]["net"] == str(invoiced.pending.net)


def test_the_month_in_progress_projects_its_invoice_with_the_pending_adjustments(
    session, fleet, november_issued
):
    ride(session, fleet.liberte, "2026-11-29", 20, 2, 1, (600_000, 25_000), tag="late")
    pending = get_statement(
        session, SYSTEM, fleet.customer_id, NOVEMBER, DUE, history=drafts
    ).invoiced.pending

    projection = get_statement(
        session, SYSTEM, fleet.customer_id, None, DUE, history=drafts
    ).projection

    assert projection.pending_adjustments.net == pending.net
    with_them = projection.totals_with_adjustments
    assert with_them.net == projection.totals.net + pending.net
    assert with_them.gross == with_them.net + with_them.vat


def test_an_operator_reads_the_usage_of_a_statement_but_no_money(client, keys, fleet, session):
    november_rides(session, fleet)
    path = f"/api/v1/customers/{fleet.customer_id}/statement?period=2026-11"

    seen = client.get(path, headers=auth(keys["operator"])).json
    paid = client.get(path, headers=auth(keys["admin"])).json
    csv = client.get(path + "&format=csv", headers=auth(keys["operator"])).text

    assert (seen["shows_money"], paid["shows_money"]) == (False, True)
    assert seen["totals"] is None and paid["totals"]["net"] != "0.00"
    assert seen["projection"] is None and seen["pools"] == []
    assert [v["usage"] for v in seen["vehicles"]] == [v["usage"] for v in paid["vehicles"]]
    for vehicle in seen["vehicles"]:
        assert vehicle["amount"] is None
        assert all(s["lines"] == [] and s["amount"] is None for s in vehicle["segments"])
    assert "vat_base" not in csv and "19.00" not in csv


def test_a_vehicle_usage_counts_the_bucket_in_progress_from_the_local_month_start(
    client, keys, registry, session
):
    now = utcnow()
    bucket = bucket_start(now)
    readings(
        session,
        registry.vehicle_id,
        ((bucket - dt.timedelta(minutes=20)).isoformat(), 0, None),
        (bucket.isoformat(), 3000, None),
    )
    body = client.get(
        f"/api/v1/vehicles/{registry.vehicle_id}/usage", headers=auth(keys["admin"])
    ).json
    assert sum(Decimal(p["usage"]["distance_km"]) for p in body["points"]) == 3
    assert body["freshness"]["latest_reading_at"] == bucket.isoformat()
    assert body["end"] == (bucket + dt.timedelta(minutes=15)).isoformat()
    assert body["start"] == Period.containing(now, PARIS).bounds(PARIS)[0].isoformat()


def test_the_terminal_statement_marks_an_amount_set_by_a_prorated_maximum(
    session, registry, example_plans
):
    from billing.pricing import assignments
    from billing.statements.commands import CLAMP_LEGEND, render_statement
    from tests.integration.invoicing import at
    from tests.rides import meter
    from tests.rides import ride as trips

    # Urbain caps trips at 30.00 a month: 4 of November's 30 days cap them at 4.00.
    assignments.assign_plan(
        session, SYSTEM, registry.vehicle_id, "urbain", at("2026-11-27T00:00:00+01:00")
    )
    trips(session, registry.vehicle_id, "2026-11-28T08:00:00+01:00", 60, 60, 1)
    meter(session)
    result = get_statement(session, SYSTEM, registry.customer_id, NOVEMBER, DUE, history=drafts)
    [capped] = [line for line in result.statement.lines if line.rated.metric == "trips"]
    assert capped.rated.maximum_applied and capped.amount == Decimal("4.00")

    text = render_statement(result)

    [row] = [line for line in text.splitlines() if " trips " in line]
    assert row.split()[-2:] == ["max", "20.00"] and "4.00 max" in row
    assert CLAMP_LEGEND in text
