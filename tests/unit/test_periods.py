from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import (
    FIRST_PERIOD,
    LAST_PERIOD,
    Period,
    as_utc,
    local_day_bounds,
    local_days,
    split_interval,
    vehicle_days,
)

PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
SANTIAGO = ZoneInfo("America/Santiago")
HAVANA = ZoneInfo("America/Havana")
ZONES = [PARIS, KOLKATA, KATHMANDU, SANTIAGO, HAVANA, ZoneInfo("UTC"), ZoneInfo("Pacific/Chatham")]
HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_period_parses_from_year_and_month_and_prints_back_the_same():
    period = Period.parse("2026-11")

    assert period == Period(2026, 11)
    assert str(period) == "2026-11"
    assert str(Period(987, 3)) == "0987-03"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-13", "month 13"),
        ("2026-00", "month 00"),
        ("0000-05", "periods run from 1970-01 to 9998-12"),
        ("0001-01", "out of range"),
        ("1969-12", "out of range"),
        ("9999-12", "out of range"),
        ("2026-1", "form YYYY-MM"),
        ("26-11", "form YYYY-MM"),
        ("2026/11", "form YYYY-MM"),
        (" 2026-11", "form YYYY-MM"),
        ("2026-11-01", "form YYYY-MM"),
        ("２０２６-11", "form YYYY-MM"),
    ],
)
def test_parsing_a_malformed_period_names_the_problem(text, problem):
    with pytest.raises(ValueError, match=problem):
        Period.parse(text)


def test_a_period_with_an_impossible_month_cannot_be_built():
    with pytest.raises(ValueError, match="month 13"):
        Period(2026, 13)


def test_periods_step_across_year_ends_and_sort_chronologically():
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).previous() == Period(2026, 12)
    assert Period(2026, 5).next() == Period(2026, 6)
    assert sorted([Period(2027, 1), Period(2026, 12), Period(2026, 2)]) == [
        Period(2026, 2),
        Period(2026, 12),
        Period(2027, 1),
    ]


@pytest.mark.parametrize(
    ("period", "days"),
    [(Period(2026, 2), 28), (Period(2028, 2), 29), (Period(2026, 11), 30), (Period(2026, 12), 31)],
)
def test_a_period_knows_how_many_days_its_month_has(period, days):
    assert period.days() == days


@pytest.mark.parametrize(
    ("period", "tz", "start", "end"),
    [
        (Period(2026, 11), PARIS, utc(2026, 10, 31, 23), utc(2026, 11, 30, 23)),
        (Period(2026, 3), PARIS, utc(2026, 2, 28, 23), utc(2026, 3, 31, 22)),
        (Period(2026, 10), PARIS, utc(2026, 9, 30, 22), utc(2026, 10, 31, 23)),
        (Period(2026, 11), KOLKATA, utc(2026, 10, 31, 18, 30), utc(2026, 11, 30, 18, 30)),
        (Period(2026, 11), KATHMANDU, utc(2026, 10, 31, 18, 15), utc(2026, 11, 30, 18, 15)),
        (Period(2026, 12), ZoneInfo("UTC"), utc(2026, 12, 1), utc(2027, 1, 1)),
    ],
)
def test_a_period_is_bounded_by_local_midnights_given_in_utc(period, tz, start, end):
    assert period.bounds(tz) == (start, end)
    assert period.bounds(tz)[0].tzinfo is UTC


@pytest.mark.parametrize(
    ("instant", "tz", "period"),
    [
        (utc(2026, 10, 31, 23, 30), PARIS, Period(2026, 11)),
        (utc(2026, 10, 31, 22, 59), PARIS, Period(2026, 10)),
        (utc(2026, 10, 31, 23, 30), ZoneInfo("UTC"), Period(2026, 10)),
        (utc(2026, 10, 31, 18, 15), KATHMANDU, Period(2026, 11)),
        (utc(2026, 10, 31, 18, 14), KATHMANDU, Period(2026, 10)),
    ],
)
def test_the_period_containing_an_instant_follows_the_local_calendar(instant, tz, period):
    assert Period.containing(instant, tz) == period


def test_naive_datetimes_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="instant must be timezone-aware"):
        Period.containing(datetime(2026, 11, 1), PARIS)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        local_days(utc(2026, 11, 1), datetime(2026, 11, 2), PARIS)


