"""Telemetry services: the one validate-and-store function behind MQTT and HTTP, and the
rejected-messages store with its replay.

Rule: every message ends either as readings or as rejected messages, in the same
transaction — the caller acknowledges the message only after that transaction commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import operator
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import Select, exc, select, tuple_, update
from sqlalchemy.orm import Session

from billing.devices.models import Vehicle
from billing.errors import Conflict, NotFound
from billing.mqtt import vehicle_from_topic
from billing.pagination import Page, paginate
from billing.settings import IngestSettings
from billing.telemetry import contract
from billing.telemetry.contract import DEFAULT_BOUNDS, Bounds, Reading, Rejection
from billing.telemetry.models import Reading as ReadingRow
from billing.telemetry.models import RejectedMessage
from billing.telemetry.storage import insert_readings

log = logging.getLogger(__name__)

# Errors that say the database cannot be reached now, not that a batch is wrong: the
# ingest waits and retries these. Any other error while storing is the batch's fault.
DATABASE_UNAVAILABLE = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)


def telemetry_bounds(settings: IngestSettings) -> Bounds:
    return Bounds(settings.max_payload_bytes, settings.max_depth, settings.max_extra_bytes)


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    topic: str
    payload: bytes
    source: str = "mqtt"  # mqtt | http


@dataclass
class StoreOutcome:
    """What became of a batch of messages."""

    stored: int = 0
    duplicates: int = 0
    # (index of the message in the batch, rejection) in batch order
    rejections: list[tuple[int, Rejection]] = field(default_factory=list)
    rejected_ids: list[int] = field(default_factory=list)

    def rejected_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _index, rejection in self.rejections:
            counts[rejection.reason] = counts.get(rejection.reason, 0) + 1
        return counts


class VehicleDirectory:
    """Which vehicles exist and when they retired, cached for `max_age` seconds.

    Only known vehicles are cached, so a vehicle registered a moment ago is found at once;
    a retirement reaches the ingest within `max_age` (readings stamped after it are then
    rejected, and the earlier ones were legitimate usage anyway).
    """

    def __init__(self, max_age: float = 5.0):
        self.max_age = max_age
        self._known: dict[str, dt.datetime | None] = {}
        self._loaded_at = 0.0

    def lookup(self, session: Session, vehicle_ids: Iterable[str]) -> dict[str, dt.datetime | None]:
        """{vehicle_id: retired_at or None} for the vehicles that exist."""
        if time.monotonic() - self._loaded_at > self.max_age:
            self._known.clear()
            self._loaded_at = time.monotonic()
        missing = {vid for vid in vehicle_ids if vid not in self._known}
        if missing:
            rows = session.execute(
                select(Vehicle.id, Vehicle.retired_at).where(Vehicle.id.in_(missing))
            )
            self._known.update({row[0]: row[1] for row in rows})
        return self._known


@dataclass(frozen=True, slots=True)
class ValidatedMessage:
    message: IncomingMessage
    vehicle_id: str | None
    decoded: contract.Decoded


@dataclass
class ValidatedBatch:
    """A batch of messages sorted into readings to store and rejections to keep."""

    now: dt.datetime
    readings: list[Reading]  # each (vehicle_id, msg_id) once
    valid: int  # valid readings, repeats included
    rejected: list[tuple[int, IncomingMessage, str | None, Rejection]]
    messages: list[ValidatedMessage] = field(default_factory=list)
    # The message each reading to store came in, by its index in `messages`.
    origins: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, now: dt.datetime, messages: list[ValidatedMessage]) -> ValidatedBatch:
        unique: dict[tuple[str, str], Reading] = {}
        origins: dict[tuple[str, str], int] = {}
        valid = 0
        rejected = []
        for index, validated in enumerate(messages):
            decoded = validated.decoded
            for reading in decoded.readings:
                key = (reading.vehicle_id, reading.msg_id)
                first = unique.setdefault(key, reading)
                if first is not reading and reading.differs_from(first):
                    conflict = _conflict(reading, first)
                    rejected.append((index, validated.message, validated.vehicle_id, conflict))
                    continue
                origins.setdefault(key, index)
                valid += 1
            rejected += [
                (index, validated.message, validated.vehicle_id, rejection)
                for rejection in decoded.rejections
            ]
        return cls(now, list(unique.values()), valid, rejected, messages, origins)


def _conflict(reading: Reading, kept: Reading) -> Rejection:
    """A repeat of a stored msg_id saying something else: flagged, and the first one kept."""
    differences = ", ".join(
        f"{name} {getattr(reading, name)} (kept: {getattr(kept, name)})"
        for name in ("ts", "odometer_m", "energy_wh", "trip_id", "trip_event")
        if getattr(reading, name) != getattr(kept, name)
    )
    message = contract.clean_text(
        f"msg_id {reading.msg_id!r} was received before with other values: {differences}; "
        f"the first reading is kept - at `{reading.path}`"
    )
    return Rejection(contract.CONFLICTING_DUPLICATE, message, reading.as_json(), reading.path)


def validate_batch(
    messages: Sequence[IncomingMessage],
    vehicles: dict[str, dt.datetime | None],
    now: dt.datetime,
    max_future_seconds: int,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> ValidatedBatch:
    """Decode and check every message of a batch; no database access (`vehicles` maps the
    registered vehicles to their retirement time, see VehicleDirectory)."""
    latest = now + dt.timedelta(seconds=max_future_seconds)
    validated = []
    for message in messages:
        vehicle_id = vehicle_from_topic(message.topic)
        decoded = _validate_guarded(message, vehicle_id, vehicles, latest, bounds)
        validated.append(ValidatedMessage(message, vehicle_id, decoded))
    return ValidatedBatch.of(now, validated)


def quarantined_batch(
    messages: Sequence[IncomingMessage], now: dt.datetime, crashes: int
) -> ValidatedBatch:
    """Messages kept as rejected without being decoded: each crashed the consumer."""
    text = (
        f"the consumer crashed {crashes} times while processing this message alone; "
        "kept without decoding it (replay it once the cause is fixed)"
    )
    return ValidatedBatch.of(
        now,
        [
            ValidatedMessage(
                message,
                vehicle_from_topic(message.topic),
                contract.Decoded([], [Rejection(contract.QUARANTINED, text, message.payload)]),
            )
            for message in messages
        ],
    )


def topic_vehicles(messages: Sequence[IncomingMessage]) -> set[str]:
    return {vid for message in messages if (vid := vehicle_from_topic(message.topic))}


def write_batch(
    session: Session, batch: ValidatedBatch, *, record_rejections: bool = True
) -> StoreOutcome:
    """Store a validated batch in one transaction, and commit.

    Readings already stored are skipped and counted as duplicates. Rejections are kept
    with their reason — unless `record_rejections` is False (a replay updates its record).

    The last guard: when storing fails for any reason but an unavailable database (raised
    for the caller to retry), the batch is stored again one message at a time, and a
    message that still fails alone is kept as an `internal_error` rejection naming the
    exception — one message cannot stop the others, nor be redelivered forever.
    """
    try:
        return _write_batch(session, batch, record_rejections)
    except DATABASE_UNAVAILABLE:
        raise
    except Exception as error:
        session.rollback()
        if not record_rejections:
            raise  # a replay: its record stays as it was
        log.warning("storing a batch failed (%r); storing its messages one by one", error)
    outcome = StoreOutcome()
    for index, validated in enumerate(batch.messages):
        alone = ValidatedBatch.of(batch.now, [validated])
        try:
            part = _write_batch(session, alone, record_rejections)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception as error:
            session.rollback()
            log.exception("message %d of the batch cannot be stored; rejecting it", index)
            failed = _internal_error(validated.message.payload, "storing", error)
            alone = ValidatedBatch.of(
                batch.now,
                [ValidatedMessage(validated.message, validated.vehicle_id, failed)],
            )
            part = _write_batch(session, alone, record_rejections=True)
        outcome.stored += part.stored
        outcome.duplicates += part.duplicates
        outcome.rejections += [(index, rejection) for _i, rejection in part.rejections]
        outcome.rejected_ids += part.rejected_ids
    return outcome


def _write_batch(session: Session, batch: ValidatedBatch, record_rejections: bool) -> StoreOutcome:
    stored = insert_readings(session, batch.readings, batch.now)
    rejected = batch.rejected
    conflicts = _conflicts_with_stored(session, batch) if stored < len(batch.readings) else []
    if conflicts:
        rejected = rejected + conflicts
    outcome = StoreOutcome(rejections=[(index, r) for index, _m, _v, r in rejected])
    outcome.stored = stored
    outcome.duplicates = batch.valid - stored - len(conflicts)
    if record_rejections and rejected:
        rows = [
            _rejected_row(message, vehicle_id, rejection, batch.now)
            for _index, message, vehicle_id, rejection in rejected
        ]
        outcome.rejected_ids = _keep_rejections(session, rows, batch.now)
    session.commit()
    return outcome


def _conflicts_with_stored(
    session: Session, batch: ValidatedBatch
) -> list[tuple[int, IncomingMessage, str | None, Rejection]]:
    """The readings of a batch whose msg_id was stored before with other values.

    Only looked for when the batch had repeats (redelivery, a resent batch): the readings
    inserted just now compare equal to themselves.
    """
    keys = [(r.vehicle_id, r.msg_id) for r in batch.readings]
    stored = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(
            select(
                ReadingRow.vehicle_id,
                ReadingRow.msg_id,
                ReadingRow.ts,
                ReadingRow.odometer_m,
                ReadingRow.energy_wh,
                ReadingRow.trip_id,
                ReadingRow.trip_event,
            ).where(tuple_(ReadingRow.vehicle_id, ReadingRow.msg_id).in_(keys[start : start + 500]))
        )
        stored.update({(row[0], row[1]): row for row in rows})
    conflicts = []
    for reading in batch.readings:
        row = stored.get((reading.vehicle_id, reading.msg_id))
        if row is None:
            continue
        kept = Reading(row[0], row[1], row[2], row[3], row[4], None, row[5], row[6], None)
        if reading.differs_from(kept):
            index = batch.origins[(reading.vehicle_id, reading.msg_id)]
            validated = batch.messages[index]
            conflict = _conflict(reading, kept)
            conflicts.append((index, validated.message, validated.vehicle_id, conflict))
    return conflicts


def _keep_rejections(session: Session, rows: list[RejectedMessage], now: dt.datetime) -> list[int]:
    """Add the rejections not already pending, count those that are; return their ids.

    The same bytes on the same topic rejected for the same reason are one record (a
    resent batch with one bad reading, a publisher retrying): its count goes up instead.
    """
    key = operator.attrgetter("topic", "reason", "payload_sha256")
    pending = {
        key(match): match.id
        for match in session.execute(
            select(
                RejectedMessage.id,
                RejectedMessage.topic,
                RejectedMessage.reason,
                RejectedMessage.payload_sha256,
            ).where(
                RejectedMessage.payload_sha256.in_({row.payload_sha256 for row in rows}),
                RejectedMessage.status == "pending",
            )
        )
    }
    new: dict[tuple, RejectedMessage] = {}
    kept: list[RejectedMessage | int] = []  # each row's record: an id, or a new record
    repeated: list[RejectedMessage | int] = []
    for row in rows:
        record = pending.get(key(row)) or new.get(key(row))
        if record is None:
            new[key(row)] = record = row
        else:
            repeated.append(record)
        kept.append(record)
    session.add_all(new.values())
    session.flush()
    ids = [record if isinstance(record, int) else record.id for record in kept]
    for record in repeated:
        session.execute(
            update(RejectedMessage)
            .where(RejectedMessage.id == (record if isinstance(record, int) else record.id))
            .values(received_count=RejectedMessage.received_count + 1, last_received_at=now)
        )
    return ids


def store_telemetry(
    session: Session,
    messages: Sequence[IncomingMessage],
    now: dt.datetime,
    *,
    directory: VehicleDirectory,
    max_future_seconds: int,
    bounds: Bounds = DEFAULT_BOUNDS,
    record_rejections: bool = True,
) -> StoreOutcome:
    """Validate and store a batch of telemetry messages in one transaction, and commit:
    the one path of MQTT and HTTP telemetry (the ingest runs its two halves in a pipeline).

    Valid readings are stored once per (vehicle, msg_id): a repeat, in the batch or of a
    stored reading, counts as a duplicate. Everything else is kept in the rejected-messages
    store with its reason.
    """
    vehicles = directory.lookup(session, topic_vehicles(messages))
    batch = validate_batch(messages, vehicles, now, max_future_seconds, bounds)
    return write_batch(session, batch, record_rejections=record_rejections)


def _validate_guarded(
    message: IncomingMessage,
    vehicle_id: str | None,
    vehicles: dict[str, dt.datetime | None],
    latest: dt.datetime,
    bounds: Bounds,
) -> contract.Decoded:
    """_validate, with any exception it raises turned into the message's rejection: what
    the bounds did not foresee rejects one message instead of stopping the consumer."""
    try:
        return _validate(message, vehicle_id, vehicles, latest, bounds)
    except Exception as error:
        log.exception("unexpected error decoding a message on %r", message.topic[:300])
        return _internal_error(message.payload, "decoding", error)


def _internal_error(payload: bytes, stage: str, error: Exception) -> contract.Decoded:
    text = contract.clean_text(f"unexpected {type(error).__name__} while {stage}: {error}")
    return contract.Decoded([], [Rejection(contract.INTERNAL_ERROR, text, payload)])


def _validate(
    message: IncomingMessage,
    vehicle_id: str | None,
    vehicles: dict[str, dt.datetime | None],
    latest: dt.datetime,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> contract.Decoded:
    if vehicle_id is None:
        reason = f"topic {message.topic!r} is not billing/v1/vehicles/{{vehicle_id}}/telemetry"
        return contract.Decoded([], [Rejection(contract.BAD_TOPIC, reason, message.payload)])
    if vehicle_id not in vehicles:
        reason = f"vehicle {vehicle_id} is not registered"
        return contract.Decoded([], [Rejection(contract.UNKNOWN_VEHICLE, reason, message.payload)])
    limits = contract.Limits(latest=latest, retired_at=vehicles[vehicle_id])
    return contract.decode_payload(vehicle_id, message.payload, limits, bounds)


def _rejected_row(
    message: IncomingMessage, vehicle_id: str | None, rejection: Rejection, now: dt.datetime
) -> RejectedMessage:
    payload = rejection.payload
    if rejection.reason == contract.PAYLOAD_TOO_LARGE:
        payload = payload[: contract.KEPT_PAYLOAD_BYTES]
    return RejectedMessage(
        received_at=now,
        source=message.source,
        topic=contract.clean_text(message.topic)[:300],
        vehicle_id=vehicle_id,
        reason=rejection.reason,
        message=rejection.message,
        path=rejection.path,
        payload=payload,
        payload_size=len(rejection.payload),
        payload_sha256=hashlib.sha256(rejection.payload).hexdigest(),
        status="pending",
        received_count=1,
    )


# --- rejected messages -------------------------------------------------------------------


def list_rejected_messages(
    session: Session,
    page: int,
    per_page: int,
    *,
    fleet_ids: frozenset[str] | None = None,
    vehicle_id: str | None = None,
    reason: str | None = None,
    status: str | None = None,
    received_from: dt.datetime | None = None,
    received_to: dt.datetime | None = None,
) -> Page:
    """Rejected messages, newest first; `fleet_ids` limits them to an operator's fleets."""
    query = select(RejectedMessage).order_by(RejectedMessage.id.desc())
    if fleet_ids is not None:
        query = query.where(RejectedMessage.vehicle_id.in_(_fleet_vehicles(fleet_ids)))
    for column, value in (
        (RejectedMessage.vehicle_id, vehicle_id),
        (RejectedMessage.reason, reason),
        (RejectedMessage.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    if received_from is not None:
        query = query.where(RejectedMessage.received_at >= received_from)
    if received_to is not None:
        query = query.where(RejectedMessage.received_at < received_to)
    return paginate(session, query, page, per_page)


def _fleet_vehicles(fleet_ids: frozenset[str]) -> Select:
    return select(Vehicle.id).where(Vehicle.fleet_id.in_(fleet_ids))


def get_rejected_message(
    session: Session, message_id: int, fleet_ids: frozenset[str] | None = None
) -> RejectedMessage:
    query = select(RejectedMessage).where(RejectedMessage.id == message_id)
    if fleet_ids is not None:
        query = query.where(RejectedMessage.vehicle_id.in_(_fleet_vehicles(fleet_ids)))
    rejected = session.scalar(query)
    if rejected is None:
        raise NotFound("rejected message", str(message_id))
    return rejected


def replay_rejected_message(
    session: Session,
    message_id: int,
    now: dt.datetime,
    *,
    directory: VehicleDirectory,
    max_future_seconds: int,
    bounds: Bounds = DEFAULT_BOUNDS,
    fleet_ids: frozenset[str] | None = None,
) -> tuple[RejectedMessage, StoreOutcome]:
    """Run a rejected message through validation and storage again.

    When it is accepted now (say, its vehicle was registered since), its readings are
    stored and the record is marked replayed. When it is still refused, the record keeps
    the new reason and nothing else is stored; a reading rejected out of an array keeps
    its place in it (`$[250]`), though only its own bytes were kept and replayed.
    """
    rejected = get_rejected_message(session, message_id, fleet_ids)
    if rejected.status == "replayed":
        raise Conflict(f"rejected message {message_id} was already replayed")
    if rejected.payload_truncated:
        raise Conflict(
            f"rejected message {message_id} kept only the first {len(rejected.payload):,} of "
            f"its {rejected.payload_size:,} bytes: it cannot be replayed"
        )
    message = IncomingMessage(topic=rejected.topic, payload=rejected.payload, source="replay")
    probe = _validate_guarded(
        message,
        vehicle_from_topic(rejected.topic),
        directory.lookup(session, [rejected.vehicle_id] if rejected.vehicle_id else []),
        now + dt.timedelta(seconds=max_future_seconds),
        bounds,
    )
    probe = _rebased(probe, rejected.path)
    rejected.replay_count += 1
    if probe.rejections:
        first = probe.rejections[0]
        rejected.reason, rejected.message, rejected.path = first.reason, first.message, first.path
        session.commit()
        return rejected, StoreOutcome(rejections=[(0, r) for r in probe.rejections])
    rejected.status, rejected.replayed_at = "replayed", now
    outcome = store_telemetry(
        session,
        [message],
        now,
        directory=directory,
        max_future_seconds=max_future_seconds,
        bounds=bounds,
        record_rejections=False,
    )
    return rejected, outcome


def _rebased(decoded: contract.Decoded, base: str) -> contract.Decoded:
    """Rejections of a reading kept out of an array, with paths from the array's root."""
    if base == "$":
        return decoded
    rejections = [
        Rejection(
            r.reason,
            r.message.replace("`$", f"`{base}"),
            r.payload,
            base + r.path.removeprefix("$"),
        )
        for r in decoded.rejections
    ]
    return contract.Decoded(decoded.readings, rejections)
