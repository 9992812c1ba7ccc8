"""Pricing plans: the plan model and its validation (docs/plans.md).

A plan prices usage metrics with charges. Each charge prices one metric with one model
(`flat`, `per_unit`, `graduated`, `volume`, `package`), optionally after included units and
within a minimum and maximum per period, either per vehicle or pooled over the customer's
vehicles on the plan. The rules a plan must obey are enforced by `parse_plan`, which is the
only way data from YAML files or the API becomes a `Plan`.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing.field_paths import MAX_DECIMALS as MAX_DECIMALS
from billing.field_paths import NUMBER_LIMIT as NUMBER_LIMIT
from billing.field_paths import FieldErrors as _Errors
from billing.field_paths import is_list as _is_list
from billing.field_paths import join as _join
from billing.field_paths import number as _number
from billing.field_paths import parsed
from billing.field_paths import reject_unknown_fields as _reject_unknown_fields
from billing.money import MINOR_UNITS, ZERO, UnknownCurrency
from billing.text import UnsafeText, clean_text

METRICS = ("distance_km", "energy_kwh", "trips", "trip_minutes", "active_days", "vehicle_days")
MODELS = ("flat", "per_unit", "graduated", "volume", "package")
SCOPES = ("vehicle", "pooled")

CODE_PATTERN = re.compile(r"[a-z0-9-]{1,40}")
# docs/plans.md: unit prices carry up to 6 decimals (MAX_DECIMALS). Quantities (included
# units, tier bounds, package sizes) get the same limit: a millionth of a km or kWh is below
# any meter's precision.
VAT_RATE_DECIMALS = 2  # EN 16931 percentages (BT-119) have at most 2 decimals
MAX_NAME_LENGTH = 200

# Which optional fields each model accepts; anything else on a charge is an error, so a
# typo or a field of another model is reported instead of silently ignored. A flat fee has
# no usage to include units of, and its amount is already fixed, so it takes no clamp.
_COMMON_CHARGE_FIELDS = frozenset({"metric", "model", "scope", "name"})
_USAGE_FIELDS = frozenset({"included", "minimum", "maximum"})
_MODEL_FIELDS = {
    "flat": frozenset({"amount"}),
    "per_unit": frozenset({"unit_amount"}) | _USAGE_FIELDS,
    "graduated": frozenset({"tiers"}) | _USAGE_FIELDS,
    "volume": frozenset({"tiers"}) | _USAGE_FIELDS,
    "package": frozenset({"package_size", "package_amount"}) | _USAGE_FIELDS,
}
_REQUIRED_FIELDS = {
    "flat": ("amount",),
    "per_unit": ("unit_amount",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "package": ("package_size", "package_amount"),
}
_CHARGE_FIELDS = _COMMON_CHARGE_FIELDS.union(*_MODEL_FIELDS.values())
_NUMBERS = (
    "amount", "unit_amount", "package_size", "package_amount", "included", "minimum", "maximum",
)  # fmt: skip
_PLAN_FIELDS = frozenset({"code", "name", "currency", "vat_rate", "charges", "description"})
_TIER_FIELDS = frozenset({"up_to", "unit_amount", "flat_amount"})


@dataclass(frozen=True, slots=True)
class Tier:
    """One price step; `up_to` is an inclusive upper bound, None (last tier only) = no bound."""

    up_to: Decimal | None
    unit_amount: Decimal
    flat_amount: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Charge:
    """How one metric is priced. Only the fields of its model are set (see `parse_plan`)."""

    metric: str
    model: str
    scope: str = "vehicle"
    name: str | None = None
    amount: Decimal | None = None
    unit_amount: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    package_amount: Decimal | None = None
    included: Decimal = ZERO
    minimum: Decimal | None = None
    maximum: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """One version of a pricing plan; `vat_rate` is a percentage (EN 16931 BT-119)."""

    code: str
    name: str
    currency: str
    vat_rate: Decimal
    charges: tuple[Charge, ...]
    description: str = ""


class PlanInvalid(ValueError):
    """A plan breaks one or more rules; `errors` maps each field path to its messages.

    Paths are dotted, list items by 0-based index: `charges.1.tiers.2.up_to`. Errors about
    the whole document (not an object) are under `_schema`.
    """

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        summary = "; ".join(f"{path}: {', '.join(messages)}" for path, messages in errors.items())
        super().__init__(f"invalid plan: {summary}")


def parse_plan(data: Mapping[str, Any]) -> Plan:
    """Build a `Plan` from YAML or JSON data, checking every rule of docs/plans.md.

    Numbers may be strings, ints, floats or Decimals; a float is read through `str()` so
    that YAML's `0.1` means exactly 0.1. A key with a null value counts as absent (except a
    tier's `up_to`, where null means no bound). All errors are collected, then raised
    together as `PlanInvalid`. Rules:

    - code matches `[a-z0-9-]{1,40}`; name is 1 to 200 characters; currency is known to
      `billing.money`; vat_rate is a percentage with 0 <= rate < 100 and at most 2 decimals;
    - at least one charge; metric, model and scope are from METRICS, MODELS and SCOPES;
    - each model's required fields are present and fields of other models are absent:
      flat takes `amount`; per_unit `unit_amount`; graduated and volume `tiers`; package
      `package_size` and `package_amount`; all but flat take `included`, `minimum`, `maximum`;
    - flat charges are on metric vehicle_days, per vehicle (a pool has no single fee);
    - numbers are finite, not negative, below 10^12, with at most 6 decimals;
      package_size is greater than 0; minimum is not greater than maximum;
    - tiers: at least one; up_to strictly increasing from above 0; null on the last tier
      only; each tier has a unit_amount.
    - unknown keys are errors at their own path.
    """
    if not isinstance(data, Mapping):
        raise PlanInvalid({"_schema": ["must be an object"]})
    errors = _Errors()
    _reject_unknown_fields(data, _PLAN_FIELDS, "", errors)
    code = _text(data, "code", "", errors)
    if code is not None and not CODE_PATTERN.fullmatch(code):
        errors.add("code", f"must match {CODE_PATTERN.pattern}")
    name = _text(data, "name", "", errors)
    description = _text(
        data, "description", "", errors, required=False, max_length=None, multiline=True
    )
    currency = _text(data, "currency", "", errors)
    if currency is not None and currency not in MINOR_UNITS:
        errors.add("currency", str(UnknownCurrency(currency)))
    vat_rate = _number(data, "vat_rate", "", errors, decimals=VAT_RATE_DECIMALS)
    if vat_rate is not None and vat_rate >= 100:
        errors.add("vat_rate", "must be less than 100")
    charges = _charges(data.get("charges"), errors)
    if errors:
        raise PlanInvalid(dict(errors))
    return Plan(
        parsed(code), parsed(name), parsed(currency), parsed(vat_rate), charges, description or ""
    )


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data that `parse_plan` reads back to an equal plan.

    Numbers are written as plain decimal strings (never exponent notation). Charge fields
    that are None or empty are left out, and `included` when it is 0; a tier's `up_to` is
    always written, null meaning no bound.
    """
    return {
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "currency": plan.currency,
        "vat_rate": _decimal_text(plan.vat_rate),
        "charges": [_charge_to_dict(charge) for charge in plan.charges],
    }


