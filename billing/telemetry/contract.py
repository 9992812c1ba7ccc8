"""The telemetry payload contract (docs/telemetry.md): decoding and validation, without I/O.

Shared by the MQTT consumer and the HTTP endpoint. msgspec validates a reading in about a
microsecond and names the faulty field's path (`$[3].trip.event`), which keeps this hot path
cheap without making errors less clear than marshmallow's.

Hazard: a payload is written by whoever holds a vehicle's broker login. Whatever it holds,
decoding must end in readings or rejections, never in an exception: sizes and nesting
are bounded before anything is parsed (msgspec's generic decoder recurses once per level
and raises RecursionError near 1,000 levels), and every number that becomes a datetime is
range-checked first (`fromtimestamp` raises OSError or ValueError out of range).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
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
PAYLOAD_TOO_LARGE = "payload_too_large"
TOO_DEEP = "too_deeply_nested"
INTERNAL_ERROR = "internal_error"
QUARANTINED = "quarantined"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
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
    PAYLOAD_TOO_LARGE,
    TOO_DEEP,
    INTERNAL_ERROR,
    QUARANTINED,
    CONFLICTING_DUPLICATE,
)

# Epoch milliseconds a datetime can hold: 0001-01-01 to 9999-12-31T23:59:59.999Z.
MIN_EPOCH_MS = -62135596800000
MAX_EPOCH_MS = 253402300799999
# Of a payload rejected as too large, the first bytes kept (its size and digest are kept).
KEPT_PAYLOAD_BYTES = 4096
# A rejection's message quotes the faulty input; it is cut to this many characters.
MAX_MESSAGE_CHARS = 1000

# No NUL: PostgreSQL text cannot hold it (the whole batch's COPY would fail).
Text64 = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[^\x00]*$")]
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
    path: str = "$"  # where it was in its message: `$`, or `$[3]` in an array

    def differs_from(self, other: Reading) -> bool:
        """Whether two readings with the same msg_id say different things (what is billed
        or counted: time, counters, trip; not the battery level or unknown fields)."""
        return (
            self.ts,
            self.odometer_m,
            self.energy_wh,
            self.trip_id,
            self.trip_event,
        ) != (other.ts, other.odometer_m, other.energy_wh, other.trip_id, other.trip_event)

    def as_json(self) -> bytes:
        """The reading as the JSON a publisher would send, for a record of it."""
        document: dict[str, Any] = {"msg_id": self.msg_id, "ts": self.ts.isoformat()}
        for name in ("odometer_m", "energy_wh", "battery_pct"):
            if getattr(self, name) is not None:
                document[name] = getattr(self, name)
        if self.trip_id is not None:
            document["trip"] = {"id": self.trip_id, "event": self.trip_event}
        return _encoder.encode(document)


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
class Bounds:
    """What any payload must respect before it is parsed (settings [ingest])."""

    max_payload_bytes: int = 262144
    max_depth: int = 32  # arrays and objects, the message's own included
    max_extra_bytes: int = 4096  # a reading's unknown fields, as JSON


DEFAULT_BOUNDS = Bounds()


@dataclass(frozen=True, slots=True)
class Limits:
    """What a reading's timestamp must respect besides the schema."""

    latest: dt.datetime  # now + the tolerated clock drift
    retired_at: dt.datetime | None = None  # readings from then on are refused


_fast_decoder = msgspec.json.Decoder(StrictReadingPayload | list[StrictReadingPayload])
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode_payload(
    vehicle_id: str, payload: bytes, limits: Limits, bounds: Bounds = DEFAULT_BOUNDS
) -> Decoded:
    """Decode one message's payload: a reading object or an array of up to 500.

    A malformed, oversized or too deeply nested message is rejected whole; in an array,
    each invalid reading is rejected on its own (with its path and its own bytes) and the
    valid ones are kept, so one bad reading in a store-and-forward batch loses nothing else.
    """
    if len(payload) > bounds.max_payload_bytes:
        message = f"{len(payload):,} bytes; at most {bounds.max_payload_bytes:,}"
        return Decoded([], [Rejection(PAYLOAD_TOO_LARGE, message, payload)])
    try:
        # The schema bounds the depth this decoder descends to: it stops at the first
        # value that is not where a reading's field would be.
        document = _fast_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _decode_slowly(vehicle_id, payload, limits, bounds)
    if isinstance(document, ReadingPayload):
        return _checked(vehicle_id, [(document, None)], payload, limits, bounds, single=True)
    problem = _batch_problem(document, payload)
    if problem is not None:
        return problem
    parsed = [(item, None) for item in document]
    return _checked(vehicle_id, parsed, payload, limits, bounds, single=False)


