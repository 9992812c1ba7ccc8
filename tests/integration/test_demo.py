"""The demo of `billing run` holds a closed, invoiced previous month from its first start:
a finalized invoice with its PDF and Factur-X, this month's FEC, and a history whose
counters run on into the live simulator's without going backwards."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

from sqlalchemy import select

from billing.auth import SYSTEM
from billing.db import utcnow
from billing.invoicing import drafts, files
from billing.invoicing.models import Invoice
from billing.metering.models import AnomalyRecord
from billing.metering.rollups import update_rollups
from billing.mqtt import telemetry_topic
from billing.periods import Period
from billing.simulation.demo import (
    DEMO_VEHICLES,
    demo_backfill_start,
    demo_simulation_config,
    seed_demo,
    seed_demo_history,
)
from billing.simulation.simulator import simulate_fleet
from billing.statements.services import get_statement
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry

PARIS = ZoneInfo("Europe/Paris")


def test_the_demo_starts_with_its_previous_month_invoiced_and_its_documents_ready(
    session, settings
):
    now = utcnow()
    assert seed_demo(session, now)

    number = seed_demo_history(session, settings, now)

    [invoice] = session.scalars(select(Invoice)).all()
    previous = Period.containing(demo_backfill_start(now, PARIS), PARIS).previous()
    assert (invoice.number, invoice.status, invoice.period) == (number, "finalized", str(previous))
    assert invoice.total_net > 5 * 19  # five monthly fees and their usage
    statement = get_statement(session, SYSTEM, invoice.customer_id, previous, now, history=drafts)
    assert statement.statement.totals.gross == invoice.total_gross
    assert statement.invoiced.invoice_numbers == (number,)
    pdf = files.document_file(session, SYSTEM, invoice.id, files.PDF)
    xml = files.document_file(session, SYSTEM, invoice.id, files.XML)
    assert pdf.content.startswith(b"%PDF") and number.encode() in xml.content
    fec = files.fec(session, Period.containing(now, PARIS), settings.seller.siren)
    assert number in fec.content.decode("iso-8859-15")


def test_the_demo_history_runs_on_into_the_live_feed_without_a_counter_reset(session, settings):
    now = utcnow()
    seed_demo(session, now)
    seed_demo_history(session, settings, now)
    live_start = demo_backfill_start(now, PARIS)
    hours = live_start.replace(hour=12)  # the first morning of the live feed
    messages = [
        IncomingMessage(telemetry_topic(p.vehicle_id), p.payload)
        for p in simulate_fleet(DEMO_VEHICLES, live_start, hours, demo_simulation_config(PARIS))
    ]
    store_telemetry(
        session, messages, hours, directory=VehicleDirectory(max_age=0), max_future_seconds=60
    )
    while update_rollups(session, hours, max_speed_kmh=settings.metering.max_speed_kmh).vehicles:
        pass

    anomalies = session.scalars(select(AnomalyRecord)).all()
    assert [(a.vehicle_id, a.kind, a.details) for a in anomalies if "reset" in a.kind] == []
    assert json.loads(messages[0].payload)  # the live feed did publish


def test_the_demo_has_a_contact_and_a_finance_user_once(session, settings):
    from billing.simulation.demo import DEMO_CUSTOMER, demo_users
    from billing.users.services import find_user

    now = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
    seed_demo(session, now)
    contact, finance = demo_users(session, now)
    assert demo_users(session, now) == (contact, finance)  # a restart adds nobody
    assert contact == DEMO_CUSTOMER["email"]
    assert find_user(session, contact).role == "customer"
    assert find_user(session, finance).role == "finance"
