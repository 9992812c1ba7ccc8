"""Bills of materials: the parts of a vehicle model, their costs and lifetimes (docs/components.md).

A BOM lists a model's components. Each has a unit cost and a lifetime in one or more units,
the first to run out deciding: distance (`km`), energy throughput (`kwh`), equivalent full
charge cycles (`cycles`: throughput ÷ the part's `capacity_kwh`) and months in service
(`months`). A part may be repairable or refurbishable at a cost, and may have a service
interval (inspect every N km or M months, whichever first, with urgency margins).

`parse_bom` is the only way YAML or JSON becomes a `Bom`; like `parse_plan` it collects
every error under its field path (`components.3.lifetime.km`) and raises them together.

Pure: the standard library and `billing.money` (itself the standard library only).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from billing.field_paths import MAX_DECIMALS, number, parsed
from billing.field_paths import FieldErrors as _Errors
from billing.field_paths import is_list as _is_list
from billing.field_paths import join as _join
from billing.field_paths import reject_unknown_fields as _reject_unknown_fields
from billing.money import MINOR_UNITS, UnknownCurrency

MODEL_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
CODE_PATTERN = re.compile(r"[a-z0-9-]{1,40}")
LIFETIME_UNITS = ("km", "kwh", "cycles", "months")
MAX_COMPONENTS = 200
MAX_NAME_LENGTH = 200

_BOM_FIELDS = frozenset({"model", "name", "currency", "components", "description"})
_COMPONENT_FIELDS = frozenset(
    {
        "code", "name", "category", "unit_cost", "capacity_kwh", "lifetime", "repairable",
        "repair_cost", "refurbishable", "refurbish_cost", "service", "notes",
    }
)  # fmt: skip
# Lifetimes, capacities and intervals are greater than 0; costs and margins say
# `positive=False` (not negative).
_number = functools.partial(number, positive=True)
_SERVICE_FIELDS = frozenset(
    {"inspect_every_km", "inspect_every_months", "urgent_within_km", "urgent_within_days"}
)


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How long a part lasts: each unit set is a limit, the first reached ends its life."""

    km: Decimal | None = None
    kwh: Decimal | None = None
    cycles: Decimal | None = None
    months: Decimal | None = None

    def limits(self) -> Mapping[str, Decimal]:
        """The units set, in LIFETIME_UNITS order (read-only: one mapping per lifetime,
        as wear reads it for every part of a fleet)."""
        return _limits(self)


@functools.lru_cache(maxsize=1024)
def _limits(lifetime: Lifetime) -> Mapping[str, Decimal]:
    found = {unit: getattr(lifetime, unit) for unit in LIFETIME_UNITS}
    return MappingProxyType({unit: value for unit, value in found.items() if value is not None})


@dataclass(frozen=True, slots=True)
class ServiceInterval:
    """Inspect every `every_km` or `every_months`, whichever comes first; a service is
    urgent within `urgent_within_km` or `urgent_within_days` of being due."""

    every_km: Decimal | None = None
    every_months: Decimal | None = None
    urgent_within_km: Decimal | None = None
    urgent_within_days: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BomComponent:
    code: str
    name: str
    category: str
    unit_cost: Decimal
    lifetime: Lifetime
    capacity_kwh: Decimal | None = None
    repairable: bool = False
    repair_cost: Decimal | None = None
    refurbishable: bool = False
    refurbish_cost: Decimal | None = None
    service: ServiceInterval | None = None
    notes: str = ""

    def cycle_kwh(self) -> Decimal:
        """The throughput of one charge cycle: every part whose lifetime counts cycles has
        a capacity (parse_bom refuses one without)."""
        if self.capacity_kwh is None:
            raise ValueError(f"component {self.code} counts cycles but has no capacity_kwh")
        return self.capacity_kwh

    def cycles_in_kwh(self) -> Decimal | None:
        """The throughput its cycle limit allows, None when its lifetime counts no cycles."""
        cycles = self.lifetime.cycles
        return None if cycles is None else cycles * self.cycle_kwh()


@dataclass(frozen=True, slots=True)
class Bom:
    """One version of a vehicle model's bill of materials."""

    model: str
    currency: str
    components: tuple[BomComponent, ...]
    name: str = ""
    description: str = ""

    def component(self, code: str) -> BomComponent | None:
        return next((c for c in self.components if c.code == code), None)

    def component_of_part(self, code: str) -> BomComponent:
        """The component a part made from this version was made as: a part is only ever
        made from a component of its version, so a missing one is a broken database."""
        found = self.component(code)
        if found is None:
            raise LookupError(f"component {code} of a part is not in BOM {self.model}")
        return found


