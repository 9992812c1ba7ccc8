"""`billing users add|link|list|disable`: the people who use the web pages."""

from __future__ import annotations

import click
from sqlalchemy import select

from billing.cli_context import AppContext, domain_failure
from billing.db import utcnow
from billing.errors import DomainError
from billing.users import services
from billing.users.models import LANGUAGES, USER_ROLES, User


@click.group()
def users() -> None:
    """Users of the web pages: customer contacts and staff."""


@users.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(USER_ROLES))
@click.option("--customer", "customer_id", help="the customer account of a contact")
@click.option("--fleet", "fleet_ids", multiple=True, help="an operator's fleet; repeat")
@click.option("--name", default="", help="how the pages greet them")
@click.option("--language", type=click.Choice(LANGUAGES), help="default: the customer's")
@click.option("--password", "ask_password", is_flag=True, help="staff: set a password (asked)")
@click.pass_obj
def add(
    app: AppContext,
    email: str,
    role: str,
    customer_id: str | None,
    fleet_ids: tuple[str, ...],
    name: str,
    language: str | None,
    ask_password: bool,
) -> None:
    """Add a user who signs in with EMAIL (a link is e-mailed to it)."""
    password = (
        click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if ask_password
        else None
    )
    with app.database.session() as session:
        try:
            user = services.add_user(
                session, email, role, utcnow(), customer_id=customer_id, fleet_ids=fleet_ids,
                name=name, language=language, password=password,
            )  # fmt: skip
        except DomainError as error:
            raise domain_failure(error) from None
        click.echo(f"added {user.id} {user.email} ({user.role})", err=True)


@users.command("link")
@click.argument("email")
@click.pass_obj
def link(app: AppContext, email: str) -> None:
    """Print a single-use sign-in link for EMAIL, alone on standard output."""
    with app.database.session() as session:
        url = services.issue_sign_in_link(
            session, app.settings, email, app.settings.portal_url, utcnow()
        )
    if url is None:
        raise click.ClickException(
            f"no link for {email}: no active user has this address, or they have "
            f"{services.MAX_OPEN_LINKS} unused links already"
        )
    click.echo(url)


@users.command("list")
@click.pass_obj
def list_users(app: AppContext) -> None:
    """List the users: id, e-mail, role, customer or fleets, state."""
    with app.database.session() as session:
        for user in session.scalars(select(User).order_by(User.created_at, User.email)):
            scope = user.customer_id or ",".join(f.id for f in user.fleets) or "-"
            state = "disabled" if user.disabled_at else "active"
            click.echo(f"{user.id}\t{user.email}\t{user.role}\t{scope}\t{state}")


@users.command("disable")
@click.argument("user_id")
@click.pass_obj
def disable(app: AppContext, user_id: str) -> None:
    """Stop USER_ID from signing in; their sessions and links end at once."""
    with app.database.session() as session:
        try:
            services.disable_user(session, user_id, utcnow())
        except DomainError as error:
            raise domain_failure(error) from None
    click.echo(f"disabled {user_id}", err=True)
