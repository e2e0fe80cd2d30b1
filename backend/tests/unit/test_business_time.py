"""app.business_time: working-time arithmetic for service levels. Expected instants are written out by
hand (UTC offsets of each date stated in the comments), never computed by the module under test."""

import itertools
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from app.business_time import (
    WEEKDAYS,
    CalendarError,
    NoWorkingTime,
    Range,
    WorkingTime,
    add,
    between,
    format_range,
    intervals,
    parse_range,
    problems,
    subtract,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
M = timedelta(minutes=1)
CLOSED: tuple[Range, ...] = ()
NINE_TO_FIVE = ((540, 1020),)


def office(
    *days: tuple[Range, ...], zone: str = "Europe/Berlin", holidays: Sequence[date] = ()
) -> WorkingTime:
    """Monday first; the days not given are closed."""
    week = tuple(days) + (CLOSED,) * (7 - len(days))
    return WorkingTime(zone, week, frozenset(holidays))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# June 2026 in Berlin is CEST (UTC+2). Mon 1 June ... Fri 5, Sat 6, Sun 7, Mon 8, Tue 9.
WEEKDAYS_9_TO_5 = office(*(NINE_TO_FIVE,) * 5)


def test_four_hours_from_friday_afternoon_end_monday_morning() -> None:
    due = add(WEEKDAYS_9_TO_5, datetime(2026, 6, 5, 15, 0, tzinfo=BERLIN), 4 * H)
    assert due == utc(2026, 6, 8, 9, 0)  # Monday 11:00 CEST
    assert due.tzinfo is UTC
    assert due.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 6, 8, 11, 0)


def test_a_start_in_closed_hours_counts_from_the_next_opening() -> None:
    saturday_evening = datetime(2026, 6, 6, 20, 0, tzinfo=BERLIN)
    assert add(WEEKDAYS_9_TO_5, saturday_evening, 1 * H) == utc(2026, 6, 8, 8, 0)  # Monday 10:00
    assert add(WEEKDAYS_9_TO_5, saturday_evening, 8 * H) == utc(2026, 6, 8, 15, 0)  # Monday 17:00
    assert add(WEEKDAYS_9_TO_5, saturday_evening, 8 * H + M) == utc(2026, 6, 9, 7, 1)  # Tue 09:01
    before_opening = datetime(2026, 6, 9, 6, 30, tzinfo=BERLIN)
    assert add(WEEKDAYS_9_TO_5, before_opening, 30 * M) == utc(2026, 6, 9, 7, 30)  # Tuesday 09:30


def test_holidays_are_skipped() -> None:
    calendar = office(*(NINE_TO_FIVE,) * 5, holidays=[date(2026, 6, 8)])
    due = add(calendar, datetime(2026, 6, 5, 15, 0, tzinfo=BERLIN), 4 * H)
    assert due == utc(2026, 6, 9, 9, 0)  # Tuesday 11:00: Monday is a holiday
    assert between(calendar, datetime(2026, 6, 5, 0, 0, tzinfo=BERLIN), utc(2026, 6, 10, 0, 0)) == 16 * H


def test_several_ranges_a_day_skip_lunch() -> None:
    calendar = office(*(((540, 720), (780, 1020)),) * 5)
    monday_eleven = datetime(2026, 6, 8, 11, 0, tzinfo=BERLIN)
    assert add(calendar, monday_eleven, 1 * H) == utc(2026, 6, 8, 10, 0)  # 12:00: the end of the morning
    assert add(calendar, monday_eleven, 2 * H) == utc(2026, 6, 8, 12, 0)  # 14:00, lunch skipped
    assert add(calendar, datetime(2026, 6, 8, 12, 30, tzinfo=BERLIN), 1 * M) == utc(2026, 6, 8, 11, 1)
    assert between(calendar, monday_eleven, datetime(2026, 6, 8, 14, 0, tzinfo=BERLIN)) == 2 * H
    assert list(intervals(calendar, monday_eleven, datetime(2026, 6, 8, 14, 0, tzinfo=BERLIN))) == [
        (utc(2026, 6, 8, 9, 0), utc(2026, 6, 8, 10, 0)),
        (utc(2026, 6, 8, 11, 0), utc(2026, 6, 8, 12, 0)),
    ]


