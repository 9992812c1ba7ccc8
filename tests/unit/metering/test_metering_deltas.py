from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.metering.usage import (
    COUNTER_RESET,
    IMPLAUSIBLE_JUMP,
    Anomaly,
    Baseline,
    Delta,
    Reading,
    baseline_before,
    derive_deltas,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(msg_id: str, seconds: float, odometer_m: int | None, energy_wh: int | None = None):
    return Reading(at(seconds), msg_id, odometer_m, energy_wh)


def usage(deltas: list[Delta]) -> list[tuple[str, int, int]]:
    return [(delta.msg_id, delta.distance_m, delta.energy_wh) for delta in deltas]


def kinds(anomalies: list[Anomaly]) -> list[tuple[str, str, str | None, int, str | None]]:
    return [(a.kind, a.msg_id, a.previous_msg_id, a.distance_m, a.counter) for a in anomalies]


@pytest.mark.parametrize(
    ("readings", "expected_usage", "expected_anomalies"),
    [
        pytest.param(
            [reading("a", 0, 1000, 50), reading("b", 60, 1400, 58), reading("c", 120, 1900, 61)],
            [("b", 400, 8), ("c", 500, 3)],
            [],
            id="differences go to the later reading",
        ),
        pytest.param(
            [reading("a", 0, 1000, 50)], [], [], id="a first reading only sets the baseline"
        ),
        pytest.param(
            [reading("a", 0, 1000, 50), reading("b", 60, 1000, 50)],
            [],
            [],
            id="unchanged counters give no delta",
        ),
        pytest.param(
            [reading("a", 0, 1000, 50), reading("b", 60, None, 60), reading("c", 120, 1500)],
            [("b", 0, 10), ("c", 500, 0)],
            [],
            id="a missing counter does not break that counter's chain",
        ),
        pytest.param(
            [reading("a", 0, None, None), reading("b", 60, 1000, None), reading("c", 90, 1200)],
            [("c", 200, 0)],
            [],
            id="the chain starts at the first reading carrying the counter",
        ),
        pytest.param(
            [reading("a", 0, 1_234_567, 50), reading("b", 60, 1200, 55), reading("c", 120, 1500)],
            [("b", 0, 5), ("c", 300, 0)],
            [(COUNTER_RESET, "b", "a", 0, "odometer")],
            id="an odometer going backwards starts a new baseline",
        ),
        pytest.param(
            [reading("a", 0, 1000, 900), reading("b", 60, 1100, 3), reading("c", 120, None, 10)],
            [("b", 100, 0), ("c", 0, 7)],
            [(COUNTER_RESET, "b", "a", 0, "energy")],
            id="an energy counter going backwards starts a new baseline",
        ),
        pytest.param(
            [reading("a", 0, 5000, 900), reading("b", 60, 0, 0)],
            [],
            [(COUNTER_RESET, "b", "a", 0, "odometer"), (COUNTER_RESET, "b", "a", 0, "energy")],
            id="a controller swap resets both counters, one anomaly each",
        ),
        pytest.param(
            [reading("a", 0, 0), reading("b", 60, 5000), reading("c", 120, 5500)],
            [("c", 500, 0)],
            [(IMPLAUSIBLE_JUMP, "b", "a", 5000, "odometer")],
            id="a jump above 60 km/h is held and the baseline moves past it",
        ),
        pytest.param(
            [reading("a", 0, 0), reading("b", 60, 1000)],
            [("b", 1000, 0)],
            [],
            id="exactly 60 km/h is plausible",
        ),
        pytest.param(
            [reading("a", 0, 0), reading("b", 60, 1001)],
            [],
            [(IMPLAUSIBLE_JUMP, "b", "a", 1001, "odometer")],
            id="just above 60 km/h is a jump",
        ),
        pytest.param(
            [reading("a", 0, 0), reading("b", 0, 16), reading("c", 0, 33)],
            [("b", 16, 0)],
            [(IMPLAUSIBLE_JUMP, "c", "b", 17, "odometer")],
            id="equal timestamps count as one second apart",
        ),
        pytest.param(
            [reading("a", 0, 0), reading("b", 0.5, 16)],
            [("b", 16, 0)],
            [],
            id="less than a second apart counts as one second",
        ),
        pytest.param(
            [reading("a", 0, 0, 0), reading("b", 60, 90_000, 100_000)],
            [("b", 0, 100_000)],
            [(IMPLAUSIBLE_JUMP, "b", "a", 90_000, "odometer")],
            id="energy is billed even on a reading whose distance is held",
        ),
        pytest.param(
            [reading("a", 0, 0), reading("b", 3600, None), reading("c", 3601, 60_000)],
            [("c", 60_000, 0)],
            [],
            id="the speed check spans readings without an odometer",
        ),
        pytest.param(
            [reading("b", 0, 110), reading("a", 0, 100)],
            [("b", 10, 0)],
            [],
            id="readings at the same instant are ordered by msg_id",
        ),
    ],
)
def test_usage_derivation_rules(readings, expected_usage, expected_anomalies):
    deltas, anomalies = derive_deltas(readings)

    assert usage(deltas) == expected_usage
    assert kinds(anomalies) == expected_anomalies


def test_a_counter_reset_is_explained_in_a_sentence():
    _, anomalies = derive_deltas([reading("a", 0, 1_234_567), reading("b", 60, 1200)])

    assert anomalies == [
        Anomaly(
            kind=COUNTER_RESET,
            ts=at(60),
            msg_id="b",
            previous_msg_id="a",
            details="odometer went from 1234567 m to 1200 m; new baseline",
            counter="odometer",
        )
    ]


JUMP = [reading("a", 0, 1000), reading("b", 60, 6000), reading("c", 120, 6100)]


@pytest.mark.parametrize(
    ("decisions", "billed", "decision", "outcome"),
    [
        ({}, [("c", 100, 0)], None, "held until an operator decides"),
        (
            {"b": "accepted"},
            [("b", 5000, 0), ("c", 100, 0)],
            "accepted",
            "accepted by an operator and billed",
        ),
        ({"b": "rejected"}, [("c", 100, 0)], "rejected", "rejected by an operator and not billed"),
        # A decision on a reading that is not a jump changes nothing.
        ({"c": "rejected"}, [("c", 100, 0)], None, "held until an operator decides"),
    ],
)
def test_an_operator_decision_bills_or_drops_a_held_jump(decisions, billed, decision, outcome):
    deltas, anomalies = derive_deltas(JUMP, decisions=decisions)

    assert usage(deltas) == billed
    [jump] = anomalies
    assert (jump.kind, jump.msg_id, jump.distance_m, jump.decision) == (
        IMPLAUSIBLE_JUMP,
        "b",
        5000,
        decision,
    )
    assert jump.details == f"odometer rose 5000 m in 60 s (300 km/h, above 60 km/h); {outcome}"


def test_an_unknown_decision_is_refused():
    with pytest.raises(ValueError, match="'accepted' or 'rejected', not 'maybe'"):
        derive_deltas(JUMP, decisions={"b": "maybe"})


@pytest.mark.parametrize(
    ("max_speed_kmh", "held"),
    [(Decimal("25.5"), True), (Decimal("30"), False), (30, False), (Decimal("29.9"), True)],
)
def test_the_speed_limit_can_be_set_per_call(max_speed_kmh, held):
    # 500 m in 60 s is 30 km/h.
    _, anomalies = derive_deltas(
        [reading("a", 0, 0), reading("b", 60, 500)], max_speed_kmh=max_speed_kmh
    )

    assert bool(anomalies) is held


def test_a_non_positive_speed_limit_is_refused():
    with pytest.raises(ValueError, match="must be positive"):
        derive_deltas([reading("a", 0, 0)], max_speed_kmh=0)


def test_duplicates_count_once_and_arrival_order_does_not_matter():
    history = [reading("a", 0, 1000, 5), reading("b", 60, 1300, 9), reading("c", 120, 1500, 12)]
    arrivals = [history[2], history[0], history[2], history[1], history[0]]

    assert derive_deltas(arrivals) == derive_deltas(history)


def test_a_repeated_msg_id_keeps_the_first_copy_seen_like_the_store():
    first, conflicting = reading("b", 60, 1300), reading("b", 90, 9999)

    deltas, _ = derive_deltas([reading("a", 0, 1000), first, conflicting])

    assert usage(deltas) == [("b", 300, 0)]


def test_deltas_keep_the_timestamp_of_their_reading():
    later = Reading(datetime(2026, 11, 2, 9, 1, tzinfo=timezone(timedelta(hours=1))), "b", 1300)

    deltas, _ = derive_deltas([reading("a", 0, 1000), later])

    assert deltas == [Delta(at(60), "b", 300, 0)]


def test_a_window_with_its_baseline_gives_the_window_part_of_a_full_recomputation():
    history = [
        reading("a", 0, 1000, 50),
        reading("b", 60, None, 60),
        reading("c", 900, 1500, None),
        reading("d", 960, 1200, 70),
        reading("e", 1000, 90_000, 75),
    ]
    window_start = at(900)

    full_deltas, full_anomalies = derive_deltas(history)
    window_deltas, window_anomalies = derive_deltas(
        [r for r in history if r.ts >= window_start],
        baseline=baseline_before(history, window_start),
    )

    assert window_deltas == [d for d in full_deltas if d.ts >= window_start]
    assert window_anomalies == [a for a in full_anomalies if a.ts >= window_start]
    assert usage(window_deltas) == [("c", 500, 0), ("d", 0, 10), ("e", 0, 5)]


def test_baseline_before_picks_the_last_reading_with_each_counter():
    history = [reading("a", 0, 1000, 50), reading("b", 60, None, 60), reading("c", 900, 1500, 70)]

    assert baseline_before(history, at(900)) == Baseline(odometer=history[0], energy=history[1])
    assert baseline_before(history, at(0)) == Baseline(None, None)


def test_a_window_that_does_not_start_after_its_baseline_is_refused():
    baseline = Baseline(odometer=reading("b", 60, 1000))

    with pytest.raises(ValueError, match="not after baseline reading 'b'"):
        derive_deltas([reading("a", 60, 1100)], baseline=baseline)


def test_a_baseline_reading_must_carry_its_counter():
    with pytest.raises(ValueError, match="energy baseline 'a' has no energy_wh"):
        Baseline(energy=reading("a", 0, 1000))


def test_a_reading_needs_an_aware_timestamp_and_a_known_trip_event():
    with pytest.raises(ValueError, match="ts of reading 'a' must be timezone-aware"):
        Reading(datetime(2026, 11, 2, 8), "a", 1000)
    with pytest.raises(ValueError, match="'start', 'end' or None, not 'pause'"):
        Reading(T0, "a", trip_id="t-1", trip_event="pause")


def test_a_late_reading_inside_a_decided_jump_leaves_the_decision_on_the_shorter_pair():
    # The hazard of keying decisions by the later reading: "b" was accepted for 5000 m from
    # "a"; once "late" arrives, "b" is 2500 m from "late", still accepted, and "late" is a
    # new jump, held.
    late = reading("late", 30, 3500)

    deltas, anomalies = derive_deltas([*JUMP, late], decisions={"b": "accepted"})

    assert usage(deltas) == [("b", 2500, 0), ("c", 100, 0)]
    assert [(a.msg_id, a.previous_msg_id, a.distance_m, a.decision) for a in anomalies] == [
        ("late", "a", 2500, None),
        ("b", "late", 2500, "accepted"),
    ]
