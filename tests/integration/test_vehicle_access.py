"""The unlock check: allowed, or why not (retired, overdue, cap reached with block_at_cap),
following its causes within a scheduler pass, and telling each change by webhook."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.access.models import OVERDUE, SPENDING_CAP
from billing.access.services import refresh_cap_blocks, vehicle_access
from billing.access.state import block_customer, unblock_customer
from billing.auth import SYSTEM
from billing.periods import Period
from billing.spending_caps.services import set_spending_cap
from billing.webhooks.events import VEHICLE_ACCESS_CHANGED
from billing.webhooks.models import WebhookEvent
from billing.webhooks.services import create_endpoint
from tests.conftest import NOW, auth
from tests.integration.invoicing import ride

NOVEMBER = Period(2026, 11)


def access(client, key, vehicle_id):
    return client.get(f"/api/v1/vehicles/{vehicle_id}/access", headers=auth(key))


def told(session) -> list[dict]:
    """The data of the vehicle.access_changed events."""
    events = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.type == VEHICLE_ACCESS_CHANGED)
        .order_by(WebhookEvent.created_at)
    )
    return [json.loads(event.body)["data"] for event in events]


@pytest.fixture
def listening(session, registry):
    """An endpoint of every account subscribed to access changes."""
    create_endpoint(
        session, SYSTEM, {"url": "http://unlock.example/", "events": [VEHICLE_ACCESS_CHANGED]}, NOW
    )


def test_an_active_vehicle_of_a_customer_in_good_standing_may_be_unlocked(client, keys, registry):
    for role in ("admin", "finance", "operator", "customer"):
        response = access(client, keys[role], registry.vehicle_id)

        assert response.status_code == 200, response.json
        assert response.json["allowed"] is True
        assert response.json["reasons"] == []
        assert response.json["customer_id"] == registry.customer_id


def test_a_retired_vehicle_is_refused_and_the_change_is_told(
    client, keys, session, registry, listening
):
    retired = client.delete(f"/api/v1/vehicles/{registry.vehicle_id}", headers=auth(keys["admin"]))
    assert retired.status_code == 200, retired.json

    answer = access(client, keys["operator"], registry.vehicle_id).json

    assert answer["allowed"] is False
    assert [(r["code"], r["message"]) for r in answer["reasons"]] == [
        ("vehicle_retired", f"vehicle {registry.vehicle_id} is retired")
    ]
    assert [(e["vehicle_id"], e["allowed"]) for e in told(session)] == [
        (registry.vehicle_id, False)
    ]


def test_a_block_locks_every_vehicle_of_the_customer_until_lifted(
    client, keys, session, registry, listening
):
    from tests.integration.invoicing import add_vehicle

    second = add_vehicle(session, registry.fleet_id, "VEH-A2")
    message = "invoice F-2026-000001 is unpaid 30 days after its due date"
    assert block_customer(session, registry.customer_id, OVERDUE, message, NOW)
    assert not block_customer(session, registry.customer_id, OVERDUE, message, NOW)  # once
    session.commit()

    blocked = [access(client, keys["customer"], v).json for v in (registry.vehicle_id, second)]
    other = access(client, keys["admin"], registry.other_vehicle_id).json
    assert unblock_customer(session, registry.customer_id, OVERDUE, NOW)
    session.commit()
    allowed = access(client, keys["customer"], second).json

    assert [answer["allowed"] for answer in blocked] == [False, False]
    assert blocked[0]["reasons"] == [
        {"code": "overdue", "message": message, "since": "2026-11-15T10:00:00+00:00"}
    ]
    assert other["allowed"] is True
    assert allowed["allowed"] is True
    assert sorted((e["vehicle_id"], e["allowed"]) for e in told(session)) == [
        (registry.vehicle_id, False), (registry.vehicle_id, True), (second, False), (second, True),
    ]  # fmt: skip


def test_a_cap_with_block_at_cap_locks_the_vehicles_once_reached_and_unlocks_when_raised(
    client, keys, session, fleet, listening
):
    def set_cap(amount: str) -> None:
        set_spending_cap(
            session, SYSTEM, fleet.customer_id, NOVEMBER,
            {"amount": Decimal(amount), "block_at_cap": True}, NOW,
        )  # fmt: skip

    set_cap("10.00")
    under = refresh_cap_blocks(session, NOW)
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))

    reached = refresh_cap_blocks(session, NOW)
    answer = access(client, keys["customer"], fleet.urbain).json
    again = refresh_cap_blocks(session, NOW)
    set_cap("1000.00")
    raised = refresh_cap_blocks(session, NOW)

    assert (under, reached, again, raised) == ([], [fleet.customer_id], [], [fleet.customer_id])
    assert answer["allowed"] is False
    assert [(r["code"], r["message"]) for r in answer["reasons"]] == [
        (SPENDING_CAP, "the spending cap of 10.00 EUR for 2026-11 is reached")
    ]
    assert vehicle_access(session, SYSTEM, fleet.urbain, NOW).allowed
    assert sorted((e["vehicle_id"], e["allowed"]) for e in told(session)) == [
        (fleet.urbain, False), (fleet.urbain, True), (fleet.liberte, False), (fleet.liberte, True),
    ]  # fmt: skip


def test_a_cap_without_block_at_cap_never_locks(session, fleet):
    set_spending_cap(session, SYSTEM, fleet.customer_id, NOVEMBER, {"amount": Decimal(1)}, NOW)
    ride(session, fleet.urbain, "2026-11-03", 200, 10, 12, (1_000_000, 50_000))

    assert refresh_cap_blocks(session, NOW) == []
    assert vehicle_access(session, SYSTEM, fleet.urbain, NOW).allowed


@pytest.mark.parametrize(
    "vehicle_id",
    ["NOPE", "a" * 65, "x" * 5000, "%00", "..%2F..", "VEH-B"],
)
def test_an_unknown_or_foreign_vehicle_is_404_never_a_5xx(client, keys, vehicle_id):
    response = access(client, keys["customer"], vehicle_id)

    assert response.status_code == 404, response.json
    assert response.json["error"]["code"] == "not_found"
