"""`billing broker`: the files a production Mosquitto needs from the registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from billing.cli import AppContext


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
    SIGHUP (`systemctl reload mosquitto`). The files are written 0600 and keep the owner
    of the files they replace, so chown them to Mosquitto's user once.
    """
    from billing.broker import broker_directory, export_broker_files, ingest_credentials
    from billing.devices.credentials import CHOSEN_PASSWORD_ITERATIONS, mosquitto_hash
    from billing.devices.services import broker_accounts

    try:
        username, password = ingest_credentials(app.settings)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    with app.database.session() as session:
        accounts = broker_accounts(session)
    files = export_broker_files(
        accounts,
        directory or broker_directory(app.settings),
        username,
        mosquitto_hash(password, iterations=CHOSEN_PASSWORD_ITERATIONS),
    )
    click.echo(f"exported {len(accounts.accounts)} broker logins and {username}", err=True)
    for path in files:
        click.echo(path)
