"""Signing in (by e-mailed link, or a staff password) and out."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from billing.mail import MailError
from billing.portal import i18n, security
from billing.portal.web import blp, home_url, language, now, page_user, render, settings
from billing.users import services as users
from billing.web import db_session

MAX_FIELD = 1024  # an address or password longer than this is no user's


def _field(name: str) -> str:
    return request.form.get(name, "")[:MAX_FIELD]


def _next() -> str:
    return security.safe_next(request.values.get("next"), "")


@blp.get("/")
def home() -> Any:
    user = page_user()
    return redirect(home_url(user) if user else url_for("portal.sign_in"))


@blp.get("/sign-in")
def sign_in() -> Any:
    return render("sign_in.html", next=_next())


@blp.post("/sign-in")
def send_link() -> Any:
    """E-mail a link (the page says the same whether the address is known or not)."""
    email = _field("email").strip()
    # Never the request's Host header: a forged one would e-mail a link to another site.
    base_url = settings().portal_url
    try:
        users.email_sign_in_link(db_session(), settings(), email, base_url, now())
    except MailError:
        message = i18n.translate(
            language(), "The mail could not be sent; try again in a few minutes."
        )
        return render("sign_in.html", 503, next=_next(), error=message, email=email)
    sent = i18n.translate(
        language(),
        "If {email} is the address of an account, a sign-in link is on its way. It works "
        "once, for {minutes} minutes.",
        email=email,
        minutes=settings().portal.link_minutes,
    )
    return render("sign_in.html", next=_next(), sent=sent)


@blp.post("/sign-in/password")
def sign_in_with_password() -> Any:
    user = users.check_password(db_session(), _field("email"), _field("password"))
    if user is None:
        message = i18n.translate(language(), "Wrong address or password.")
        return render("sign_in.html", 401, next=_next(), error=message, email=_field("email"))
    return _start_session(user)


@blp.get("/sign-in/link/<path:token>")
def confirm_link(token: str) -> Any:
    """The link's page asks for a click: mail scanners that open links must not use it up."""
    return render("confirm_link.html", token=token[:MAX_FIELD], next=_next())


@blp.post("/sign-in/link/<path:token>")
def redeem_link(token: str) -> Any:
    try:
        user = users.redeem_sign_in_link(
            db_session(), token[:MAX_FIELD], now(), secret_key=settings().effective_secret_key
        )
    except users.InvalidLink as error:
        message = i18n.translate(language(), _LINK_MESSAGES.get(str(error), str(error)))
        return render("sign_in.html", 400, next="", error=message)
    return _start_session(user)


_LINK_MESSAGES = {
    "this sign-in link is not valid": "This sign-in link is not valid.",
    "this sign-in link has been used already": "This sign-in link has been used already.",
    "this sign-in link has expired": "This sign-in link has expired.",
}


def _start_session(user) -> Any:
    old = request.cookies.get(security.SESSION_COOKIE)
    if old:
        users.end_page_session(db_session(), old, now())
    token = users.start_page_session(db_session(), user, now())
    response = redirect(_next() or home_url(user))
    security.set_cookie(response, security.SESSION_COOKIE, token)
    return response


@blp.post("/sign-out")
def sign_out() -> Any:
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        users.end_page_session(db_session(), token, now())
    response = redirect(url_for("portal.sign_in", signed_out=1))
    security.clear_cookie(response, security.SESSION_COOKIE)
    return response