def test_touching_ranges_form_one_interval() -> None:
    calendar = office(((540, 720), (720, 1020)))
    assert list(intervals(calendar, utc(2026, 6, 8, 0, 0), utc(2026, 6, 9, 0, 0))) == [
        (utc(2026, 6, 8, 7, 0), utc(2026, 6, 8, 15, 0))
    ]


def test_between_over_a_weekend() -> None:
    friday_four = datetime(2026, 6, 5, 16, 0, tzinfo=BERLIN)
    monday_ten = datetime(2026, 6, 8, 10, 0, tzinfo=BERLIN)
    assert between(WEEKDAYS_9_TO_5, friday_four, monday_ten) == 2 * H
    assert between(WEEKDAYS_9_TO_5, monday_ten, friday_four) == timedelta(0)
    assert subtract(WEEKDAYS_9_TO_5, monday_ten, 2 * H) == utc(2026, 6, 5, 14, 0)  # Friday 16:00
    assert subtract(WEEKDAYS_9_TO_5, monday_ten, 1 * H) == utc(2026, 6, 8, 7, 0)  # Monday 09:00
    # A whole working week, measured from Sunday to Sunday.
    assert between(WEEKDAYS_9_TO_5, utc(2026, 5, 31, 12, 0), utc(2026, 6, 7, 12, 0)) == 40 * H


def test_a_zero_amount_returns_the_start_unchanged() -> None:
    saturday = datetime(2026, 6, 6, 20, 0, tzinfo=BERLIN)
    assert add(WEEKDAYS_9_TO_5, saturday, timedelta(0)) is saturday
    assert subtract(WEEKDAYS_9_TO_5, saturday, timedelta(0)) is saturday
    assert between(WEEKDAYS_9_TO_5, saturday, saturday) == timedelta(0)


def test_a_day_without_ranges_is_closed() -> None:
    no_wednesday = office(NINE_TO_FIVE, NINE_TO_FIVE, CLOSED, NINE_TO_FIVE, NINE_TO_FIVE)
    tuesday_four = datetime(2026, 6, 9, 16, 0, tzinfo=BERLIN)
    assert add(no_wednesday, tuesday_four, 2 * H) == utc(2026, 6, 11, 8, 0)  # Thursday 10:00
    wednesday = (datetime(2026, 6, 10, 0, 0, tzinfo=BERLIN), datetime(2026, 6, 11, 0, 0, tzinfo=BERLIN))
    assert between(no_wednesday, *wednesday) == timedelta(0)
    assert list(intervals(no_wednesday, *wednesday)) == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add(WEEKDAYS_9_TO_5, datetime(2026, 6, 5, 15, 0), H)
    with pytest.raises(ValueError, match="negative"):
        add(WEEKDAYS_9_TO_5, utc(2026, 6, 5, 15, 0), -H)
    with pytest.raises(ValueError, match="negative"):
        subtract(WEEKDAYS_9_TO_5, utc(2026, 6, 5, 15, 0), -H)


def test_no_working_time_within_ten_years_is_an_error() -> None:
    mondays_2026_to_2037 = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(600)]
    calendar = office(NINE_TO_FIVE, holidays=mondays_2026_to_2037)
    with pytest.raises(NoWorkingTime, match="10 years"):
        add(calendar, utc(2026, 1, 1, 0, 0), H)
    with pytest.raises(NoWorkingTime, match="10 years"):
        subtract(calendar, utc(2037, 6, 1, 0, 0), H)
    assert issubclass(NoWorkingTime, CalendarError)
    # Shorter stretches of holidays are crossed: the first Monday after them counts.
    assert add(calendar, utc(2026, 1, 1, 0, 0), 0 * H) == utc(2026, 1, 1, 0, 0)
    few = office(NINE_TO_FIVE, holidays=mondays_2026_to_2037[:100])
    assert add(few, utc(2026, 1, 1, 0, 0), H) == utc(2027, 12, 6, 9, 0)  # Monday 6 Dec 2027, CET (+1)


