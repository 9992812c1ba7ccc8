"""Shared set-up of the components tests: the example BOM loaded, and vehicles of model s1
registered after it, so that they get its parts."""

from __future__ import annotations

import datetime as dt

from billing.auth import SYSTEM
from billing.components import services
from billing.components.models import ComponentPart
from billing.registry import vehicle_changes
from tests.conftest import NOW
from tests.rides import at


def load_example_bom(session) -> None:
    services.load_boms_from_directory(session, services.DEFAULT_BOM_DIRECTORY, NOW)


def register_s1(session, fleet_id: str, vehicle_id: str, since: str) -> None:
    vehicle_changes.register_vehicle(
        session,
        SYSTEM,
        {
            "id": vehicle_id,
            "fleet_id": fleet_id,
            "model": "s1",
            "serial": f"SER-{vehicle_id}",
            "effective_at": at(since),
        },
        NOW,
    )


def fitted(session, vehicle_id: str, code: str) -> ComponentPart:
    """The part of `code` fitted to the vehicle now."""
    from billing.components.models import ComponentFitting

    return (
        session.query(ComponentPart)
        .join(ComponentFitting, ComponentFitting.part_id == ComponentPart.id)
        .filter(
            ComponentFitting.vehicle_id == vehicle_id,
            ComponentFitting.removed_at.is_(None),
            ComponentPart.component_code == code,
        )
        .one()
    )


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)