def test_as_utc_converts_an_aware_datetime_to_utc():
    assert as_utc(datetime(2026, 11, 1, 1, tzinfo=PARIS)) == utc(2026, 11, 1, 0)
    assert as_utc(datetime(2026, 11, 1, 1, tzinfo=PARIS)).tzinfo is UTC


@pytest.mark.parametrize(
    ("day", "tz", "start", "hours"),
    [
        (date(2026, 3, 29), PARIS, utc(2026, 3, 28, 23), 23),
        (date(2026, 10, 25), PARIS, utc(2026, 10, 24, 22), 25),
        (date(2026, 11, 2), PARIS, utc(2026, 11, 1, 23), 24),
        (date(2026, 11, 2), KOLKATA, utc(2026, 11, 1, 18, 30), 24),
        (date(2026, 11, 2), KATHMANDU, utc(2026, 11, 1, 18, 15), 24),
        # Chile skips from 24:00 to 01:00: the day starts at the jump, 23 hours long.
        (date(2026, 9, 6), SANTIAGO, utc(2026, 9, 6, 4), 23),
        # Cuba sets clocks back from 01:00 to 00:00: the day starts at the first midnight.
        (date(2026, 11, 1), HAVANA, utc(2026, 11, 1, 4), 25),
    ],
)
def test_a_local_day_lasts_from_midnight_to_midnight_including_dst_days(day, tz, start, hours):
    assert local_day_bounds(day, tz) == (start, start + hours * HOUR)


def test_local_days_of_a_month_cover_it_with_one_short_dst_day():
    start, end = Period(2026, 3).bounds(PARIS)

    days = local_days(start, end, PARIS)

    assert [day for day, _, _ in days] == [date(2026, 3, d) for d in range(1, 32)]
    lengths = [day_end - day_start for _, day_start, day_end in days]
    assert lengths.count(23 * HOUR) == 1 and lengths.count(24 * HOUR) == 30
    assert days[28] == (date(2026, 3, 29), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))


def test_local_days_are_clipped_to_an_interval_starting_and_ending_mid_day():
    days = local_days(utc(2026, 10, 24, 12), utc(2026, 10, 26, 6), PARIS)

    assert days == [
        (date(2026, 10, 24), utc(2026, 10, 24, 12), utc(2026, 10, 24, 22)),
        (date(2026, 10, 25), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),
        (date(2026, 10, 26), utc(2026, 10, 25, 23), utc(2026, 10, 26, 6)),
    ]


def test_an_empty_interval_has_no_local_days_and_a_reversed_one_is_refused():
    assert local_days(utc(2026, 11, 1, 12), utc(2026, 11, 1, 12), PARIS) == []
    with pytest.raises(ValueError, match="before start"):
        local_days(utc(2026, 11, 2), utc(2026, 11, 1), PARIS)


@pytest.mark.parametrize(
    ("intervals", "start", "end", "tz", "expected"),
    [
        ([(utc(2026, 1, 1), None)], *Period(2026, 3).bounds(PARIS), PARIS, "31.000000"),
        ([(utc(2026, 1, 1), None)], *Period(2026, 10).bounds(PARIS), PARIS, "31.000000"),
        ([(utc(2026, 1, 1), None)], *Period(2026, 11).bounds(KATHMANDU), KATHMANDU, "30.000000"),
        # The whole 23-hour day counts as one day, and so does the 25-hour one.
        ([(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))], *Period(2026, 3).bounds(PARIS), PARIS,
         "1.000000"),
        ([(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))], *Period(2026, 10).bounds(PARIS),
         PARIS, "1.000000"),
        # 12.5 h of the 25-hour day is half a day; 12 h of the 23-hour day a bit more.
        ([(utc(2026, 10, 25, 10, 30), None)], utc(2026, 10, 24, 22), utc(2026, 10, 25, 23),
         PARIS, "0.500000"),
        ([(utc(2026, 3, 29, 10), None)], utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), PARIS,
         "0.521739"),
        # A third of a day is rounded half-up to six decimals; two thirds round up.
        ([(utc(2026, 11, 2, 16), None)], utc(2026, 11, 2), utc(2026, 11, 3), ZoneInfo("UTC"),
         "0.333333"),
        ([(utc(2026, 11, 2, 8), None)], utc(2026, 11, 2), utc(2026, 11, 3), ZoneInfo("UTC"),
         "0.666667"),
        # Overlapping assignments count once; an assignment outside the interval not at all.
        ([(utc(2026, 11, 2), utc(2026, 11, 4)), (utc(2026, 11, 3), utc(2026, 11, 5))],
         utc(2026, 11, 1), utc(2026, 11, 10), ZoneInfo("UTC"), "3.000000"),
        ([(utc(2026, 12, 2), None)], utc(2026, 11, 1), utc(2026, 12, 1), ZoneInfo("UTC"),
         "0.000000"),
        ([], utc(2026, 11, 1), utc(2026, 12, 1), PARIS, "0.000000"),
    ],
)  # fmt: skip
def test_vehicle_days_count_each_local_day_by_its_assigned_share(
    intervals, start, end, tz, expected
):
    assert vehicle_days(intervals, start, end, tz) == Decimal(expected)


