"""The telemetry payload contract (DESIGN 2.1): decoding and validation, without I/O.

Shared by the MQTT consumer and the HTTP endpoint. msgspec validates a reading in about a
microsecond and names the faulty field's path (`$[3].trip.event`), which keeps this hot path
cheap without making errors less clear than marshmallow's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

MAX_BATCH = 500
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

# Rejection reasons, as stored and as filtered on by the API.
MALFORMED_JSON = "malformed_json"
SCHEMA = "schema_violation"
BATCH_TOO_LARGE = "batch_too_large"
EMPTY_BATCH = "empty_batch"
BAD_TOPIC = "bad_topic"
UNKNOWN_VEHICLE = "unknown_vehicle"
RETIRED_VEHICLE = "retired_vehicle"
FUTURE_TIMESTAMP = "future_timestamp"
ANCIENT_TIMESTAMP = "ancient_timestamp"
REASONS = (
    MALFORMED_JSON,
    SCHEMA,
    BATCH_TOO_LARGE,
    EMPTY_BATCH,
    BAD_TOPIC,
    UNKNOWN_VEHICLE,
    RETIRED_VEHICLE,
    FUTURE_TIMESTAMP,
    ANCIENT_TIMESTAMP,
)

Text64 = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Counter = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


class TripEvent(msgspec.Struct, frozen=True):
    id: Text64
    event: Literal["start", "end"]


class ReadingPayload(msgspec.Struct, frozen=True):
    msg_id: Text64
    ts: Annotated[dt.datetime, msgspec.Meta(tz=True)] | int
    odometer_m: Counter | None = None
    energy_wh: Counter | None = None
    battery_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    trip: TripEvent | None = None


class StrictReadingPayload(ReadingPayload, frozen=True, forbid_unknown_fields=True):
    """The same reading, refusing unknown fields: the fast path takes only plain payloads."""


KNOWN_FIELDS = frozenset(ReadingPayload.__struct_fields__)


class Reading(msgspec.Struct, frozen=True):
    """A valid reading of one vehicle, ready to store."""

    vehicle_id: str
    msg_id: str
    ts: dt.datetime
    odometer_m: int | None
    energy_wh: int | None
    battery_pct: float | None
    trip_id: str | None
    trip_event: str | None
    extra: str | None  # unknown fields, kept as JSON text but ignored


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input that cannot be stored as a reading, with the reason and the raw bytes."""

    reason: str
    message: str
    payload: bytes
    path: str = "$"


@dataclass(frozen=True, slots=True)
class Decoded:
    readings: list[Reading]
    rejections: list[Rejection]


@dataclass(frozen=True, slots=True)
class Limits:
    """What a reading's timestamp must respect besides the schema."""

    latest: dt.datetime  # now + the tolerated clock drift
    retired_at: dt.datetime | None = None  # readings from then on are refused


_fast_decoder = msgspec.json.Decoder(StrictReadingPayload | list[StrictReadingPayload])
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode_payload(vehicle_id: str, payload: bytes, limits: Limits) -> Decoded:
    """Decode one message's payload: a reading object or an array of up to 500.

    A malformed or oversized message is rejected whole; in an array, each invalid reading
    is rejected on its own (with its path and its own bytes) and the valid ones are kept,
    so one bad reading in a store-and-forward batch loses nothing else.
    """
    try:
        document = _fast_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _decode_slowly(vehicle_id, payload, limits)
    if isinstance(document, ReadingPayload):
        return _checked(vehicle_id, [(document, None)], payload, limits, single=True)
    problem = _batch_problem(document, payload)
    if problem is not None:
        return problem
    return _checked(vehicle_id, [(item, None) for item in document], payload, limits, single=False)