# --- Daylight saving time ------------------------------------------------------------------------
# Europe/Berlin 2026: Sun 29 March 02:00 CET (+1) -> 03:00 CEST (+2), at 01:00 UTC;
#                     Sun 25 October 03:00 CEST (+2) -> 02:00 CET (+1), at 01:00 UTC.
# America/New_York 2026: Sun 8 March 02:00 EST (-5) -> 03:00 EDT (-4), at 07:00 UTC;
#                        Sun 1 November 02:00 EDT (-4) -> 01:00 EST (-5), at 06:00 UTC.


def around_the_clock(zone: str, *, walk: bool) -> WorkingTime:
    """Every day (0, 1440) in `zone`. With walk=True a holiday long ago keeps the calendar off the
    constant-time path, so the day-by-day arithmetic is what is tested."""
    return WorkingTime(zone, (((0, 1440),),) * 7, frozenset({date(1999, 1, 1)} if walk else ()))


@pytest.mark.parametrize("walk", [False, True], ids=["constant-time", "day-walk"])
@pytest.mark.parametrize(
    ("zone", "day", "midnight_utc", "next_midnight_utc", "hours"),
    [
        ("Europe/Berlin", date(2026, 3, 29), utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0), 23),
        ("Europe/Berlin", date(2026, 10, 25), utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0), 25),
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0), 23),
        ("America/New_York", date(2026, 11, 1), utc(2026, 11, 1, 4, 0), utc(2026, 11, 2, 5, 0), 25),
    ],
)
def test_around_the_clock_counts_the_real_length_of_a_changing_day(
    zone: str, day: date, midnight_utc: datetime, next_midnight_utc: datetime, hours: int, walk: bool
) -> None:
    calendar = around_the_clock(zone, walk=walk)
    local = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=local)
    end = start + timedelta(days=1)  # wall-clock: the next local midnight
    assert (start, end) == (midnight_utc, next_midnight_utc)
    assert between(calendar, start, end) == hours * H
    assert add(calendar, start, hours * H) == next_midnight_utc
    assert add(calendar, start, 24 * H) == midnight_utc + 24 * H
    assert subtract(calendar, end, hours * H) == midnight_utc
    assert list(intervals(calendar, start, end)) == [(midnight_utc, next_midnight_utc)]
    # The two days around it are ordinary: 24 + hours + 24.
    assert between(calendar, start - timedelta(days=1), end + timedelta(days=1)) == (48 + hours) * H


SUNDAY_NIGHTS = ((0, 360),)  # Sundays 00:00-06:00 only, across the change


@pytest.mark.parametrize(
    ("zone", "sunday", "opens_utc", "closes_utc", "hours"),
    [
        # 00:00 CET = 23:00 UTC the day before; 06:00 CEST = 04:00 UTC.
        ("Europe/Berlin", date(2026, 3, 29), utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 4, 0), 5),
        # 00:00 CEST = 22:00 UTC the day before; 06:00 CET = 05:00 UTC.
        ("Europe/Berlin", date(2026, 10, 25), utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 5, 0), 7),
        # 00:00 EST = 05:00 UTC; 06:00 EDT = 10:00 UTC.
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 10, 0), 5),
        # 00:00 EDT = 04:00 UTC; 06:00 EST = 11:00 UTC.
        ("America/New_York", date(2026, 11, 1), utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 11, 0), 7),
    ],
)
def test_a_working_range_over_the_changing_hour_counts_real_time(
    zone: str, sunday: date, opens_utc: datetime, closes_utc: datetime, hours: int
) -> None:
    calendar = WorkingTime(zone, (CLOSED,) * 6 + (SUNDAY_NIGHTS,))
    week_before = datetime(sunday.year, sunday.month, sunday.day, tzinfo=ZoneInfo(zone)) - timedelta(days=3)
    assert between(calendar, week_before, week_before + timedelta(days=6)) == hours * H
    assert list(intervals(calendar, week_before, week_before + timedelta(days=6))) == [
        (opens_utc, closes_utc)
    ]
    assert add(calendar, week_before, hours * H) == closes_utc
    assert subtract(calendar, closes_utc + timedelta(days=2), hours * H) == opens_utc
    # One minute more runs into the next Sunday, an ordinary one: opening at its local midnight.
    next_sunday = datetime(sunday.year, sunday.month, sunday.day, tzinfo=ZoneInfo(zone)) + timedelta(days=7)
    assert add(calendar, week_before, hours * H + M) == next_sunday.astimezone(UTC) + M


