"""The files Mosquitto reads: logins, topic rules, and its configuration for `billing run`."""

import logging
import stat
from pathlib import Path

import pytest

from billing.broker.amqtt import topic_covers
from billing.broker.mosquitto import MOSQUITTO_CONF, embedded_mosquitto_config
from billing.broker.rules import export_broker_files, ingest_credentials
from billing.devices.credentials import BrokerAccount, BrokerAccounts
from billing.settings import load_settings

ACCOUNTS = BrokerAccounts(
    (
        BrokerAccount("vehicle", "VEH-1", "$7$101$h1", ("VEH-1",)),
        BrokerAccount("gateway", "gw-flt_a", "$7$101$h2", ("VEH-2", "VEH-3")),
    )
)


def test_each_login_may_publish_only_to_its_vehicles_topics(tmp_path: Path):
    password_file, acl_file = export_broker_files(ACCOUNTS, tmp_path, "billing-ingest", "$7$i")
    assert password_file.read_text() == (
        "billing-ingest:$7$i\nVEH-1:$7$101$h1\ngw-flt_a:$7$101$h2\n"
    )
    assert acl_file.read_text() == (
        "# Written by `billing broker export`; the next export replaces it.\n"
        "\n"
        "user billing-ingest\n"
        "topic read billing/v1/vehicles/+/telemetry\n"
        "\n"
        "user VEH-1\n"
        "topic write billing/v1/vehicles/VEH-1/telemetry\n"
        "\n"
        "user gw-flt_a\n"
        "topic write billing/v1/vehicles/VEH-2/telemetry\n"
        "topic write billing/v1/vehicles/VEH-3/telemetry\n"
    )


def test_the_files_are_private_and_replaced_whole(tmp_path: Path):
    export_broker_files(ACCOUNTS, tmp_path, "billing-ingest", "$7$old")
    files = export_broker_files(BrokerAccounts(()), tmp_path, "billing-ingest", "$7$new")
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert files[0].read_text() == "billing-ingest:$7$new\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["acl_file", "password_file"]


@pytest.mark.parametrize("username", ["billing-ingest", "evil\nuser billing-ingest", "a b", ""])
def test_a_login_that_would_take_another_name_or_break_a_line_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, username: str
):
    accounts = BrokerAccounts((BrokerAccount("vehicle", username, "$7$x", ("VEH-1",)),))
    with caplog.at_level(logging.ERROR, logger="billing.broker"):
        password_file, acl_file = export_broker_files(accounts, tmp_path, "billing-ingest", "$7$i")
    assert password_file.read_text() == "billing-ingest:$7$i\n"
    assert "write" not in acl_file.read_text()
    assert "left out" in caplog.text


def test_the_embedded_configuration_is_the_production_one_with_local_paths(tmp_path: Path):
    production = MOSQUITTO_CONF.read_text().splitlines()
    embedded = embedded_mosquitto_config(
        MOSQUITTO_CONF.read_text(), host="127.0.0.1", port=18830, directory=tmp_path, user="me"
    ).splitlines()[1:]
    changed = {
        (before, after)
        for before, after in zip(production, embedded, strict=True)
        if before != after
    }
    assert changed == {
        ("user mosquitto", "user me"),
        ("listener 1883 127.0.0.1", "listener 18830 127.0.0.1"),
        ("persistence_location /var/lib/mosquitto/", f"persistence_location {tmp_path}"),
        (
            "password_file /etc/mosquitto/billing/password_file",
            f"password_file {tmp_path}/password_file",
        ),
        ("acl_file /etc/mosquitto/billing/acl_file", f"acl_file {tmp_path}/acl_file"),
    }
    assert "max_queued_messages 1000000" in embedded
    assert "allow_anonymous false" in embedded


def test_a_production_configuration_without_a_setting_the_embedded_one_needs_is_refused(
    tmp_path: Path,
):
    without_acl = MOSQUITTO_CONF.read_text().replace("\nacl_file ", "\n# acl_file ")
    with pytest.raises(ValueError, match="exactly once"):
        embedded_mosquitto_config(without_acl, host="h", port=1, directory=tmp_path, user="me")


def test_the_ingest_account_is_the_one_mqtt_url_names():
    settings = load_settings(mqtt_url="mqtt://billing-ingest:pa%40ss@broker.example:1883")
    assert ingest_credentials(settings) == ("billing-ingest", "pa@ss")
    with pytest.raises(ValueError, match="no username and password"):
        ingest_credentials(load_settings(mqtt_url="mqtt://broker.example"))


def test_the_embedded_ingest_password_is_generated_once_and_kept_private(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path, mqtt_url="")  # CI sets MQTT_URL
    username, password = ingest_credentials(settings)
    assert (username, len(password)) == ("billing-ingest", 43)
    assert ingest_credentials(settings) == (username, password)
    kept = tmp_path / "broker" / "ingest-password"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        ("billing/v1/vehicles/+/telemetry", "billing/v1/vehicles/VEH-1/telemetry", True),
        ("billing/v1/vehicles/+/telemetry", "billing/v1/vehicles/+/telemetry", True),
        ("billing/v1/vehicles/+/telemetry", "billing/v1/vehicles/#", False),
        ("billing/v1/vehicles/+/telemetry", "billing/v1/vehicles/VEH-1", False),
        ("billing/v1/vehicles/VEH-1/telemetry", "billing/v1/vehicles/+/telemetry", False),
        ("billing/v1/vehicles/VEH-1/telemetry", "billing/v1/vehicles/VEH-2/telemetry", False),
        ("billing/#", "billing/v1/vehicles/VEH-1/telemetry", True),
    ],
)
def test_a_topic_rule_covers_what_mosquitto_would_let_through(
    allowed: str, requested: str, covered: bool
):
    assert topic_covers(allowed, requested) is covered
