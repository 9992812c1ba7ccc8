"""The HTTP plumbing shared by every domain's views: the API object, authentication,
the database session of a request, pagination arguments and the error format.

Every error leaves as {"error": {"code", "message", "details"}}, where `details` maps the
path of each faulty field ("address.postal_code", "charges.1.tiers.0.up_to") to messages.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma
from flask import current_app, g, jsonify, request
from flask_smorest import Api as SmorestApi
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from billing.auth import Principal, authenticate
from billing.db import Database
from billing.errors import DomainError, Forbidden
from billing.pagination import MAX_PER_PAGE, Page

log = logging.getLogger(__name__)


class Api(SmorestApi):
    def handle_http_exception(self, error: HTTPException) -> Any:
        data = getattr(error, "data", None) or {}
        messages = data.get("errors") or data.get("messages") or {}
        details = flatten_errors(_without_location(messages))
        message = data.get("message") or _summary(error, details)
        response = jsonify(
            {"error": {"code": _code(error), "message": message, "details": details}}
        )
        response.status_code = error.code or 500
        for name, value in (data.get("headers") or {}).items():
            response.headers[name] = value
        return response


def _code(error: HTTPException) -> str:
    if error.code == 422:
        return "validation_error"
    return (error.name or "error").lower().replace(" ", "_").replace("'", "")


def _summary(error: HTTPException, details: Mapping[str, list[str]]) -> str:
    if details:
        fields = ", ".join(sorted(details))
        return f"invalid request: {fields}"
    return error.description or error.name or "error"


def _without_location(messages: Mapping[str, Any]) -> Mapping[str, Any]:
    """webargs groups errors by location ({"json": {...}}); the body's fields need no prefix."""
    flat: dict[str, Any] = {}
    for location, errors in messages.items():
        if location == "json" and isinstance(errors, Mapping):
            flat.update(errors)
        elif isinstance(errors, Mapping):
            flat.update({f"{location}.{field}": value for field, value in errors.items()})
        else:
            flat[location] = errors
    return flat


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested marshmallow errors → {"a.b.0.c": ["message", ...]}."""
    if isinstance(errors, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            path = str(key) if key != "_schema" else ""
            joined = f"{prefix}.{path}" if prefix and path else prefix or path
            flat.update(flatten_errors(value, joined))
        return flat
    if isinstance(errors, list | tuple):
        if all(isinstance(item, str) for item in errors):
            return {prefix or "_schema": list(errors)}
        flat = {}
        for item in errors:
            flat.update(flatten_errors(item, prefix))
        return flat
    return {prefix or "_schema": [str(errors)]}


def handle_domain_error(error: DomainError) -> Any:
    response = jsonify(
        {"error": {"code": error.code, "message": error.message, "details": error.details}}
    )
    response.status_code = error.status
    return response


def handle_unexpected_error(error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    response = jsonify(
        {"error": {"code": "internal_error", "message": "internal error", "details": {}}}
    )
    response.status_code = 500
    return response


# --- per-request state -------------------------------------------------------------------


def database() -> Database:
    return current_app.extensions["billing.db"]


def db_session() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
    return g.db_session


def close_db_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401


def current_principal() -> Principal:
    if "principal" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        principal = authenticate(db_session(), key.strip())
        if principal is None:
            raise Unauthenticated("invalid or revoked API key")
        g.principal = principal
    return g.principal


def roles(*allowed: str) -> Callable:
    """Let only keys of these roles call the view; others get 403 (scope is checked later)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal.role not in allowed:
                raise Forbidden(
                    f"role {principal.role} may not {request.method} {request.path}; "
                    f"allowed: {', '.join(allowed)}"
                )
            return view(*args, **kwargs)

        wrapper.allowed_roles = allowed  # read by the access-matrix test and the docs
        return wrapper

    return decorator


# --- shared schemas ----------------------------------------------------------------------


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(
        load_default=50, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE)
    )


def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The envelope of a listing of `item_schema` items."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "page": ma.fields.Integer(),
            "per_page": ma.fields.Integer(),
            "total": ma.fields.Integer(),
        },
        name=f"{item_schema.__name__.removesuffix('Schema')}Page",
    )


def page_body(page: Page) -> dict[str, Any]:
    return {"items": page.items, "page": page.page, "per_page": page.per_page, "total": page.total}