def test_two_working_hours_on_the_spring_sunday_in_berlin_skip_the_missing_hour() -> None:
    calendar = WorkingTime("Europe/Berlin", (CLOSED,) * 6 + (SUNDAY_NIGHTS,))
    sunday = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    assert add(calendar, sunday, 2 * H) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST: 02:00-03:00 never was
    autumn = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)
    assert add(calendar, autumn, 3 * H) == utc(2026, 10, 25, 1, 0)  # 02:00 CET, the second 02:00


def test_ranges_that_start_or_end_in_a_missing_or_doubled_hour() -> None:
    # Spring, Berlin: 02:00-03:00 is 01:00-01:00 UTC (02:00 read with CET, 03:00 is CEST): empty,
    # skipped; 03:00-04:00 is 01:00-02:00 UTC.
    spring = WorkingTime("Europe/Berlin", (CLOSED,) * 6 + (((120, 180), (180, 240)),))
    day = (datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN))
    assert list(intervals(spring, *day)) == [(utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))]
    # 02:30 does not exist; fold=0 reads it with CET (+1): 01:30 UTC (= 03:30 CEST), so 02:30-04:00
    # is 01:30-02:00 UTC.
    in_gap = WorkingTime("Europe/Berlin", (CLOSED,) * 6 + (((150, 240),),))
    assert list(intervals(in_gap, *day)) == [(utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 0))]
    assert between(in_gap, *day) == 30 * M
    # Ranges 00:00-02:50 and 03:00-04:00: 02:50 reads as 01:50 UTC, after 03:00 CEST (01:00 UTC); the
    # second range is clipped to start where the first ends, so no time counts twice.
    clipped = WorkingTime("Europe/Berlin", (CLOSED,) * 6 + (((0, 170), (180, 240)),))
    assert list(intervals(clipped, *day)) == [(utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 2, 0))]
    assert between(clipped, *day) == 3 * H
    # Autumn, Berlin: 02:00-03:00 is 02:00 CEST (00:00 UTC, first occurrence) to 03:00 CET (02:00 UTC).
    autumn = WorkingTime("Europe/Berlin", (CLOSED,) * 6 + (((120, 180),),))
    fall_day = (datetime(2026, 10, 25, tzinfo=BERLIN), datetime(2026, 10, 26, tzinfo=BERLIN))
    assert list(intervals(autumn, *fall_day)) == [(utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 2, 0))]


def test_a_skipped_local_day_has_no_working_time() -> None:
    # Samoa skipped Friday 30 December 2011: Thursday 29 ran at UTC-10, Saturday 31 at UTC+14. Read
    # with fold=0 the 30th's 09:00-17:00 would fall on the 31st's (30 Dec 19:00 - 31 Dec 03:00 UTC);
    # it is clipped to the 30th's own span (its midnight and the 31st's are both 30 Dec 10:00 UTC).
    apia = WorkingTime("Pacific/Apia", (NINE_TO_FIVE,) * 7)
    samoa = ZoneInfo("Pacific/Apia")
    span = (datetime(2011, 12, 29, tzinfo=samoa), datetime(2012, 1, 1, tzinfo=samoa))
    assert list(intervals(apia, *span)) == [
        (utc(2011, 12, 29, 19, 0), utc(2011, 12, 30, 3, 0)),  # Thursday 29th, 09:00-17:00 at -10
        (utc(2011, 12, 30, 19, 0), utc(2011, 12, 31, 3, 0)),  # Saturday 31st, 09:00-17:00 at +14
    ]
    assert between(apia, *span) == 16 * H
    assert add(apia, span[0], 9 * H) == utc(2011, 12, 30, 20, 0)  # Saturday 10:00


