"""What every `billing` command shares: the application context and small click helpers.

Command modules (`billing/*/commands.py`) import this module, never `billing.cli`, which
imports them to register their groups.
"""

from __future__ import annotations

import click

from billing.db import Database
from billing.errors import DomainError
from billing.settings import Settings, load_settings


class AppContext:
    """Settings and database, created on first use so that `--help` needs neither, and the
    functions the packages are given at start (`billing.wiring`), as in Flask's
    `app.extensions`."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._database: Database | None = None
        self.extensions: dict[str, object] = {}

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            self._settings.data_dir.mkdir(parents=True, exist_ok=True)
        return self._settings

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.from_url(self.settings.effective_database_url)
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.engine.dispose()


pass_context = click.make_pass_decorator(AppContext, ensure=True)


def domain_failure(error: DomainError) -> click.ClickException:
    """A domain error as the command's failure: its message, then one line per field."""
    lines = [error.message]
    lines += [f"  {path}: {'; '.join(messages)}" for path, messages in error.details.items()]
    return click.ClickException("\n".join(lines))
