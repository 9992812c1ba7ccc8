"""`billing simulate`: feed a broker with the telemetry of a simulated fleet.

Live by default: readings stamped now, published as time passes, until Ctrl-C or
`--duration`. With `--backfill-from` or `--backfill-days`, past days go out as fast as the
broker acknowledges them; then the command stops, or goes on live with `--follow` or
`--duration`.
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import paho.mqtt.client as mqtt

from billing.cli_context import AppContext
from billing.mqtt import VEHICLE_ID, BrokerAddress, login_answer
from billing.simulation.simulator import (
    TYPICAL_FAULTS,
    BrokerRefused,
    FaultRates,
    FleetPublisher,
    PublishStats,
    SimulationConfig,
    simulate_fleet,
)

FAULT_RATE = click.FloatRange(0.0, 1.0)
PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
# How long a run waits for the broker to load the passwords it issued (the embedded broker
# refreshes its logins every 2 s by default).
PASSWORDS_LOADED_S = 30


@click.command()
@click.option(
    "--vehicles",
    "vehicle_count",
    type=click.IntRange(min=1),
    help="Simulate N vehicles named <prefix>000001, <prefix>000002…",
)
@click.option(
    "--vehicle",
    "vehicle_ids",
    multiple=True,
    help="A vehicle id to simulate; repeatable. Default: the database's active vehicles.",
)
@click.option("--prefix", default="SIM-", show_default=True, help="Id prefix for --vehicles.")
@click.option(
    "--mqtt-url",
    default=None,
    help="Default: MQTT_URL, else the embedded broker of a running `billing run`.",
)
@click.option(
    "--interval",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Seconds between readings while riding.",
)
@click.option(
    "--heartbeat",
    type=click.IntRange(min=1),
    default=900,
    show_default=True,
    help="Seconds between readings while parked.",
)
@click.option(
    "--duration", type=click.FloatRange(min=0), help="Seconds of live feed (default: until Ctrl-C)."
)
@click.option(
    "--backfill-from",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Start at this past local date or time and catch up at full speed.",
)
@click.option(
    "--backfill-days", type=click.IntRange(min=1), help="Start at local midnight N days ago."
)
@click.option("--follow", is_flag=True, help="After a backfill, go on live until Ctrl-C.")
@click.option(
    "--timezone", default=None, help="Of working hours and backfill dates (default: settings)."
)
@click.option("--seed", type=int, default=None, help="For a reproducible fleet (default: random).")
@click.option(
    "--duplicate-rate",
    type=FAULT_RATE,
    default=TYPICAL_FAULTS.duplicate,
    show_default=True,
    help="Share of readings sent twice.",
)
@click.option(
    "--out-of-order-rate",
    type=FAULT_RATE,
    default=TYPICAL_FAULTS.out_of_order,
    show_default=True,
    help="Share of readings sent after the next ones.",
)
@click.option(
    "--offline-rate",
    type=FAULT_RATE,
    default=TYPICAL_FAULTS.offline,
    show_default=True,
    help="Chance, at each reading, of going offline for 3–60 min.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="At most this many messages per second.",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Messages awaiting their PUBACK, at most.",
)
@click.option("--anonymous", is_flag=True, help="Connect without credentials.")
@click.option(
    "--gateway",
    metavar="USER:PASSWORD",
    default=None,
    help="Publish for every vehicle over one connection, as a fleet gateway.",
)
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default="5", show_default=True)
@click.pass_obj
def simulate(
    app: AppContext,
    vehicle_count: int | None,
    vehicle_ids: tuple[str, ...],
    prefix: str,
    mqtt_url: str | None,
    interval: int,
    heartbeat: int,
    duration: float | None,
    backfill_from: dt.datetime | None,
    backfill_days: int | None,
    follow: bool,
    timezone: str | None,
    seed: int | None,
    duplicate_rate: float,
    out_of_order_rate: float,
    offline_rate: float,
    rate: float | None,
    max_inflight: int,
    anonymous: bool,
    gateway: str | None,
    protocol: str,
) -> None:
    """Publish realistic scooter telemetry over MQTT.

    Each vehicle connects with its own broker password, issued for the run (which revokes
    the one it had), unless --anonymous or --gateway is given. The broker must load the new
    passwords: the embedded one does so by itself, a production Mosquitto after
    `billing broker export` and a reload.
    """
    if anonymous and gateway:
        raise click.UsageError("--anonymous and --gateway exclude each other")
    now = dt.datetime.now(dt.UTC)
    tz = _zone(timezone or app.settings.default_timezone)
    start, end = _time_window(now, tz, backfill_from, backfill_days, duration, follow)
    ids = _vehicle_ids(app, vehicle_count, vehicle_ids, prefix)
    faults = FaultRates(duplicate_rate, out_of_order_rate, offline_rate)
    config = _simulation_config(seed, interval, heartbeat, faults, tz)
    broker = _broker(app, mqtt_url, gateway)
    publisher = _fleet_publisher(
        app, broker, ids, anonymous, gateway, rate, max_inflight, PROTOCOLS[protocol]
    )
    _announce(len(ids), start, end, broker, config.seed)
    live_until = end if duration is not None else None
    stats = _publish(publisher, simulate_fleet(ids, start, end, config), live_until)
    if stats.refused or stats.unacked:
        raise click.exceptions.Exit(1)


def _simulation_config(
    seed: int | None, interval: int, heartbeat: int, faults: FaultRates, tz: ZoneInfo
) -> SimulationConfig:
    """What the fleet does: a random seed unless one was given."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    return SimulationConfig(seed, interval, heartbeat, faults, timezone=tz.key)