# --- the 24x7 calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        utc(2026, 6, 6, 20, 0),
        datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
        datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK),
    ],
)
@pytest.mark.parametrize("amount", [timedelta(microseconds=1), 90 * M, timedelta(days=400, seconds=7)])
def test_always_adds_real_time_exactly(start: datetime, amount: timedelta) -> None:
    always = WorkingTime.always()
    assert always == WorkingTime("UTC", (((0, 1440),),) * 7)
    due = add(always, start, amount)
    # Real elapsed time: in UTC (Python adds to a zoned datetime by wall clock).
    assert due == start.astimezone(UTC) + amount
    assert due.tzinfo is UTC
    assert subtract(always, due, amount) == start.astimezone(UTC)
    assert between(always, start, due) == amount
    assert list(intervals(always, start, due)) == [(start.astimezone(UTC), due)]


def test_always_is_constant_time_even_for_centuries() -> None:
    always = WorkingTime.always()
    start = utc(2026, 1, 1, 0, 0)
    began = time.perf_counter()
    assert add(always, start, timedelta(days=365 * 500)) == utc(2525, 9, 2, 0, 0)
    assert between(always, start, utc(2525, 9, 2, 0, 0)) == timedelta(days=365 * 500)
    assert subtract(always, utc(2525, 9, 2, 0, 0), timedelta(days=365 * 500)) == start
    assert time.perf_counter() - began < 0.5  # microseconds; a day-by-day walk takes seconds


def test_a_year_of_business_time_is_quick() -> None:
    calendar = office(*(((540, 720), (780, 1020)),) * 5, holidays=[date(2027, 12, 24), date(2027, 12, 25)])
    began = time.perf_counter()
    due = add(calendar, utc(2026, 1, 5, 8, 0), timedelta(days=365))  # 1095 working days of 8 hours
    elapsed = time.perf_counter() - began
    assert between(calendar, utc(2026, 1, 5, 8, 0), due) == timedelta(days=365)
    assert elapsed < 0.2  # about 15 ms here; generous for a shared machine


# --- calendars that cannot work ------------------------------------------------------------------

OK_WEEK: tuple[tuple[Range, ...], ...] = (NINE_TO_FIVE,) * 5 + (CLOSED, CLOSED)


def with_day(index: int, ranges: tuple[Range, ...]) -> tuple[tuple[Range, ...], ...]:
    return (*OK_WEEK[:index], ranges, *OK_WEEK[index + 1 :])


@pytest.mark.parametrize(
    ("zone", "week", "message"),
    [
        ("Mars/Base", OK_WEEK, "unknown time zone 'Mars/Base'"),
        ("", OK_WEEK, "unknown time zone ''"),
        ("localtime", OK_WEEK, "unknown time zone 'localtime'"),  # a file zoneinfo reads, not an IANA name
        ("Europe/Berlin", with_day(1, ((1020, 540),)), "tuesday: range 17:00-09:00 ends before it starts"),
        (
            "Europe/Berlin",
            with_day(0, ((540, 720), (660, 780))),
            "monday: ranges 09:00-12:00 and 11:00-13:00 overlap",
        ),
        ("Europe/Berlin", with_day(2, ((540, 1500),)), "wednesday: 25:00 is not a time of day"),
        ("Europe/Berlin", with_day(3, ((-30, 60),)), "thursday: -00:30 is not a time of day"),
        ("Europe/Berlin", with_day(4, ((540, 540),)), "friday: range 09:00-09:00 is empty"),
        ("Europe/Berlin", with_day(0, ((780, 1020), (540, 720))), "monday: ranges are not in time order"),
        ("Europe/Berlin", (CLOSED,) * 7, "the week has no working time"),
        ("Europe/Berlin", OK_WEEK[:5], "the week needs 7 days"),
    ],
)
def test_each_bad_calendar_names_its_problem(
    zone: str, week: tuple[tuple[Range, ...], ...], message: str
) -> None:
    assert problems(zone, week) == [message]
    with pytest.raises(CalendarError) as raised:
        WorkingTime(zone, week)
    assert str(raised.value) == message


