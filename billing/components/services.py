"""Component services: bills of materials (load, create, read), the parts of the vehicles
(fitted at registration or by hand, swapped, removed, repaired, refurbished, inspected),
and their wear, due-for-service list and learned lifetimes (docs/components.md).

Versioning, as plans: a BOM version is immutable once a part was made from it
(`locked_at`). A changed definition replaces the latest version while it is unlocked and
adds version n+1 once it is locked; an unchanged one creates nothing, so loading the same
files twice is harmless.

Every function that changes something commits, as one unit of work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.components import bom
from billing.components.models import BomVersion, definition_text
from billing.errors import Conflict, Invalid, NotFound
from billing.settings import PROJECT_ROOT

DEFAULT_BOM_DIRECTORY = PROJECT_ROOT / "config" / "bom"
BOM_FILE_SUFFIXES = (".yaml", ".yml")
CREATED, REPLACED, NEW_VERSION, UNCHANGED = "created", "replaced", "new version", "unchanged"


@dataclass(frozen=True)
class LoadedBom:
    path: Path
    model: str
    version: int
    outcome: str


# --- bills of materials -------------------------------------------------------------------


def parse_definition(data: Any) -> bom.Bom:
    """`parse_bom`, its errors turned into Invalid with their field paths (a 422)."""
    try:
        return bom.parse_bom(data)
    except bom.BomInvalid as error:
        raise Invalid(
            f"invalid bill of materials: {', '.join(error.errors)}", error.errors
        ) from None


def save_bom(session: Session, data: Mapping[str, Any], now: dt.datetime) -> BomVersion:
    """Save a BOM definition for its model: version 1, a replaced unlocked version, a new
    version after a locked one, or nothing when it did not change. Returns the version."""
    definition = parse_definition(data)
    version, outcome = _save(session, definition, now)
    if outcome != UNCHANGED:
        _commit(session, definition.model)
    return version


def get_bom_version(session: Session, model: str, version: int | None = None) -> BomVersion:
    """Version `version` of `model`'s BOM, or its latest; NotFound otherwise."""
    if version is None:
        found = latest_bom_version(session, model)
    else:
        found = session.get(BomVersion, (model, version))
    if found is None:
        raise NotFound("bill of materials", model if version is None else f"{model}/{version}")
    return found


def latest_bom_version(session: Session, model: str) -> BomVersion | None:
    return session.scalars(
        select(BomVersion)
        .where(BomVersion.model == model)
        .order_by(BomVersion.version.desc())
        .limit(1)
    ).first()


def list_boms(session: Session) -> list[BomVersion]:
    """The latest version of every model's BOM, by model."""
    latest = (
        select(BomVersion.model, func.max(BomVersion.version).label("version"))
        .group_by(BomVersion.model)
        .subquery()
    )
    return list(
        session.scalars(
            select(BomVersion)
            .join(
                latest,
                (BomVersion.model == latest.c.model) & (BomVersion.version == latest.c.version),
            )
            .order_by(BomVersion.model)
        )
    )


def list_bom_versions(session: Session, model: str) -> list[BomVersion]:
    get_bom_version(session, model)
    return list(
        session.scalars(
            select(BomVersion).where(BomVersion.model == model).order_by(BomVersion.version)
        )
    )


def lock_bom_version(session: Session, version: BomVersion, now: dt.datetime) -> None:
    """Make `version` immutable (a part was made from it); commits with the caller."""
    if version.locked_at is None:
        session.execute(
            update(BomVersion)
            .where(
                BomVersion.model == version.model,
                BomVersion.version == version.version,
                BomVersion.locked_at.is_(None),
            )
            .values(locked_at=now),
            execution_options={"synchronize_session": False},
        )
        session.refresh(version)


def load_boms_from_directory(
    session: Session, directory: Path, now: dt.datetime
) -> list[LoadedBom]:
    """Load every `*.yaml` and `*.yml` BOM file of `directory`, in file name order.

    Every file is read and checked before anything is written, and all are saved in one
    transaction: one faulty file loads nothing. Raises Invalid with details keyed
    "<file name>: <field path>"."""
    files = sorted(p for p in directory.iterdir() if p.suffix in BOM_FILE_SUFFIXES)
    definitions: list[tuple[Path, bom.Bom]] = []
    errors: dict[str, list[str]] = {}
    first_file: dict[str, Path] = {}
    for path in files:
        try:
            definition = bom.parse_bom(_read_yaml(path))
        except bom.BomInvalid as error:
            errors.update({f"{path.name}: {field}": m for field, m in error.errors.items()})
            continue
        if definition.model in first_file:
            errors[f"{path.name}: model"] = [
                f"model {definition.model} is also defined in {first_file[definition.model].name}"
            ]
            continue
        first_file[definition.model] = path
        definitions.append((path, definition))
    if errors:
        raise Invalid(f"invalid bill of materials files in {directory}", errors)
    loaded = []
    for path, definition in definitions:
        version, outcome = _save(session, definition, now)
        session.flush()
        loaded.append(LoadedBom(path, definition.model, version.version, outcome))
    _commit(session, ", ".join(first_file))
    return loaded


def read_bom_file(path: Path) -> bom.Bom:
    """The BOM of one YAML file; Invalid naming the faulty field paths."""
    try:
        return parse_definition(_read_yaml(path))
    except bom.BomInvalid as error:
        raise Invalid(f"invalid bill of materials {path.name}", error.errors) from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise bom.BomInvalid({"_schema": [f"not valid YAML: {error}"]}) from None
    except (OSError, UnicodeDecodeError) as error:
        raise bom.BomInvalid({"_schema": [f"cannot be read: {error}"]}) from None


def _save(session: Session, definition: bom.Bom, now: dt.datetime) -> tuple[BomVersion, str]:
    latest = latest_bom_version(session, definition.model)
    text = definition_text(definition)
    if latest is None:
        version = BomVersion(
            model=definition.model,
            version=1,
            currency=definition.currency,
            definition=text,
            created_at=now,
        )
        session.add(version)
        return version, CREATED
    if latest.definition == text:
        return latest, UNCHANGED
    if latest.currency != definition.currency:
        raise Invalid(
            "currency change",
            {"currency": [f"the BOM of {definition.model} is in {latest.currency}"]},
        )
    # Conditional on the lock, as plans: a part made meanwhile makes this a new version.
    replaced = session.execute(
        update(BomVersion)
        .where(
            BomVersion.model == latest.model,
            BomVersion.version == latest.version,
            BomVersion.locked_at.is_(None),
        )
        .values(definition=text, created_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    if replaced:
        session.refresh(latest)
        return latest, REPLACED
    version = BomVersion(
        model=definition.model,
        version=latest.version + 1,
        currency=definition.currency,
        definition=text,
        created_at=now,
    )
    session.add(version)
    return version, NEW_VERSION


def _commit(session: Session, models: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"the bill of materials of {models} was changed concurrently; retry"
        ) from None
