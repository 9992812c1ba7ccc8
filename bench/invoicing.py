"""Benchmark of the invoice run: 10,000 customers with 3 vehicles each and a month of usage.

Times the month's invoicing as the scheduler does it: `generate_invoices` (a draft per
customer, rated through the statement computation) then `finalize_due_invoices` (locks,
identity copy, document check, gap-free numbering), and reports invoices per second over
both; goal: at least 170 invoices/s, the month in under a minute. Then renders and keeps
the documents of the issued invoices as the scheduler does after the run
(`render_missing_documents`): `documents_per_s` is the files (a PDF or a Factur-X PDF)
rendered and stored per CPU second of this process, one core (goal 40). On a sample of
the same invoices, both files are rendered by Typst (the product) and by the WeasyPrint
renderer it replaced (bench/_weasyprint.py), warm, in CPU time: `documents_vs_weasyprint`
is how many times faster Typst is (goal 10).

The usage is seeded straight into the rollups the invoice run reads (`usage_days`, one
row per vehicle and day, and `trips`) with bulk inserts, rather than as the millions of
readings a month of 30,000 scooters sends: turning readings into rollups is measured by
bench/usage.py and bench/ingest.py, and the invoice run never reads readings. Vehicles
are on the three shipped plans (graduated tiers, caps, packages, a pooled fleet plan);
one customer in ten is a German business (reverse charge).

    .venv/bin/python bench/invoicing.py [--quick] [--database postgresql|sqlite]
                                        [--second-month]

In the same run, the floor of the month's invoicing: the rating engine alone on the same
usage (the quantities of the issued lines, the same plan versions) plus one bare insert
of the same lines (COPY on PostgreSQL, executemany on SQLite) into a table shaped like
`invoice_lines`; `invoicing_vs_floor` is the invoice run's rate over that floor's.

`--quick` does the same with 1,000 customers and a smaller sample. `--second-month` also
times the following month, the steady state: each customer then has an issued invoice
whose period the run computes again, to bill late usage as adjustments. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bench import _weasyprint
from bench._support import (
    database,
    postgres_server,
    ratio,
    report,
    scratch_database,
    self_peak_rss_mb,
)
from billing.db import bulk_insert
from billing.devices.models import Customer, Fleet, FleetMembership, Vehicle
from billing.invoicing import pdf, rendering, services
from billing.invoicing.document_files import render_missing_documents
from billing.invoicing.models import Invoice, InvoiceLine
from billing.metering.models import TripRecord, UsageDay
from billing.payments import collection
from billing.periods import Period
from billing.pricing.assignments import PlanAssignment
from billing.pricing.rating import VehicleUsage, rate_vehicles
from billing.pricing.services import (
    DEFAULT_PLANS_DIRECTORY,
    get_plan_version,
    load_plans_from_directory,
)
from billing.settings import load_settings

GOAL_PER_S = 170
GOAL_DOCUMENTS_PER_S = 40
GOAL_VS_WEASYPRINT = 10
PERIOD = Period(2026, 10)
PARIS = ZoneInfo("Europe/Paris")
START = PERIOD.bounds(PARIS)[0]
PLANS = ("urbain", "liberte", "flotte-pro")
VEHICLES_PER_CUSTOMER = 3
SEED_CHUNK = 1_000


def seed(url: str, customers: int, seed_value: int, periods: list[Period]) -> dict[str, int]:
    """Customers, fleets, vehicles on plans, and a month of daily usage and trips; written
    a thousand customers at a time to keep the benchmark's memory for the invoice run."""
    rng = random.Random(seed_value)
    db = database(url)
    counts: dict[str, int] = defaultdict(int)
    with db.session() as session:
        load_plans_from_directory(session, DEFAULT_PLANS_DIRECTORY, START)
        for first in range(0, customers, SEED_CHUNK):
            rows = _rows(rng, range(first, min(first + SEED_CHUNK, customers)), periods)
            for model, key in ((Customer, "customers"), (Fleet, "fleets"), (Vehicle, "vehicles"),
                               (FleetMembership, "memberships"), (PlanAssignment, "plans"),
                               (UsageDay, "days"), (TripRecord, "trips")):  # fmt: skip
                bulk_insert(session, model, rows[key])
                counts[key] += len(rows[key])
            session.commit()
    db.engine.dispose()
    return counts


