"""Users of the web pages: adding them, signing them in by e-mailed link (or, for staff,
a password), and their page sessions.

Hazards this module is written against:
- A sign-in link is a bearer credential in an inbox. It is signed (a forged token is
  refused before any lookup), works once, and only for `link_minutes`; the database keeps
  only its SHA-256 digest, so a leaked database opens no account.
- Asking for a link never tells whether the address is known (no user enumeration), and
  a user gets at most MAX_OPEN_LINKS unused links at once (no mail bombing).
- A page session is a random token in an HttpOnly cookie; its digest is in the database
  so that signing out, or disabling the user, ends it at once, and it ends by itself
  after `idle_minutes` unused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, Signer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.db import rows_changed
from billing.devices.models import Customer, Fleet
from billing.errors import Conflict, Invalid, NotFound
from billing.ids import new_id
from billing.mail import send_mail
from billing.settings import Settings
from billing.text import UnsafeText, clean_text
from billing.users.models import (
    LANGUAGES,
    STAFF_ROLES,
    USER_ROLES,
    PageSession,
    SignInLink,
    User,
)

MAX_OPEN_LINKS = 5
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# A session's last use is written at most this often: a page view is then a read only.
SEEN_RESOLUTION = dt.timedelta(minutes=1)
# One address: a local part, an @ and a dotted domain, no spaces (RFC 5321 bounds).
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verified against when no user has the address, so that an unknown address takes as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class InvalidLink(Exception):
    """A sign-in link that is forged, unknown, used already or expired; the message says
    which, for the page to tell the user."""


def normalize_email(email: str) -> str:
    """The address as stored and compared: NFC, trimmed, lower-cased. Invalid if it is
    not one address."""
    try:
        address = clean_text(email).strip().lower()
    except UnsafeText as error:
        raise Invalid("invalid e-mail address", {"email": [str(error)]}) from None
    if len(address) > 254 or not EMAIL.match(address):
        raise Invalid("invalid e-mail address", {"email": [f"{email!r} is not an e-mail address"]})
    return address


def add_user(
    session: Session,
    email: str,
    role: str,
    now: dt.datetime,
    *,
    customer_id: str | None = None,
    fleet_ids: Sequence[str] = (),
    name: str = "",
    language: str | None = None,
    password: str | None = None,
) -> User:
    """Add a customer contact (role `customer` and its `customer_id`) or a staff user
    (admin, finance; operator with its `fleet_ids`). Conflict if the address is taken."""
    address = normalize_email(email)
    _check_role(role, customer_id, fleet_ids, password)
    if language is not None and language not in LANGUAGES:
        raise Invalid("unknown language", {"language": [f"use one of {', '.join(LANGUAGES)}"]})
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id)
    fleets = [session.get(Fleet, fleet_id) for fleet_id in fleet_ids]
    for fleet_id, fleet in zip(fleet_ids, fleets, strict=True):
        if fleet is None:
            raise NotFound("fleet", fleet_id)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(f"a user with the address {address} exists already")
    user = User(
        id=new_id("usr"),
        email=address,
        name=clean_text(name).strip(),
        role=role,
        customer_id=customer_id,
        language=language,
        password_hash=_hash_password(password) if password is not None else None,
        created_at=now,
        fleets=fleets,
    )
    session.add(user)
    session.commit()
    return user


def _check_role(
    role: str, customer_id: str | None, fleet_ids: Sequence[str], password: str | None
) -> None:
    if role not in USER_ROLES:
        raise Invalid("unknown role", {"role": [f"use one of {', '.join(USER_ROLES)}"]})
    if (role == "customer") != (customer_id is not None):
        raise Invalid(
            "a customer contact belongs to exactly one customer, and only contacts do",
            {"customer_id": ["required for role customer, refused for staff"]},
        )
    if (role == "operator") != bool(fleet_ids):
        raise Invalid(
            "an operator has at least one fleet, and only operators have fleets",
            {"fleet_ids": ["required for role operator, refused for other roles"]},
        )
    if password is not None and role not in STAFF_ROLES:
        raise Invalid(
            "only staff users have passwords", {"password": ["customers sign in by link"]}
        )


def _hash_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise Invalid(
            "unsuitable password",
            {"password": [f"from {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"]},
        )
    return _hasher.hash(password)


def find_user(session: Session, email: str) -> User | None:
    """The active user of an address, or None (for a malformed address too)."""
    try:
        address = normalize_email(email)
    except Invalid:
        return None
    return session.scalar(select(User).where(User.email == address, User.disabled_at.is_(None)))


def principal_of(user: User) -> Principal:
    """The principal a signed-in user acts as: the same roles and scopes as API keys, so
    that every page reads through the API's own service functions."""
    return Principal(
        key_id=f"user:{user.id}",
        role=user.role,
        customer_id=user.customer_id,
        fleet_ids=frozenset(fleet.id for fleet in user.fleets),
    )


def user_language(user: User, customer: Customer | None) -> str:
    """The language of the pages a user reads: theirs, else their customer's, else English."""
    if user.language:
        return user.language
    if customer is not None and customer.language in LANGUAGES:
        return customer.language
    return "en"


# --- sign-in links -------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkToken:
    """What goes into a sign-in URL: a random token signed with the application's secret."""

    signed: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="billing.sign-in-link")


def create_sign_in_link(
    session: Session, user: User, now: dt.datetime, *, secret_key: str, minutes: int
) -> LinkToken | None:
    """A new single-use link for `user`, valid `minutes`; None when the user already has
    MAX_OPEN_LINKS unused ones."""
    open_links = session.execute(
        select(func.count())
        .select_from(SignInLink)
        .where(
            SignInLink.user_id == user.id,
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now,
        )
    ).scalar_one()
    if open_links >= MAX_OPEN_LINKS:
        return None
    token = secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            digest=_digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + dt.timedelta(minutes=minutes),
        )
    )
    session.commit()
    return LinkToken(_signer(secret_key).sign(token).decode())


