"""Webhook signatures in the style of Stripe's: `t=<unix seconds>,v1=<hex>[,v1=<hex>]`,
each v1 the HMAC-SHA256, keyed by one of the endpoint's secrets, of "<t>.<body>".

Pure functions: no clock, no database. Receivers check that one v1 matches their secret
and that `t` is recent (docs/alerts-and-webhooks.md has a ten-line receiver).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SIGNATURE_HEADER = "Billing-Signature"
EVENT_ID_HEADER = "Billing-Event-Id"
EVENT_TYPE_HEADER = "Billing-Event-Type"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: 256 random bits."""
    return SECRET_PREFIX + secrets.token_hex(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" keyed by `secret`."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(signing_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value: the timestamp, then one v1 per secret (current one first)."""
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in signing_secrets]
    return ",".join(parts)
