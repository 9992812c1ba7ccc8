"""`billing statement CUSTOMER --period YYYY-MM` prints the statement as a table, from the
same service as the API, on a committed database shared with the command line."""

import datetime as dt

from sqlalchemy import select

from billing.auth import SYSTEM
from billing.devices.models import Fleet
from billing.invoicing import drafts
from billing.periods import Period
from billing.pricing import assignments
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY, load_plans_from_directory
from billing.statements.services import get_statement
from tests.databases import SEEDED_AT, seed_fleet
from tests.rides import meter, ride

OCTOBER = Period(2026, 10)  # closed by the real clock the command reads


def seed_october(database) -> str:
    fleet_id = seed_fleet(database, ["CLI-1", "CLI-2"])
    with database.session() as session:
        load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, SEEDED_AT)
        assignments.assign_plan(session, SYSTEM, "CLI-1", "urbain", SEEDED_AT)
        assignments.assign_plan(session, SYSTEM, "CLI-2", "flotte-pro", SEEDED_AT)
        ride(session, "CLI-1", "2026-10-03T07:00:00+02:00", km=260, trips=12, kwh=15)
        ride(session, "CLI-2", "2026-10-05T06:00:00+02:00", km=1200, trips=24, kwh=40)
        meter(session)
        return session.scalar(select(Fleet.customer_id).where(Fleet.id == fleet_id))


def test_the_statement_prints_as_an_aligned_table_with_its_totals(cli, fresh_db, fresh_url):
    customer_id = seed_october(fresh_db)
    result = cli("statement", customer_id, "--period", "2026-10")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Statement of {customer_id} for 2026-10 (closed)"
    header = lines.index(next(line for line in lines if line.startswith("Vehicle")))
    table = lines[header : lines.index("", header)]
    # A header, its rule, then urbain's 4 charges and flotte-pro's 2.
    assert len(table) == 2 + 6
    assert len({len(line) for line in table}) == 1  # every row as wide: numbers right-aligned
    assert table[0].split() == [
        "Vehicle", "Plan", "From", "To", "Charge", "Metric", "Quantity", "Billable",
        "Unit", "price", "Amount", "VAT", "%",
    ]  # fmt: skip
    assert table[-1].split()[:3] == ["CLI-2", "flotte-pro", "v1"]
    with fresh_db.session() as session:
        expected = get_statement(
            session, SYSTEM, customer_id, OCTOBER, dt.datetime.now(dt.UTC), history=drafts
        ).statement.totals
    printed = {line.split("  ")[0]: line.split()[-1] for line in lines if line.startswith("Total ")}
    assert printed == {"Total HT": str(expected.net), "Total TTC": str(expected.gross)}
    assert "Pooled distance_km of flotte-pro v1: 1200.000, billable 200.000" in result.stdout


def test_a_bad_period_or_an_unknown_customer_is_reported(cli, fresh_url):
    bad = cli("statement", "cus_x", "--period", "2026-13")
    assert bad.exit_code == 2
    assert "months run from 01 to 12" in bad.stderr
    unknown = cli("statement", "cus_missing")
    assert unknown.exit_code == 1
    assert "customer cus_missing not found" in unknown.stderr
