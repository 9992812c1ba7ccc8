"""Fleet simulator: realistic scooter telemetry (docs/telemetry.md), published over MQTT.

Two halves, joined only by `Publication`:

- `simulate_fleet` is pure and deterministic (no I/O, no clock): from vehicle ids, a start
  instant and a seed it yields the MQTT messages a fleet of delivery scooters would send,
  each with the instant from which it may be published (never before the latest `ts` it
  carries). A scooter rides 5–40 minute trips in working hours at 12–25 km/h on average,
  stop-and-go, reports every `interval_s` while riding and every `heartbeat_s` while
  parked; its counters grow with distance, its battery drains and is charged when parked
  low. The faults of real fleets are drawn per reading: duplicates, out-of-order delivery,
  and offline gaps whose readings are sent later as arrays (store-and-forward).
- `FleetPublisher` sends them with QoS 1, waiting for each publication's instant. A start
  in the past is therefore a fast backfill, a start at now a live feed, and a past start
  without an end a backfill that turns into a live feed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import os
import random
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from billing.mqtt import BrokerAddress, make_client, telemetry_topic
from billing.telemetry.contract import MAX_BATCH

RIDE_MINUTES = (5.0, 40.0)
RIDE_AVERAGE_KMH = (12.0, 25.0)
PAUSE_MINUTES = (5.0, 45.0)
WH_PER_KM = (25.0, 35.0)
# Traffic lights and crossings: the share of riding intervals spent standing still.
STOP_PROBABILITY = 0.12
# Controller, GPS and modem stay on when parked: what energy_wh grows by without riding.
IDLE_DRAIN_W = 1.5
OFFLINE_SECONDS = (180, 3600)
HELD_BACK_READINGS = (1, 3)


@dataclass(frozen=True)
class FaultRates:
    """Probabilities, drawn for each reading, of the faults real fleets have.

    `duplicate`: the reading is sent twice (same msg_id). `out_of_order`: it is held back
    and sent after the next 1–3 readings. `offline`: connectivity drops at this reading for
    3–60 minutes; the readings buffered meanwhile are sent on reconnection as arrays of up
    to 500.
    """

    duplicate: float = 0.0
    out_of_order: float = 0.0
    offline: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicate", "out_of_order", "offline"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"fault rate {name} must be between 0 and 1")


# What the command line defaults to: a few faults a day per scooter, as seen in the field.
TYPICAL_FAULTS = FaultRates(duplicate=0.005, out_of_order=0.005, offline=0.001)


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 0
    interval_s: int = 30
    heartbeat_s: int = 900
    faults: FaultRates = field(default_factory=FaultRates)
    timezone: str = "Europe/Paris"  # where working hours are
    initial_odometer_km: tuple[float, float] = (1200.0, 8000.0)
    battery_wh: float = 1500.0
    charge_below_pct: float = 40.0
    charger_w: float = 500.0

    def __post_init__(self) -> None:
        if self.interval_s < 1:
            raise ValueError("interval_s must be at least 1 second")
        if self.heartbeat_s < self.interval_s:
            raise ValueError("heartbeat_s must be at least interval_s")


@dataclass(frozen=True)
class Counters:
    """Where a vehicle's counters stand when the simulation starts (e.g. its last reading)."""

    odometer_m: int
    energy_wh: int
    battery_pct: float = 80.0


@dataclass(frozen=True, slots=True)
class Publication:
    """One MQTT message: a reading or an array of readings of one vehicle."""

    publish_at: dt.datetime  # not before the latest ts in the payload
    vehicle_id: str
    payload: bytes
    readings: int