def validate_plan(plan: Plan) -> Plan:
    """Check a `Plan` built in code against the rules of `parse_plan`.

    Returns an equal plan whose numbers are all Decimals; raises `PlanInvalid` otherwise.
    """
    return parse_plan(plan_to_dict(plan))


def _charge_to_dict(charge: Charge) -> dict[str, Any]:
    data: dict[str, Any] = {"metric": charge.metric, "model": charge.model, "scope": charge.scope}
    if charge.name is not None:
        data["name"] = charge.name
    for field in ("amount", "unit_amount", "package_size", "package_amount"):
        value = getattr(charge, field)
        if value is not None:
            data[field] = _decimal_text(value)
    if charge.tiers:
        data["tiers"] = [_tier_to_dict(tier) for tier in charge.tiers]
    if charge.included:
        data["included"] = _decimal_text(charge.included)
    for field in ("minimum", "maximum"):
        value = getattr(charge, field)
        if value is not None:
            data[field] = _decimal_text(value)
    return data


def _tier_to_dict(tier: Tier) -> dict[str, Any]:
    return {
        "up_to": None if tier.up_to is None else _decimal_text(tier.up_to),
        "unit_amount": _decimal_text(tier.unit_amount),
        "flat_amount": _decimal_text(tier.flat_amount),
    }


def _decimal_text(value: Decimal) -> str:
    # A hand-built plan may hold ints or floats: str() gives what parse_plan reads for them.
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _charges(value: Any, errors: _Errors) -> tuple[Charge, ...]:
    if value is None:
        errors.add("charges", "required")
        return ()
    if not _is_list(value):
        errors.add("charges", "must be a list")
        return ()
    if not value:
        errors.add("charges", "must have at least one charge")
    charges = (_charge(item, f"charges.{index}", errors) for index, item in enumerate(value))
    return tuple(charge for charge in charges if charge is not None)


def _charge(data: Any, path: str, errors: _Errors) -> Charge | None:
    if not isinstance(data, Mapping):
        errors.add(path, "must be an object")
        return None
    before = len(errors)
    _reject_unknown_fields(data, _CHARGE_FIELDS, path, errors)
    metric = _choice(data, "metric", METRICS, path, errors)
    model = _choice(data, "model", MODELS, path, errors)
    scope = _choice(data, "scope", SCOPES, path, errors, default="vehicle")
    if model is not None:
        _check_model_fields(data, model, path, errors)
    if model == "flat":
        _check_flat(metric, scope, path, errors)
    numbers = {field: _number(data, field, path, errors, required=False) for field in _NUMBERS}
    _check_amount_bounds(numbers, path, errors)
    tiers = _tiers(data.get("tiers"), f"{path}.tiers", errors)
    name = _text(data, "name", path, errors, required=False)
    if len(errors) > before:
        return None
    included = numbers.pop("included") or ZERO
    return Charge(
        parsed(metric),
        parsed(model),
        parsed(scope),
        name,
        tiers=tiers,
        included=included,
        **numbers,
    )


