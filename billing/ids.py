"""Identifiers: short, random, prefixed by the kind of thing they name (cus_…, flt_…)."""

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
