"""Webhook endpoints, the outbox of events, and its delivery.

Delivery is at least once: a delivery is claimed (its next attempt pushed past the time a
send may take) and committed before the request goes out, and marked delivered in the
transaction that records the receiver's 2xx. Two senders never send the same delivery at
once, and a delivered one is never sent again by the job; but a sender that dies between
the receiver's answer and that commit sends it once more when the claim lapses. Every
delivery of an event carries the event's id (in the body and in `Billing-Event-Id`), so
receivers deduplicate by it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, select, true, update
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.db import rows_changed
from billing.devices.models import Customer
from billing.errors import Invalid, NotFound
from billing.ids import new_id
from billing.pagination import Page, paginate
from billing.settings import WebhookSettings
from billing.webhooks import signing
from billing.webhooks.models import (
    DELIVERED,
    FAILED,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from billing.webhooks.sender import Answer, Sender

log = logging.getLogger(__name__)

# A claimed delivery is not due again before the send's timeout and this margin passed.
CLAIM_MARGIN = dt.timedelta(seconds=60)
USER_AGENT = "scooter-billing-webhooks/1"


# --- endpoints ----------------------------------------------------------------------------


def _scope(principal: Principal) -> ColumnElement[bool]:
    if principal.role == "admin":
        return true()
    if principal.role == "customer":
        return WebhookEndpoint.customer_id == principal.customer_id
    return false()


def get_endpoint(session: Session, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, _scope(principal))
    )
    if endpoint is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return endpoint


def list_endpoints(session: Session, principal: Principal, page: int, per_page: int) -> Page:
    query = (
        select(WebhookEndpoint)
        .where(_scope(principal))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return paginate(session, query, page, per_page)


def create_endpoint(
    session: Session, principal: Principal, fields: Mapping[str, Any], now: dt.datetime
) -> WebhookEndpoint:
    """Register an endpoint with a new secret (read it once, from the returned row).

    A customer's key registers endpoints of its own account; an admin's, of the account
    it names in `customer_id`, or without one an endpoint that receives every account's
    events."""
    customer_id = fields.get("customer_id")
    if principal.role == "customer":
        customer_id = customer_id or principal.customer_id
        if customer_id != principal.customer_id:
            raise Invalid(
                "unknown customer", {"customer_id": [f"customer {customer_id} not found"]}
            )
    elif customer_id is not None and session.get(Customer, customer_id) is None:
        raise Invalid("unknown customer", {"customer_id": [f"customer {customer_id} not found"]})
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        customer_id=customer_id,
        url=fields["url"],
        description=fields.get("description", ""),
        events=json.dumps(sorted(set(fields["events"]))),
        enabled=fields.get("enabled", True),
        secret=signing.new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.commit()
    return endpoint


def update_endpoint(
    session: Session,
    principal: Principal,
    endpoint_id: str,
    changes: Mapping[str, Any],
    now: dt.datetime,
) -> WebhookEndpoint:
    """Change an endpoint's `url`, `events`, `description` or `enabled`."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    for name in ("url", "description", "enabled"):
        if name in changes:
            setattr(endpoint, name, changes[name])
    if "events" in changes:
        endpoint.events = json.dumps(sorted(set(changes["events"])))
    endpoint.updated_at = now
    session.commit()
    return endpoint


def delete_endpoint(session: Session, principal: Principal, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their log; its events stay."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    for delivery in session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    ):
        session.delete(delivery)
    session.delete(endpoint)
    session.commit()


def rotate_secret(
    session: Session,
    principal: Principal,
    endpoint_id: str,
    now: dt.datetime,
    settings: WebhookSettings,
) -> WebhookEndpoint:
    """Give the endpoint a new secret; the current one keeps signing (a second `v1`) for
    `secret_overlap_hours`, so that receivers switch without losing an event."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + dt.timedelta(hours=settings.secret_overlap_hours)
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = now
    session.commit()
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign a delivery at `now`: the current one, and the previous one
    while its overlap lasts."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def subscribed_events(endpoint: WebhookEndpoint) -> list[str]:
    return json.loads(endpoint.events)


# --- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """Something that happened to an account: what `emit_events` turns into an event."""

    customer_id: str | None
    data: Mapping[str, Any]


def emit_event(
    session: Session,
    event_type: str,
    customer_id: str | None,
    data: Mapping[str, Any],
    now: dt.datetime,
) -> WebhookEvent | None:
    """Queue an event for every enabled endpoint subscribed to it, in the caller's
    transaction (so it is sent if and only if the change it tells of commits). None when
    no endpoint wants it: nothing is stored then."""
    events = emit_events(session, event_type, [Occurrence(customer_id, data)], now)
    return events[0] if events else None


def emit_events(
    session: Session, event_type: str, occurrences: Iterable[Occurrence], now: dt.datetime
) -> list[WebhookEvent]:
    """`emit_event` for many occurrences of one type, reading the endpoints once."""
    endpoints = [
        endpoint
        for endpoint in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
        )
        if event_type in subscribed_events(endpoint)
    ]
    if not endpoints:
        return []
    made = []
    for occurrence in occurrences:
        targets = [e for e in endpoints if e.customer_id in (None, occurrence.customer_id)]
        if not targets:
            continue
        event_id = new_id("evt")
        body = {
            "id": event_id,
            "type": event_type,
            "created_at": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "customer_id": occurrence.customer_id,
            "data": occurrence.data,
        }
        event = WebhookEvent(
            id=event_id,
            type=event_type,
            customer_id=occurrence.customer_id,
            created_at=now,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        )
        session.add(event)
        for endpoint in targets:
            session.add(_new_delivery(event_id, endpoint.id, now))
        made.append(event)
    return made


def _new_delivery(event_id: str, endpoint_id: str, now: dt.datetime) -> WebhookDelivery:
    return WebhookDelivery(
        event_id=event_id,
        endpoint_id=endpoint_id,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


# --- delivery -----------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What a pass did: deliveries delivered, failed (to retry), and given up."""

    delivered: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    given_up: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.delivered) + len(self.failed) + len(self.given_up)