def test_problems_lists_every_problem_and_allows_touching_ranges() -> None:
    week = (((540, 720), (720, 780)), ((1020, 540),), ((540, 1500),), CLOSED, CLOSED, CLOSED, CLOSED)
    assert problems("Mars/Base", week) == [
        "unknown time zone 'Mars/Base'",
        "tuesday: range 17:00-09:00 ends before it starts",
        "wednesday: 25:00 is not a time of day",
    ]
    assert problems("Europe/Berlin", OK_WEEK) == []
    assert problems("Europe/Berlin", [[(540, 720), (720, 780)]] + [[]] * 6) == []
    assert problems("UTC", [[(540, 720, 3)]] + [[]] * 6) == [  # type: ignore[arg-type]
        "monday: (540, 720, 3) is not a range of two minute counts",
        "the week has no working time",
    ]


def test_a_calendar_takes_lists_and_stores_tuples() -> None:
    calendar = WorkingTime("Europe/Berlin", [[[540, 1020]]] * 5 + [[], []], {date(2026, 12, 25)})  # type: ignore[arg-type]
    assert calendar.week == OK_WEEK
    assert calendar.holidays == frozenset({date(2026, 12, 25)})
    assert hash(calendar) == hash(WorkingTime("Europe/Berlin", OK_WEEK, frozenset({date(2026, 12, 25)})))
    with pytest.raises(CalendarError, match="is not a date"):
        WorkingTime("Europe/Berlin", OK_WEEK, frozenset({utc(2026, 12, 25, 0, 0)}))


@pytest.mark.parametrize(
    ("text", "r"), [("09:00-17:00", (540, 1020)), ("00:00-24:00", (0, 1440)), ("23:59-24:00", (1439, 1440))]
)
def test_ranges_read_and_write_as_text(text: str, r: Range) -> None:
    assert parse_range(text) == r
    assert format_range(r) == text
    assert parse_range(" 9:00 - 17:00 ") == (540, 1020)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9-17", "'9-17' is not a range like 09:00-17:00"),
        ("", "'' is not a range like 09:00-17:00"),
        ("09:00-17:00x", "'09:00-17:00x' is not a range like 09:00-17:00"),
        ("09:60-17:00", "09:60 is not a time of day"),
        ("09:00-24:30", "24:30 is not a time of day"),
        ("25:00-26:00", "25:00 is not a time of day"),
        ("17:00-09:00", "range 17:00-09:00 ends before it starts"),
        ("24:00-24:00", "range 24:00-24:00 is empty"),
    ],
)
def test_bad_range_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(CalendarError) as raised:
        parse_range(text)
    assert str(raised.value) == message


# --- properties ----------------------------------------------------------------------------------
# Zones with DST (Berlin, New York), a 30-minute DST (Lord Howe), changes at midnight (Santiago,
# Havana) and none (UTC, Kolkata).

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Havana",
    "Asia/Kolkata",
]
CHANGES = [  # instants of DST changes, to start near them often
    utc(2026, 3, 29, 1, 0),
    utc(2026, 10, 25, 1, 0),
    utc(2026, 3, 8, 7, 0),
    utc(2026, 11, 1, 6, 0),
    utc(2026, 4, 4, 15, 0),  # Lord Howe, 02:00 -> 01:30
    utc(2026, 4, 5, 3, 0),  # Santiago, 00:00 -> 23:00
    utc(2026, 3, 8, 5, 0),  # Havana, 00:00 -> 01:00
]


@st.composite
def day_ranges(draw: st.DrawFn) -> tuple[Range, ...]:
    marks = sorted(draw(st.sets(st.integers(0, 48).map(lambda n: n * 30) | st.integers(0, 1440), max_size=6)))
    return tuple((marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[WorkingTime, datetime]:
    zone = draw(st.sampled_from(ZONES))
    week = tuple(draw(day_ranges()) for _ in WEEKDAYS)
    assume(any(week))
    near_change = st.sampled_from(CHANGES).flatmap(
        lambda t: st.timedeltas(timedelta(days=-10), timedelta(days=2)).map(lambda d: t + d)
    )
    anywhere = st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1)).map(lambda t: t.replace(tzinfo=UTC))
    start = draw(near_change | anywhere)
    in_zone = draw(st.booleans())
    if in_zone:
        start = start.astimezone(ZoneInfo(zone))
    first = start.date()
    holidays = draw(st.sets(st.integers(-2, 40).map(lambda n: first + timedelta(days=n)), max_size=10))
    return WorkingTime(zone, week, frozenset(holidays)), start


