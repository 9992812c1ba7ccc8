"""`billing bom` (load and list bills of materials), `billing components due`, and
`billing plans derive` (a plan from a BOM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from billing.components import services
from billing.db import utcnow
from billing.errors import DomainError

if TYPE_CHECKING:
    from billing.cli import AppContext


def _fail(error: DomainError) -> click.ClickException:
    lines = [error.message]
    lines += [f"  {path}: {'; '.join(messages)}" for path, messages in error.details.items()]
    return click.ClickException("\n".join(lines))


@click.group()
def bom() -> None:
    """Bills of materials of the vehicle models."""


@bom.command("load")
@click.argument(
    "directory",
    required=False,
    default=services.DEFAULT_BOM_DIRECTORY,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.pass_obj
def bom_load(app: AppContext, directory: Path) -> None:
    """Load the *.yaml BOM files of DIRECTORY (default: config/bom).

    A changed file replaces its model's latest version while no part was made from it, else
    adds a version; an unchanged file changes nothing. One faulty file loads nothing.
    """
    with app.database.session() as session:
        try:
            loaded = services.load_boms_from_directory(session, directory, utcnow())
        except DomainError as error:
            raise _fail(error) from None
        for item in loaded:
            click.echo(f"{item.outcome}: {item.model} version {item.version} ({item.path.name})")


@bom.command("list")
@click.pass_obj
def bom_list(app: AppContext) -> None:
    """List the models with a BOM: model, latest version, locked or not, components."""
    with app.database.session() as session:
        for version in services.list_boms(session):
            locked = "locked" if version.locked_at else "editable"
            count = len(version.to_bom().components)
            click.echo(f"{version.model}\tv{version.version}\t{locked}\t{count} components")