def _check_flat(metric: str | None, scope: str | None, path: str, errors: _Errors) -> None:
    # A flat fee is per vehicle and prorated by the days it was on the plan; a pool has no
    # single vehicle to charge it to.
    if metric is not None and metric != "vehicle_days":
        errors.add(f"{path}.metric", "must be vehicle_days for model flat")
    if scope == "pooled":
        errors.add(f"{path}.scope", "must be vehicle for model flat")


def _check_amount_bounds(numbers: dict[str, Decimal | None], path: str, errors: _Errors) -> None:
    if numbers["package_size"] == 0:
        errors.add(f"{path}.package_size", "must be greater than 0")
    minimum, maximum = numbers["minimum"], numbers["maximum"]
    if minimum is not None and maximum is not None and minimum > maximum:
        errors.add(f"{path}.minimum", f"must not be greater than maximum ({maximum})")


def _check_model_fields(data: Mapping[str, Any], model: str, path: str, errors: _Errors) -> None:
    allowed = _MODEL_FIELDS[model] | _COMMON_CHARGE_FIELDS
    for field, value in data.items():
        if value is not None and field in _CHARGE_FIELDS and field not in allowed:
            errors.add(f"{path}.{field}", f"not allowed for model {model}")
    for field in _REQUIRED_FIELDS[model]:
        if data.get(field) is None:
            errors.add(f"{path}.{field}", f"required for model {model}")


def _tiers(value: Any, path: str, errors: _Errors) -> tuple[Tier, ...]:
    if value is None:
        return ()  # whether tiers are required depends on the model: _check_model_fields
    if not _is_list(value):
        errors.add(path, "must be a list")
        return ()
    if not value:
        errors.add(path, "must have at least one tier")
        return ()
    found = [_tier(item, f"{path}.{index}", errors) for index, item in enumerate(value)]
    tiers = [tier for tier in found if tier is not None]
    if len(tiers) < len(found):
        return ()
    _check_tier_bounds(tiers, path, errors)
    return tuple(tiers)


def _tier(data: Any, path: str, errors: _Errors) -> Tier | None:
    if not isinstance(data, Mapping):
        errors.add(path, "must be an object")
        return None
    before = len(errors)
    _reject_unknown_fields(data, _TIER_FIELDS, path, errors)
    up_to = _number(data, "up_to", path, errors, required=False)
    unit_amount = _number(data, "unit_amount", path, errors)
    flat_amount = _number(data, "flat_amount", path, errors, required=False)
    if len(errors) > before:
        return None
    return Tier(up_to, parsed(unit_amount), flat_amount or ZERO)


def _check_tier_bounds(tiers: Sequence[Tier], path: str, errors: _Errors) -> None:
    last = len(tiers) - 1
    previous = ZERO
    for index, tier in enumerate(tiers):
        field = f"{path}.{index}.up_to"
        if tier.up_to is None:
            if index != last:
                errors.add(field, "must be set on every tier but the last")
            continue
        if index == last:
            errors.add(field, "must be null on the last tier (no upper bound)")
        if tier.up_to <= previous:
            bound = "0" if index == 0 else f"the previous tier's up_to ({previous})"
            errors.add(field, f"must be greater than {bound}")
        previous = tier.up_to


def _text(
    data: Mapping[str, Any],
    field: str,
    path: str,
    errors: _Errors,
    *,
    required: bool = True,
    max_length: int | None = MAX_NAME_LENGTH,
    multiline: bool = False,
) -> str | None:
    """A string under the text rule (`clean_text`); one given must not be blank, except a
    multi-line text (a description may be empty)."""
    value = data.get(field)
    where = _join(path, field)
    if value is None:
        if required:
            errors.add(where, "required")
        return None
    if not isinstance(value, str):
        errors.add(where, "must be a string")
        return None
    try:
        value = clean_text(value, multiline=multiline)
    except UnsafeText as error:
        errors.add(where, str(error))
        return None
    if not multiline and not value.strip():
        errors.add(where, "must not be blank")
    if max_length is not None and len(value) > max_length:
        errors.add(where, f"must be at most {max_length} characters")
    return value


def _choice(
    data: Mapping[str, Any],
    field: str,
    choices: tuple[str, ...],
    path: str,
    errors: _Errors,
    default: str | None = None,
) -> str | None:
    value = data.get(field)
    if value is None:
        value = default
    where = _join(path, field)
    if value is None:
        errors.add(where, "required")
    elif value not in choices:
        errors.add(where, f"unknown {field} {value!r}; known: {', '.join(choices)}")
        return None
    return value
