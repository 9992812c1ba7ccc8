"""`billing usage …`: metering chores from the command line."""

from __future__ import annotations

import sys
import time
from typing import Self

import click

from billing.cli_context import AppContext
from billing.db import utcnow


@click.group()
def usage() -> None:
    """Usage rollups: meter, rebuild, verify."""


@usage.command("meter")
@click.pass_obj
def usage_meter(app: AppContext) -> None:
    """Meter every reading stored so far (what the scheduler does every few seconds)."""
    from billing.metering.rollups import meter

    click.echo(f"metered {meter(app.database, app.settings)} vehicle windows", err=True)


@usage.command("rebuild")
@click.option("--vehicle", "vehicles", multiple=True, help="only these vehicles (repeatable)")
@click.pass_obj
def usage_rebuild(app: AppContext, vehicles: tuple[str, ...]) -> None:
    """Recompute all rollups from the raw readings."""
    from billing.metering.rebuild import rebuild_rollups

    started = time.perf_counter()
    with app.database.session() as session, _progress() as progress:
        report = rebuild_rollups(
            session,
            utcnow(),
            max_speed_kmh=app.settings.metering.max_speed_kmh,
            vehicle_ids=list(vehicles) or None,
            progress=progress,
        )
    seconds = time.perf_counter() - started
    rate = report.readings / seconds if seconds else 0
    click.echo(
        f"rebuilt {report.vehicles} vehicles, {report.readings} readings "
        f"in {seconds:.1f} s ({rate:,.0f} readings/s)",
        err=True,
    )


@usage.command("verify")
@click.option("--vehicle", "vehicles", multiple=True, help="only these vehicles (repeatable)")
@click.pass_obj
def usage_verify(app: AppContext, vehicles: tuple[str, ...]) -> None:
    """Compare the rollups with a recomputation; exit code 1 when they drift."""
    from billing.metering.rebuild import verify_rollups

    with app.database.session() as session:
        report = verify_rollups(
            session,
            max_speed_kmh=app.settings.metering.max_speed_kmh,
            vehicle_ids=list(vehicles) or None,
            on_drift=lambda vehicle, line: click.echo(f"{vehicle}: {line}"),
        )
    click.echo(
        f"checked {report.vehicles} vehicles, {report.readings} readings: "
        f"{report.drifts} difference(s)",
        err=True,
    )
    if report.drifts:
        sys.exit(1)


class _progress:
    """A one-line progress display on standard error, for terminals."""

    def __enter__(self) -> Self:
        self.vehicles = self.readings = 0
        return self

    def __call__(self, _vehicle_id: str, readings: int) -> None:
        self.vehicles += 1
        self.readings += readings
        if sys.stderr.isatty():
            click.echo(f"\r{self.vehicles} vehicles, {self.readings} readings", nl=False, err=True)

    def __exit__(self, *_exc: object) -> None:
        if sys.stderr.isatty():
            click.echo(err=True)