def _rows(rng: random.Random, numbers: range, periods: list[Period]) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = defaultdict(list)
    for c in numbers:
        customer_id, fleet_id = f"cus_b{c:06d}", f"flt_b{c:06d}"
        rows["customers"].append(_customer(customer_id, c, german=c % 10 == 9))
        rows["fleets"].append({"id": fleet_id, "customer_id": customer_id, "name": "Flotte",
                               "status": "active", "created_at": START, "updated_at": START,
                               "retired_at": None})  # fmt: skip
        for v in range(VEHICLES_PER_CUSTOMER):
            vehicle_id = f"B{c:06d}-{v}"
            rows["vehicles"].append(_vehicle(vehicle_id, fleet_id))
            rows["memberships"].append({"vehicle_id": vehicle_id, "fleet_id": fleet_id,
                                        "started_at": START, "ended_at": None})  # fmt: skip
            rows["plans"].append({
                "id": f"asg_{vehicle_id}", "vehicle_id": vehicle_id,
                "plan_code": PLANS[(c + (v == 2)) % len(PLANS)], "plan_version": 1,
                "effective_at": START, "ended_at": None, "created_at": START,
            })  # fmt: skip
            for period in periods:
                _month_of_usage(rng, vehicle_id, rows, period)
    return rows


def _customer(customer_id: str, n: int, german: bool) -> dict:
    address = (
        {"address_line1": "Hauptstraße 2", "postal_code": "79100", "city": "Freiburg",
         "country": "DE", "siren": None, "vat_number": f"DE{100000000 + n}"}
        if german else
        {"address_line1": "12 rue des Jacobins", "postal_code": "80000", "city": "Amiens",
         "country": "FR", "siren": f"{100000000 + n}", "vat_number": None}
    )  # fmt: skip
    return {
        "id": customer_id, "name": f"Client {n} SAS", "email": f"compta{n}@bench.example",
        "address_line2": "", "language": "en" if german else "fr", "timezone": "Europe/Paris",
        "currency": "EUR", "status": "active", "created_at": START, "updated_at": START,
        "archived_at": None, **address,
    }  # fmt: skip


def _vehicle(vehicle_id: str, fleet_id: str) -> dict:
    return {"id": vehicle_id, "fleet_id": fleet_id, "model": "s1", "serial": vehicle_id,
            "status": "active", "commissioned_on": START.date(), "created_at": START,
            "updated_at": START, "retired_at": None, "notes": ""}  # fmt: skip


def _month_of_usage(rng: random.Random, vehicle_id: str, rows: dict, period: Period) -> None:
    """A vehicle's days: idle one day in four, else 2 to 40 km and 1 to 6 trips."""
    day = period.first_day()
    while day < period.next().first_day():
        if rng.random() > 0.25:
            distance_m = rng.randint(2_000, 40_000)
            rows["days"].append({"vehicle_id": vehicle_id, "day": day, "timezone": PARIS.key,
                                 "distance_m": distance_m, "energy_wh": distance_m * 3 // 100,
                                 "readings": 100})  # fmt: skip
            noon = dt.datetime.combine(day, dt.time(12), PARIS).astimezone(dt.UTC)
            for trip in range(rng.randint(1, 6)):
                ended = noon + dt.timedelta(minutes=40 * trip)
                rows["trips"].append({
                    "vehicle_id": vehicle_id, "trip_id": f"{day:%m%d}-{trip}",
                    "start_ts": ended - dt.timedelta(minutes=20), "start_msg_id": "s",
                    "end_ts": ended, "end_msg_id": "e", "seconds": 1200,
                })  # fmt: skip
        day += dt.timedelta(days=1)


