"""`billing invoices run|finalize|export` on a committed database, and the scheduler's
invoicing job, which catches up on the periods it missed."""

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from billing.auth import SYSTEM
from billing.db import utcnow
from billing.invoicing import services
from billing.invoicing.models import Invoice
from billing.payments import collection
from billing.periods import Period
from billing.pricing import assignments
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory
from billing.scheduler import jobs, run_under_lease
from billing.settings import load_settings
from tests.databases import SEEDED_AT, seed_fleet
from tests.integration.invoicing import NOVEMBER, november_rides

PARIS = ZoneInfo("Europe/Paris")
OCTOBER = Period(2026, 10)


def on_urbain_since(database, vehicle_ids: list[str], start: dt.datetime) -> None:
    seed_fleet(database, vehicle_ids)
    with database.session() as session:
        load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, SEEDED_AT)
        for vehicle_id in vehicle_ids:
            assignments.assign_plan(session, SYSTEM, vehicle_id, "urbain", start)


def test_a_period_is_run_finalized_and_exported_from_the_command_line(
    cli, fresh_db, fresh_url, tmp_path
):
    on_urbain_since(fresh_db, ["CLI-1", "CLI-2"], SEEDED_AT)

    first = cli("invoices", "run", "--period", "2026-10")
    again = cli("invoices", "run", "--period", "2026-10")
    finalized = cli("invoices", "finalize", "--period", "2026-10")

    assert first.exit_code == 0, first.output
    assert "2026-10: 1 created" in first.stderr
    assert "2026-10: 1 unchanged" in again.stderr
    assert "1 finalized" in finalized.stderr
    # Finalized now, with the real clock: exported under the current month.
    issued = Period.containing(utcnow(), PARIS)
    fec = cli("invoices", "export", "--period", str(issued), "--format", "fec",
              "--output", str(tmp_path / "journal.txt"))  # fmt: skip
    csv = cli("invoices", "export", "--period", str(issued),
              "--output", str(tmp_path / "invoices.csv"))  # fmt: skip
    archive = cli("invoices", "export", "--period", str(issued), "--format", "zip",
                  "--output", str(tmp_path / "facturx.zip"))  # fmt: skip
    siren = load_settings().seller.siren
    assert f"({siren}FEC{issued.next().first_day() - dt.timedelta(days=1):%Y%m%d}.txt)" in (
        fec.stderr
    )
    assert (tmp_path / "invoices.csv").read_text().count("\n") == 2, csv.output
    assert (tmp_path / "facturx.zip").read_bytes().startswith(b"PK"), archive.output


def test_a_bad_period_is_refused_with_its_reason(cli, fresh_url):
    result = cli("invoices", "run", "--period", "2026-13")
    assert result.exit_code == 2
    assert "months run from 01 to 12" in result.stderr


def test_the_scheduler_job_invoices_the_last_closed_period_under_its_lease(fresh_db, tmp_path):
    last = services.closed_periods(utcnow(), 1)[0]
    on_urbain_since(fresh_db, ["JOB-1"], max(last.bounds(PARIS)[0], SEEDED_AT))
    settings = load_settings(data_dir=tmp_path)
    [job] = [job for job in jobs(settings) if job.name == "invoice"]

    assert run_under_lease(fresh_db, settings, job, "scheduler-1") is True

    with fresh_db.session() as session:
        periods = session.scalars(select(Invoice.period).where(Invoice.kind == "invoice")).all()
    assert str(last) in periods


def test_the_scheduler_catches_up_on_the_periods_it_missed(session, settings, fleet):
    november_rides(session, fleet)
    # Down from the end of October until 10 January: November and December were never run.
    back = dt.datetime(2027, 1, 10, 8, 0, tzinfo=dt.UTC)

    report = collection.invoice_closed_periods(session, back, settings=settings)

    issued = session.scalars(
        select(Invoice).where(Invoice.customer_id == fleet.customer_id).order_by(Invoice.number)
    ).all()
    assert [(invoice.period, invoice.number, invoice.status) for invoice in issued] == [
        (str(NOVEMBER), "F-2027-000001", "finalized"),
        ("2026-12", "F-2027-000002", "finalized"),
    ]
    assert len(report.created) == len(report.finalized) == 2
    again = collection.invoice_closed_periods(session, back, settings=settings)
    assert again.created == again.finalized == again.refreshed == []
