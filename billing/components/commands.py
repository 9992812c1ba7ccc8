"""`billing bom` (load and list bills of materials), `billing components due`, and
`billing plans derive` (a plan from a BOM)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from billing.auth import SYSTEM
from billing.cli_context import AppContext, domain_failure
from billing.components import derive, maintenance, services
from billing.components.maintenance import MAX_HORIZON_DAYS
from billing.db import utcnow
from billing.errors import DomainError
from billing.pagination import MAX_PER_PAGE


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
            raise domain_failure(error) from None
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


@click.command("derive")
@click.option(
    "--bom",
    "bom_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a BOM file, e.g. config/bom/s1.yaml",
)
@click.option("--km-per-month", required=True, type=Decimal, help="the expected use")
@click.option("--margin", default="0.25", show_default=True, type=Decimal,
              help="share of the price kept as margin")  # fmt: skip
@click.option("--kwh-per-km", default=str(derive.DEFAULT_KWH_PER_KM), show_default=True,
              type=Decimal)  # fmt: skip
@click.option("--overhead-rate", default="0", show_default=True, type=Decimal,
              help="added to the parts' cost (labour, logistics), e.g. 0.10")  # fmt: skip
@click.option("--overhead-per-month", default="0", show_default=True, type=Decimal,
              help="a fixed cost per vehicle and month, in the BOM currency")  # fmt: skip
@click.option("--vat-rate", default=str(derive.DEFAULT_VAT_RATE), show_default=True, type=Decimal)
@click.option("--code", help="the plan's code (default: <model>-usage)")
@click.option("--name", help="the plan's name")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write the plan there (e.g. config/plans/s1-usage.yaml); default: standard output",
)
def plans_derive(bom_file: Path, output: Path | None, **options: Any) -> None:
    """Derive a plan from a bill of materials: each part's cost ÷ lifetime per km, kWh or
    month, plus overhead, at the margin given. The plan YAML (which `billing plans load`
    accepts) begins with the breakdown of what each component contributes, as comments."""
    try:
        derived = services.derive_plan_from_bom(
            services.read_bom_file(bom_file),
            derive.DeriveOptions(**{k: v for k, v in options.items() if v is not None}),
        )
    except DomainError as error:
        raise domain_failure(error) from None
    text = plan_yaml(derived, bom_file.name)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{derived.plan['code']}: written to {output}", err=True)


def plan_yaml(derived: derive.DerivedPlan, source: str) -> str:
    """The derived plan as YAML, after comments giving its breakdown."""
    lines = [
        f"# Derived from {source} by `billing plans derive`.",
        f"# Parts: {derived.cost_per_km} per km, {derived.cost_per_kwh} per kWh, "
        f"{derived.cost_per_month} per month (overhead included).",
        f"# At the expected use: cost {derived.expected_cost_per_month}, "
        f"price {derived.expected_price_per_month} per month.",
        "# component        unit ends life  basis      cost per unit  months  cost/month",
    ]
    for c in derived.contributions:
        lines.append(
            f"#   {c.code:<16} {c.limiting_unit:<14} {c.basis:<10} {c.cost_per_unit:>13} "
            f"{c.months_of_life:>7.1f} {c.cost_per_month:>11}"
        )
    body = yaml.safe_dump(derived.plan, allow_unicode=True, sort_keys=False, width=88)
    return "\n".join(lines) + "\n" + body


@click.group()
def components() -> None:
    """The parts of the vehicles and their wear."""


@components.command("due")
@click.option(
    "--horizon-days", default=30, show_default=True, type=click.IntRange(0, MAX_HORIZON_DAYS)
)
@click.option("--fleet", "fleet_id", help="only this fleet's vehicles")
@click.option("--category", help="only parts of this BOM category (wear, energy, …)")
@click.pass_obj
def components_due(
    app: AppContext, horizon_days: int, fleet_id: str | None, category: str | None
) -> None:
    """The parts due for service within the horizon, by due date: due date, why, vehicle,
    component, serial, the unit that runs out first and what is left of it, and whether the
    vehicle's history is long enough for a projection."""
    with app.database.session() as session:
        try:
            page = maintenance.due_list(
                session, SYSTEM, utcnow(), horizon_days=horizon_days, fleet_id=fleet_id,
                category=category, per_page=MAX_PER_PAGE * 1000,
            )  # fmt: skip
        except DomainError as error:
            raise domain_failure(error) from None
        for item in page.items:
            shown, found = item.part_wear, item.part_wear.wear
            limiting = next(u for u in found.units if u.unit == found.limiting_unit)
            history = "history ok" if found.history_sufficient else "too little history"
            click.echo(
                f"{item.due_on}\t{item.reason}\t{shown.part.vehicle_id}\t{shown.part.component_code}\t"
                f"{shown.serial}\t{limiting.unit} left {limiting.remaining}\t{history}"
            )
        click.echo(f"{page.total} part(s) due within {horizon_days} days", err=True)