def run(
    kind: str,
    customers: int,
    sample: int,
    seed_value: int,
    second_month: bool,
    documents_budget: dt.timedelta | None,
) -> dict:
    periods = [PERIOD, PERIOD.next()] if second_month else [PERIOD]
    with scratch_database(kind) as url:
        started = time.perf_counter()
        seeded = seed(url, customers, seed_value, periods)
        seed_s = time.perf_counter() - started
        db = database(url)
        with db.session() as session:
            months = [_invoice_month(session, customers, period) for period in periods]
            issued = session.scalars(
                select(Invoice).where(Invoice.number.is_not(None)).order_by(Invoice.number)
            ).all()
            documents = [rendering.invoice_document(invoice) for invoice in issued[:sample]]
            floor_s = _floor(session, kind, PERIOD)
            stored = _store_documents(session, documents_budget)
        db.engine.dispose()
    generate_s, finalize_s = months[0]
    figures = {
        "customers": customers,
        "vehicles": seeded["vehicles"],
        "usage_days": seeded["days"],
        "trips": seeded["trips"],
        "seed_s": round(seed_s, 1),
        "generate_s": round(generate_s, 1),
        "finalize_s": round(finalize_s, 1),
        "invoicing_vs_floor": ratio(customers / (generate_s + finalize_s), customers / floor_s),
        "invoices_per_s": round(customers / (generate_s + finalize_s), 1),
        "floor_invoices_per_s": round(customers / floor_s, 1),
        "generate_per_s": round(customers / generate_s, 1),
        "finalize_per_s": round(customers / finalize_s, 1),
    }
    if second_month:
        figures["second_month_invoices_per_s"] = round(customers / sum(months[1]), 1)
    typst_cpu, weasyprint_cpu = (
        _documents_cpu(pdf, documents),
        _documents_cpu(_weasyprint, documents),
    )
    return {
        **figures,
        "documents_vs_weasyprint": round(weasyprint_cpu / typst_cpu, 1),
        "documents_per_s": round(stored["files"] / stored["cpu_s"], 1),
        "documents_wall_per_s": round(stored["files"] / stored["wall_s"], 1),
        "documents_stored": stored["files"],
        "sample_typst_documents_per_s": round(2 * len(documents) / typst_cpu, 1),
        "sample_weasyprint_documents_per_s": round(2 * len(documents) / weasyprint_cpu, 2),
        "document_sample": len(documents),
    }


def _invoice_month(session, customers: int, period: Period) -> tuple[float, float]:
    """Generate then finalize the month's invoices once its grace period is over, as the
    scheduler does; the seconds each took. The second month also re-examines the first
    for late usage (adjustments)."""
    settings = load_settings()
    now = period.bounds(PARIS)[1] + dt.timedelta(days=4)
    started = time.perf_counter()
    generated = services.generate_invoices(session, period, now, settings=settings)
    generate_s = time.perf_counter() - started
    started = time.perf_counter()
    finalized = collection.finalize_due_invoices(session, now, settings=settings)
    finalize_s = time.perf_counter() - started
    if generated.failed or finalized.failed or len(finalized.finalized) != customers:
        raise SystemExit(f"the run of {period} failed: {generated.failed or finalized.failed}")
    return generate_s, finalize_s