def _fleet_publisher(
    app: AppContext,
    broker: BrokerAddress,
    ids: list[str],
    anonymous: bool,
    gateway: str | None,
    rate: float | None,
    max_inflight: int,
    protocol: mqtt.MQTTProtocolVersion,
) -> FleetPublisher:
    """How the fleet reaches the broker: one login per vehicle with a password issued now,
    anonymous connections, or one gateway connection for all."""
    credentials = None if anonymous or gateway else _issue_credentials(app, ids)
    if credentials is not None and ids:
        # The last one issued: each is committed alone, and a broker that loaded the last
        # read the registry after all the others.
        _wait_for_new_passwords(broker.with_credentials(*credentials(ids[-1])), protocol)
    return FleetPublisher(
        broker,
        ids,
        credentials=credentials,
        gateway=gateway is not None,
        rate=rate,
        max_inflight=max_inflight,
        protocol=protocol,
    )


def _wait_for_new_passwords(address: BrokerAddress, protocol: mqtt.MQTTProtocolVersion) -> None:
    """Start once the broker accepts the passwords just issued: a vehicle logging in before
    the broker loaded them is refused and reconnects, an error in the run's counts. After
    PASSWORDS_LOADED_S the run starts anyway, and its counts show the refusals."""
    deadline = time.monotonic() + PASSWORDS_LOADED_S
    told = False
    while time.monotonic() < deadline:
        answer = login_answer(address, protocol)
        if answer is not None and not answer.is_failure:
            return
        if not told:
            click.echo(
                "waiting for the broker to load the new passwords (the embedded one does so "
                "by itself; Mosquitto after `billing broker export` and a reload)",
                err=True,
            )
            told = True
        time.sleep(0.2)


def _announce(
    vehicles: int, start: dt.datetime, end: dt.datetime | None, broker: BrokerAddress, seed: int
) -> None:
    until = f"until {_utc(end)}" if end else "until Ctrl-C"
    click.echo(
        f"simulating {vehicles} vehicles from {_utc(start)} {until} to {broker.url} (seed {seed})",
        err=True,
    )


def _utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {name!r}", param_hint="--timezone") from None


def _time_window(
    now: dt.datetime,
    tz: ZoneInfo,
    backfill_from: dt.datetime | None,
    backfill_days: int | None,
    duration: float | None,
    follow: bool,
) -> tuple[dt.datetime, dt.datetime | None]:
    """(start, end) of the simulation; end None means until stopped."""
    if backfill_from and backfill_days:
        raise click.UsageError("give --backfill-from or --backfill-days, not both")
    if backfill_from:
        start = backfill_from.replace(tzinfo=tz)
    elif backfill_days:
        day = now.astimezone(tz).date() - dt.timedelta(days=backfill_days)
        start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    else:
        start = now
    if start > now:
        raise click.BadParameter("must be in the past", param_hint="--backfill-from")
    if duration is not None:
        return start, now + dt.timedelta(seconds=duration)
    return start, None if follow or start == now else now


