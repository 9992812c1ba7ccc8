"""`billing invoices …`: the invoice run, finalization and finance exports from the command
line, through the same services as the scheduler and the API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from billing.cli_context import AppContext
from billing.db import utcnow
from billing.periods import Period

if TYPE_CHECKING:
    from billing.invoicing.services import Progress, RunReport
    from billing.metering.queries import UnattributedUsage


class PeriodType(click.ParamType):
    name = "YYYY-MM"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Period:
        if isinstance(value, Period):
            return value
        try:
            return Period.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


PERIOD = PeriodType()


@click.group()
def invoices() -> None:
    """Invoices: run a period, finalize, export."""


@invoices.command("run")
@click.option("--period", type=PERIOD, help="default: the closed periods the scheduler covers")
@click.pass_obj
def invoices_run(app: AppContext, period: Period | None) -> None:
    """Make the invoices of closed periods, or bring their drafts up to date."""
    from billing.invoicing.services import closed_periods, generate_invoices

    now = utcnow()
    periods = [period] if period else closed_periods(now, app.settings.invoicing.catch_up_months)
    failed = 0
    with app.database.session() as session:
        for each in periods:
            with _progress(f"invoicing {each}") as progress:
                report = generate_invoices(
                    session, each, now, settings=app.settings, progress=progress
                )
            _summary(f"{each}:", report)
            failed += len(report.failed)
    if failed:
        raise click.ClickException(f"{failed} customer(s) failed; see the log")


@invoices.command("finalize")
@click.option("--period", type=PERIOD, help="only the drafts of this period")
@click.pass_obj
def invoices_finalize(app: AppContext, period: Period | None) -> None:
    """Finalize the drafts past their grace period: number and freeze them, then render
    and keep their documents."""
    from billing.invoicing.document_files import render_missing_documents
    from billing.invoicing.issuing import issuing_hooks
    from billing.invoicing.services import finalize_due_invoices

    on_issued = issuing_hooks(app.extensions).invoices
    with app.database.session() as session:
        with _progress("finalizing") as progress:
            report = finalize_due_invoices(
                session,
                utcnow(),
                settings=app.settings,
                on_issued=on_issued,
                period=period,
                progress=progress,
            )
        _summary("", report)
        with _progress("rendering") as progress:
            render_missing_documents(session, utcnow(), progress=progress)
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} invoice(s) failed; see the log")


@invoices.command("documents")
@click.pass_obj
def invoices_documents(app: AppContext) -> None:
    """Render and keep the PDF and Factur-X PDF of every issued document that lacks them
    (the scheduler does it after each invoice run)."""
    from billing.invoicing.document_files import render_missing_documents

    with app.database.session() as session, _progress("rendering") as progress:
        rendered = render_missing_documents(session, utcnow(), progress=progress)
    click.echo(f"{rendered} file(s) rendered", err=True)


EXPORT_FORMATS = ("csv", "lines-csv", "fec", "zip")


@invoices.command("export")
@click.option("--period", type=PERIOD, required=True, help="documents issued in this month")
@click.option("--format", "export_format", type=click.Choice(EXPORT_FORMATS), default="csv",
              show_default=True, help="csv: one row per document; lines-csv: per line")  # fmt: skip
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the file to write; the FEC's legal name is printed")  # fmt: skip
@click.pass_obj
def invoices_export(app: AppContext, period: Period, export_format: str, output: Path) -> None:
    """Export the documents issued in a month: CSV, FEC or a ZIP of Factur-X PDFs."""
    from billing.invoicing import files

    with app.database.session() as session:
        if export_format == "zip":
            with _progress("archiving") as progress:
                try:
                    _name, chunks = files.facturx_zip(session, period, progress)
                except files.DocumentNotReady as error:
                    raise click.ClickException(
                        f"{error.message} (or render them now: billing invoices documents)"
                    ) from None
                with output.open("wb") as out:
                    for chunk in chunks:
                        out.write(chunk)
            click.echo(f"wrote {output}", err=True)
            return
        if export_format == "fec":
            file = files.fec(session, period, app.settings.seller.siren)
        elif export_format == "lines-csv":
            file = files.invoice_lines_csv(session, period)
        else:
            file = files.invoices_csv(session, period)
    output.write_bytes(file.content)
    click.echo(f"wrote {output} ({file.filename})", err=True)


@contextmanager
def _progress(label: str) -> Iterator[Progress]:
    """A click progress bar on standard error, made at the first report, once the total
    is known."""
    with ExitStack() as stack:
        bars: list = []

        def advance(done: int, total: int) -> None:
            if not bars:
                bar = click.progressbar(length=total, label=label, file=sys.stderr)
                bars.append(stack.enter_context(bar))
            bars[0].update(done - bars[0].pos)

        yield advance


def _summary(prefix: str, report: RunReport) -> None:
    counts = {
        "created": len(report.created), "refreshed": len(report.refreshed),
        "unchanged": len(report.unchanged), "finalized": len(report.finalized),
        "discarded": len(report.discarded), "failed": len(report.failed),
    }  # fmt: skip
    text = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    unbilled = sorted({stretch.vehicle_id for stretch in report.unattributed})
    if unbilled:
        text = f"{text or 'nothing to invoice'}; {len(unbilled)} vehicle(s) with unattributed usage"
    click.echo(f"{prefix} {text or 'nothing to do'}".strip(), err=True)
    for key, error in report.failed.items():
        click.echo(f"  {key}: {error}", err=True)
    for stretch in report.unattributed:
        click.echo(f"  ! {_unattributed_text(stretch)}", err=True)


def _unattributed_text(stretch: UnattributedUsage) -> str:
    """One stretch of usage no invoice bills, and what to do about it."""
    from billing.metering.queries import NO_CUSTOMER

    why = (
        "in no customer's fleet: backdate its registration or move (effective_at)"
        if stretch.reason == NO_CUSTOMER
        else f"on no plan of customer {stretch.customer_id}: assign one from then"
    )
    usage = stretch.usage
    return (
        f"{stretch.vehicle_id}: {usage.distance_km} km, {usage.energy_kwh} kWh, "
        f"{usage.trips} trip(s) from {stretch.start.isoformat()} to {stretch.end.isoformat()} "
        f"not billed, {why}"
    )
