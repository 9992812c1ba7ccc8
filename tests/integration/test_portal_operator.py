"""The operators' pages: their fleets' telemetry (no money anywhere), broker credentials
issued (the password shown once) and revoked, held jumps accepted or rejected."""

import re

import pytest

from billing.devices.credentials import verify_mosquitto_hash
from billing.devices.models import BrokerCredential
from billing.metering.models import AnomalyRecord
from billing.users import services as users
from tests.conftest import NOW
from tests.integration.invoicing import RECEIVED, ride
from tests.portal import csrf_token, fix_clock, signed_in_client


@pytest.fixture
def operator(app, session, fleet):
    fix_clock(app, RECEIVED)
    user = users.add_user(session, "op@x.example", "operator", NOW, fleet_ids=[fleet.fleet_id])
    return signed_in_client(app, session, user, RECEIVED)


def post(client, path, data=None, page="/fleets/"):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})})


def test_the_fleet_page_shows_each_vehicles_telemetry_and_no_money(
    session, operator, fleet, example_plans
):
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))
    page = operator.get(f"/fleets/{fleet.fleet_id}").get_data(as_text=True)
    row = re.search(rf'id="vehicle-{fleet.urbain}".*?</tr>', page, re.S).group(0)
    assert "3 November 2026" in row
    assert "1,200" in row  # the odometer: 1,000 km + 200 km
    assert "€" not in page and "EUR" not in page


def test_a_credential_is_issued_once_shown_and_revoked(session, operator, fleet):
    fleet_page = f"/fleets/{fleet.fleet_id}"
    path = f"/vehicles/{fleet.urbain}/credentials"
    asked = post(operator, path, page=fleet_page)
    assert b'id="confirm"' in asked.data
    issued = post(operator, path, {"confirm": "yes"}, page=fleet_page)
    password = re.search(r'id="password">([^<]+)<', issued.get_data(as_text=True)).group(1)
    credential = session.query(BrokerCredential).filter_by(vehicle_id=fleet.urbain).one()
    assert verify_mosquitto_hash(password, credential.password_hash)
    assert password not in operator.get(fleet_page).get_data(as_text=True)
    revoked = post(operator, f"{path}/revoke", {"confirm": "yes"}, page=fleet_page)
    assert b'id="revoked"' in revoked.data
    session.refresh(credential)
    assert credential.revoked_at is not None


def test_the_gateway_credential_is_issued_for_the_fleet(session, operator, fleet):
    fleet_page = f"/fleets/{fleet.fleet_id}"
    issued = post(
        operator, f"/fleets/{fleet.fleet_id}/credentials", {"confirm": "yes"}, page=fleet_page
    )
    assert f"gw-{fleet.fleet_id}" in issued.get_data(as_text=True)
    assert session.query(BrokerCredential).filter_by(fleet_id=fleet.fleet_id).count() == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/fleets/{other_fleet}"),
        ("post", "/vehicles/VEH-B/credentials"),
        ("post", "/vehicles/VEH-B/credentials/revoke"),
        ("post", "/fleets/{other_fleet}/credentials"),
        ("post", "/fleets/{other_fleet}/credentials/revoke"),
        ("post", "/vehicles/%00/credentials"),
        ("get", "/fleets/" + "x" * 3000),
    ],
)
def test_another_fleet_answers_404(session, operator, registry, method, path):
    path = path.format(other_fleet=registry.other_fleet_id)
    response = operator.get(path) if method == "get" else post(operator, path, {"confirm": "yes"})
    assert response.status_code == 404
    assert session.query(BrokerCredential).count() == 0


def held_jump(session, vehicle_id):
    jump = AnomalyRecord(
        vehicle_id=vehicle_id, kind="implausible_jump", msg_id="m2", previous_msg_id="m1",
        ts=NOW, distance_m=90_000, details="90 km in 5 min", status="held", detected_at=NOW,
    )  # fmt: skip
    session.add(jump)
    session.commit()
    return jump


def test_a_held_jump_is_accepted_from_the_telemetry_page(session, operator, fleet):
    jump = held_jump(session, fleet.urbain)
    page = operator.get("/telemetry/").get_data(as_text=True)
    assert "90 km in 5 min" in page
    decided = post(operator, f"/telemetry/anomalies/{jump.id}/accept", page="/telemetry/")
    assert decided.status_code == 200
    session.refresh(jump)
    assert jump.status == "accepted" and jump.decided_by.startswith("user:usr_")


def test_another_fleets_jump_cannot_be_decided(session, operator, registry):
    jump = held_jump(session, registry.other_vehicle_id)
    assert "90 km" not in operator.get("/telemetry/").get_data(as_text=True)
    refused = post(operator, f"/telemetry/anomalies/{jump.id}/reject", page="/telemetry/")
    assert refused.status_code == 404
    assert post(operator, "/telemetry/anomalies/0/reject", page="/telemetry/").status_code == 404
    assert post(operator, "/telemetry/anomalies/1/maybe", page="/telemetry/").status_code == 404


def test_finance_may_not_decide_jumps_as_in_the_api(app, session, fleet):
    fix_clock(app, RECEIVED)
    user = users.add_user(session, "f@x.example", "finance", NOW)
    client = signed_in_client(app, session, user, RECEIVED)
    assert client.get("/telemetry/").status_code == 403
    assert client.get("/fleets/").status_code == 403