def _floor(session, kind: str, period: Period) -> float:
    """Seconds to rate the month's usage of every customer and insert the same lines,
    with nothing else: the usage and plans are taken from the issued lines beforehand."""
    rows = session.execute(
        select(InvoiceLine).join(Invoice).where(Invoice.number.is_not(None),
                                                InvoiceLine.period == str(period))
    ).scalars().all()  # fmt: skip
    plans, groups = {}, defaultdict(lambda: defaultdict(dict))
    for line in rows:
        key = (line.invoice_id, line.plan_code, line.plan_version)
        if (line.plan_code, line.plan_version) not in plans:
            version = get_plan_version(session, line.plan_code, line.plan_version)
            plans[(line.plan_code, line.plan_version)] = version.to_plan()
        groups[key][line.vehicle_id][line.metric] = line.quantity
    usages = [
        (plans[(code, version)], [VehicleUsage(vehicle, quantities, quantities["vehicle_days"])
                                  for vehicle, quantities in vehicles.items()])
        for (_invoice, code, version), vehicles in groups.items()
    ]  # fmt: skip
    columns = [column.name for column in InvoiceLine.__table__.columns]
    values = [tuple(getattr(line, name) for name in columns) for line in rows]
    session.rollback()
    _create_floor_table(session.connection(), kind)
    session.commit()
    raw = session.connection().connection.driver_connection  # in the session's transaction
    days = period.days()
    started = time.perf_counter()
    for plan, vehicles in usages:
        rate_vehicles(plan, vehicles, days)
    if kind == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY invoice_lines_floor ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in values:
                copy.write_row(row)
    else:
        sqlite_values = [tuple(str(v) if isinstance(v, Decimal) else v for v in row)
                         for row in values]  # fmt: skip
        raw.executemany(
            f"INSERT INTO invoice_lines_floor ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})",
            sqlite_values,
        )
    session.commit()
    return time.perf_counter() - started


def _create_floor_table(connection, kind: str) -> None:
    if kind == "postgresql":
        connection.execute(
            text("CREATE TABLE invoice_lines_floor (LIKE invoice_lines INCLUDING ALL)")
        )
        return
    ddl = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'invoice_lines'")
    ).scalar_one()
    connection.exec_driver_sql(ddl.replace("invoice_lines", "invoice_lines_floor", 1))


def _store_documents(session, budget: dt.timedelta | None) -> dict:
    """Render and keep the documents of the issued invoices, as the scheduler's invoice
    job does after the run (within `budget`, the quick run's)."""
    cpu, wall = time.process_time(), time.perf_counter()
    files = render_missing_documents(session, dt.datetime.now(dt.UTC), budget=budget)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"files": files, "cpu_s": cpu, "wall_s": wall}


def _documents_cpu(renderer, documents) -> float:
    """CPU seconds (every thread of this process) to render both files of each document,
    after a first rendering that loads what the renderer caches (fonts, styles)."""
    renderer.render_facturx_pdf(documents[0])
    started = time.process_time()
    for document in documents:
        renderer.render_pdf(document)
        renderer.render_facturx_pdf(document)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 customers, 5 seconds of documents")  # fmt: skip
    parser.add_argument("--database", choices=("postgresql", "sqlite"),
                        help="default: PostgreSQL when reachable, else SQLite")  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261031)
    parser.add_argument("--second-month", action="store_true",
                        help="also time the next month, whose run checks the first for "
                        "late usage (second_month_invoices_per_s)")  # fmt: skip
    args = parser.parse_args()
    kind = args.database or ("postgresql" if postgres_server() else "sqlite")
    customers, sample = (1_000, 5) if args.quick else (10_000, 40)
    budget = dt.timedelta(seconds=5) if args.quick else None  # the quick run: a part
    figures = run(kind, customers, sample, args.seed, args.second_month, budget)
    print(
        f"{kind}: {customers} invoices generated in {figures['generate_s']} s and finalized "
        f"in {figures['finalize_s']} s: {figures['invoices_per_s']} invoices/s "
        f"(goal {GOAL_PER_S}); documents {figures['documents_per_s']}/s per core "
        f"(goal {GOAL_DOCUMENTS_PER_S}), {figures['documents_vs_weasyprint']}x WeasyPrint "
        f"(goal {GOAL_VS_WEASYPRINT})",
        file=sys.stderr,
    )
    report({**figures, "database": kind, "goal_invoices_per_s": GOAL_PER_S,
            "peak_rss_mb": round(self_peak_rss_mb(), 1)})  # fmt: skip


if __name__ == "__main__":
    main()
