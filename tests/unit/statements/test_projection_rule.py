"""The projection rule on plain data: measured so far + pace x vehicle-days to come."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.pricing.fees import Segment, SegmentQuantities
from billing.statements.projection import project_usage

PARIS = ZoneInfo("Europe/Paris")
ZERO = Decimal(0)


def paris(day: int, hour: int = 0) -> dt.datetime:
    """That day of November 2026 (the 31st is 1 December), Paris time, in UTC."""
    month, day = (12, 1) if day == 31 else (11, day)
    return dt.datetime(2026, month, day, hour, tzinfo=PARIS).astimezone(dt.UTC)


def segment(plan: str, start: int, end: int, vehicle: str = "V1") -> Segment:
    return Segment(vehicle, plan, 1, paris(start), paris(end), f"asg-{vehicle}-{plan}")


def measured(plan: str, start: int, until: dt.datetime, days: str, **quantities: str):
    cut = Segment("V1", plan, 1, paris(start), until, f"asg-V1-{plan}")
    usage = {name: Decimal(value) for name, value in quantities.items()}
    return SegmentQuantities(cut, usage, Decimal(days))


def test_a_segment_that_is_over_keeps_what_it_measured_and_the_open_one_is_extrapolated():
    now = paris(16)
    so_far = [
        measured("urbain", 1, paris(11), "10", distance_km="100", trips="4"),
        measured("flotte-pro", 11, now, "5", distance_km="50", trips="2"),
    ]
    planned = [segment("urbain", 1, 11), segment("flotte-pro", 11, 31)]
    over, running = project_usage(so_far, planned, paris(1), now, PARIS).segments
    assert (over.quantities["distance_km"], over.vehicle_days) == (Decimal(100), Decimal(10))
    # Pace: 150 km and 6 trips in 15 days, 10 km and 0.4 trip a day; 15 days to come.
    assert running.quantities["distance_km"] == Decimal("200.000")
    assert running.quantities["trips"] == Decimal("8.000")
    assert running.vehicle_days == Decimal("20.000000")


def test_a_scheduled_plan_change_gets_the_pace_of_its_vehicle():
    now = paris(16)
    so_far = [measured("urbain", 1, now, "15", distance_km="150")]
    planned = [segment("urbain", 1, 21), segment("flotte-pro", 21, 31)]
    projected = project_usage(so_far, planned, paris(1), now, PARIS)
    assert [s.quantities["distance_km"] for s in projected.segments] == [
        Decimal("200.000"),
        Decimal("100.000"),
    ]
    assert projected.not_extrapolated == ()


def test_projected_active_days_never_exceed_the_local_days_a_segment_spans():
    now = paris(2, 12)
    so_far = [measured("urbain", 1, now, "1.5", active_days="2")]
    [projected] = project_usage(so_far, [segment("urbain", 1, 31)], paris(1), now, PARIS).segments
    assert projected.quantities["active_days"] == Decimal(30)


def test_the_extrapolated_part_is_rounded_half_up_to_three_decimals():
    now = paris(4)
    so_far = [measured("urbain", 1, now, "3", distance_km="1.001")]
    [projected] = project_usage(so_far, [segment("urbain", 1, 5)], paris(1), now, PARIS).segments
    # 1.001 km x 1 day to come / 3 days = 0.333666... -> 0.334.
    assert projected.quantities["distance_km"] == Decimal("1.335")


def test_a_vehicle_without_a_day_of_history_keeps_its_usage_and_is_named():
    now = paris(1, 12)
    so_far = [measured("urbain", 1, now, "0.5", distance_km="40")]
    projected = project_usage(so_far, [segment("urbain", 1, 31)], paris(1), now, PARIS)
    assert projected.segments[0].quantities["distance_km"] == Decimal(40)
    assert (projected.extrapolated, projected.not_extrapolated) == (False, ("V1",))
    assert projected.elapsed_days == Decimal("0.500000")