def simulate_fleet(
    vehicle_ids: Iterable[str],
    start: dt.datetime,
    end: dt.datetime | None = None,
    config: SimulationConfig | None = None,
    initial: Mapping[str, Counters] | None = None,
) -> Iterator[Publication]:
    """The fleet's publications from `start` up to `end` (forever if None), by publish_at.

    Each vehicle has its own random streams, seeded from `config.seed` and its id, one for
    its usage and one for its faults: a vehicle behaves the same whatever the fleet around
    it, and the same seed gives the same readings whatever the fault rates (only their
    delivery changes). Readings buffered or held back at `end` are not published.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    config = config or SimulationConfig()
    initial = initial or {}
    start = start.astimezone(dt.UTC).replace(microsecond=0)  # ts has whole seconds
    streams = [
        _simulate_vehicle(vehicle_id, start, config, initial.get(vehicle_id))
        for vehicle_id in vehicle_ids
    ]
    for publication in heapq.merge(*streams, key=attrgetter("publish_at")):
        if end is not None and publication.publish_at > end:
            return
        yield publication


def _simulate_vehicle(
    vehicle_id: str, start: dt.datetime, config: SimulationConfig, initial: Counters | None
) -> Iterator[Publication]:
    """One vehicle's endless stream of publications from `start` (UTC), by publish_at."""
    usage_rng = random.Random(f"{config.seed}/{vehicle_id}/usage")
    fault_rng = random.Random(f"{config.seed}/{vehicle_id}/faults")
    readings = _readings(_Scooter.new(usage_rng, config, initial), start, config)
    return _deliveries(vehicle_id, readings, fault_rng, config.faults)


# --- usage: what the scooter does and reports -------------------------------------------


@dataclass
class _Scooter:
    rng: random.Random
    config: SimulationConfig
    wh_per_km: float  # this scooter's own consumption: its rider, load and tyres
    odometer_m: float
    energy_wh: float
    battery_pct: float
    charging: bool = False

    @classmethod
    def new(
        cls, rng: random.Random, config: SimulationConfig, initial: Counters | None
    ) -> _Scooter:
        wh_per_km = rng.uniform(*WH_PER_KM)
        if initial is not None:
            odometer_m, energy_wh = float(initial.odometer_m), float(initial.energy_wh)
            return cls(rng, config, wh_per_km, odometer_m, energy_wh, initial.battery_pct)
        odometer_km = rng.uniform(*config.initial_odometer_km)
        battery_pct = rng.uniform(60.0, 100.0)
        return cls(rng, config, wh_per_km, odometer_km * 1000, odometer_km * wh_per_km, battery_pct)

    def ride(self, seconds: float, speed_kmh: float) -> None:
        distance_km = speed_kmh * seconds / 3600
        self.odometer_m += distance_km * 1000
        # Hills, wind and accelerations make each stretch cost a little more or less.
        self._consume(distance_km * self.wh_per_km * self.rng.uniform(0.9, 1.1))
        self._consume(IDLE_DRAIN_W * seconds / 3600)

    def park(self, seconds: float) -> None:
        self._consume(IDLE_DRAIN_W * seconds / 3600)
        if self.charging:
            # Charging raises the battery only: energy_wh counts energy consumed.
            self.battery_pct += (
                self.config.charger_w * seconds / 3600 / self.config.battery_wh * 100
            )
            if self.battery_pct >= 100.0:
                self.battery_pct, self.charging = 100.0, False

    def plug_in_if_low(self) -> None:
        self.charging = self.charging or self.battery_pct < self.config.charge_below_pct

    def _consume(self, wh: float) -> None:
        self.energy_wh += wh
        self.battery_pct = max(0.0, self.battery_pct - wh / self.config.battery_wh * 100)

    def reading(self, ts: dt.datetime, trip: dict[str, str] | None = None) -> dict[str, Any]:
        reading: dict[str, Any] = {
            "msg_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "odometer_m": int(self.odometer_m),
            "energy_wh": int(self.energy_wh),
            "battery_pct": round(self.battery_pct),
        }
        if trip is not None:
            reading["trip"] = trip
        return reading


