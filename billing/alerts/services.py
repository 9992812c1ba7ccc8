"""Alert rules, their evaluation as metering progresses, and their history.

The scheduler's `alerts` job runs `evaluate_alerts` every few seconds: for each customer
with enabled rules it prices the period to date (the statement's own computation) and
fires each rule whose measure reached its threshold, once per rule and period. A rule is
evaluated on the current period and, for `late_days` after it closed, on the previous
one, so a late reading that crosses a threshold still fires it, for the period the
reading belongs to. Periods that ended before the rule was made are never evaluated.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.alerts.models import (
    AMOUNT,
    CAP_PERCENT,
    CUSTOMER,
    FLEET,
    MONEY_MEASURES,
    VEHICLE,
    AlertFiring,
    AlertRule,
)
from billing.auth import Principal
from billing.charges.compute import Statement, compute_statement
from billing.devices.models import Customer, Fleet, Vehicle
from billing.devices.services import get_customer
from billing.errors import Invalid, NotFound
from billing.ids import new_id
from billing.metering.usage import quantities
from billing.pagination import Page, paginate
from billing.periods import Period
from billing.webhooks.events import ALERT_TRIGGERED
from billing.webhooks.services import emit_event

PERCENT_PLACES = Decimal("0.01")


# --- rules --------------------------------------------------------------------------------


def list_rules(session: Session, principal: Principal, customer_id: str) -> list[AlertRule]:
    customer = get_customer(session, principal, customer_id)
    return list(
        session.scalars(
            select(AlertRule)
            .where(AlertRule.customer_id == customer.id)
            .order_by(AlertRule.created_at, AlertRule.id)
        )
    )


def get_rule(session: Session, principal: Principal, customer_id: str, rule_id: str) -> AlertRule:
    customer = get_customer(session, principal, customer_id)
    rule = session.scalar(
        select(AlertRule).where(AlertRule.id == rule_id, AlertRule.customer_id == customer.id)
    )
    if rule is None:
        raise NotFound("alert", rule_id)
    return rule


def create_rule(
    session: Session,
    principal: Principal,
    customer_id: str,
    fields: Mapping[str, Any],
    now: dt.datetime,
) -> AlertRule:
    """A rule on the customer (`scope` customer), one of its fleets or one of the
    vehicles it holds; amounts and the cap's share only for the whole customer."""
    customer = get_customer(session, principal, customer_id)
    scope, measure = fields["scope"], fields["measure"]
    fleet_id, vehicle_id = fields.get("fleet_id"), fields.get("vehicle_id")
    errors: dict[str, list[str]] = {}
    if scope != CUSTOMER and measure in MONEY_MEASURES:
        errors["measure"] = [f"{measure} is measured for the whole customer (scope customer)"]
    if scope != FLEET and fleet_id is not None:
        errors["fleet_id"] = ["only a rule of scope fleet names a fleet"]
    if scope != VEHICLE and vehicle_id is not None:
        errors["vehicle_id"] = ["only a rule of scope vehicle names a vehicle"]
    if scope == FLEET and not _customers_fleet(session, customer.id, fleet_id):
        errors["fleet_id"] = [f"fleet {fleet_id} not found" if fleet_id else "required"]
    if scope == VEHICLE and not _customers_vehicle(session, customer.id, vehicle_id):
        errors["vehicle_id"] = [f"vehicle {vehicle_id} not found" if vehicle_id else "required"]
    _check_threshold(fields["threshold"], errors)
    if errors:
        raise Invalid("invalid alert", errors)
    rule = AlertRule(
        id=new_id("alr"), customer_id=customer.id, name=fields.get("name", ""), scope=scope,
        fleet_id=fleet_id, vehicle_id=vehicle_id, measure=measure,
        threshold=fields["threshold"], enabled=fields.get("enabled", True),
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(rule)
    session.commit()
    return rule


def update_rule(
    session: Session,
    principal: Principal,
    customer_id: str,
    rule_id: str,
    changes: Mapping[str, Any],
    now: dt.datetime,
) -> AlertRule:
    """Change a rule's `name`, `threshold` or `enabled`. A rule already fired this
    period does not fire again in it, whatever its new threshold."""
    rule = get_rule(session, principal, customer_id, rule_id)
    if "threshold" in changes:
        errors: dict[str, list[str]] = {}
        _check_threshold(changes["threshold"], errors)
        if errors:
            raise Invalid("invalid alert", errors)
    for name in ("name", "threshold", "enabled"):
        if name in changes:
            setattr(rule, name, changes[name])
    rule.updated_at = now
    session.commit()
    return rule


def delete_rule(session: Session, principal: Principal, customer_id: str, rule_id: str) -> None:
    """Remove a rule and its history."""
    rule = get_rule(session, principal, customer_id, rule_id)
    for firing in session.scalars(select(AlertFiring).where(AlertFiring.rule_id == rule.id)):
        session.delete(firing)
    session.delete(rule)
    session.commit()


def list_firings(
    session: Session, principal: Principal, customer_id: str, page: int, per_page: int
) -> Page:
    """The customer's alerts fired, newest first."""
    customer = get_customer(session, principal, customer_id)
    query = (
        select(AlertFiring)
        .where(AlertFiring.customer_id == customer.id)
        .order_by(AlertFiring.fired_at.desc(), AlertFiring.id.desc())
    )
    return paginate(session, query, page, per_page)


def _check_threshold(threshold: Decimal, errors: dict[str, list[str]]) -> None:
    if threshold <= 0:
        errors["threshold"] = ["must be more than 0"]


def _customers_fleet(session: Session, customer_id: str, fleet_id: str | None) -> bool:
    fleet = session.get(Fleet, fleet_id) if fleet_id else None
    return fleet is not None and fleet.customer_id == customer_id


def _customers_vehicle(session: Session, customer_id: str, vehicle_id: str | None) -> bool:
    vehicle = session.get(Vehicle, vehicle_id) if vehicle_id else None
    return vehicle is not None and vehicle.fleet.customer_id == customer_id


# --- evaluation ---------------------------------------------------------------------------


def evaluate_alerts(session: Session, now: dt.datetime, *, late_days: int) -> list[AlertFiring]:
    """Fire every enabled rule whose measure reached its threshold in the current period
    (or in the previous one, up to `late_days` after it closed) and has not fired in that
    period yet: records the firing and emits `alert.triggered`. Commits per customer."""
    by_customer: dict[str, list[AlertRule]] = defaultdict(list)
    for rule in session.scalars(
        select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    ):
        by_customer[rule.customer_id].append(rule)
    fired: list[AlertFiring] = []
    for customer_id, rules in by_customer.items():
        customer = session.get(Customer, customer_id)
        if customer is None:
            continue
        zone = ZoneInfo(customer.timezone)
        current = Period.containing(now, zone)
        periods = [current]
        if now < current.bounds(zone)[0] + dt.timedelta(days=late_days):
            periods.insert(0, current.previous())
        for period in periods:
            fired += _evaluate_period(session, customer, rules, period, period == current, now)
        session.commit()
    return fired


def _evaluate_period(
    session: Session,
    customer: Customer,
    rules: list[AlertRule],
    period: Period,
    in_progress: bool,
    now: dt.datetime,
) -> list[AlertFiring]:
    end = period.bounds(ZoneInfo(customer.timezone))[1]
    done = set(
        session.scalars(
            select(AlertFiring.rule_id).where(
                AlertFiring.customer_id == customer.id, AlertFiring.period == str(period)
            )
        )
    )
    pending = [rule for rule in rules if rule.id not in done and rule.created_at < end]
    if not pending:
        return []
    statement = compute_statement(session, customer, period, until=now if in_progress else None)
    fired = []
    for rule in pending:
        value = measured(statement, rule, _fleet_vehicles(session, rule))
        if value is None or value < rule.threshold:
            continue
        firing = AlertFiring(
            rule_id=rule.id, customer_id=customer.id, period=str(period), value=value,
            threshold=rule.threshold, fired_at=now,
        )  # fmt: skip
        session.add(firing)
        emit_event(session, ALERT_TRIGGERED, customer.id, _event_data(rule, firing), now)
        fired.append(firing)
    return fired


def measured(statement: Statement, rule: AlertRule, fleet_vehicles: set[str]) -> Decimal | None:
    """The rule's measure in the statement; None when it has none (no cap for cap_percent)."""
    if rule.measure == AMOUNT:
        return statement.totals.net if statement.totals is not None else None
    if rule.measure == CAP_PERCENT:
        cap = statement.cap
        if cap is None or cap.cap.amount <= 0:
            return None
        return (cap.capped_amount * 100 / cap.cap.amount).quantize(PERCENT_PLACES)
    segments = statement.segments
    if rule.scope == VEHICLE:
        segments = tuple(s for s in segments if s.segment.vehicle_id == rule.vehicle_id)
    elif rule.scope == FLEET:
        segments = tuple(s for s in segments if s.segment.vehicle_id in fleet_vehicles)
    return sum((quantities(s.usage)[rule.measure] for s in segments), Decimal(0))


def _fleet_vehicles(session: Session, rule: AlertRule) -> set[str]:
    """The vehicles of a fleet rule's fleet: those in it now."""
    if rule.scope != FLEET:
        return set()
    return set(session.scalars(select(Vehicle.id).where(Vehicle.fleet_id == rule.fleet_id)))


def _event_data(rule: AlertRule, firing: AlertFiring) -> dict[str, Any]:
    return {
        "alert": {
            "id": rule.id, "name": rule.name, "scope": rule.scope, "fleet_id": rule.fleet_id,
            "vehicle_id": rule.vehicle_id, "measure": rule.measure,
            "threshold": plain(rule.threshold),
        },
        "period": firing.period,
        "value": plain(firing.value),
        "threshold": plain(firing.threshold),
    }  # fmt: skip


def plain(value: Decimal) -> str:
    """A decimal in plain notation without trailing zeros: "500", "80.5"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
