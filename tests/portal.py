"""Helpers of the web pages' tests: signed-in test clients and the CSRF token of a page."""

from __future__ import annotations

import datetime as dt
import re

from flask import Flask
from flask.testing import FlaskClient

from billing.portal import security
from billing.users import services as users
from billing.users.models import User

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def fix_clock(app: Flask, now: dt.datetime) -> None:
    """The pages read this instant as now."""
    app.extensions["billing.clock"] = lambda: now


def signed_in_client(app: Flask, session, user: User, now: dt.datetime) -> FlaskClient:
    """A test client with a page session of `user` started at `now`."""
    client = app.test_client()
    client.set_cookie(security.SESSION_COOKIE, users.start_page_session(session, user, now))
    return client


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    """The CSRF token of the forms of `path` (the client keeps the cookie it goes with)."""
    page = client.get(path)
    found = CSRF.search(page.get_data(as_text=True))
    assert found, f"no CSRF token in {path} ({page.status_code})"
    return found.group(1)


def form_post(client: FlaskClient, path: str, data: dict | None = None, *, page: str = "/sign-in"):
    """POST `data` to `path` with the CSRF token of `page`'s forms."""
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})})