def deliver_due(
    session: Session,
    sender: Sender,
    now: dt.datetime,
    settings: WebhookSettings,
    *,
    limit: int = 50,
) -> DeliveryReport:
    """Send up to `limit` deliveries whose attempt is due, oldest first, each in its own
    transactions (claimed, then sent, then recorded)."""
    report = DeliveryReport()
    due = session.scalars(
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    ).all()
    for delivery_id in due:
        if not _claim(session, delivery_id, now, settings):
            continue  # another sender took it meanwhile
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            continue
        outcome = deliver(session, delivery, sender, now, settings)
        if outcome.delivered:
            report.delivered.append(delivery_id)
        elif delivery.status == FAILED:
            report.given_up.append(delivery_id)
        else:
            report.failed[delivery_id] = outcome.error or ""
    return report


def _claim(session: Session, delivery_id: int, now: dt.datetime, settings: WebhookSettings) -> bool:
    """Push the delivery's next attempt past the send about to happen, and commit: no other
    sender takes it meanwhile, and a sender that dies leaves it due again soon."""
    claimed_until = now + dt.timedelta(seconds=settings.timeout_seconds) + CLAIM_MARGIN
    taken = rows_changed(
        session,
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=claimed_until)
        .execution_options(synchronize_session=False),
    )
    session.commit()
    return bool(taken)


def deliver(
    session: Session,
    delivery: WebhookDelivery,
    sender: Sender,
    now: dt.datetime,
    settings: WebhookSettings,
) -> Answer:
    """Send one delivery now and record the attempt, with the delivery's new state, in
    one transaction: delivered on a 2xx; otherwise due again after the backoff, or given
    up once its retry window is over."""
    session.refresh(delivery)
    if delivery.give_up_at is None:
        delivery.give_up_at = delivery.created_at + dt.timedelta(hours=settings.retry_hours)
    body = delivery.event.body.encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.SIGNATURE_HEADER: signing.signature_header(
            signing_secrets(delivery.endpoint, now), timestamp, body
        ),
        signing.EVENT_ID_HEADER: delivery.event_id,
        signing.EVENT_TYPE_HEADER: delivery.event.type,
    }
    started = time.monotonic()
    answer = sender.post(delivery.endpoint.url, body, headers, settings.timeout_seconds)
    duration_ms = round((time.monotonic() - started) * 1000)
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=answer.status_code,
            error=answer.error,
            duration_ms=duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.last_status_code = answer.status_code
    delivery.last_error = answer.error
    if answer.delivered:
        delivery.status, delivery.delivered_at = DELIVERED, now
    else:
        retry_at = now + retry_delay(delivery.attempts, settings)
        if retry_at > delivery.give_up_at:
            delivery.status = FAILED
            log.warning("webhook delivery %s given up: %s", delivery.id, answer.error)
        else:
            delivery.next_attempt_at = retry_at
    session.commit()
    return answer


def retry_delay(failures: int, settings: WebhookSettings) -> dt.timedelta:
    """The wait after the `failures`-th failure in a row: the first delay, doubled at each
    failure, at most the longest."""
    first, longest = settings.first_retry_seconds, settings.longest_retry_seconds
    doublings = min(failures - 1, 40)  # 2**40 times a second is beyond any longest delay
    return dt.timedelta(seconds=min(first * 2**doublings, longest))


# --- the delivery log ---------------------------------------------------------------------


def list_deliveries(
    session: Session,
    principal: Principal,
    endpoint_id: str,
    page: int,
    per_page: int,
    status: str | None = None,
) -> Page:
    """The endpoint's deliveries, newest first."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return paginate(session, query.order_by(WebhookDelivery.id.desc()), page, per_page)


def get_delivery(
    session: Session, principal: Principal, endpoint_id: str, delivery_id: int
) -> WebhookDelivery:
    endpoint = get_endpoint(session, principal, endpoint_id)
    delivery = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )
    if delivery is None:
        raise NotFound("webhook delivery", str(delivery_id))
    return delivery


def replay_delivery(
    session: Session,
    principal: Principal,
    endpoint_id: str,
    delivery_id: int,
    now: dt.datetime,
    settings: WebhookSettings,
) -> WebhookDelivery:
    """Send a delivery again, whatever became of it: due now, with the same event (its id
    and body), retried as a new one would be for `retry_hours` from now."""
    delivery = get_delivery(session, principal, endpoint_id, delivery_id)
    delivery.status = PENDING
    delivery.next_attempt_at = now
    delivery.give_up_at = now + dt.timedelta(hours=settings.retry_hours)
    session.commit()
    return delivery
