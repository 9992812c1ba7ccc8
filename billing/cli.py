"""The `billing` command: one entry point for every role and chore.

`billing run` starts everything on one machine; production runs one role per process
(`billing serve`, `billing ingest`, `billing schedule`).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import click

from billing import wiring
from billing.broker.commands import broker
from billing.cli_context import AppContext, pass_context
from billing.components.commands import bom, components, plans_derive
from billing.db import utcnow
from billing.invoicing.commands import invoices
from billing.metering.commands import usage
from billing.net import free_port
from billing.pricing.commands import describe, load_plan_files, plans
from billing.simulation.commands import simulate
from billing.statements.commands import statement
from billing.users.commands import users

if TYPE_CHECKING:
    from billing.broker.embedded import EmbeddedBroker
    from billing.supervisor import Supervisor


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Usage billing for scooters rented by use."""
    app = ctx.ensure_object(AppContext)
    app.extensions.update(wiring.extensions())
    ctx.call_on_close(app.close)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(app: AppContext, revision: str) -> None:
    """Apply the migrations up to REVISION."""
    from billing import migrate

    migrate.upgrade(app.database.engine, revision)
    click.echo(f"database at {revision}", err=True)


@db.command("downgrade")
@click.argument("revision")
@pass_context
def db_downgrade(app: AppContext, revision: str) -> None:
    """Revert the migrations down to REVISION ("base" for an empty database)."""
    from billing import migrate

    migrate.downgrade(app.database.engine, revision)
    click.echo(f"database at {revision}", err=True)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option(
    "--role", required=True, type=click.Choice(["admin", "operator", "finance", "customer"])
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="customer id (customer) or fleet id (operator); repeat for several fleets",
)
@click.option("--name", default="", help="a label to recognise the key by")
@pass_context
def keys_create(app: AppContext, role: str, scopes: tuple[str, ...], name: str) -> None:
    """Create a key and print it, alone, on standard output. It is not shown again."""
    from billing.api_keys import create_api_key
    from billing.auth import InvalidScope

    customer_id = scopes[0] if role == "customer" and scopes else None
    if role == "customer" and len(scopes) > 1:
        raise click.UsageError("a customer key has exactly one --scope: the customer id")
    fleet_ids = scopes if role == "operator" else ()
    if role in ("admin", "finance") and scopes:
        raise click.UsageError(f"{role} keys are not scoped; drop --scope")
    with app.database.session() as session:
        try:
            key, plain = create_api_key(
                session, role, customer_id=customer_id, fleet_ids=fleet_ids, name=name
            )
        except InvalidScope as error:
            raise click.UsageError(str(error)) from None
    click.echo(f"created key {key.id} ({role})", err=True)
    click.echo(plain)


@keys.command("list")
@pass_context
def keys_list(app: AppContext) -> None:
    """List keys (their hints, never the keys)."""
    from sqlalchemy import select

    from billing.api_keys import ApiKey

    with app.database.session() as session:
        for key in session.scalars(select(ApiKey).order_by(ApiKey.created_at)):
            scope = key.customer_id or ",".join(f.id for f in key.fleets) or "-"
            state = "revoked" if key.revoked_at else "active"
            click.echo(f"{key.id}\t{key.role}\t{scope}\t{key.hint}…\t{state}\t{key.name}")


@keys.command("revoke")
@click.argument("key_id")
@pass_context
def keys_revoke(app: AppContext, key_id: str) -> None:
    """Revoke a key at once."""
    from billing.api_keys import revoke_api_key

    with app.database.session() as session:
        if not revoke_api_key(session, key_id, utcnow()):
            raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked {key_id}", err=True)


@main.command()
@click.option("--host", default=None, help="default: settings http_host")
@click.option("--port", default=None, type=int, help="default: settings http_port")
@click.option("--threads", default=8, show_default=True)
@pass_context
def serve(app: AppContext, host: str | None, port: int | None, threads: int) -> None:
    """Serve the HTTP API (production web role)."""
    host = host or app.settings.http_host
    port = port if port is not None else app.settings.http_port
    _serve_http(app, host, port, threads)


