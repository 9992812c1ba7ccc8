"""`billing broker`: the files a production Mosquitto needs from the registry."""

from __future__ import annotations

from pathlib import Path

import click

from billing.cli_context import AppContext
from billing.mqtt import BrokerAddress


@click.group()
def broker() -> None:
    """The MQTT broker's logins and access rules."""


@broker.command("export")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where to write password_file and acl_file (default: <data_dir>/broker)",
)
@click.pass_obj
def broker_export(app: AppContext, directory: Path | None) -> None:
    """Write Mosquitto's password_file and acl_file from the active broker credentials.

    The ingest account is the one MQTT_URL names (mqtt://USER:PASSWORD@host). Run this
    after issuing or revoking credentials, then make Mosquitto re-read the files with
    SIGHUP (`systemctl reload mosquitto`; `broker.reload_command` runs it for you, as
    the scheduler does when a scheduled fleet move takes effect). The files are written
    0600 and keep the owner of the files they replace, so chown them to Mosquitto's user
    once.
    """
    from billing.broker.rules import export_registry_broker_files

    try:
        accounts, files = export_registry_broker_files(app.database, app.settings, directory)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    username = app.settings.broker.ingest_username
    if app.settings.mqtt_url:
        username = BrokerAddress.parse(app.settings.mqtt_url).username or username
    click.echo(f"exported {len(accounts.accounts)} broker logins and {username}", err=True)
    for path in files:
        click.echo(path)
