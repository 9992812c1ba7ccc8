"""Fixtures of the Stripe tests: a fake Stripe, settings pointing at it, and an invoice
finalized the way the scheduler finalizes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.auth import SYSTEM
from billing.devices.models import FleetMembership
from billing.invoicing.models import Invoice
from billing.invoicing.services import generate_invoices
from billing.payments.collection import finalize_invoice
from billing.periods import Period
from billing.pricing import assignments
from billing.settings import Settings, load_settings
from tests.conftest import Registry
from tests.rides import at, meter, ride
from tests.stripe_server import API_KEY, WEBHOOK_SECRET, FakeStripe, stripe_server

NOVEMBER = Period(2026, 11)
ISSUED_AT = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with stripe_server() as fake:
        yield fake


@pytest.fixture
def stripe_settings(tmp_path: Path, fake_stripe: FakeStripe) -> Settings:
    """Settings with collection through Stripe on, against the fake Stripe."""
    return load_settings(
        data_dir=tmp_path,
        stripe={"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "api_base": fake_stripe.url},
    )


def issue_november_invoice(session: Session, registry: Registry, settings: Settings) -> Invoice:
    """Customer A's November invoice, generated and finalized on 5 December.

    Its vehicle is on `urbain` all month and rides 312 km in 18 trips using 21 kWh, which
    `urbain` prices 19.00 + 13.96 + 1.80 + 7.50 = 42.26 HT, 8.45 VAT at 20 %, 50.71 TTC
    (test_statement_compute checks the lines by hand).
    """
    for membership in session.scalars(select(FleetMembership)):
        membership.started_at = at("2026-10-01T00:00:00+02:00")
    session.commit()
    assignments.assign_plan(
        session, SYSTEM, registry.vehicle_id, "urbain", at("2026-11-01T00:00:00+01:00")
    )
    counters = ride(session, registry.vehicle_id, "2026-11-03T08:00:00+01:00", 200, 10, 12)
    ride(session, registry.vehicle_id, "2026-11-04T08:00:00+01:00", 112, 8, 9, counters)
    meter(session)
    report = generate_invoices(session, NOVEMBER, ISSUED_AT, settings=settings)
    (invoice_id,) = report.created
    return finalize_invoice(session, invoice_id, ISSUED_AT, settings=settings)