def _readings(
    scooter: _Scooter, start: dt.datetime, config: SimulationConfig
) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
    """The scooter's readings in ts order (strictly increasing), forever."""
    yield start, scooter.reading(start)  # a scooter reports as soon as it comes online
    parked_since = start
    for ride_start, ride_end in _rides(scooter.rng, start, ZoneInfo(config.timezone)):
        yield from _parked(scooter, parked_since, ride_start, config.heartbeat_s)
        yield from _ride(scooter, ride_start, ride_end, config.interval_s)
        parked_since = ride_end


def _parked(
    scooter: _Scooter, since: dt.datetime, until: dt.datetime, heartbeat_s: int
) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
    heartbeat = dt.timedelta(seconds=heartbeat_s)
    ts = since
    while ts + heartbeat < until:  # strictly: a ride's first reading replaces the heartbeat
        ts += heartbeat
        scooter.park(heartbeat_s)
        yield ts, scooter.reading(ts)
    scooter.park((until - ts).total_seconds())


def _ride(
    scooter: _Scooter, start: dt.datetime, end: dt.datetime, interval_s: int
) -> Iterator[tuple[dt.datetime, dict[str, Any]]]:
    trip_id = start.strftime("t-%Y%m%d-%H%M%S")
    yield start, scooter.reading(start, {"id": trip_id, "event": "start"})
    average_kmh = scooter.rng.uniform(*RIDE_AVERAGE_KMH)
    ts = start
    while ts < end:
        step = min(dt.timedelta(seconds=interval_s), end - ts)
        scooter.ride(step.total_seconds(), _stop_and_go(scooter.rng, average_kmh))
        ts += step
        trip = {"id": trip_id, "event": "end"} if ts == end else None
        yield ts, scooter.reading(ts, trip)
    scooter.plug_in_if_low()


def _stop_and_go(rng: random.Random, average_kmh: float) -> float:
    """A speed over one interval; the ride's mean stays `average_kmh`."""
    if rng.random() < STOP_PROBABILITY:
        return 0.0
    return average_kmh / (1 - STOP_PROBABILITY) * rng.uniform(0.7, 1.3)