def _decode_slowly(vehicle_id: str, payload: bytes, limits: Limits, bounds: Bounds) -> Decoded:
    """Item by item, for payloads with errors or unknown fields: each error gets its path."""
    if nested_deeper_than(payload, bounds.max_depth):
        message = f"nested more than {bounds.max_depth} levels deep (arrays and objects)"
        return Decoded([], [Rejection(TOO_DEEP, message, payload)])
    try:
        document = _decoder.decode(payload)
    except msgspec.DecodeError as error:
        message = clean_text(f"malformed JSON: {error}")
        return Decoded([], [Rejection(MALFORMED_JSON, message, payload)])
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
            message = clean_text(_with_path(str(error), path))
            rejections.append(Rejection(SCHEMA, message, raw, path))
    decoded = _checked(vehicle_id, parsed, payload, limits, bounds, single=single)
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
    parsed: Sequence[tuple[ReadingPayload, tuple[Any, str] | None]],
    payload: bytes,
    limits: Limits,
    bounds: Bounds,
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
        ts, problem = _utc_timestamp(reading_payload.ts)
        if ts is not None:
            problem = _timestamp_problem(ts, limits)
            if problem is None:
                readings.append(_reading(vehicle_id, reading_payload, ts, raw_item, bounds, path))
                continue
        assert problem is not None, "an instant out of range comes with its reason"
        reason, message = problem
        raw = payload if single else _encoder.encode(raw_item or reading_payload)
        rejections.append(Rejection(reason, f"{message} - at `{path}.ts`", raw, path))
    return Decoded(readings, rejections)


def _utc_timestamp(ts: dt.datetime | int) -> tuple[dt.datetime | None, tuple[str, str] | None]:
    """The instant in UTC, or why it has none: epoch milliseconds beyond the years 1–9999,
    or an offset that carries the time past them."""
    if isinstance(ts, int):
        if ts > MAX_EPOCH_MS:
            return None, (FUTURE_TIMESTAMP, f"epoch milliseconds {ts} are beyond the year 9999")
        if ts < MIN_EPOCH_MS:
            return None, (ANCIENT_TIMESTAMP, f"epoch milliseconds {ts} are before the year 1")
        return EPOCH + dt.timedelta(milliseconds=ts), None
    if ts.tzinfo is dt.UTC:
        return ts, None
    try:
        return ts.astimezone(dt.UTC), None
    except OverflowError:
        if ts.year > 1:
            return None, (FUTURE_TIMESTAMP, f"timestamp {ts.isoformat()} is beyond the year 9999")
        return None, (ANCIENT_TIMESTAMP, f"timestamp {ts.isoformat()} is before the year 1")


def _timestamp_problem(ts: dt.datetime, limits: Limits) -> tuple[str, str] | None:
    if ts > limits.latest:
        return FUTURE_TIMESTAMP, f"timestamp {ts.isoformat()} is in the future"
    if ts < EARLIEST:
        return ANCIENT_TIMESTAMP, f"timestamp {ts.isoformat()} is before 2000 (clock not set?)"
    if limits.retired_at is not None and ts >= limits.retired_at:
        return RETIRED_VEHICLE, f"the vehicle was retired at {limits.retired_at.isoformat()}"
    return None


def _reading(
    vehicle_id: str,
    parsed: ReadingPayload,
    ts: dt.datetime,
    raw_item: Any,
    bounds: Bounds,
    path: str,
) -> Reading:
    extra = None
    if raw_item is not None:
        unknown = {key: value for key, value in raw_item.items() if key not in KNOWN_FIELDS}
        extra = _extra(unknown, bounds.max_extra_bytes) if unknown else None
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
        path,
    )


def _extra(unknown: dict[str, Any], max_bytes: int) -> str:
    """Unknown fields as JSON text, or, when they take more than `max_bytes`, a note of
    their size and names in their place: the reading is kept, the bulk is not."""
    text = _encoder.encode(unknown)
    if len(text) <= max_bytes:
        return text.decode()
    names = [name[:64] for name in list(unknown)[:20]]
    return _encoder.encode({DROPPED_EXTRA: {"bytes": len(text), "fields": names}}).decode()


DROPPED_EXTRA = "$dropped"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


def nested_deeper_than(payload: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in a JSON text, found
    without parsing it (and so without recursion). Brackets inside strings do not count;
    in a malformed text the count may be too high, which a guard can afford."""
    brackets = _JSON_STRING.sub(b"", payload).translate(None, _NOT_A_BRACKET)
    if len(brackets) <= limit:
        return False
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def clean_text(message: str) -> str:
    """A message fit for storage whatever input it quotes: no NUL, bounded length."""
    message = message.replace("\x00", "\\x00")
    if len(message) > MAX_MESSAGE_CHARS:
        return message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


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