AMOUNTS = st.timedeltas(timedelta(0), timedelta(days=30))
PROPERTY_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def in_working_time(wt: WorkingTime, t: datetime) -> bool:
    """t lies in [a, b) of a working interval."""
    return any(a <= t < b for a, b in intervals(wt, t - timedelta(days=2), t + timedelta(days=2)))


def inside_a_working_interval(wt: WorkingTime, t: datetime) -> bool:
    """t lies in (a, b] of a working interval."""
    return any(a < t <= b for a, b in intervals(wt, t - timedelta(days=2), t + timedelta(days=2)))


@PROPERTY_SETTINGS
@given(scenarios(), AMOUNTS)
def test_add_then_between_gives_the_amount_back(
    scenario: tuple[WorkingTime, datetime], amount: timedelta
) -> None:
    wt, start = scenario
    due = add(wt, start, amount)
    assert due >= start
    assert between(wt, start, due) == amount
    if amount:
        assert due.utcoffset() == timedelta(0)
        assert inside_a_working_interval(wt, due)
        # The earliest such instant: a microsecond less is not enough.
        assert between(wt, start, due - timedelta(microseconds=1)) < amount


@PROPERTY_SETTINGS
@given(scenarios(), AMOUNTS.filter(bool))
# Found by Hypothesis: the second 02:00 of 25 October in Berlin (fold=1), the start of working time.
@example(
    (
        WorkingTime("Europe/Berlin", ((), (), (), (), (), (), ((0, 180),)), frozenset()),
        datetime(2026, 10, 25, 2, 0, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    ),
    timedelta(microseconds=1),
)
def test_subtract_undoes_add(scenario: tuple[WorkingTime, datetime], amount: timedelta) -> None:
    wt, start = scenario
    due = add(wt, start, amount)
    back = subtract(wt, due, amount)
    assert between(wt, back, due) == amount
    first_opening = next(intervals(wt, start, due))[0]  # start itself when start is working time
    assert back == first_opening
    if in_working_time(wt, start):
        # The same instant. Compared in UTC: Python's == between time zones is False when either
        # side is an ambiguous local time (PEP 495), as the second 02:00 of a DST change is.
        assert back == start.astimezone(UTC)
    else:
        assert back > start
        assert between(wt, start, back) == timedelta(0)


@PROPERTY_SETTINGS
@given(scenarios(), st.lists(st.timedeltas(timedelta(0), timedelta(days=15)), min_size=2, max_size=2))
# Found by reading: 02:30 after Berlin's clocks went back, plus 10 minutes of wall-clock time, is an
# earlier instant (02:40 summer time); the steps are taken on instants, in UTC.
@example(
    (
        WorkingTime("Europe/Berlin", (((0, 1440),),) * 7, frozenset()),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    ),
    [timedelta(minutes=10), timedelta(minutes=60)],
)
def test_between_is_additive(scenario: tuple[WorkingTime, datetime], steps: list[timedelta]) -> None:
    wt, a = scenario
    b = a.astimezone(UTC) + steps[0]
    c = b + steps[1]
    assert between(wt, a, b) + between(wt, b, c) == between(wt, a, c)
    spans = list(intervals(wt, a, c))
    assert sum((end - begin for begin, end in spans), timedelta(0)) == between(wt, a, c)
    assert all(begin < end for begin, end in spans)
    assert all(first[1] < second[0] for first, second in itertools.pairwise(spans))


@PROPERTY_SETTINGS
@given(scenarios(), AMOUNTS, AMOUNTS)
def test_add_is_monotonic_in_the_amount(
    scenario: tuple[WorkingTime, datetime], x: timedelta, y: timedelta
) -> None:
    wt, start = scenario
    small, large = sorted((x, y))
    assert add(wt, start, small) <= add(wt, start, large)