def _rides(
    rng: random.Random, after: dt.datetime, tz: ZoneInfo
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Rides (start, end) in UTC that start strictly after `after`, day after day."""
    day = after.astimezone(tz).date()
    while True:
        for ride in _day_of_rides(rng, day, tz):
            if ride[0] > after:
                yield ride
        day += dt.timedelta(days=1)


def _day_of_rides(
    rng: random.Random, day: dt.date, tz: ZoneInfo
) -> list[tuple[dt.datetime, dt.datetime]]:
    """A delivery shift: rides with pauses between 8–10 h and 17–20 h, a lunch break."""
    if rng.random() < (0.8 if day.weekday() == 6 else 0.05):
        return []  # Sundays mostly off, a weekday off now and then

    def local(hour: int, spread_minutes: float) -> dt.datetime:
        at = dt.datetime.combine(day, dt.time(hour), tzinfo=tz).astimezone(dt.UTC)
        return at + _minutes(rng.uniform(0, spread_minutes))

    ts, shift_end = local(8, 120), local(17, 180)
    lunch_start = local(12, 90)
    lunch_end = lunch_start + _minutes(rng.uniform(30, 75))
    rides: list[tuple[dt.datetime, dt.datetime]] = []
    while True:
        ride_end = ts + _minutes(rng.uniform(*RIDE_MINUTES))
        if ride_end > shift_end:
            return rides
        if ts < lunch_end and ride_end > lunch_start:
            ts = lunch_end
            continue
        rides.append((ts, ride_end))
        ts = ride_end + _minutes(rng.uniform(*PAUSE_MINUTES))


def _minutes(minutes: float) -> dt.timedelta:
    return dt.timedelta(seconds=round(minutes * 60))  # whole seconds: ts has no fraction


# --- delivery: what reaches the broker, and when -----------------------------------------


def _deliveries(
    vehicle_id: str,
    readings: Iterator[tuple[dt.datetime, dict[str, Any]]],
    rng: random.Random,
    faults: FaultRates,
) -> Iterator[Publication]:
    """Readings turned into publications, faults applied; publish_at never decreases."""
    held: list[tuple[int, dict[str, Any]]] = []  # (readings still to wait for, reading)
    buffered: list[dict[str, Any]] = []
    offline_until: dt.datetime | None = None
    for ts, reading in readings:
        if offline_until is not None:
            if ts < offline_until:
                buffered.append(reading)
                continue
            yield from _store_and_forward(vehicle_id, buffered, offline_until)
            buffered, offline_until = [], None
        if rng.random() < faults.offline:
            # What the scooter held back is still in its outbox: it goes with the batch.
            buffered = [*(waiting for _, waiting in held), reading]
            held = []
            offline_until = ts + dt.timedelta(seconds=rng.randint(*OFFLINE_SECONDS))
            continue
        if rng.random() < faults.out_of_order:
            held.append((rng.randint(*HELD_BACK_READINGS), reading))
            continue
        yield from _single(vehicle_id, ts, reading, rng, faults)
        held = [(wait - 1, waiting) for wait, waiting in held]
        for due in [waiting for wait, waiting in held if wait == 0]:
            yield from _single(vehicle_id, ts, due, rng, faults)
        held = [(wait, waiting) for wait, waiting in held if wait > 0]


def _single(
    vehicle_id: str,
    publish_at: dt.datetime,
    reading: dict[str, Any],
    rng: random.Random,
    faults: FaultRates,
) -> Iterator[Publication]:
    publication = Publication(publish_at, vehicle_id, _encode(reading), 1)
    yield publication
    if rng.random() < faults.duplicate:
        yield publication


def _store_and_forward(
    vehicle_id: str, buffered: list[dict[str, Any]], reconnected_at: dt.datetime
) -> Iterator[Publication]:
    for first in range(0, len(buffered), MAX_BATCH):
        batch = buffered[first : first + MAX_BATCH]
        yield Publication(reconnected_at, vehicle_id, _encode(batch), len(batch))


def _encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# --- publishing ---------------------------------------------------------------------------

PROGRESS_EVERY_S = 0.5
NETWORK_TICK_S = 0.5  # how often keepalives are checked and reconnections tried
CONNECTED = "connected"
MAX_BACKOFF_S = 30.0


class BrokerRefused(Exception):
    """Some connections could not be opened: broker unreachable, or login refused."""


@dataclass
class PublishStats:
    """A publisher's counts, updated live (progress displays read them as it goes)."""

    published: int = 0  # messages handed to a connection
    readings: int = 0  # readings in those messages
    acked: int = 0  # PUBACKs reporting success
    refused: int = 0  # PUBACKs reporting an error, e.g. not authorized for that topic
    connection_losses: int = 0
    simulated_at: dt.datetime | None = None  # publish_at of the latest message published
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def errors(self) -> int:
        return self.refused + self.connection_losses

    @property
    def unacked(self) -> int:
        return self.published - self.acked - self.refused

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Messages per second since the start."""
        return self.published / max(self.elapsed_s, 1e-9)


@dataclass(eq=False)
class _Connection:
    label: str
    client: mqtt.Client
    outcome: str | None = None  # None until the first CONNACK, then "connected" or why not
    retry_at: float = 0.0
    backoff_s: float = 1.0
    watching_write: bool = False

    def retry_later(self) -> None:
        self.retry_at = time.monotonic() + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)


class _NetworkThread:
    """One thread driving the sockets of many paho clients.

    paho's loop_start() takes a thread per client. Measured against the local Mosquitto
    with 200 connections, this single thread carried 16,000 QoS 1 messages/s, a thread per
    client 8,000. Every socket operation happens here: with a register-write callback set,
    paho's publish() called from another thread only queues the packet, and that thread
    then asks for a write with `request_write`.
    """

    def __init__(self, connections: Sequence[_Connection]) -> None:
        self.failure: BaseException | None = None
        self._connections = connections
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._to_write: set[_Connection] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)
        for connection in connections:
            self._attach(connection)

    def start(self) -> None:
        self._thread.start()

    def request_write(self, connection: _Connection) -> None:
        with self._lock:
            idle = not self._to_write
            self._to_write.add(connection)
        if idle:
            self._wake()

    def close(self) -> None:
        self._closing = True
        self._wake()
        self._thread.join()
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _attach(self, connection: _Connection) -> None:
        def opened(client: mqtt.Client, userdata: Any, sock: Any) -> None:
            connection.watching_write = False
            self._selector.register(sock, selectors.EVENT_READ, connection)

        def closed(client: mqtt.Client, userdata: Any, sock: Any) -> None:
            with contextlib.suppress(KeyError):  # closed before it was registered
                self._selector.unregister(sock)

        connection.client.on_socket_open = opened
        connection.client.on_socket_close = closed
        connection.client.on_socket_register_write = _ignore
        connection.client.on_socket_unregister_write = _ignore

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            self._wake_writer.send(b"\0")

    def _run(self) -> None:
        try:
            self._serve_until_closed()
        except Exception as error:  # surfaced by the publisher, which would wait forever
            self.failure = error
            return
        self._disconnect_all()

    def _serve_until_closed(self) -> None:
        next_tick = 0.0
        while not self._closing:
            if time.monotonic() >= next_tick:
                self._tick()
                next_tick = time.monotonic() + NETWORK_TICK_S
            for key, events in self._selector.select(timeout=NETWORK_TICK_S):
                if key.data is None:
                    self._wake_reader.recv(4096)
                    continue
                if events & selectors.EVENT_READ:
                    key.data.client.loop_read()
                self._write(key.data)  # a PUBACK read may release queued messages
            with self._lock:
                to_write, self._to_write = self._to_write, set()
            for connection in to_write:
                self._write(connection)

    def _write(self, connection: _Connection) -> None:
        client = connection.client
        if client.want_write():
            client.loop_write()
        sock = client.socket()
        wanted = client.want_write()
        if sock is not None and wanted != connection.watching_write:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wanted else 0)
            self._selector.modify(sock, events, connection)
            connection.watching_write = wanted

    def _tick(self) -> None:
        """Keepalives, and (re)connections whose backoff has passed."""
        now = time.monotonic()
        for connection in self._connections:
            if connection.client.socket() is not None:
                connection.client.loop_misc()
            elif now >= connection.retry_at:
                self._connect(connection)
            self._write(connection)

    def _connect(self, connection: _Connection) -> None:
        try:
            connection.client.reconnect()
        except OSError as error:
            connection.outcome = f"unreachable: {error}"
            connection.retry_later()

    def _disconnect_all(self) -> None:
        for connection in self._connections:
            if connection.client.socket() is not None:
                connection.client.disconnect()
                self._write(connection)  # paho closes the socket once DISCONNECT is out
            # Else paho closes it when the client is collected, with no selector to tell.
            connection.client.on_socket_close = None


def _ignore(*_: Any) -> None:
    """A socket callback that needs no action, set so that paho leaves writes to us."""


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FleetPublisher:
    """Publishes `Publication`s with QoS 1 to each vehicle's telemetry topic.

    By default each vehicle has its own connection, as scooters do, logged in with
    `credentials(vehicle_id)` -> (username, password), or anonymously when `credentials` is
    None. With `gateway=True`, one connection logged in with `broker`'s credentials
    publishes for every vehicle, as a fleet gateway does. Entering the context connects
    (BrokerRefused if a connection is refused or unreachable); leaving it disconnects.

    A message goes out when the clock reaches its publish_at, so that no timestamp is ever
    in the future, and at most `rate` messages per second. At most `max_inflight` messages
    wait for their PUBACK at any time, and `inflight_per_connection` on each connection: it
    must not exceed the broker's Receive Maximum (Mosquitto's default is 20), which paho
    cannot adopt once connected. A lost connection is reopened with backoff and its
    unacknowledged messages are sent again.
    """

    def __init__(
        self,
        broker: BrokerAddress,
        vehicle_ids: Iterable[str],
        *,
        credentials: Callable[[str], tuple[str, str]] | None = None,
        gateway: bool = False,
        rate: float | None = None,
        max_inflight: int = 1000,
        inflight_per_connection: int = 20,
        protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
        connect_timeout_s: float = 10.0,
        drain_timeout_s: float = 10.0,
        clock: Callable[[], dt.datetime] = _wall_clock,
    ) -> None:
        self.stats = PublishStats()
        self._broker, self._protocol = broker, protocol
        self._inflight_per_connection = inflight_per_connection
        self._connections = self._plan_connections(list(vehicle_ids), credentials, gateway)
        self._network: _NetworkThread | None = None  # sockets are opened on entering
        self._closing = False
        self._interval_s = 1.0 / rate if rate else 0.0
        self._next_slot = 0.0
        self._inflight = threading.Semaphore(max_inflight)
        self._connect_timeout_s, self._drain_timeout_s = connect_timeout_s, drain_timeout_s
        self._clock = clock
        self._last_report = 0.0

    def __enter__(self) -> FleetPublisher:
        self._network = _NetworkThread(list(dict.fromkeys(self._connections.values())))
        self._network.start()
        try:
            self._wait_until_connected()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._network is not None:
            self._closing = True
            self._network.close()

    def publish(
        self,
        publications: Iterable[Publication],
        stop: threading.Event | None = None,
        on_progress: Callable[[PublishStats], None] | None = None,
        until: dt.datetime | None = None,
    ) -> PublishStats:
        """Publish until `publications` ends or `stop` is set, then wait (up to the drain
        timeout) for the outstanding PUBACKs. `on_progress` is called every half second.

        With `until`, a feed that ends earlier (a parked fleet has nothing more to say
        before its next heartbeat) stays connected until then: a live run lasts as long
        as it was asked to."""
        self._running_network()
        stop = stop or threading.Event()
        self.stats.started = time.monotonic()
        for publication in publications:
            if not self._wait_until_due(publication, stop, on_progress):
                break
            if not self._acquire_slot(stop, on_progress):
                break
            self._send(publication)
            self._report(on_progress)
        else:
            while until is not None and (left := (until - self._clock()).total_seconds()) > 0:
                if stop.wait(min(left, PROGRESS_EVERY_S)):
                    break
                self._report(on_progress)
        self._drain(on_progress)
        self.stats.finished = time.monotonic()
        return self.stats

    def _plan_connections(
        self,
        vehicle_ids: list[str],
        credentials: Callable[[str], tuple[str, str]] | None,
        gateway: bool,
    ) -> dict[str, _Connection]:
        if gateway:
            shared = self._new_connection("gateway", self._broker)
            return dict.fromkeys(vehicle_ids, shared)
        anonymous = BrokerAddress(self._broker.host, self._broker.port, tls=self._broker.tls)
        return {
            vehicle_id: self._new_connection(
                vehicle_id,
                anonymous.with_credentials(*credentials(vehicle_id)) if credentials else anonymous,
            )
            for vehicle_id in vehicle_ids
        }

    def _new_connection(self, label: str, address: BrokerAddress) -> _Connection:
        client = make_client(address, f"sim-{label}-{os.getpid()}", protocol=self._protocol)
        client.max_inflight_messages_set(self._inflight_per_connection)
        connection = _Connection(label, client)
        client.on_connect = self._connected_callback(connection)
        client.on_disconnect = self._disconnected_callback(connection)
        client.on_publish = self._acknowledged
        client.connect_async(address.host, address.port)
        return connection

    def _connected_callback(self, connection: _Connection) -> Callable[..., None]:
        def connected(
            client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
        ) -> None:
            if reason.is_failure:
                connection.outcome = f"refused: {reason}"  # the broker then closes: retried
            else:
                connection.outcome, connection.backoff_s = CONNECTED, 1.0

        return connected

    def _disconnected_callback(self, connection: _Connection) -> Callable[..., None]:
        def disconnected(client: mqtt.Client, userdata: Any, *_: Any) -> None:
            if not self._closing:
                self.stats.connection_losses += 1
                if connection.outcome in (None, CONNECTED):  # else keep why it was refused
                    connection.outcome = "connection lost"
                connection.retry_later()

        return disconnected

    def _acknowledged(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, _: Any
    ) -> None:
        if reason.is_failure:
            self.stats.refused += 1
        else:
            self.stats.acked += 1
        self._inflight.release()

    def _wait_until_connected(self) -> None:
        """Wait for every connection. Refused ones are retried meanwhile: a broker that
        follows the registry loads freshly issued passwords a moment later."""
        connections = list(dict.fromkeys(self._connections.values()))
        deadline = time.monotonic() + self._connect_timeout_s
        while failed := [c for c in connections if c.outcome != CONNECTED]:
            if time.monotonic() > deadline:
                shown = "; ".join(f"{c.label}: {c.outcome or 'no answer'}" for c in failed[:5])
                more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
                raise BrokerRefused(
                    f"{len(failed)} of {len(connections)} connections to {self._broker.url} "
                    f"failed within {self._connect_timeout_s:g} s: {shown}{more}"
                )
            self._running_network()
            time.sleep(0.01)

    def _wait_until_due(
        self,
        publication: Publication,
        stop: threading.Event,
        on_progress: Callable[[PublishStats], None] | None,
    ) -> bool:
        """Wait for the publication's instant and the rate limit; False when stopped."""
        while True:
            due_in = max(
                (publication.publish_at - self._clock()).total_seconds(),
                self._next_slot - time.monotonic(),
            )
            if due_in <= 0:
                return not stop.is_set()
            if stop.wait(min(due_in, PROGRESS_EVERY_S)):
                return False
            self._report(on_progress)

    def _acquire_slot(
        self, stop: threading.Event, on_progress: Callable[[PublishStats], None] | None
    ) -> bool:
        while not self._inflight.acquire(timeout=PROGRESS_EVERY_S):
            if stop.is_set():
                return False
            self._report(on_progress)
        return True

    def _send(self, publication: Publication) -> None:
        connection = self._connections[publication.vehicle_id]
        self.stats.published += 1
        self.stats.readings += publication.readings
        self.stats.simulated_at = publication.publish_at
        topic = telemetry_topic(publication.vehicle_id)
        info = connection.client.publish(topic, publication.payload, qos=1)
        # NO_CONN: paho keeps the message and sends it once the connection is back.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"paho did not queue a message: {mqtt.error_string(info.rc)}")
        self._running_network().request_write(connection)
        if self._interval_s:
            self._next_slot = max(self._next_slot, time.monotonic()) + self._interval_s

    def _drain(self, on_progress: Callable[[PublishStats], None] | None) -> None:
        deadline = time.monotonic() + self._drain_timeout_s
        while self.stats.unacked > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
            self._report(on_progress)

    def _running_network(self) -> _NetworkThread:
        if self._network is None:
            raise RuntimeError("FleetPublisher publishes only inside its `with` block")
        if self._network.failure is not None:
            raise RuntimeError("the MQTT network thread failed") from self._network.failure
        return self._network

    def _report(self, on_progress: Callable[[PublishStats], None] | None) -> None:
        self._running_network()
        now = time.monotonic()
        if on_progress is not None and now - self._last_report >= PROGRESS_EVERY_S:
            self._last_report = now
            on_progress(self.stats)
