"""`billing plans`: load plan files into the database and list the plans."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.orm import Session

from billing.cli_context import AppContext, domain_failure
from billing.db import utcnow
from billing.errors import DomainError
from billing.pagination import MAX_PER_PAGE
from billing.pricing import services


@click.group()
def plans() -> None:
    """Pricing plans."""


@plans.command("load")
@click.argument(
    "directory",
    required=False,
    default=services.DEFAULT_PLANS_DIRECTORY,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.pass_obj
def plans_load(app: AppContext, directory: Path) -> None:
    """Load the *.yaml plan files of DIRECTORY (default: config/plans).

    A changed file replaces its plan's latest version while no usage was rated on it, else
    adds a version; an unchanged file changes nothing. One faulty file loads nothing.
    """
    with app.database.session() as session:
        for loaded in load_plan_files(session, directory):
            click.echo(describe(loaded))


@plans.command("list")
@click.pass_obj
def plans_list(app: AppContext) -> None:
    """List the plans: code, latest version, status, currency, locked or not, name."""
    with app.database.session() as session:
        page_number, shown = 1, 0
        while True:
            page = services.list_plans(session, page_number, MAX_PER_PAGE)
            for version in page.items:
                locked = "locked" if version.locked_at else "editable"
                status = "archived" if version.plan.archived_at else "active"
                click.echo(
                    f"{version.plan_code}\tv{version.version}\t{status}\t"
                    f"{version.plan.currency}\t{locked}\t{version.plan.name}"
                )
            shown += len(page.items)
            if shown >= page.total or not page.items:
                return
            page_number += 1


def load_plan_files(session: Session, directory: Path) -> list[services.LoadedPlan]:
    """`load_plans_from_directory`, its errors turned into a message naming file and field."""
    try:
        return services.load_plans_from_directory(session, directory, utcnow())
    except DomainError as error:
        raise domain_failure(error) from None


def describe(loaded: services.LoadedPlan) -> str:
    return f"{loaded.outcome}: {loaded.code} version {loaded.version} ({loaded.path.name})"
