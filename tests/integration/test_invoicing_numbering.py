"""Invoice numbers have no gap and no duplicate, even when several workers finalize at once,
each with its own connection: on PostgreSQL (row lock on the counter) and SQLite (one
writer at a time)."""

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from billing import migrate
from billing.auth import SYSTEM
from billing.db import Database
from billing.invoicing import services
from billing.invoicing.models import Invoice
from billing.invoicing.numbering import format_number
from billing.payments import collection
from billing.periods import Period
from billing.pricing import assignments
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory
from billing.settings import load_settings
from tests.databases import SEEDED_AT, seed_fleet
from tests.services import scratch_postgres_database

OCTOBER = Period(2026, 10)
FINALIZED_AT = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)
INVOICES, WORKERS = 40, 4


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path: Path):
    """A committed database of each kind, whatever the suite runs on."""
    if request.param == "postgresql":
        with scratch_postgres_database() as url:
            yield url
        return
    yield f"sqlite:///{tmp_path / 'numbering.db'}"


@pytest.fixture
def forty_customers(database_url: str) -> None:
    """Forty customers with a vehicle on Urbain since October."""
    database = Database.from_url(database_url)
    migrate.upgrade(database.engine)
    for n in range(INVOICES):
        seed_fleet(database, [f"NUM-{n:02d}"])
    with database.session() as session:
        load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, SEEDED_AT)
        for n in range(INVOICES):
            assignments.assign_plan(session, SYSTEM, f"NUM-{n:02d}", "urbain", SEEDED_AT)
    database.engine.dispose()


@pytest.fixture
def forty_drafts(database_url: str, forty_customers, tmp_path: Path) -> list[str]:
    database = Database.from_url(database_url)
    with database.session() as session:
        services.generate_invoices(
            session, OCTOBER, FINALIZED_AT, settings=load_settings(data_dir=tmp_path)
        )
        drafts = session.scalars(select(Invoice.id).order_by(Invoice.id)).all()
    database.engine.dispose()
    assert len(drafts) == INVOICES
    return list(drafts)


def in_parallel(database_url: str, work, shares: list) -> list:
    """`work(session, share)` for each share in its own thread with its own engine, all
    started together; the results, and the errors raised, in the test thread."""
    results: list = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(shares))

    def worker(share) -> None:
        database = Database.from_url(database_url)
        try:
            start.wait()
            with database.session() as session:
                results.append(work(session, share))
        except BaseException as error:  # reported to the test thread below
            errors.append(error)
        finally:
            database.engine.dispose()

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_two_runs_of_a_period_at_once_make_one_invoice_per_customer(
    database_url, forty_customers, tmp_path
):
    settings = load_settings(data_dir=tmp_path)

    reports = in_parallel(
        database_url,
        lambda session, _: services.generate_invoices(
            session, OCTOBER, FINALIZED_AT, settings=settings
        ),
        [1, 2],
    )

    assert [report.failed for report in reports] == [{}, {}]
    assert sorted(len(report.created) for report in reports) == [0, INVOICES]
    database = Database.from_url(database_url)
    with database.session() as session:
        customers = session.scalars(select(Invoice.customer_id)).all()
    database.engine.dispose()
    assert len(customers) == len(set(customers)) == INVOICES


def test_concurrent_workers_number_invoices_without_gap_or_duplicate(
    database_url, forty_drafts, tmp_path
):
    settings = load_settings(data_dir=tmp_path)

    def finalize(session, share: list[str]) -> None:
        for invoice_id in share:
            collection.finalize_invoice(session, invoice_id, FINALIZED_AT, settings=settings)

    in_parallel(database_url, finalize, [forty_drafts[n::WORKERS] for n in range(WORKERS)])

    database = Database.from_url(database_url)
    with database.session() as session:
        issued = session.execute(select(Invoice.number, Invoice.issue_date)).all()
    database.engine.dispose()
    assert sorted(number for number, _ in issued) == [
        format_number("F-2026", n) for n in range(1, INVOICES + 1)
    ]
    assert {issue_date for _, issue_date in issued} == {dt.date(2026, 11, 10)}
