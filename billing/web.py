"""The HTTP plumbing shared by every domain's views: the API object, authentication,
the database session of a request, pagination arguments and the error format.

Every error leaves as {"error": {"code", "message", "details"}}, where `details` maps the
path of each faulty field ("address.postal_code", "charges.1.tiers.0.up_to") to messages.

Request bodies are bounded before anything reads them: a body over the size limit is
answered 413 from its Content-Length (or as soon as a chunked body passes the limit), before
authentication; a JSON body is decoded by `decode_json_body`, which refuses nesting deeper
than MAX_JSON_DEPTH and strings that no UTF-8 store can hold. The telemetry endpoint reads
its body raw and decodes it with the telemetry contract's own bounds, so that a bad body
becomes a rejected message instead of an error.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import current_app, g, has_request_context, jsonify, request
from flask_smorest import Api as SmorestApi
from sqlalchemy.orm import Session
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from billing.auth import Principal
from billing.db import READ_ONLY, Database
from billing.errors import DomainError, Forbidden, Invalid, NotFound
from billing.pagination import MAX_PAGE, MAX_PER_PAGE, Page

log = logging.getLogger(__name__)


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "validation_error"})
    message = ma.fields.String(required=True, metadata={"example": "invalid request: name"})
    details = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        required=True,
        metadata={
            "description": "field path (`address.city`, `query.page`) → messages",
            "example": {"name": ["must not be blank"]},
        },
    )


class ErrorSchema(ma.Schema):
    """What every error answers: {"error": {"code", "message", "details"}}."""

    error = ma.fields.Nested(ErrorBodySchema, required=True)


# The errors any operation may answer: a missing or revoked key (401), a role that may not
# (403), an id that names nothing the key may see (404), a body over the size limit (413),
# a field or query parameter out of its rules (422). Malformed JSON is 400.
COMMON_ERRORS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
}


class ErrorResponsesPlugin(BasePlugin):
    """Documents the common errors on every operation, in the format they really have."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, name in COMMON_ERRORS.items():
                if status not in responses and str(status) not in responses:
                    responses[status] = name


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema

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


# --- request bodies ----------------------------------------------------------------------

MAX_JSON_DEPTH = 32
# A row id in a URL: a positive 64-bit integer; anything longer is no row of ours (404).
ROW_ID = "int(min=1, max=9223372036854775807)"


def refuse_oversized_body() -> None:
    """Answer 413 from the declared length, before the body is read or the key checked.

    Bodies without a length (chunked) are cut by MAX_CONTENT_LENGTH while they are read.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(
            f"the request body has {request.content_length} bytes; the limit is {limit}"
        )


def refuse_nul_in_url() -> None:
    """No id or filter holds NUL, and PostgreSQL cannot even compare one: 404 in the path,
    422 naming the parameter in the query."""
    if "\x00" in request.path:
        raise NotFound("resource", "with NUL in its path")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise Invalid("a query parameter holds NUL", {f"query.{name}": ["holds NUL"]})


class MalformedBody(DomainError):
    code = "malformed_json"
    status = 400

    def __init__(self, message: str, path: str = "json"):
        super().__init__(message, {path: [message]})


def decode_json_body(body: bytes) -> Any:
    """A request body decoded as I-JSON (RFC 7493), within bounds.

    MalformedBody (400) for bytes that are not UTF-8, text that is not JSON (NaN and
    Infinity included), integers of more digits than Python converts, and nesting deeper
    than MAX_JSON_DEPTH; Invalid (422, naming the field) for a NUL or a lone surrogate in
    any string, which no text column can hold (PostgreSQL refuses NUL; no UTF-8 store
    takes a lone surrogate), whatever field the string is bound for.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedBody(f"the body is not UTF-8 (byte {error.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        # The decoder recurses once per level; it gives up cleanly long before the stack.
        value = _TOO_DEEP
    except ValueError as error:
        raise MalformedBody(f"the body is not valid JSON: {error}") from None
    if value is _TOO_DEEP or _nesting_depth(value) > MAX_JSON_DEPTH:
        raise MalformedBody(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    if _UNSTORABLE_ESCAPE.search(text):
        for path, string in _strings(value, ""):
            found = _UNSTORABLE.search(string)
            if found is not None:
                kind = "NUL" if found.group() == "\x00" else "a lone surrogate"
                message = f"holds {kind} U+{ord(found.group()):04X} at position {found.start()}"
                raise Invalid(f"{path}: a string no text column can hold", {path: [message]})
    return value


_TOO_DEEP = object()
# Only escapes can put these in decoded text: JSON refuses raw control characters, and
# UTF-8 has no surrogates.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded body (0 for a scalar); iterative."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth) for child in children)
    return deepest


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string of a decoded body (keys included) with its field path."""
    if isinstance(value, str):
        yield path or "json", value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            yield inner, key
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}" if path else str(index))


def request_body() -> bytes:
    """The request's body, 413 when it passes the size limit, whether it declared its
    length (refused before reading: `refuse_oversized_body`) or not (chunked).

    Werkzeug stops a body without a length at MAX_CONTENT_LENGTH and returns what it read;
    one more byte asked for tells whether the body went on (then it raises 413).
    """
    body = request.get_data(cache=True)
    if request.content_length is None and len(body) >= current_app.config["MAX_CONTENT_LENGTH"]:
        request.stream.read(1)
    return body


class BoundedParser(FlaskParser):
    """webargs' Flask parser with JSON bodies decoded by `decode_json_body`."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return webargs_core.missing
        body = request_body()
        return decode_json_body(body) if body else webargs_core.missing


class Blueprint(flask_smorest.Blueprint):
    """The API's blueprints: their arguments go through the bounded parser."""

    ARGUMENTS_PARSER = BoundedParser()


# --- per-request state -------------------------------------------------------------------


def database() -> Database:
    return current_app.extensions["billing.db"]


# Requests that change nothing: their session only reads (Database.reading), so that on
# SQLite a page or an API read never holds the write lock the ingest commits with.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def db_session() -> Session:
    """The request's session, opened on first use and closed when the request ends: a
    read-only one for a GET, HEAD or OPTIONS request (a write in it is a bug and raises)."""
    if "db_session" not in g:
        reads_only = has_request_context() and request.method in READING_METHODS
        opened = database().read_only_sessionmaker if reads_only else database().sessionmaker
        g.db_session = opened()
    return g.db_session


@contextmanager
def writing() -> Iterator[Session]:
    """A session that may write, in a request of any method: the request's own when it may
    write, else a short one beside it (a GET's session only reads)."""
    session = db_session()
    if not session.info.get(READ_ONLY):
        yield session
        return
    with database().session() as writer:
        yield writer


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
        authenticate = current_app.extensions["billing.authenticate"]
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

        wrapper.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the access-matrix test and the docs
        return wrapper

    return decorator


# --- shared schemas ----------------------------------------------------------------------


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
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
