"""The pages' plumbing: the blueprint, who is signed in, the language and time zone of the
page, role checks, and errors rendered as pages."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from billing.auth import Principal
from billing.db import utcnow
from billing.devices.models import Customer
from billing.errors import DomainError
from billing.invoicing.files import File
from billing.portal import formatting, i18n, security
from billing.settings import Settings
from billing.users import services as users
from billing.users.models import User
from billing.web import db_session, writing

blp = Blueprint(
    "portal",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


def settings() -> Settings:
    return current_app.extensions["billing.settings"]


@blp.before_request
def load_page_user() -> None:
    """The signed-in user of the session cookie, and the CSRF check of a form."""
    g.page_user = None
    token = request.cookies.get(security.SESSION_COOKIE)
    if token and len(token) < 100:
        page_session = users.resume_page_session(
            db_session(), token, now(), idle_minutes=settings().portal.idle_minutes
        )
        if page_session is not None:
            if users.seen_is_stale(page_session, now()):
                with writing() as session:
                    users.mark_seen(session, page_session, now())
            g.page_user = page_session.user
            # billing.web.current_principal() answers this for the pages' service calls.
            g.principal = users.principal_of(page_session.user)
    security.check_csrf()


@blp.after_request
def secure(response: BaseResponse) -> BaseResponse:
    return security.secure_response(response)


def page_user() -> User | None:
    return g.get("page_user")


def principal() -> Principal:
    return g.principal


def language() -> str:
    """The page's language: the user's (or their customer's), else the browser's."""
    if "language" not in g:
        user = page_user()
        if user is not None:
            customer = db_session().get(Customer, user.customer_id) if user.customer_id else None
            g.language = users.user_language(user, customer)
        else:
            g.language = request.accept_languages.best_match(i18n.LANGUAGES) or "en"
    return g.language


def zone(customer: Customer | None = None) -> ZoneInfo:
    """Times are shown in the customer's zone; staff pages in the default zone."""
    return ZoneInfo(customer.timezone if customer else settings().default_timezone)


def signed_in(*allowed: str) -> Callable:
    """The page needs a signed-in user of one of these roles: anonymous visitors go to the
    sign-in page (and come back), other roles get 403."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = page_user()
            if user is None:
                target = request.full_path if request.method == "GET" else None
                return redirect(url_for("portal.sign_in", next=target))
            if user.role not in allowed:
                return error_page(
                    403, i18n.translate(language(), "This page is not for your role.")
                )
            return view(*args, **kwargs)

        wrapper.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the access-matrix test
        return wrapper

    return decorator


def home_url(user: User) -> str:
    if user.role == "customer":
        return url_for("portal.overview", customer_id=user.customer_id)
    if user.role == "operator":
        return url_for("portal.fleets")
    return url_for("portal.finance_invoices")


def render(template: str, code: int = 200, /, **context: Any) -> tuple[str, int]:
    """The page `template` with `context`, answered with HTTP status `code`."""
    return render_template(f"portal/{template}", **context), code


def download(file: File) -> Response:
    """A file to save (an invoice's PDF, an export), as the API answers it."""
    return Response(
        file.content,
        content_type=file.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"'},
    )


def error_page(status: int, message: str) -> tuple[str, int]:
    return render("error.html", status, status=status, message=message)


@blp.errorhandler(DomainError)
def domain_error(error: DomainError) -> tuple[str, int]:
    return error_page(error.status, error.message)


@blp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int]:
    return error_page(error.code or 500, error.description or error.name)


@blp.app_template_global("_")
def translate(message: str, **values: Any) -> str:
    return i18n.translate(language(), message, **values)


@blp.app_template_global()
def csrf_token() -> str:
    return security.csrf_token()


@blp.app_context_processor
def page_context() -> dict[str, Any]:
    return {"page_user": page_user, "language": language, "fmt": Formatter(language())}


class Formatter:
    """The formatting functions of billing.portal.formatting in the page's language:
    `fmt.money(amount, currency)` in a template."""

    def __init__(self, language: str):
        self._language = language

    def __getattr__(self, name: str) -> Callable:
        bound = functools.partial(getattr(formatting, name), language=self._language)
        setattr(self, name, bound)  # looked up once per page
        return bound


def now() -> dt.datetime:
    """The pages' clock: the application's `billing.clock` when set (tests fix it), else
    the system's."""
    clock = current_app.extensions.get("billing.clock", utcnow)
    return clock()