class BomInvalid(ValueError):
    """A BOM breaks one or more rules; `errors` maps each field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        summary = "; ".join(f"{path}: {', '.join(messages)}" for path, messages in errors.items())
        super().__init__(f"invalid bill of materials: {summary}")


def parse_bom(data: Any) -> Bom:
    """Build a `Bom` from YAML or JSON data, checking every rule; raise `BomInvalid`.

    Rules: `model` matches MODEL_PATTERN; `currency` is known to `billing.money`; 1 to 200
    components with distinct `code`s (CODE_PATTERN); each has a `name`, a `category`
    (CODE_PATTERN), a `unit_cost` (not negative, at most the currency's decimals) and a
    `lifetime` with at least one of km, kwh, cycles, months (each greater than 0, at most
    6 decimals, below 10^12); `cycles` needs `capacity_kwh` (> 0); `repair_cost` needs
    `repairable: true`, `refurbish_cost` `refurbishable: true`; a `service` has
    `inspect_every_km` or `inspect_every_months` (> 0) and optional `urgent_within_km`
    and `urgent_within_days` (not negative). Numbers may be strings, ints or floats (read
    through `str()`); unknown keys are errors at their path; null counts as absent.
    """
    if not isinstance(data, Mapping):
        raise BomInvalid({"_schema": ["must be an object"]})
    errors = _Errors()
    _reject_unknown_fields(data, _BOM_FIELDS, "", errors)
    model = _text(data, "model", "", errors)
    if model is not None and not MODEL_PATTERN.fullmatch(model):
        errors.add("model", f"must match {MODEL_PATTERN.pattern}")
    name = _text(data, "name", "", errors, required=False)
    description = _text(data, "description", "", errors, required=False, max_length=2000)
    currency = _text(data, "currency", "", errors)
    decimals = MAX_DECIMALS
    if currency is not None:
        if currency in MINOR_UNITS:
            decimals = MINOR_UNITS[currency]
        else:
            errors.add("currency", str(UnknownCurrency(currency)))
    components = _components(data.get("components"), decimals, errors)
    if errors:
        raise BomInvalid(dict(errors))
    return Bom(parsed(model), parsed(currency), components, name or "", description or "")


def bom_to_dict(bom: Bom) -> dict[str, Any]:
    """The BOM as JSON-ready data that `parse_bom` reads back to an equal BOM."""
    data: dict[str, Any] = {"model": bom.model, "currency": bom.currency}
    if bom.name:
        data["name"] = bom.name
    if bom.description:
        data["description"] = bom.description
    data["components"] = [_component_to_dict(c) for c in bom.components]
    return data


def _component_to_dict(component: BomComponent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": component.code,
        "name": component.name,
        "category": component.category,
        "unit_cost": _plain(component.unit_cost),
        "lifetime": {unit: _plain(value) for unit, value in component.lifetime.limits().items()},
        "repairable": component.repairable,
        "refurbishable": component.refurbishable,
    }
    for field in ("capacity_kwh", "repair_cost", "refurbish_cost"):
        value = getattr(component, field)
        if value is not None:
            data[field] = _plain(value)
    if component.service is not None:
        service = component.service
        pairs = {
            "inspect_every_km": service.every_km,
            "inspect_every_months": service.every_months,
            "urgent_within_km": service.urgent_within_km,
            "urgent_within_days": service.urgent_within_days,
        }
        data["service"] = {key: _plain(value) for key, value in pairs.items() if value is not None}
    if component.notes:
        data["notes"] = component.notes
    return data


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _components(value: Any, decimals: int, errors: _Errors) -> tuple[BomComponent, ...]:
    if value is None:
        errors.add("components", "required")
        return ()
    if not _is_list(value):
        errors.add("components", "must be a list")
        return ()
    if not value:
        errors.add("components", "must have at least one component")
        return ()
    if len(value) > MAX_COMPONENTS:
        errors.add("components", f"must have at most {MAX_COMPONENTS} components")
        return ()
    found = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(value):
        path = f"components.{index}"
        component = _component(item, path, decimals, errors)
        if component is None:
            continue
        if component.code in first_index:
            errors.add(f"{path}.code", f"duplicate of components.{first_index[component.code]}")
            continue
        first_index[component.code] = index
        found.append(component)
    return tuple(found)


def _component(data: Any, path: str, decimals: int, errors: _Errors) -> BomComponent | None:
    if not isinstance(data, Mapping):
        errors.add(path, "must be an object")
        return None
    before = len(errors)
    _reject_unknown_fields(data, _COMPONENT_FIELDS, path, errors)
    code = _code(data, "code", path, errors)
    name = _text(data, "name", path, errors)
    category = _code(data, "category", path, errors)
    notes = _text(data, "notes", path, errors, required=False, max_length=2000)
    unit_cost = _number(data, "unit_cost", path, errors, decimals=decimals, positive=False)
    capacity = _number(data, "capacity_kwh", path, errors, required=False)
    lifetime = _lifetime(data.get("lifetime"), f"{path}.lifetime", errors)
    if lifetime is not None and lifetime.cycles is not None and data.get("capacity_kwh") is None:
        errors.add(f"{path}.capacity_kwh", "required when the lifetime counts cycles")
    repairable = _flag(data, "repairable", path, errors)
    refurbishable = _flag(data, "refurbishable", path, errors)
    repair_cost = _optional_cost(
        data, "repair_cost", repairable, "repairable", path, decimals, errors
    )
    refurbish_cost = _optional_cost(
        data, "refurbish_cost", refurbishable, "refurbishable", path, decimals, errors
    )
    service = _service(data.get("service"), f"{path}.service", errors)
    if len(errors) > before:
        return None
    return BomComponent(
        code=parsed(code),
        name=parsed(name),
        category=parsed(category),
        unit_cost=parsed(unit_cost),
        lifetime=parsed(lifetime),
        capacity_kwh=capacity,
        repairable=repairable,
        repair_cost=repair_cost,
        refurbishable=refurbishable,
        refurbish_cost=refurbish_cost,
        service=service,
        notes=notes or "",
    )


def _optional_cost(
    data: Mapping[str, Any],
    field: str,
    flag: bool,
    flag_name: str,
    path: str,
    decimals: int,
    errors: _Errors,
) -> Decimal | None:
    cost = _number(data, field, path, errors, required=False, decimals=decimals, positive=False)
    if cost is not None and not flag:
        errors.add(f"{path}.{field}", f"needs {flag_name}: true")
    return cost


def _lifetime(value: Any, path: str, errors: _Errors) -> Lifetime | None:
    if value is None:
        errors.add(path, "required")
        return None
    if not isinstance(value, Mapping):
        errors.add(path, "must be an object")
        return None
    before = len(errors)
    _reject_unknown_fields(value, frozenset(LIFETIME_UNITS), path, errors)
    limits = {unit: _number(value, unit, path, errors, required=False) for unit in LIFETIME_UNITS}
    if len(errors) > before:
        return None
    if all(limit is None for limit in limits.values()):
        errors.add(path, f"must set at least one of {', '.join(LIFETIME_UNITS)}")
        return None
    return Lifetime(**limits)


def _service(value: Any, path: str, errors: _Errors) -> ServiceInterval | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errors.add(path, "must be an object")
        return None
    before = len(errors)
    _reject_unknown_fields(value, _SERVICE_FIELDS, path, errors)
    every_km = _number(value, "inspect_every_km", path, errors, required=False)
    every_months = _number(value, "inspect_every_months", path, errors, required=False)
    urgent_km = _number(value, "urgent_within_km", path, errors, required=False, positive=False)
    urgent_days = _number(value, "urgent_within_days", path, errors, required=False, positive=False)
    if len(errors) > before:
        return None
    if every_km is None and every_months is None:
        errors.add(path, "must set inspect_every_km or inspect_every_months")
        return None
    return ServiceInterval(every_km, every_months, urgent_km, urgent_days)


def _text(
    data: Mapping[str, Any],
    field: str,
    path: str,
    errors: _Errors,
    *,
    required: bool = True,
    max_length: int = MAX_NAME_LENGTH,
) -> str | None:
    """A printable string (no control, format or surrogate character), in NFC, not blank."""
    value = data.get(field)
    where = _join(path, field)
    if value is None:
        if required:
            errors.add(where, "required")
        return None
    if not isinstance(value, str):
        errors.add(where, "must be a string")
        return None
    if len(value) > max_length:
        errors.add(where, f"must be at most {max_length} characters")
        return None
    refused = next((char for char in value if not char.isprintable()), None)
    if refused is not None:
        errors.add(
            where,
            f"holds the unprintable character U+{ord(refused):04X} at position "
            f"{value.index(refused)}",
        )
        return None
    if not value.strip():
        errors.add(where, "must not be blank")
        return None
    return unicodedata.normalize("NFC", value)


def _code(data: Mapping[str, Any], field: str, path: str, errors: _Errors) -> str | None:
    value = _text(data, field, path, errors)
    if value is not None and not CODE_PATTERN.fullmatch(value):
        errors.add(_join(path, field), f"must match {CODE_PATTERN.pattern}")
        return None
    return value


def _flag(data: Mapping[str, Any], field: str, path: str, errors: _Errors) -> bool:
    value = data.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        errors.add(_join(path, field), "must be true or false")
        return False
    return value