def _vehicle_ids(
    app: AppContext, count: int | None, given: tuple[str, ...], prefix: str
) -> list[str]:
    if count and given:
        raise click.UsageError("give --vehicles or --vehicle, not both")
    ids = [f"{prefix}{n:06d}" for n in range(1, count + 1)] if count else list(given)
    if not ids:
        ids = _active_vehicles(app)
    bad = [vehicle_id for vehicle_id in ids if not VEHICLE_ID.fullmatch(vehicle_id)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a vehicle id ([A-Za-z0-9_-]{{1,64}})")
    return ids


def _active_vehicles(app: AppContext) -> list[str]:
    from billing.auth import SYSTEM
    from billing.devices.services import list_vehicles
    from billing.pagination import MAX_PER_PAGE

    ids: list[str] = []
    with app.database.session() as session:
        page = 1
        while True:
            listing = list_vehicles(session, SYSTEM, page, MAX_PER_PAGE, status="active")
            ids += [vehicle.id for vehicle in listing.items]
            if page * MAX_PER_PAGE >= listing.total:
                break
            page += 1
    if not ids:
        raise click.UsageError("the database has no active vehicle: give --vehicles or --vehicle")
    return ids


def _broker(app: AppContext, mqtt_url: str | None, gateway: str | None) -> BrokerAddress:
    from billing.broker.embedded import running_broker_url

    login = None
    if gateway is not None:
        username, colon, password = gateway.partition(":")
        if not (username and colon):
            raise click.BadParameter("expected USER:PASSWORD", param_hint="--gateway")
        login = (username, password)
    settings = app.settings
    url = mqtt_url or settings.mqtt_url or running_broker_url(settings)
    if not url:
        raise click.UsageError(
            "no broker: pass --mqtt-url, set MQTT_URL, or start `billing run` (its embedded "
            f"broker's address is kept in {settings.data_dir / 'broker'})"
        )
    try:
        broker = BrokerAddress.parse(url)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--mqtt-url") from None
    return broker if login is None else broker.with_credentials(*login)


def _issue_credentials(app: AppContext, vehicle_ids: list[str]) -> Callable[[str], tuple[str, str]]:
    """A new broker password for each vehicle, the previous one revoked."""
    from billing.auth import SYSTEM
    from billing.devices.services import issue_vehicle_credential
    from billing.errors import DomainError

    issued = {}
    with app.database.session() as session:
        for vehicle_id in vehicle_ids:
            now = dt.datetime.now(dt.UTC)
            try:
                credential, password = issue_vehicle_credential(session, SYSTEM, vehicle_id, now)
            except DomainError as error:
                hint = " (--anonymous or --gateway publish for unregistered vehicles)"
                raise click.ClickException(f"{error.message}{hint}") from None
            issued[vehicle_id] = (credential.username, password)
    click.echo(f"issued broker passwords for {len(issued)} vehicles", err=True)
    return issued.__getitem__


def _publish(
    publisher: FleetPublisher, publications: Iterator, live_until: dt.datetime | None
) -> PublishStats:
    status = _StatusLine(sys.stderr)
    with _stop_on_signals() as stop:
        try:
            with publisher:
                stats = publisher.publish(publications, stop, status.show, until=live_until)
        except BrokerRefused as error:
            raise click.ClickException(str(error)) from None
        finally:
            status.close()
    click.echo(_summary(stats), err=True)
    return stats


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM; a second signal acts as it would have."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals are only delivered to the main thread
        return
    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def request_stop(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signum, previous[signum])

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, request_stop)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _StatusLine:
    """Progress on stderr: one line refreshed in place on a terminal, else every 10 s."""

    LOG_EVERY_S = 10.0

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._terminal = stream.isatty()
        self._last_logged = time.monotonic()
        self._shown = False

    def show(self, stats: PublishStats) -> None:
        if self._terminal:
            self._stream.write(f"\r{_describe(stats)}\x1b[K")
            self._shown = True
        elif time.monotonic() - self._last_logged >= self.LOG_EVERY_S:
            self._stream.write(f"{_describe(stats)}\n")
            self._last_logged = time.monotonic()
        self._stream.flush()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")


def _describe(stats: PublishStats) -> str:
    at = f" · at {stats.simulated_at:%Y-%m-%d %H:%M}Z" if stats.simulated_at else ""
    return (
        f"published {stats.published:,} · acked {stats.acked:,} · {stats.rate:,.0f} msg/s"
        f" · errors {stats.errors:,}{at}"
    )


def _summary(stats: PublishStats) -> str:
    return (
        f"published {stats.published:,} messages ({stats.readings:,} readings) in "
        f"{stats.elapsed_s:.1f} s, {stats.rate:,.0f} msg/s; acked {stats.acked:,}, "
        f"refused {stats.refused:,}, unacked {stats.unacked:,}, "
        f"connection losses {stats.connection_losses:,}"
    )
