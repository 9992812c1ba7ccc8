"""`billing plans load` and `billing plans list` on a temporary SQLite database, and the plans
the demo starts with."""

import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from billing.db import Database, utcnow
from billing.pricing import services
from billing.pricing.assignments import PlanAssignment
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from billing.simulation.demo import DEMO_VEHICLES, seed_demo


@pytest.fixture
def plans_dir(cli, tmp_path: Path) -> Path:
    """A copy of config/plans, free to edit, and a migrated database next to it."""
    directory = tmp_path / "plans"
    shutil.copytree(DEFAULT_PLANS_DIRECTORY, directory)
    assert cli("db", "upgrade").exit_code == 0
    return directory


def edit(path: Path, **changes) -> None:
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}))


def test_loading_the_same_files_twice_changes_nothing(cli, plans_dir: Path):
    first = cli("plans", "load", str(plans_dir))
    assert first.exit_code == 0
    assert first.stdout.splitlines() == [
        "created: flotte-pro version 1 (flotte-pro.yaml)",
        "created: liberte version 1 (liberte.yaml)",
        "created: urbain version 1 (urbain.yaml)",
    ]
    second = cli("plans", "load", str(plans_dir))
    assert second.stdout.splitlines() == [
        "unchanged: flotte-pro version 1 (flotte-pro.yaml)",
        "unchanged: liberte version 1 (liberte.yaml)",
        "unchanged: urbain version 1 (urbain.yaml)",
    ]


def test_loading_loads_config_plans_by_default(cli, plans_dir: Path):
    result = cli("plans", "load")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == len(list(DEFAULT_PLANS_DIRECTORY.glob("*.yaml")))


def test_a_changed_file_replaces_an_unlocked_version_and_adds_one_after_a_lock(
    cli, tmp_path: Path, plans_dir: Path
):
    cli("plans", "load", str(plans_dir))
    edit(plans_dir / "urbain.yaml", name="Urbain — 2027")
    replaced = cli("plans", "load", str(plans_dir))
    assert "replaced: urbain version 1 (urbain.yaml)" in replaced.stdout.splitlines()
    database = Database.from_url(f"sqlite:///{tmp_path / 'cli.db'}")
    with database.session() as session:
        services.lock_plan_version(session, "urbain", 1, utcnow())
        session.commit()
    database.engine.dispose()
    edit(plans_dir / "urbain.yaml", name="Urbain — 2028")
    added = cli("plans", "load", str(plans_dir))
    assert "new version: urbain version 2 (urbain.yaml)" in added.stdout.splitlines()
    listing = cli("plans", "list").stdout.splitlines()
    assert "urbain\tv2\tactive\tEUR\teditable\tUrbain — 2028" in listing


def test_a_faulty_file_loads_nothing_and_names_the_file_and_field(cli, plans_dir: Path):
    (plans_dir / "zz-broken.yaml").write_text(
        "code: broken\nname: Broken\ncurrency: EUR\nvat_rate: '20'\n"
        "charges:\n  - {metric: kilometres, model: per_unit, unit_amount: '0.1'}\n"
    )
    result = cli("plans", "load", str(plans_dir))
    assert result.exit_code == 1
    assert "zz-broken.yaml: charges.0.metric: unknown metric 'kilometres'" in result.stderr
    assert cli("plans", "list").stdout == ""


def test_two_files_may_not_define_the_same_plan(cli, plans_dir: Path):
    shutil.copy(plans_dir / "urbain.yaml", plans_dir / "urbain-copy.yml")
    result = cli("plans", "load", str(plans_dir))
    assert result.exit_code == 1
    # Files are read in name order: "urbain-copy.yml" sorts before "urbain.yaml".
    assert "urbain.yaml: code: plan urbain is also defined in urbain-copy.yml" in result.stderr


def test_listing_shows_each_plan_in_its_latest_version(cli, plans_dir: Path):
    cli("plans", "load", str(plans_dir))
    listing = cli("plans", "list").stdout.splitlines()
    assert [line.split("\t")[:5] for line in listing] == [
        ["flotte-pro", "v1", "active", "EUR", "editable"],
        ["liberte", "v1", "active", "EUR", "editable"],
        ["urbain", "v1", "active", "EUR", "editable"],
    ]


def test_the_demo_vehicles_are_put_on_the_example_plan(session):
    assert seed_demo(session, utcnow())
    assignments = session.scalars(select(PlanAssignment).order_by(PlanAssignment.vehicle_id))
    assert [(a.vehicle_id, a.plan_code, a.plan_version) for a in assignments] == [
        (vehicle_id, "urbain", 1) for vehicle_id in DEMO_VEHICLES
    ]
