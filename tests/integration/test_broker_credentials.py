"""Broker credentials: issued through the API, shown once, stored as Mosquitto hashes,
revoked by a new issue, a DELETE or the vehicle's retirement, exported for the broker."""

import stat
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from billing.auth import SYSTEM
from billing.broker.rules import registry_accounts
from billing.devices import services
from billing.devices.credentials import BrokerAccount, verify_mosquitto_hash
from billing.devices.models import BrokerCredential
from billing.errors import Conflict
from billing.models import metadata
from billing.mqtt import telemetry_topic
from billing.registry import vehicle_changes
from tests.brokers import RecordingClient, start_mosquitto
from tests.conftest import NOW, auth


def issue(client, keys, vehicle_id: str, role: str = "operator"):
    return client.post(f"/api/v1/vehicles/{vehicle_id}/credentials", headers=auth(keys[role]))


def active_credentials(session) -> list[BrokerCredential]:
    query = select(BrokerCredential).where(BrokerCredential.revoked_at.is_(None))
    return list(session.scalars(query))


def test_a_vehicle_credential_is_shown_once_and_stored_only_as_a_mosquitto_hash(
    client, session, keys, registry
):
    response = issue(client, keys, registry.vehicle_id)
    assert response.status_code == 201
    body = response.json
    assert body["username"] == registry.vehicle_id
    assert body["mqtt_topic"] == f"billing/v1/vehicles/{registry.vehicle_id}/telemetry"
    assert body["kind"] == "vehicle" and body["created_at"]
    [stored] = active_credentials(session)
    assert verify_mosquitto_hash(body["password"], stored.password_hash)
    rows = [row for table in metadata.sorted_tables for row in session.execute(select(table))]
    assert body["password"] not in repr(rows)


def test_issuing_a_new_credential_revokes_the_previous_one(client, session, keys, registry):
    first = issue(client, keys, registry.vehicle_id).json["password"]
    second = issue(client, keys, registry.vehicle_id).json["password"]
    [active] = active_credentials(session)
    assert verify_mosquitto_hash(second, active.password_hash)
    assert not verify_mosquitto_hash(first, active.password_hash)
    assert session.query(BrokerCredential).count() == 2


def test_revoking_a_credential_removes_its_login_from_the_broker(client, session, keys, registry):
    issue(client, keys, registry.vehicle_id)
    path = f"/api/v1/vehicles/{registry.vehicle_id}/credentials"
    assert client.delete(path, headers=auth(keys["operator"])).status_code == 204
    assert client.delete(path, headers=auth(keys["operator"])).status_code == 204  # idempotent
    assert services.broker_accounts(session).accounts == ()


def test_a_retired_vehicle_cannot_get_credentials_and_retiring_revokes_them(
    client, session, keys, registry
):
    issue(client, keys, registry.vehicle_id)
    path = f"/api/v1/vehicles/{registry.vehicle_id}"
    assert client.delete(path, headers=auth(keys["operator"])).status_code == 200
    assert active_credentials(session) == []
    response = issue(client, keys, registry.vehicle_id)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"


def test_a_gateway_may_publish_for_the_active_vehicles_of_its_fleet(
    client, session, keys, registry
):
    vehicle_changes.register_vehicle(
        session,
        SYSTEM,
        {"id": "VEH-A2", "fleet_id": registry.fleet_id, "model": "s1", "serial": "S-A2"},
        NOW,
    )
    response = client.post(
        f"/api/v1/fleets/{registry.fleet_id}/credentials", headers=auth(keys["operator"])
    )
    assert response.status_code == 201
    assert response.json["username"] == f"gw-{registry.fleet_id}"
    assert response.json["mqtt_topic"] == "billing/v1/vehicles/{vehicle_id}/telemetry"
    vehicle_changes.retire_vehicle(session, SYSTEM, "VEH-A2", NOW)
    [gateway] = services.broker_accounts(session).accounts
    assert (gateway.kind, gateway.vehicle_ids) == ("gateway", (registry.vehicle_id,))
    path = f"/api/v1/fleets/{registry.fleet_id}/credentials"
    assert client.delete(path, headers=auth(keys["admin"])).status_code == 204
    assert services.broker_accounts(session).accounts == ()


def test_vehicle_ids_that_look_like_a_gateway_login_get_no_credentials(session, registry):
    vehicle = {"id": "gw-flt_x", "fleet_id": registry.fleet_id, "model": "s1", "serial": "S-gw"}
    vehicle_changes.register_vehicle(session, SYSTEM, vehicle, NOW)
    with pytest.raises(Conflict, match="reserved for gateways"):
        services.issue_vehicle_credential(session, SYSTEM, "gw-flt_x", NOW)


def test_broker_accounts_list_each_active_login_with_its_vehicles(session, registry):
    vehicle, _password = services.issue_vehicle_credential(
        session, SYSTEM, registry.other_vehicle_id, NOW
    )
    gateway, _password = services.issue_gateway_credential(session, SYSTEM, registry.fleet_id, NOW)
    assert services.broker_accounts(session).accounts == (
        BrokerAccount("vehicle", "VEH-B", vehicle.password_hash, ("VEH-B",)),
        BrokerAccount("gateway", f"gw-{registry.fleet_id}", gateway.password_hash, ("VEH-A",)),
    )


def test_a_vehicle_logs_in_to_mosquitto_with_the_password_the_api_issued(
    tmp_path: Path, client, database, keys, registry
):
    password = issue(client, keys, registry.vehicle_id).json["password"]
    with start_mosquitto(tmp_path, registry_accounts(database)) as broker:
        address = broker.address.with_credentials(registry.vehicle_id, password)
        with RecordingClient(address) as vehicle:
            assert not vehicle.publish(telemetry_topic(registry.vehicle_id), b"{}").is_failure
        client.delete(
            f"/api/v1/vehicles/{registry.vehicle_id}/credentials", headers=auth(keys["admin"])
        )
        broker.reload()
        with RecordingClient(address) as revoked:
            assert revoked.refused


def test_billing_broker_export_writes_private_files_for_mosquitto(cli, tmp_path: Path):
    assert cli("db", "upgrade").exit_code == 0
    mqtt_url = "mqtt://billing-ingest:ingest-secret@broker.example:1883"
    export = ["broker", "export", "--directory", str(tmp_path / "out")]
    result = cli(*export, MQTT_URL=mqtt_url)
    assert result.exit_code == 0, result.output
    password_file, acl_file = (Path(line) for line in result.stdout.split())
    assert (password_file.name, acl_file.name) == ("password_file", "acl_file")
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    username, password_hash = password_file.read_text().strip().split(":", 1)
    assert username == "billing-ingest"
    assert verify_mosquitto_hash("ingest-secret", password_hash)
    assert "user billing-ingest\ntopic read billing/v1/vehicles/+/telemetry" in acl_file.read_text()


def test_billing_broker_export_needs_the_ingest_credentials_in_mqtt_url(cli):
    cli("db", "upgrade")
    result = cli("broker", "export", MQTT_URL="mqtt://broker.example")
    assert result.exit_code == 2
    assert "MQTT_URL carries no username and password" in result.output


def test_the_database_holds_one_active_login_per_username(session, registry):
    for number in (1, 2):
        session.add(
            BrokerCredential(
                id=f"crd_{number}",
                kind="vehicle",
                username=registry.vehicle_id,
                vehicle_id=registry.vehicle_id,
                password_hash="$7$",
                created_at=NOW,
            )
        )
    with pytest.raises(IntegrityError):
        session.flush()