def _decode_slowly(vehicle_id: str, payload: bytes, limits: Limits) -> Decoded:
    """Item by item, for payloads with errors or unknown fields: each error gets its path."""
    try:
        document = _decoder.decode(payload)
    except msgspec.DecodeError as error:
        return Decoded([], [Rejection(MALFORMED_JSON, f"malformed JSON: {error}", payload)])
    single = isinstance(document, dict)
    if not single and not isinstance(document, list):
        message = f"expected a reading object or an array of readings, got {_kind(document)}"
        return Decoded([], [Rejection(SCHEMA, message, payload)])
    if not single:
        problem = _batch_problem(document, payload)
        if problem is not None:
            return problem
    parsed, rejections = [], []
    for index, item in enumerate([document] if single else document):
        path = "$" if single else f"$[{index}]"
        try:
            parsed.append((msgspec.convert(item, ReadingPayload), (item, path)))
        except msgspec.ValidationError as error:
            raw = payload if single else _encoder.encode(item)
            rejections.append(Rejection(SCHEMA, _with_path(str(error), path), raw, path))
    decoded = _checked(vehicle_id, parsed, payload, limits, single=single)
    return Decoded(decoded.readings, rejections + decoded.rejections)


def _batch_problem(items: list[Any], payload: bytes) -> Decoded | None:
    if not items:
        return Decoded([], [Rejection(EMPTY_BATCH, "empty array: no reading to store", payload)])
    if len(items) > MAX_BATCH:
        message = f"{len(items)} readings in one message; at most {MAX_BATCH}"
        return Decoded([], [Rejection(BATCH_TOO_LARGE, message, payload)])
    return None


def _checked(
    vehicle_id: str,
    parsed: list[tuple[ReadingPayload, tuple[Any, str] | None]],
    payload: bytes,
    limits: Limits,
    *,
    single: bool,
) -> Decoded:
    """Readings from parsed payloads, minus those whose timestamp breaks the limits.

    Each parsed payload comes with its raw item and path when it was decoded item by item
    (the raw item carries the unknown fields to keep).
    """
    readings, rejections = [], []
    for index, (reading_payload, origin) in enumerate(parsed):
        raw_item, path = origin if origin else (None, "$" if single else f"$[{index}]")
        reading = _reading(vehicle_id, reading_payload, raw_item)
        problem = _timestamp_problem(reading.ts, limits)
        if problem is None:
            readings.append(reading)
            continue
        reason, message = problem
        raw = payload if single else _encoder.encode(raw_item or reading_payload)
        rejections.append(Rejection(reason, f"{message} - at `{path}.ts`", raw, path))
    return Decoded(readings, rejections)


def _timestamp_problem(ts: dt.datetime, limits: Limits) -> tuple[str, str] | None:
    if ts > limits.latest:
        return FUTURE_TIMESTAMP, f"timestamp {ts.isoformat()} is in the future"
    if ts < EARLIEST:
        return ANCIENT_TIMESTAMP, f"timestamp {ts.isoformat()} is before 2000 (clock not set?)"
    if limits.retired_at is not None and ts >= limits.retired_at:
        return RETIRED_VEHICLE, f"the vehicle was retired at {limits.retired_at.isoformat()}"
    return None


def _reading(vehicle_id: str, parsed: ReadingPayload, raw_item: Any) -> Reading:
    ts = parsed.ts
    if isinstance(ts, int):
        ts = dt.datetime.fromtimestamp(ts / 1000, dt.UTC)
    elif ts.tzinfo is not dt.UTC:
        ts = ts.astimezone(dt.UTC)
    extra = None
    if raw_item is not None:
        unknown = {key: value for key, value in raw_item.items() if key not in KNOWN_FIELDS}
        extra = _encoder.encode(unknown).decode() if unknown else None
    trip = parsed.trip
    return Reading(
        vehicle_id,
        parsed.msg_id,
        ts,
        parsed.odometer_m,
        parsed.energy_wh,
        parsed.battery_pct,
        trip.id if trip else None,
        trip.event if trip else None,
        extra,
    )


def _with_path(message: str, path: str) -> str:
    """msgspec reports paths from the item's root (`$.ts`), or none for the root itself;
    make every message end with its path from the message's root."""
    if " - at `$" not in message:
        return f"{message} - at `{path}`"
    return message.replace("`$", f"`{path}", 1)


def _kind(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
