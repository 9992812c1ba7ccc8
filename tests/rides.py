"""Telemetry for statement tests: whole trips stored and metered, with exact totals."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy.orm import Session

from billing.metering.rollups import update_rollups
from billing.mqtt import telemetry_topic
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from tests.conftest import NOW

STEP = dt.timedelta(minutes=15)
STEP_METRES = 10_000  # 40 km/h: well under the implausible-jump speed
GAP = dt.timedelta(minutes=30)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def ride(
    session: Session,
    vehicle_id: str,
    start: str,
    km: int,
    trips: int,
    kwh: int,
    counters: tuple[int, int] = (1_000_000, 50_000),
) -> tuple[int, int]:
    """Store `trips` trips from `start` (ISO time with offset), one after the other, adding
    up to exactly `km` km and `kwh` kWh; return the counters to chain the next ride.

    The first reading sits at `counters`, so the first ride of a vehicle bills all of
    `km` (its first reading is the baseline).
    """
    documents, counters = ride_documents(vehicle_id, start, km, trips, kwh, counters)
    store(session, vehicle_id, documents)
    return counters


def ride_documents(
    vehicle_id: str,
    start: str,
    km: int,
    trips: int,
    kwh: int,
    counters: tuple[int, int] = (1_000_000, 50_000),
) -> tuple[list[dict], tuple[int, int]]:
    """The readings of `ride`, to send any way (HTTP, MQTT), and the counters after them."""
    odometer, energy = counters
    clock, documents = at(start), []
    per_trip = zip(_split(km * 1000, trips), _split(kwh * 1000, trips), strict=True)
    for trip, (trip_m, trip_wh) in enumerate(per_trip):
        steps = -(-trip_m // STEP_METRES)
        trip_id = f"{vehicle_id}-{start}-{trip}"
        moves = zip(_split(trip_m, steps), _split(trip_wh, steps), strict=True)
        points = [(0, 0), *moves]
        for step, (metres, watt_hours) in enumerate(points):
            odometer, energy = odometer + metres, energy + watt_hours
            event = "start" if step == 0 else "end" if step == len(points) - 1 else None
            document = {"msg_id": f"{trip_id}-{step}", "ts": clock.isoformat(),
                        "odometer_m": odometer, "energy_wh": energy}  # fmt: skip
            if event:
                document["trip"] = {"id": trip_id, "event": event}
            documents.append(document)
            clock += STEP
        clock += GAP - STEP
    return documents, (odometer, energy)


def store(session: Session, vehicle_id: str, documents: list[dict]) -> None:
    store_telemetry(
        session,
        [IncomingMessage(telemetry_topic(vehicle_id), json.dumps(documents).encode())],
        NOW + dt.timedelta(days=400),
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=3600,
    )


def meter(session: Session) -> None:
    while update_rollups(session, NOW, max_speed_kmh=60).vehicles:
        pass


def _split(total: int, parts: int) -> list[int]:
    """`total` in `parts` integers adding up to it exactly."""
    share, rest = divmod(total, parts)
    return [share + (1 if n < rest else 0) for n in range(parts)]
