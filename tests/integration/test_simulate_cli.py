"""`billing simulate` refuses contradictory or impossible options before connecting."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from billing.cli import main


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--anonymous", "--gateway", "gw:pw"], "--anonymous and --gateway exclude each other"),
        (["--vehicles", "2", "--vehicle", "A"], "give --vehicles or --vehicle, not both"),
        (["--vehicle", "bad/id"], "'bad/id' is not a vehicle id"),
        (["--vehicle", "A", "--backfill-from", "2999-01-01"], "must be in the past"),
        (["--backfill-days", "1", "--backfill-from", "2026-01-01"], "not both"),
        (["--vehicle", "A", "--gateway", "no-password"], "expected USER:PASSWORD"),
        (["--vehicle", "A", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--vehicle", "A", "--duplicate-rate", "1.5"], "0.0<=x<=1.0"),
    ],
)
def test_contradictory_or_impossible_options_are_usage_errors(
    tmp_path: Path, options: list[str], complaint: str
):
    env = {"BILLING_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = CliRunner().invoke(main, ["simulate", *options], env=env)
    assert result.exit_code == 2, result.output
    assert complaint in " ".join(result.output.split())


def test_an_empty_registry_asks_for_vehicles(tmp_path: Path):
    env = {"BILLING_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    result = CliRunner().invoke(main, ["simulate", "--anonymous"], env=env)
    assert result.exit_code == 2
    assert "the database has no active vehicle: give --vehicles or --vehicle" in result.output
