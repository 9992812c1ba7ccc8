"""Reading page forms and query strings with the API's marshmallow schemas: the same rules,
and an Invalid (422, naming each field) for the page to show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from billing.errors import Invalid
from billing.web import flatten_errors


def parse(schema: ma.Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (a form or query string, empty fields dropped) loaded by `schema`."""
    present = {key: value for key, value in values.items() if value != ""}
    try:
        return schema.load(present, unknown=ma.EXCLUDE)
    except ma.ValidationError as error:
        details = flatten_errors(error.messages)
        fields = ", ".join(sorted(details))
        messages = "; ".join(f"{field}: {' '.join(m)}" for field, m in sorted(details.items()))
        raise Invalid(f"invalid {fields}: {messages}", details) from None
