"""Checking documents field by field, each error under the dotted path of its field
(`charges.1.tiers.2.up_to`, `components.4.lifetime.cycles`), every error collected before
any is raised: the rules plans (`billing.pricing.plans`) and bills of materials
(`billing.components.bom`) share. The standard library only.

Paths are dotted, list items by 0-based index; a key with a null value counts as absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

T = TypeVar("T")

# Bounds every number so that arithmetic on it stays exact within its Decimal precision.
NUMBER_LIMIT = Decimal(10) ** 12
MAX_DECIMALS = 6


class FieldErrors(dict[str, list[str]]):
    """Field path → messages."""

    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)


def parsed(value: T | None) -> T:
    """A required field's value once its document was checked without error: a required
    field missing adds an error, so None here is a bug of the checks."""
    if value is None:
        raise AssertionError("a required field is missing from a document checked as valid")
    return value


def reject_unknown_fields(
    data: Mapping[str, Any], known: frozenset[str], path: str, errors: FieldErrors
) -> None:
    for key in data:
        if key not in known:
            errors.add(join(path, str(key)), f"unknown field (known: {', '.join(sorted(known))})")


def number(
    data: Mapping[str, Any],
    field: str,
    path: str,
    errors: FieldErrors,
    *,
    required: bool = True,
    decimals: int = MAX_DECIMALS,
    positive: bool = False,
) -> Decimal | None:
    """A finite number, not negative (greater than 0 when `positive`), below NUMBER_LIMIT,
    with at most `decimals` places. Strings, ints, floats (read through `str()`, so that
    YAML's 0.1 is exactly 0.1) and Decimals are numbers; booleans are not."""
    value = data.get(field)
    where = join(path, field)
    if value is None:
        if required:
            errors.add(where, "required")
        return None
    found = to_decimal(value)
    if found is None:
        errors.add(where, "must be a finite number or a numeric string")
    elif found < 0:
        errors.add(where, "must not be negative")
    elif positive and found == 0:
        errors.add(where, "must be greater than 0")
    elif found >= NUMBER_LIMIT:
        errors.add(where, f"must be less than {NUMBER_LIMIT}")
    elif found % Decimal(1).scaleb(-decimals):
        errors.add(where, f"must have at most {decimals} decimal places")
    else:
        return found
    return None


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        found = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field
