"""Plan services: create, edit, archive and load plans, preview prices, and the two calls the
invoice run makes on a plan version (read it, lock it).

Versioning (docs/plans.md): a version is immutable once any usage was rated on it. Editing a
plan replaces its latest version in place while that version is unlocked (nothing was
billed on it, so nothing can change after the fact), and adds version n+1 once it is
locked. An edit that changes nothing creates nothing, which makes loading the same files
again harmless.

Assignments keep the version they were made on (price protection, as a contract would):
a new version reaches a vehicle only when it is assigned again, or when
`billing.pricing.assignments.migrate_plan_assignments` moves every vehicle on the plan
from a chosen date.

Every function that changes plans commits, as one unit of work, except `lock_plan_version`:
its lock must commit or roll back with the usage it was taken for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from billing.db import rows_changed
from billing.errors import Conflict, Invalid, NotFound
from billing.pagination import Page, paginate
from billing.periods import Period
from billing.pricing import plans
from billing.pricing.models import Plan, PlanVersion, definition_text
from billing.pricing.rating import Preview, preview_plan
from billing.settings import PROJECT_ROOT

DEFAULT_DAYS_IN_PERIOD = 30
DEFAULT_PLANS_DIRECTORY = PROJECT_ROOT / "config" / "plans"
PLAN_FILE_SUFFIXES = (".yaml", ".yml")

# What saving a definition did, as `billing plans load` reports it.
CREATED = "created"  # a new plan, version 1
REPLACED = "replaced"  # the latest version was unlocked and now holds the new definition
NEW_VERSION = "new version"  # the latest version was locked: version n+1 was added
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class LoadedPlan:
    """What loading one plan file did."""

    path: Path
    code: str
    version: int
    outcome: str


@dataclass(frozen=True)
class PlanPreview:
    """A preview with what it was computed on."""

    plan_version: PlanVersion
    days: Decimal
    days_in_period: int
    preview: Preview


# --- reading -----------------------------------------------------------------------------


def get_plan(session: Session, code: str) -> Plan:
    """The plan `code`, archived or not; NotFound when there is none."""
    plan = session.get(Plan, code)
    if plan is None:
        raise NotFound("plan", code)
    return plan


def get_plan_version(session: Session, code: str, version: int | None = None) -> PlanVersion:
    """Version `version` of plan `code`, or its latest version when `version` is None.

    `.to_plan()` on the result gives the `billing.pricing.plans.Plan` to rate with.
    Raises NotFound for an unknown plan or version.
    """
    get_plan(session, code)
    if version is None:
        return _latest_version(session, code)
    found = session.get(PlanVersion, (code, version))
    if found is None:
        raise NotFound("plan version", f"{code}/{version}")
    return found


def list_plans(session: Session, page: int, per_page: int, status: str | None = None) -> Page:
    """One page of plans by code, each as its latest version; `status` is active or archived."""
    query = _latest_versions()
    if status == "active":
        query = query.where(Plan.archived_at.is_(None))
    elif status == "archived":
        query = query.where(Plan.archived_at.is_not(None))
    return paginate(session, query.order_by(PlanVersion.plan_code), page, per_page)


def list_plan_versions(session: Session, code: str) -> list[PlanVersion]:
    """Every version of plan `code`, oldest first."""
    get_plan(session, code)
    return list(
        session.scalars(
            select(PlanVersion).where(PlanVersion.plan_code == code).order_by(PlanVersion.version)
        )
    )


def _latest_versions() -> Select[PlanVersion]:
    latest = (
        select(PlanVersion.plan_code, func.max(PlanVersion.version).label("version"))
        .group_by(PlanVersion.plan_code)
        .subquery()
    )
    return (
        select(PlanVersion)
        .join(
            latest,
            and_(
                PlanVersion.plan_code == latest.c.plan_code,
                PlanVersion.version == latest.c.version,
            ),
        )
        .join(PlanVersion.plan)
        .options(contains_eager(PlanVersion.plan))
    )


def _latest_version(session: Session, code: str) -> PlanVersion:
    return session.scalars(
        select(PlanVersion)
        .where(PlanVersion.plan_code == code)
        .order_by(PlanVersion.version.desc())
        .limit(1)
    ).one()


# --- changes -----------------------------------------------------------------------------


def create_plan(session: Session, data: Mapping[str, Any], now: dt.datetime) -> PlanVersion:
    """Create a plan from its definition (the fields of docs/plans.md); returns version 1.

    Raises Invalid, with every faulty field path, for a definition `parse_plan` refuses, and
    Conflict when the code is taken.
    """
    definition = parse_definition(data)
    if session.get(Plan, definition.code) is not None:
        raise Conflict(f"plan {definition.code} already exists; edit it instead")
    version = _add_plan(session, definition, now)
    _commit(session, definition.code)
    return version


def update_plan(
    session: Session, code: str, data: Mapping[str, Any], now: dt.datetime
) -> PlanVersion:
    """Give plan `code` a new definition: in place while its latest version is unlocked,
    as a new version once it is locked; nothing changes when the definition is the same.

    The body may leave `code` out; when present it must be `code`. The currency of a plan
    never changes (its assignments and invoices are in it). An archived plan is not edited.
    """
    plan = get_plan(session, code)
    if data.get("code", code) != code:
        raise Invalid("code mismatch", {"code": [f"must be {code!r}, the plan edited"]})
    definition = parse_definition({**data, "code": code})
    version, outcome = _revise_plan(session, plan, definition, now)
    if outcome != UNCHANGED:
        _commit(session, code)
    return version


def archive_plan(session: Session, code: str, now: dt.datetime) -> PlanVersion:
    """Archive plan `code`: it can no longer be assigned or edited. Vehicles on it stay on
    it until they are assigned another plan. Returns the latest version."""
    plan = get_plan(session, code)
    if plan.archived_at is None:
        plan.archived_at = plan.updated_at = now
        session.commit()
    return _latest_version(session, code)


def lock_plan_version(session: Session, code: str, version: int, now: dt.datetime) -> PlanVersion:
    """Mark a version as rated on, making it immutable from then on; returns it.

    For the invoice run, which must call it BEFORE reading the definition it rates with
    (`.to_plan()` on the result): the lock is a conditional UPDATE, so a concurrent edit
    either finishes first (and the definition read is the edited one) or finds the
    version locked and adds a new version instead of rewriting this one.

    Does not commit: the lock becomes permanent with the caller's commit, together with
    the rated usage, and a rolled-back run leaves the version editable. Locking a locked
    version keeps its first `locked_at`. Raises NotFound for an unknown version.
    """
    session.execute(
        update(PlanVersion)
        .where(
            PlanVersion.plan_code == code,
            PlanVersion.version == version,
            PlanVersion.locked_at.is_(None),
        )
        .values(locked_at=now),
        execution_options={"synchronize_session": False},
    )
    locked = session.get(PlanVersion, (code, version), populate_existing=True)
    if locked is None:
        raise NotFound("plan version", f"{code}/{version}")
    return locked


def assignable_plan_version(session: Session, code: str, version: int | None = None) -> PlanVersion:
    """The version a vehicle is put on when assigned plan `code`: `version`, or the latest.

    Raises Invalid naming `plan_code` for an unknown or archived plan, and `plan_version`
    for an unknown version.
    """
    plan = session.get(Plan, code)
    if plan is None:
        raise Invalid("unknown plan", {"plan_code": [f"plan {code} not found"]})
    if plan.archived_at is not None:
        raise Invalid("archived plan", {"plan_code": [f"plan {code} is archived"]})
    if version is None:
        return _latest_version(session, code)
    found = session.get(PlanVersion, (code, version))
    if found is None:
        raise Invalid(
            "unknown plan version", {"plan_version": [f"{code} has no version {version}"]}
        )
    return found


def load_plans_from_directory(
    session: Session, directory: Path, now: dt.datetime
) -> list[LoadedPlan]:
    """Load every `*.yaml` and `*.yml` plan file of `directory`, in file name order.

    All files are read and checked before anything is written, then saved in one
    transaction: a directory with one faulty file loads nothing. Each file is saved as
    `update_plan` would (a file that did not change creates nothing, so loading twice is
    harmless). Raises Invalid with details keyed "<file name>: <field path>".
    """
    files = sorted(p for p in directory.iterdir() if p.suffix in PLAN_FILE_SUFFIXES)
    definitions: list[tuple[Path, plans.Plan]] = []
    errors: dict[str, list[str]] = {}
    first_file: dict[str, Path] = {}
    for path in files:
        try:
            definition = plans.parse_plan(_read_yaml(path))
        except plans.PlanInvalid as error:
            errors.update({f"{path.name}: {field}": m for field, m in error.errors.items()})
            continue
        if definition.code in first_file:
            errors[f"{path.name}: code"] = [
                f"plan {definition.code} is also defined in {first_file[definition.code].name}"
            ]
            continue
        first_file[definition.code] = path
        definitions.append((path, definition))
    if errors:
        raise Invalid(f"invalid plan files in {directory}", errors)
    loaded = []
    for path, definition in definitions:
        plan = session.get(Plan, definition.code)
        if plan is None:
            version, outcome = _add_plan(session, definition, now), CREATED
        else:
            version, outcome = _revise_plan(session, plan, definition, now)
        session.flush()
        loaded.append(LoadedPlan(path, definition.code, version.version, outcome))
    _commit(session, ", ".join(first_file))
    return loaded


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise plans.PlanInvalid({"_schema": [f"not valid YAML: {error}"]}) from None


def parse_definition(data: Mapping[str, Any]) -> plans.Plan:
    """`parse_plan`, its errors turned into Invalid with their field paths (a 422 on the API)."""
    try:
        return plans.parse_plan(data)
    except plans.PlanInvalid as error:
        raise Invalid(f"invalid plan: {', '.join(error.errors)}", error.errors) from None


def _add_plan(session: Session, definition: plans.Plan, now: dt.datetime) -> PlanVersion:
    plan = Plan(
        code=definition.code,
        name=definition.name,
        currency=definition.currency,
        created_at=now,
        updated_at=now,
    )
    version = PlanVersion(
        plan=plan, version=1, definition=definition_text(definition), created_at=now
    )
    session.add_all([plan, version])
    return version


def _revise_plan(
    session: Session, plan: Plan, definition: plans.Plan, now: dt.datetime
) -> tuple[PlanVersion, str]:
    """Save a new definition of an existing plan, uncommitted; (version, outcome)."""
    latest = _latest_version(session, plan.code)
    text = definition_text(definition)
    if latest.definition == text:
        return latest, UNCHANGED
    if plan.archived_at is not None:
        raise Conflict(f"plan {plan.code} is archived and can no longer be changed")
    if definition.currency != plan.currency:
        raise Invalid(
            "currency change",
            {"currency": [f"plan {plan.code} is in {plan.currency}; create another plan"]},
        )
    plan.name, plan.updated_at = definition.name, now
    # Conditional, like `lock_plan_version`: if a lock lands between the read above and
    # this write, nothing is replaced and the edit becomes a new version below.
    replaced = rows_changed(
        session,
        update(PlanVersion)
        .where(
            PlanVersion.plan_code == plan.code,
            PlanVersion.version == latest.version,
            PlanVersion.locked_at.is_(None),
        )
        .values(definition=text, created_at=now)
        .execution_options(synchronize_session=False),
    )
    if replaced:
        session.refresh(latest)
        return latest, REPLACED
    version = PlanVersion(
        plan_code=plan.code, version=latest.version + 1, definition=text, created_at=now
    )
    session.add(version)
    return version, NEW_VERSION


def _commit(session: Session, codes: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        # The primary keys of plans and versions: another request saved the same plan or
        # version number at the same time.
        session.rollback()
        raise Conflict(f"plan {codes} was changed concurrently; retry") from None


# --- preview -----------------------------------------------------------------------------


def preview(
    session: Session,
    code: str,
    usage: Mapping[str, Decimal],
    *,
    days: Decimal | None = None,
    days_in_period: int | None = None,
    period: Period | None = None,
    version: int | None = None,
) -> PlanPreview:
    """Price one vehicle's usage over one period on plan `code` (its latest version, or
    `version`), as customers and sales compare plans.

    The period has `period`'s number of days when given, else `days_in_period`, else 30;
    the vehicle is on the plan `days` of them (default: all). Raises Invalid naming the
    field when these disagree.
    """
    plan_version = get_plan_version(session, code, version)
    if period is not None:
        if days_in_period is not None and days_in_period != period.days():
            raise Invalid(
                "days_in_period disagrees with period",
                {"days_in_period": [f"{period} has {period.days()} days, not {days_in_period}"]},
            )
        days_in_period = period.days()
    if days_in_period is None:
        days_in_period = DEFAULT_DAYS_IN_PERIOD
    days = Decimal(days_in_period) if days is None else days
    if not 0 <= days <= days_in_period:
        raise Invalid(
            "days outside the period",
            {"days": [f"must be between 0 and the period's {days_in_period} days"]},
        )
    rated = preview_plan(plan_version.to_plan(), usage, days, days_in_period)
    return PlanPreview(plan_version, days, days_in_period, rated)