def redeem_sign_in_link(
    session: Session, signed: str, now: dt.datetime, *, secret_key: str
) -> User:
    """The user a link signs in, marking it used; InvalidLink otherwise.

    The link is marked used by a conditional UPDATE, so that two requests racing with the
    same link cannot both sign in.
    """
    try:
        token = _signer(secret_key).unsign(signed.encode()).decode()
    except (BadSignature, UnicodeError):
        raise InvalidLink("this sign-in link is not valid") from None
    link = session.get(SignInLink, _digest(token))
    if link is None:
        raise InvalidLink("this sign-in link is not valid")
    if link.used_at is not None:
        raise InvalidLink("this sign-in link has been used already")
    if link.expires_at <= now:
        raise InvalidLink("this sign-in link has expired")
    marked = rows_changed(
        session,
        update(SignInLink)
        .where(SignInLink.digest == link.digest, SignInLink.used_at.is_(None))
        .values(used_at=now),
    )
    user = session.get(User, link.user_id)
    if marked != 1 or user is None or user.disabled_at is not None:
        session.rollback()
        raise InvalidLink("this sign-in link has been used already")
    session.commit()
    return user


def check_password(session: Session, email: str, password: str) -> User | None:
    """The staff user whose address and password these are, or None. Takes as long for
    an unknown address as for a wrong password."""
    user = find_user(session, email)
    stored = user.password_hash if user is not None else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    return user if stored else None


# --- page sessions -------------------------------------------------------------------------


def start_page_session(session: Session, user: User, now: dt.datetime) -> str:
    """A new page session for `user`; returns the token for the cookie (not stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        PageSession(digest=_digest(token), user_id=user.id, created_at=now, last_seen_at=now)
    )
    session.commit()
    return token


def resume_page_session(
    session: Session, token: str, now: dt.datetime, *, idle_minutes: int
) -> PageSession | None:
    """The live session of a cookie token; None when it is unknown, ended, idle too long or
    its user disabled. It only reads: `mark_seen` moves its last use."""
    page_session = session.get(PageSession, _digest(token))
    if page_session is None or page_session.ended_at is not None:
        return None
    if page_session.user.disabled_at is not None:
        return None
    if now - page_session.last_seen_at >= dt.timedelta(minutes=idle_minutes):
        return None
    return page_session


def seen_is_stale(page_session: PageSession, now: dt.datetime) -> bool:
    """Whether the session's last use is old enough to be written again (SEEN_RESOLUTION)."""
    return now - page_session.last_seen_at >= SEEN_RESOLUTION


def mark_seen(session: Session, page_session: PageSession, now: dt.datetime) -> None:
    """Move the session's last use to `now` (its idle time starts again), unless a request
    running beside this one already did."""
    session.execute(
        update(PageSession)
        .where(PageSession.digest == page_session.digest, PageSession.last_seen_at < now)
        .values(last_seen_at=now)
    )
    session.commit()


def end_page_session(session: Session, token: str, now: dt.datetime) -> None:
    """Sign out: the session of this cookie token ends (nothing happens for an unknown one)."""
    page_session = session.get(PageSession, _digest(token))
    if page_session is not None and page_session.ended_at is None:
        page_session.ended_at = now
        session.commit()


def disable_user(session: Session, user_id: str, now: dt.datetime) -> User:
    """The user can no longer sign in; their sessions and links stop working at once."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    user.disabled_at = user.disabled_at or now
    session.commit()
    return user


# --- the e-mail ------------------------------------------------------------------------------

SIGN_IN_PATH = "/sign-in/link/"
_MAIL = {
    "en": (
        "Your sign-in link",
        "Hello,\n\nTo sign in to your billing pages, open this link within {minutes} "
        "minutes:\n\n{url}\n\nIt works once. If you did not ask for it, ignore this e-mail.\n",
    ),
    "fr": (
        "Votre lien de connexion",
        "Bonjour,\n\nPour vous connecter à votre espace de facturation, ouvrez ce lien dans "
        "les {minutes} minutes :\n\n{url}\n\nIl ne sert qu'une fois. Si vous ne l'avez pas "
        "demandé, ignorez ce message.\n",
    ),
}


def sign_in_url(base_url: str, token: LinkToken) -> str:
    return base_url.rstrip("/") + SIGN_IN_PATH + token.signed


def issue_sign_in_link(
    session: Session, settings: Settings, email: str, base_url: str, now: dt.datetime
) -> str | None:
    """A sign-in URL for the active user of `email`, or None for an unknown address or a
    user with too many open links. For `billing users link` and the e-mail below."""
    user = find_user(session, email)
    if user is None:
        return None
    token = create_sign_in_link(
        session,
        user,
        now,
        secret_key=settings.effective_secret_key,
        minutes=settings.portal.link_minutes,
    )
    return sign_in_url(base_url, token) if token is not None else None


def email_sign_in_link(
    session: Session, settings: Settings, email: str, base_url: str, now: dt.datetime
) -> None:
    """E-mail a sign-in link to `email` if it is a user's; say nothing either way (the page
    answers the same for any address). MailError when the mail server fails."""
    url = issue_sign_in_link(session, settings, email, base_url, now)
    if url is None:
        return
    user = find_user(session, email)
    assert user is not None  # issue_sign_in_link found it
    customer = session.get(Customer, user.customer_id) if user.customer_id else None
    subject, body = _MAIL[user_language(user, customer)]
    send_mail(
        settings, user.email, subject, body.format(url=url, minutes=settings.portal.link_minutes)
    )