def test_an_assignment_ending_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="before it starts"):
        vehicle_days(
            [(utc(2026, 11, 5), utc(2026, 11, 4))], utc(2026, 11, 1), utc(2026, 12, 1), PARIS
        )


def test_a_mid_month_plan_change_splits_vehicle_days_into_parts_that_add_up():
    start, end = Period(2026, 10).bounds(PARIS)
    change = datetime(2026, 10, 25, 0, tzinfo=PARIS)  # local midnight of the 25-hour day
    assigned = [(utc(2026, 1, 1), None)]

    parts = [vehicle_days(assigned, a, b, PARIS) for a, b in split_interval(start, end, [change])]

    assert parts == [Decimal(24), Decimal(7)]


def test_split_interval_cuts_at_inner_points_only_once_each_in_order():
    start, end = utc(2026, 11, 1), utc(2026, 12, 1)
    cuts = [utc(2026, 11, 20), utc(2026, 11, 10), utc(2026, 11, 10), utc(2026, 10, 1), end, start]

    assert split_interval(start, end, cuts) == [
        (start, utc(2026, 11, 10)),
        (utc(2026, 11, 10), utc(2026, 11, 20)),
        (utc(2026, 11, 20), end),
    ]
    assert split_interval(start, end, []) == [(start, end)]
    assert split_interval(start, start, [start]) == []


@settings(deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=0, max_value=40 * 24 * 3600),
)
def test_local_days_tile_any_interval_and_fully_assigned_days_count_between_whole_and_all(
    tz, start, seconds
):
    end = start + timedelta(seconds=seconds)

    days = local_days(start, end, tz)

    cuts = [local_day_bounds(day, tz)[0] for day, _, _ in days]
    assert [(a, b) for _, a, b in days] == split_interval(start, end, cuts)
    assert all(day == day_start.astimezone(tz).date() for day, day_start, _ in days)
    whole = [day for day, a, b in days if (a, b) == local_day_bounds(day, tz)]
    assert len(whole) <= vehicle_days([(start, None)], start, end, tz) <= len(days)


@settings(deadline=None)
@given(
    st.sampled_from(ZONES),
    st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    st.integers(min_value=1, max_value=62),
)
def test_whole_local_days_count_one_each_whatever_their_length(tz, first, count):
    start = local_day_bounds(first, tz)[0]
    end = local_day_bounds(first + timedelta(days=count - 1), tz)[1]

    assert len(local_days(start, end, tz)) == count
    assert vehicle_days([(start, end)], start, end, tz) == count


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=9999), st.integers(min_value=1, max_value=12))
def test_next_and_previous_periods_are_inverse_and_parse_prints_round_trip(year, month):
    period = Period(year, month)

    if FIRST_PERIOD <= period <= LAST_PERIOD:
        assert Period.parse(str(period)) == period
    if period < Period(9999, 12):
        assert period.next().previous() == period
        assert period.next() > period


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "Europe/Paris"])
@pytest.mark.parametrize("text", ["1970-01", "9998-12"])
def test_the_first_and_last_periods_accepted_have_bounds_in_every_zone(text, zone):
    period = Period.parse(text)
    start, end = period.bounds(ZoneInfo(zone))

    assert start < end
    assert period.previous().bounds(ZoneInfo(zone))[1] == start
