"""The fleet simulator's telemetry: realistic usage, the faults asked for, the contract kept."""

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
import pytest

from billing.metering.usage import Reading, derive_deltas, pair_trips
from billing.simulation.simulator import (
    Counters,
    FaultRates,
    Publication,
    SimulationConfig,
    simulate_fleet,
)

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
END = START + timedelta(days=3)
FLEET = ["SIM-A", "SIM-B", "SIM-C"]
NO_FAULTS = FaultRates()
FAULTS = FaultRates(duplicate=0.02, out_of_order=0.02, offline=0.005)
PARIS = ZoneInfo("Europe/Paris")


class TripEvent(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    event: Literal["start", "end"]


class ContractReading(msgspec.Struct, forbid_unknown_fields=True):
    """The telemetry contract, strictly: every field the simulator sends, with its exact type."""

    msg_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]
    odometer_m: Annotated[int, msgspec.Meta(ge=0)]
    energy_wh: Annotated[int, msgspec.Meta(ge=0)]
    battery_pct: Annotated[int, msgspec.Meta(ge=0, le=100)]
    trip: TripEvent | None = None


CONTRACT = msgspec.json.Decoder(ContractReading | list[ContractReading], strict=True)


def simulate(faults: FaultRates = NO_FAULTS, **config: Any) -> list[Publication]:
    return list(simulate_fleet(FLEET, START, END, SimulationConfig(faults=faults, **config)))


@pytest.fixture(scope="module")
def clean() -> list[Publication]:
    return simulate()


@pytest.fixture(scope="module")
def faulty() -> list[Publication]:
    return simulate(FAULTS)


def readings_of(publication: Publication) -> list[dict[str, Any]]:
    document = json.loads(publication.payload)
    return document if isinstance(document, list) else [document]


def by_vehicle(publications: list[Publication]) -> dict[str, list[dict[str, Any]]]:
    """Each vehicle's distinct readings, in ts order."""
    readings: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for publication in publications:
        for reading in readings_of(publication):
            readings[publication.vehicle_id][reading["msg_id"]] = reading
    return {v: sorted(r.values(), key=lambda r: r["ts"]) for v, r in readings.items()}


