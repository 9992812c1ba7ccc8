"""`billing simulate` refuses contradictory or impossible options before connecting, and
publishes, by default, to the embedded broker of a running `billing run`."""

import re
from pathlib import Path

import pytest

from billing.broker.factory import start_embedded_broker
from billing.broker.rules import registry_accounts
from billing.settings import load_settings
from tests.brokers import AccountBook, require_mosquitto, start_mosquitto
from tests.databases import seed_fleet


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
    cli, options: list[str], complaint: str
):
    result = cli("simulate", *options)
    assert result.exit_code == 2, result.output
    assert complaint in " ".join(result.output.split())


def test_an_empty_registry_asks_for_vehicles(cli):
    assert cli("db", "upgrade").exit_code == 0
    result = cli("simulate", "--anonymous")
    assert result.exit_code == 2
    assert "the database has no active vehicle: give --vehicles or --vehicle" in result.output


@pytest.mark.mqtt
def test_simulate_publishes_to_the_running_embedded_broker_for_as_long_as_asked(
    cli, tmp_path: Path
):
    book = AccountBook()
    password = book.add_gateway("gw-sim", ("SIM-1",))
    data_dir = tmp_path / "data"
    # MQTT_URL unset: the broker is the one `billing run` started with this data directory.
    env = {"BILLING_DATA_DIR": str(data_dir), "MQTT_URL": None}
    with start_mosquitto(data_dir, book) as broker:
        anonymous = cli("simulate", "--vehicle", "SIM-1", "--anonymous", "--duration", "1", **env)
        assert anonymous.exit_code == 1, anonymous.output
        assert f"mqtt://127.0.0.1:{broker.address.port}" in anonymous.output
        live = cli("simulate", "--vehicle", "SIM-1", "--gateway", f"gw-sim:{password}",
                   "--duration", "3", "--interval", "1", **env)  # fmt: skip
        assert live.exit_code == 0, live.output
    elapsed = float(re.search(r"readings\) in ([0-9.]+) s", live.output).group(1))
    assert elapsed >= 3, live.output


@pytest.mark.mqtt
def test_simulate_starts_once_the_broker_loaded_the_passwords_it_issued(
    cli, fresh_db, fresh_url, tmp_path: Path
):
    """The passwords are issued at the start of the run; a broker following the registry
    loads them at its next refresh. Vehicles connecting before that were refused and
    reconnected: the run counted each as a connection loss."""
    require_mosquitto()
    seed_fleet(fresh_db, ["SIM-1", "SIM-2"])
    settings = load_settings(
        data_dir=tmp_path / "data", mqtt_url="", broker={"port": 0, "refresh_seconds": 1}
    )
    accounts = registry_accounts(fresh_db)
    with start_embedded_broker(settings, accounts, backend="mosquitto") as broker:
        result = cli("simulate", "--vehicle", "SIM-1", "--vehicle", "SIM-2", "--duration", "2",
                     "--interval", "1", "--mqtt-url", broker.address.url)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "refused 0, unacked 0, connection losses 0" in result.output, result.output


def test_without_a_broker_running_simulate_says_how_to_get_one(cli):
    result = cli("simulate", "--vehicle", "SIM-1", "--anonymous", MQTT_URL=None)
    assert result.exit_code == 2
    assert "no broker: pass --mqtt-url, set MQTT_URL, or start `billing run`" in result.output
