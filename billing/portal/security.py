"""What keeps the pages safe: the page-session cookie, CSRF tokens on every form, a
`next=` that stays on this site, and the security headers of every page.

- The session cookie holds a random token (its digest is in the database: see
  billing.users.services); HttpOnly, SameSite=Lax, Secure when the request came over HTTPS.
- CSRF: a random value in its own cookie (set on any page that lacks it), and in every form
  the HMAC of it under the application's secret. A POST passes only when the form's token
  is the HMAC of the cookie sent with it: another site can neither read the cookie nor
  compute the HMAC, and SameSite=Lax keeps the cookie off its cross-site POSTs anyway.
- Pages load nothing from elsewhere and run no inline script: the CSP says so, and that no
  other site may frame them (clickjacking).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import current_app, g, request
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

SESSION_COOKIE = "billing_session"
CSRF_COOKIE = "billing_csrf"
CSRF_FIELD = "csrf_token"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Sign-in links carry their token in the URL: it must not leave in a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class CsrfRefused(BadRequest):
    description = (
        "This form was not sent from this site's page, or its page has expired: "
        "go back, reload the page and send the form again."
    )


def _csrf_secret() -> bytes:
    return current_app.config["SECRET_KEY"].encode()


def _csrf_seed() -> str:
    """The CSRF cookie's value, made for this response when the browser has none."""
    if "csrf_seed" not in g:
        seed = request.cookies.get(CSRF_COOKIE, "")
        g.csrf_seed_is_new = len(seed) != 43  # token_urlsafe(32)
        g.csrf_seed = secrets.token_urlsafe(32) if g.csrf_seed_is_new else seed
    return g.csrf_seed


def csrf_token() -> str:
    """The token a form of this page carries (templates call it)."""
    return hmac.new(_csrf_secret(), _csrf_seed().encode(), hashlib.sha256).hexdigest()


def check_csrf() -> None:
    """Refuse (400) a POST whose form token is not the HMAC of its CSRF cookie."""
    if request.method != "POST":
        return
    seed = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not seed or not sent:
        raise CsrfRefused()
    expected = hmac.new(_csrf_secret(), seed.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace")):
        raise CsrfRefused()


def secure_response(response: Response) -> Response:
    """The security headers, and the CSRF cookie when this page made one."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if g.get("csrf_seed_is_new"):
        set_cookie(response, CSRF_COOKIE, g.csrf_seed)
    return response


def set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="Lax", secure=request.is_secure, path="/"
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, httponly=True, samesite="Lax", secure=request.is_secure, path="/")


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a path of this site, else `default`: a `next=` must not send
    a user who just signed in to another site (open redirect).

    Only an absolute path is kept: no scheme, no host, and none of the spellings browsers
    read as another host ("//evil", "/\\evil", control characters).
    """
    if not target or len(target) > 2000:
        return default
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(char) < 0x20 or char in "\\\x7f" for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
