"""The telemetry decoder survives any payload: whatever the bytes, every message ends as
readings or rejections with a reason, and never as an exception."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.telemetry import contract as telemetry
from billing.telemetry.contract import Bounds, Limits, decode_payload, nested_deeper_than

NOW = dt.datetime(2026, 11, 15, 10, 0, tzinfo=dt.UTC)
LIMITS = Limits(latest=NOW + dt.timedelta(days=1))
TS = "2026-11-15T09:00:00Z"


def decode(payload: bytes | object, bounds: Bounds = telemetry.DEFAULT_BOUNDS):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_payload("VEH-1", raw, LIMITS, bounds)


def only_rejection(payload: bytes | object, **bounds) -> telemetry.Rejection:
    decoded = decode(payload, Bounds(**bounds)) if bounds else decode(payload)
    assert decoded.readings == [], decoded.readings
    [rejection] = decoded.rejections
    return rejection


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 10_000, 100_000])
def test_unknown_fields_nested_deeper_than_the_bound_reject_the_message(depth):
    payload = b'{"msg_id": "a", "ts": "%s", "junk": %s}' % (TS.encode(), nested(depth))
    rejection = only_rejection(payload)
    assert rejection.reason == "too_deeply_nested"
    assert "more than 32 levels" in rejection.message
    assert rejection.payload == payload


def test_a_deeply_nested_array_of_arrays_is_too_deep_not_a_crash():
    assert only_rejection(nested(100_000)).reason == "too_deeply_nested"


def test_nesting_up_to_the_bound_is_kept_as_unknown_fields():
    payload = b'{"msg_id": "a", "ts": "%s", "junk": %s}' % (TS.encode(), nested(31))
    [reading] = decode(payload).readings
    assert json.loads(reading.extra) == {"junk": json.loads(nested(31))}


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = "[" * 1000 + '\\"' + "{" * 1000
    document = {"msg_id": "a", "ts": TS, "note": text}
    [reading] = decode(document).readings
    assert json.loads(reading.extra) == {"note": text}


def test_the_nesting_count_needs_no_parse():
    assert not nested_deeper_than(nested(32), 32)
    assert nested_deeper_than(nested(33), 32)
    assert not nested_deeper_than(b'["[[[[", {"a": "}}}}"}]', 2)
    assert not nested_deeper_than(b"[]" * 10_000, 1)


def test_a_payload_over_the_size_bound_is_rejected_before_parsing():
    payload = json.dumps({"msg_id": "a", "ts": TS, "pad": "x" * 300_000}).encode()
    rejection = only_rejection(payload)
    assert rejection.reason == "payload_too_large"
    assert rejection.message == f"{len(payload):,} bytes; at most 262,144"


def test_unknown_fields_over_their_bound_are_replaced_by_their_size_and_names():
    document = {"msg_id": "a", "ts": TS, "odometer_m": 5, "blob": "x" * 10_000, "fw": "2.1"}
    [reading] = decode(document).readings
    assert reading.odometer_m == 5
    size = len(json.dumps({"blob": "x" * 10_000, "fw": "2.1"}, separators=(",", ":")))
    assert json.loads(reading.extra) == {"$dropped": {"bytes": size, "fields": ["blob", "fw"]}}


# --- numbers and timestamps --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "reason", "text"),
    [
        (99999999999999999999, "future_timestamp", "beyond the year 9999"),
        (2**63, "future_timestamp", "beyond the year 9999"),
        (253402300800000, "future_timestamp", "beyond the year 9999"),
        (-99999999999999, "ancient_timestamp", "before the year 1"),
        (-(2**70), "ancient_timestamp", "before the year 1"),
        (0, "ancient_timestamp", "before 2000"),
        (253402300799999, "future_timestamp", "in the future"),
        ("9999-12-31T23:59:59-23:59", "future_timestamp", "beyond the year 9999"),
        ("0001-01-01T00:00:00+23:00", "ancient_timestamp", "before the year 1"),
    ],
)
def test_out_of_range_timestamps_are_rejected_with_a_reason(ts, reason, text):
    rejection = only_rejection({"msg_id": "a", "ts": ts})
    assert rejection.reason == reason
    assert text in rejection.message
    assert rejection.message.endswith("- at `$.ts`")


def test_huge_integers_are_out_of_range_for_counters():
    rejection = only_rejection({"msg_id": "a", "ts": TS, "odometer_m": 10**30})
    assert rejection.reason == "schema_violation"
    assert "$.odometer_m" in rejection.message


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_not_json(literal):
    payload = b'{"msg_id": "a", "ts": "%s", "battery_pct": %s}' % (TS.encode(), literal)
    assert only_rejection(payload).reason == "malformed_json"


# --- text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b'{"msg_id": "\xff\xfe", "ts": "2026-11-15T09:00:00Z"}',
        b'{"msg_id": "\\ud800", "ts": "2026-11-15T09:00:00Z"}',
        b'{"msg_id": "a", "ts": "2026-11-15T09:00:00Z", "x": "\\udfff"}',
        b'{"msg_id": "a", "ts": "2026-11-15T09:00:00Z", "trip": {"id": "\\ud83d", "event": "end"}}',
    ],
    ids=["invalid-utf8", "lone-surrogate", "surrogate-in-unknown-field", "surrogate-in-trip"],
)
def test_text_that_is_not_unicode_is_malformed(payload):
    assert only_rejection(payload).reason == "malformed_json"


def test_a_nul_character_in_an_identifier_is_refused():
    rejection = only_rejection({"msg_id": "a\u0000b", "ts": TS})
    assert rejection.reason == "schema_violation"
    assert "$.msg_id" in rejection.message


def test_rejection_messages_quoting_input_are_bounded_and_hold_no_nul():
    event = "\u0000" + "e" * 5000
    rejection = only_rejection({"msg_id": "a", "ts": TS, "trip": {"id": "t", "event": event}})
    assert "\x00" not in rejection.message
    assert len(rejection.message) <= telemetry.MAX_MESSAGE_CHARS


# --- fuzz --------------------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
TIMESTAMPS = (
    st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.text()
    | JSON_VALUES
)
READINGS = st.fixed_dictionaries(
    {"msg_id": st.text(max_size=80) | JSON_VALUES, "ts": TIMESTAMPS},
    optional={
        "odometer_m": st.integers() | JSON_VALUES,
        "energy_wh": st.integers(min_value=-(2**70), max_value=2**70),
        "battery_pct": st.floats(allow_nan=True, allow_infinity=True) | JSON_VALUES,
        "trip": st.fixed_dictionaries(
            {"id": st.text(max_size=70), "event": st.sampled_from(["start", "end", "pause"])}
        )
        | JSON_VALUES,
        "extra": JSON_VALUES,
    },
)
DOCUMENTS = READINGS | st.lists(READINGS, max_size=8) | JSON_VALUES


def json_bytes(document: object) -> bytes:
    # json.dumps writes NaN and Infinity, and escapes lone surrogates: as an attacker would.
    return json.dumps(document).encode()


@st.composite
def hostile_payloads(draw: st.DrawFn) -> bytes:
    base = json_bytes(draw(READINGS))
    kind = draw(st.sampled_from(["deep", "splice", "bytes", "bigint", "wide"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=50_000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        closer = b"]" if opener == b"[" else b"}"
        inner = opener * depth + b"1" + closer * depth
        return base[:-1] + b', "deep": ' + inner + b"}"
    if kind == "splice":
        junk = draw(st.binary(min_size=1, max_size=16))
        at = draw(st.integers(min_value=0, max_value=len(base)))
        return base[:at] + junk + base[at:]
    if kind == "bigint":
        digits = draw(st.integers(min_value=19, max_value=5000))
        return base[:-1] + b', "odometer_m": ' + b"9" * digits + b"}"
    if kind == "wide":
        return json_bytes([draw(READINGS)] * draw(st.integers(min_value=499, max_value=502)))
    return draw(st.binary(max_size=200))


def assert_accounted_for(payload: bytes) -> None:
    """Every message ends as readings or as rejections; an array's readings one by one."""
    decoded = decode_payload("VEH-1", payload, LIMITS)
    assert decoded.readings or decoded.rejections
    for rejection in decoded.rejections:
        assert rejection.reason in telemetry.REASONS
        assert rejection.reason != telemetry.INTERNAL_ERROR, rejection.message
        assert "\x00" not in rejection.message
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return
    if isinstance(document, list) and 0 < len(document) <= telemetry.MAX_BATCH:
        assert len(decoded.readings) + len(decoded.rejections) in (len(document), 1)
    for reading in decoded.readings:
        assert telemetry.EARLIEST <= reading.ts <= LIMITS.latest
        assert reading.extra is None or len(reading.extra) <= 4096
        assert all(0 <= c <= 2**62 for c in (reading.odometer_m, reading.energy_wh) if c)
        assert reading.battery_pct is None or math.isfinite(reading.battery_pct)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(DOCUMENTS.map(json_bytes), hostile_payloads()))
def test_any_payload_is_decoded_into_readings_or_rejections(payload):
    assert_accounted_for(payload)