@main.command()
@click.option("--mqtt-url", default=None, help="default: MQTT_URL")
@click.option(
    "--protocol",
    type=click.Choice(["5", "3.1.1"]),
    default="5",
    show_default=True,
    help="3.1.1 for brokers without MQTT 5 (no shared subscription then)",
)
@click.option("--metrics-port", type=int, default=None, help="serve Prometheus metrics here")
@pass_context
def ingest(app: AppContext, mqtt_url: str | None, protocol: str, metrics_port: int | None) -> None:
    """Consume telemetry from the broker and store it (production ingest role)."""

    import paho.mqtt.client as mqtt
    from prometheus_client import start_http_server

    from billing.mqtt import BrokerAddress
    from billing.telemetry.ingest import IngestConsumer, ingest_directory

    url = mqtt_url or app.settings.mqtt_url
    if not url:
        raise click.UsageError("no broker: set MQTT_URL or pass --mqtt-url")
    consumer = IngestConsumer(
        app.database,
        BrokerAddress.parse(url),
        app.settings.ingest,
        protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
        inflight_directory=ingest_directory(app.settings),
        heartbeat_seconds=app.settings.health.heartbeat_seconds,
    )
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=consumer.metrics.registry)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: consumer.stop())
    click.echo(
        f"ingesting from {BrokerAddress.parse(url).url} as {consumer.subscription}", err=True
    )
    consumer.run()


@main.command()
@click.option("--no-simulator", is_flag=True, help="do not feed the demo fleet")
@pass_context
def run(app: AppContext, no_simulator: bool) -> None:
    """Run everything on this machine: migrate, seed a demo, start the broker (unless
    MQTT_URL is set), the ingest, the scheduler and the simulator, and serve the API."""
    demo = _prepare_demo(app)
    broker = _broker_for_run(app)
    children = _start_children(app, broker, simulator=not no_simulator)
    port = free_port(app.settings.http_host, app.settings.http_port)
    _print_addresses(app, port, demo, broker, children)
    _serve_until_stopped(app, port, children.supervisor, broker)


@dataclass(frozen=True)
class DemoAccess:
    """How a newcomer gets into the demo: the admin key and the demo users' e-mails
    (a customer contact, then finance)."""

    admin_key: str
    user_emails: tuple[str, str]


@dataclass(frozen=True)
class RunBroker:
    """The broker of `billing run`: the embedded one it started (None when MQTT_URL names
    one), the ingest's URL to it and the MQTT protocol to speak ("5" or "3.1.1")."""

    embedded: EmbeddedBroker | None
    url: str
    protocol: str


@dataclass(frozen=True)
class Children:
    """The supervised processes of `billing run` and the port of the ingest's metrics."""

    supervisor: Supervisor
    metrics_port: int


def _prepare_demo(app: AppContext) -> DemoAccess:
    """Migrate, load the example plans, seed the demo once (its previous month invoiced)."""
    from billing import migrate
    from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
    from billing.simulation.demo import demo_admin_key, demo_users, seed_demo, seed_demo_history

    settings = app.settings
    migrate.upgrade(app.database.engine)
    with app.database.session() as session:
        for loaded in load_plan_files(session, DEFAULT_PLANS_DIRECTORY):
            click.echo(describe(loaded), err=True)
        if seed_demo(session, utcnow()):
            click.echo("seeded the demo customer, fleet and vehicles", err=True)
            number = seed_demo_history(session, settings, utcnow())
            if number:
                click.echo(f"invoiced the demo's previous month: {number}", err=True)
        key = demo_admin_key(session, settings.data_dir)
        demo_emails = demo_users(session, utcnow())
    return DemoAccess(key, demo_emails)


def _start_children(app: AppContext, broker: RunBroker, *, simulator: bool) -> Children:
    """Start the ingest, the scheduler and (on the embedded broker) the demo simulator,
    watched: a child that keeps dying stops `billing run`."""
    from billing.simulation.demo import DEMO_VEHICLES
    from billing.supervisor import Supervisor

    settings = app.settings
    environment = {
        "DATABASE_URL": settings.effective_database_url,
        "MQTT_URL": broker.url,
        "BILLING_DATA_DIR": str(settings.data_dir.resolve()),
    }
    supervisor = Supervisor(
        settings.data_dir / "logs", on_give_up=lambda _child: os.kill(os.getpid(), signal.SIGTERM)
    )
    metrics_port = free_port(settings.http_host, 0)
    ingest_args = ["ingest", "--protocol", broker.protocol, "--metrics-port", str(metrics_port)]
    supervisor.add("ingest", ingest_args, environment)
    supervisor.add("scheduler", ["schedule"], environment)
    if simulator and broker.embedded is not None:
        simulation = _demo_simulation(DEMO_VEHICLES, broker.embedded, broker.protocol)
        supervisor.add("simulator", simulation, environment)
    supervisor.start_watching()
    return Children(supervisor, metrics_port)