def ts(reading: dict[str, Any]) -> datetime:
    return datetime.strptime(reading["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def rides(readings: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The readings of each ride, from its start event to its end event."""
    found, current = [], None
    for reading in readings:
        event = reading.get("trip", {}).get("event")
        if event == "start":
            current = []
        if current is not None:
            current.append(reading)
        if event == "end" and current is not None:
            found.append(current)
            current = None
    return found


# --- determinism ------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_publications(faulty):
    assert simulate(FAULTS) == faulty
    assert simulate(FAULTS, seed=1) != faulty


def test_a_vehicle_behaves_the_same_whatever_the_fleet_around_it(clean):
    alone = list(simulate_fleet(["SIM-B"], START, END, SimulationConfig()))
    assert alone == [p for p in clean if p.vehicle_id == "SIM-B"]


def test_faults_change_the_delivery_of_the_readings_but_not_the_readings(clean, faulty):
    # Readings held back or buffered when the simulation ends are not published.
    settled = END - timedelta(hours=2)
    expected = {
        (v, r["msg_id"]): r for v, rs in by_vehicle(clean).items() for r in rs if ts(r) < settled
    }
    delivered = {(v, r["msg_id"]): r for v, rs in by_vehicle(faulty).items() for r in rs}
    assert {key: delivered.get(key) for key in expected} == expected


# --- usage ------------------------------------------------------------------------------


def test_counters_never_decrease_in_timestamp_order(faulty):
    for readings in by_vehicle(faulty).values():
        timestamps = [r["ts"] for r in readings]
        assert timestamps == sorted(set(timestamps))
        for counter in ("odometer_m", "energy_wh"):
            values = [r[counter] for r in readings]
            assert values == sorted(values)
            assert values[-1] > values[0]


def test_a_used_fleet_starts_between_1200_and_8000_km(clean):
    for readings in by_vehicle(clean).values():
        assert 1_200_000 <= readings[0]["odometer_m"] <= 8_000_000


def test_initial_counters_can_continue_where_a_vehicle_stands():
    counters = Counters(odometer_m=4_321_000, energy_wh=130_000, battery_pct=55)
    first = readings_of(next(simulate_fleet(["SIM-A"], START, initial={"SIM-A": counters})))[0]
    assert (first["odometer_m"], first["energy_wh"], first["battery_pct"]) == (
        4_321_000,
        130_000,
        55,
    )


def test_every_ride_has_a_start_then_an_end_and_lasts_5_to_40_minutes(clean):
    for readings in by_vehicle(clean).values():
        events = [r["trip"] for r in readings if "trip" in r]
        trips = rides(readings)
        assert len(events) == 2 * len(trips) > 10
        for ride in trips:
            assert ride[0]["trip"]["id"] == ride[-1]["trip"]["id"]
            assert timedelta(minutes=5) <= ts(ride[-1]) - ts(ride[0]) <= timedelta(minutes=40)


def test_rides_report_every_interval_and_parked_scooters_every_heartbeat():
    publications = simulate(interval_s=20, heartbeat_s=600)
    for readings in by_vehicle(publications).values():
        riding = {r["msg_id"] for ride in rides(readings) for r in ride[1:]}
        for previous, reading in pairwise(readings):
            gap = ts(reading) - ts(previous)
            limit = timedelta(seconds=20 if reading["msg_id"] in riding else 600)
            assert timedelta(0) < gap <= limit


def test_rides_are_stop_and_go_at_12_to_25_kmh_on_average(clean):
    for readings in by_vehicle(clean).values():
        speeds, ride_averages = [], []
        for ride in rides(readings):
            hours = (ts(ride[-1]) - ts(ride[0])).total_seconds() / 3600
            ride_averages.append((ride[-1]["odometer_m"] - ride[0]["odometer_m"]) / 1000 / hours)
            for previous, reading in pairwise(ride):
                seconds = (ts(reading) - ts(previous)).total_seconds()
                speeds.append((reading["odometer_m"] - previous["odometer_m"]) / seconds * 3.6)
        assert min(speeds) < 1 and max(speeds) > 25  # standing at lights, then catching up
        assert max(speeds) < 60  # the metering's implausible-jump threshold
        assert 12 <= sum(ride_averages) / len(ride_averages) <= 25


def test_energy_grows_by_25_to_35_wh_per_km_and_a_little_when_parked(clean):
    for readings in by_vehicle(clean).values():
        km = (readings[-1]["odometer_m"] - readings[0]["odometer_m"]) / 1000
        wh = readings[-1]["energy_wh"] - readings[0]["energy_wh"]
        assert 25 <= wh / km <= 37  # riding, plus idle drain over three days
        first_night = START.astimezone(PARIS).date()
        night = [r for r in readings if ts(r).astimezone(PARIS).date() == first_night]
        night = [r for r in night if ts(r).astimezone(PARIS).hour < 6]
        assert night[-1]["odometer_m"] == night[0]["odometer_m"]
        assert night[-1]["energy_wh"] > night[0]["energy_wh"]


def test_rides_happen_in_working_hours_on_working_days():
    publications = list(simulate_fleet(FLEET, START, START + timedelta(days=14)))
    starts = [
        (vehicle, ts(ride[0]).astimezone(PARIS))
        for vehicle, readings in by_vehicle(publications).items()
        for ride in rides(readings)
    ]
    assert all(8 <= start.hour < 20 for _, start in starts)
    working = {(vehicle, start.date()) for vehicle, start in starts}
    sundays = [day for _, day in working if day.weekday() == 6]
    assert len(sundays) <= 2 < len(working) - len(sundays)  # of 6 Sundays and 36 other days
    assert len(working) - len(sundays) >= 30


def test_the_battery_drains_while_riding_and_charges_when_parked_low(clean):
    for readings in by_vehicle(clean).values():
        for ride in rides(readings):
            assert ride[-1]["battery_pct"] <= ride[0]["battery_pct"]
        battery = [r["battery_pct"] for r in readings]
        charged = [
            (previous, reading)
            for previous, reading in pairwise(readings)
            if reading["battery_pct"] > previous["battery_pct"]
        ]
        assert charged and min(battery) < 40 and max(battery) == 100
        for previous, reading in charged:  # charging adds no energy consumed, no distance
            assert reading["odometer_m"] == previous["odometer_m"]
            assert reading["energy_wh"] - previous["energy_wh"] <= 1


def test_the_metering_derives_the_simulated_usage_without_anomaly(faulty):
    for readings in by_vehicle(faulty).values():
        usage = [
            Reading(
                ts(r),
                r["msg_id"],
                r["odometer_m"],
                r["energy_wh"],
                r.get("trip", {}).get("id"),
                r.get("trip", {}).get("event"),
            )
            for r in readings
        ]
        deltas, anomalies = derive_deltas(usage)
        trips, trip_anomalies = pair_trips(usage)
        assert anomalies == [] and trip_anomalies == []
        distance = readings[-1]["odometer_m"] - readings[0]["odometer_m"]
        assert sum(delta.distance_m for delta in deltas) == distance
        assert len([trip for trip in trips if trip.end_ts]) == len(rides(readings))


# --- faults and delivery ----------------------------------------------------------------


def test_without_faults_each_reading_is_published_once_when_it_is_taken(clean):
    assert all(p.readings == 1 for p in clean)
    assert all(p.publish_at == ts(readings_of(p)[0]) for p in clean)
    msg_ids = [readings_of(p)[0]["msg_id"] for p in clean]
    assert len(msg_ids) == len(set(msg_ids))


def test_duplicates_are_the_same_reading_with_the_same_msg_id(faulty):
    seen: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for publication in faulty:
        for reading in readings_of(publication):
            if reading["msg_id"] in seen:
                duplicates += 1
                assert reading == seen[reading["msg_id"]]
            seen[reading["msg_id"]] = reading
    assert duplicates > 0.01 * len(seen)


def test_out_of_order_readings_are_published_after_later_ones(faulty):
    late = 0
    for vehicle in FLEET:
        latest = ""
        for publication in (p for p in faulty if p.vehicle_id == vehicle and p.readings == 1):
            reading_ts = readings_of(publication)[0]["ts"]
            late += reading_ts < latest
            latest = max(latest, reading_ts)
    assert late > 10


def test_offline_gaps_are_sent_on_reconnection_as_arrays_of_at_most_500_readings():
    config = SimulationConfig(interval_s=1, heartbeat_s=1, faults=FaultRates(offline=0.001))
    publications = list(simulate_fleet(["SIM-A"], START, START + timedelta(hours=6), config))
    batches = [p for p in publications if p.payload.startswith(b"[")]
    assert batches and max(p.readings for p in batches) == 500
    for batch in batches:
        readings = readings_of(batch)
        assert len(readings) == batch.readings <= 500
        assert ts(readings[-1]) <= batch.publish_at
        assert batch.publish_at - ts(readings[0]) <= timedelta(hours=1)


def test_no_reading_is_published_before_it_is_taken_nor_after_the_end(faulty):
    assert [p.publish_at for p in faulty] == sorted(p.publish_at for p in faulty)
    assert faulty[0].publish_at >= START and faulty[-1].publish_at <= END
    for publication in faulty:
        assert all(ts(r) <= publication.publish_at for r in readings_of(publication))


def test_every_payload_keeps_the_telemetry_contract(faulty):
    for publication in faulty:
        document = CONTRACT.decode(publication.payload)
        readings = document if isinstance(document, list) else [document]
        assert len(readings) == publication.readings
        for reading in readings:
            assert uuid.UUID(reading.msg_id).version == 4


def test_a_live_start_is_reported_at_once_to_the_second():
    now = datetime(2026, 11, 28, 9, 15, 7, 654321, tzinfo=UTC)
    first = next(simulate_fleet(["SIM-A"], now))
    assert first.publish_at == now.replace(microsecond=0)
    assert readings_of(first)[0]["ts"] == "2026-11-28T09:15:07Z"


@pytest.mark.parametrize(
    "make",
    [
        lambda: FaultRates(duplicate=1.5),
        lambda: SimulationConfig(interval_s=0),
        lambda: SimulationConfig(interval_s=60, heartbeat_s=30),
    ],
)
def test_nonsensical_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()