def _print_addresses(
    app: AppContext, port: int, demo: DemoAccess, broker: RunBroker, children: Children
) -> None:
    settings = app.settings
    click.echo(f"Billing API:  http://{settings.http_host}:{port}")
    click.echo(f"Admin key:    {demo.admin_key}")
    pages_url = settings.portal.base_url or f"http://{settings.http_host}:{port}"
    for label, email in zip(("Customer page:", "Finance page: "), demo.user_emails, strict=True):
        click.echo(f"{label} {_sign_in_link(app, email, pages_url)}")
    click.echo(f"MQTT broker:  {broker.embedded.address.url if broker.embedded else broker.url}")
    click.echo(f"Ingest stats: http://127.0.0.1:{children.metrics_port}/metrics")
    click.echo(f"Logs:         {settings.data_dir / 'logs'}")
    click.echo(
        f"Try:          curl -H 'Authorization: Bearer {demo.admin_key}' "
        f"http://{settings.http_host}:{port}/api/v1/customers"
    )


def _serve_until_stopped(
    app: AppContext, port: int, supervisor: Supervisor, broker: RunBroker
) -> None:
    """Serve the API until interrupted (or a child gives up), then stop the children and
    the embedded broker; fail naming the child that could not come up."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _serve_http(app, app.settings.http_host, port, threads=8)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping…", err=True)
        supervisor.stop()
        if broker.embedded is not None:
            broker.embedded.stop()
    if supervisor.gave_up is not None:
        child = supervisor.gave_up
        raise click.ClickException(
            f"{child.name} could not come up: it died {child.deaths_in_a_row} times in a row "
            f"(see {child.log_file})"
        )


def _sign_in_link(app: AppContext, email: str, base_url: str) -> str:
    """A single-use sign-in link for the demo user `email` (it works once, for minutes)."""
    from billing.users.services import issue_sign_in_link

    with app.database.session() as session:
        url = issue_sign_in_link(session, app.settings, email, base_url, utcnow())
    return url or f"none: {email} has unused links already (`billing users link {email}`)"


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def _broker_for_run(app: AppContext) -> RunBroker:
    """The embedded broker and the ingest's URL to it, or MQTT_URL's broker as it is."""
    import paho.mqtt.client as mqtt

    from billing.broker.factory import start_embedded_broker
    from billing.broker.rules import registry_accounts

    if app.settings.mqtt_url:
        return RunBroker(None, app.settings.mqtt_url, "5")
    broker = start_embedded_broker(app.settings, registry_accounts(app.database))
    address = broker.address
    url = (
        f"mqtt://{quote(address.username or '', safe='')}:{quote(address.password or '', safe='')}"
        f"@{address.host}:{address.port}"
    )
    return RunBroker(broker, url, "5" if broker.protocol == mqtt.MQTTv5 else "3.1.1")


def _demo_simulation(vehicle_ids: list[str], broker: EmbeddedBroker, protocol: str) -> list[str]:
    """Backfill the demo fleet from the first of the month, then ride on live (the
    previous month is the demo's history, seeded and invoiced at the first start).

    A fixed seed and start make a restart republish the same readings (stored once) and
    carry the counters on, instead of inventing a new history.
    """
    from billing.simulation.demo import DEMO_SEED

    first = utcnow().date().replace(day=1).isoformat()
    vehicles = [arg for vehicle_id in vehicle_ids for arg in ("--vehicle", vehicle_id)]
    return [
        "simulate", *vehicles, "--mqtt-url", broker.address.url, "--protocol", protocol,
        "--backfill-from", first, "--follow", "--seed", str(DEMO_SEED),
    ]  # fmt: skip


def _serve_http(app: AppContext, host: str, port: int, threads: int) -> None:
    import gc
    import logging

    from billing import create_app
    from billing.http_server import HttpServer

    flask_app = create_app(app.settings, app.database)
    # The application's objects live as long as the process: out of the collector's reach,
    # a full collection scans only what requests left behind (a 110 ms pause every few
    # dozen statements became under 1 ms; bench/statements.py).
    gc.freeze()
    click.echo(f"serving on http://{host}:{port}", err=True)
    logging.basicConfig()  # as waitress.serve did: its warnings reach stderr
    server = HttpServer(
        flask_app,
        host,
        port,
        threads=threads,
        max_request_bytes=app.settings.http_max_request_bytes,
    )
    server.run()


@main.command()
@pass_context
def schedule(app: AppContext) -> None:
    """Run the periodic jobs: metering, period close and invoicing (scheduler role)."""

    from billing import heartbeats
    from billing.scheduler import build_scheduler, stop_on_signal

    scheduler = build_scheduler(app.database, app.settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_on_signal(scheduler))
    click.echo("scheduler running", err=True)
    scheduler.start()
    with app.database.session() as session:
        heartbeats.forget(session, heartbeats.SCHEDULER, heartbeats.instance_name("scheduler"))


main.add_command(broker)
main.add_command(bom)
main.add_command(components)
main.add_command(simulate)
main.add_command(plans)
plans.add_command(plans_derive)
main.add_command(usage)
main.add_command(statement)
main.add_command(invoices)
main.add_command(users)

if __name__ == "__main__":
    sys.exit(main())
