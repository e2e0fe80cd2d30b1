"""Business-time arithmetic for service levels: how much working time lies between two instants, and
which instant lies a given amount of working time after (or before) another.

A calendar (`WorkingTime`) is a time zone, the working ranges of each weekday in local minutes from
midnight, and holidays (local dates closed all day). A range (s, e) on local date d is the interval
[local(d, s), local(d, e)) converted to UTC, e == 1440 being local midnight of d + 1. Local times
are resolved as PEP 495 says with fold=0: a time in the fall-back overlap is its first occurrence, a
time in a spring-forward gap is read with the offset before the change. So a range counts the real
elapsed time (00:00-06:00 on the spring-forward Sunday is 5 hours), and a range that would come out
inverted or empty in UTC is skipped. Each local day's intervals are kept inside that day's own span
[local midnight of d, local midnight of d + 1) and after the previous range's end, so the intervals
of all days are disjoint and in order whatever the gaps do.

Everything is exact `datetime`/`timedelta` arithmetic (microseconds); results are in UTC. A calendar
whose every day is (0, 1440) without holidays (`WorkingTime.always()`, in any zone) is all working
time and is answered in constant time; other calendars walk day by day (each day's intervals are
cached), at most 10 years past the last working time found before `NoWorkingTime` is raised.
"""

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

Range = tuple[int, int]  # minutes from local midnight: 0 <= start < end <= 1440
Interval = tuple[datetime, datetime]  # [start, end) in UTC

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_MINUTES = 1440
HORIZON_DAYS = 3653  # 10 years: no working time this long after the last found is a calendar error

_ONE_DAY = timedelta(days=1)
_FULL_DAY: tuple[Range, ...] = ((0, DAY_MINUTES),)
_RANGE_TEXT = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


class CalendarError(ValueError):
    """A calendar that cannot work; the message names the problem."""


class NoWorkingTime(CalendarError):
    """add() or subtract() found no working time within the horizon (10 years)."""


@cache
def _zone_names() -> frozenset[str]:
    # The system's zone database may list "localtime" (the host's own zone, a file): not a name.
    return frozenset(available_timezones()) - {"localtime"}


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _clock(minutes: int) -> str:
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def format_range(r: Range) -> str:
    """(540, 1020) -> "09:00-17:00"; (0, 1440) -> "00:00-24:00"."""
    return f"{_clock(r[0])}-{_clock(r[1])}"


def parse_range(text: str) -> Range:
    """ "09:00-17:00" -> (540, 1020); "00:00-24:00" -> (0, 1440). Raises CalendarError on bad text."""
    match = _RANGE_TEXT.fullmatch(text)
    if match is None:
        raise CalendarError(f"{text!r} is not a range like 09:00-17:00")
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    for hours, minutes in ((start_h, start_m), (end_h, end_m)):
        if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
            raise CalendarError(f"{hours:02d}:{minutes:02d} is not a time of day")
    r = (start_h * 60 + start_m, end_h * 60 + end_m)
    problem = _range_problem(r)
    if problem is not None:
        raise CalendarError(problem)
    return r


def _range_problem(r: Range) -> str | None:
    start, end = r
    for minutes in (start, end):
        if not 0 <= minutes <= DAY_MINUTES:
            return f"{_clock(minutes)} is not a time of day"
    if end < start:
        return f"range {format_range(r)} ends before it starts"
    if end == start:
        return f"range {format_range(r)} is empty"
    return None


def _is_minutes(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(zone: str, week: Sequence[Sequence[Range]]) -> list[str]:
    """Every problem of a calendar, each a short sentence naming it; [] for a good calendar.

    Ranges of a day must be sorted and must not overlap; touching ranges (09:00-12:00, 12:00-13:00)
    are allowed."""
    found: list[str] = []
    try:
        if zone not in _zone_names():  # IANA names only ("localtime" is a file, not a zone)
            raise ZoneInfoNotFoundError(zone)
        _zone(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        found.append(f"unknown time zone {zone!r}")
    if len(week) != len(WEEKDAYS):
        found.append("the week needs 7 days")
        return found
    working = False
    for name, ranges in zip(WEEKDAYS, week, strict=True):
        good: list[Range] = []
        for r in ranges:
            if not isinstance(r, tuple | list) or len(r) != 2 or not all(_is_minutes(v) for v in r):
                found.append(f"{name}: {r!r} is not a range of two minute counts")
                continue
            problem = _range_problem((r[0], r[1]))
            if problem is None:
                good.append((r[0], r[1]))
            else:
                found.append(f"{name}: {problem}")
        working = working or bool(good)
        ordered = sorted(good)
        for first, second in itertools.pairwise(ordered):
            if second[0] < first[1]:
                found.append(f"{name}: ranges {format_range(first)} and {format_range(second)} overlap")
        if ordered != good:
            found.append(f"{name}: ranges are not in time order")
    if not working:
        found.append("the week has no working time")
    return found


@dataclass(frozen=True)
class WorkingTime:
    zone: str  # IANA time zone name, e.g. "Europe/Berlin"
    week: tuple[tuple[Range, ...], ...]  # 7 entries, Monday first; () = closed day
    holidays: frozenset[date] = frozenset()  # local dates closed all day
    _always: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        found = problems(self.zone, self.week)
        if found:
            raise CalendarError(found[0])
        for day in self.holidays:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise CalendarError(f"holiday {day!r} is not a date")
        # Lists are accepted and stored as tuples, so the calendar is hashable (and cacheable).
        week = tuple(tuple((int(s), int(e)) for s, e in day) for day in self.week)
        object.__setattr__(self, "week", week)
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "_always", not self.holidays and all(day == _FULL_DAY for day in week))

    @classmethod
    def always(cls) -> "WorkingTime":
        """The built-in "24x7": UTC, every day (0, 1440), no holidays."""
        return cls("UTC", (_FULL_DAY,) * 7)


def _utc(value: datetime, name: str) -> datetime:
    """value in UTC. Every comparison and difference below is between UTC datetimes: Python compares
    and subtracts two datetimes sharing a tzinfo by wall clock, which is wrong across a DST change."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _utc_at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    # Aware + timedelta is wall-clock arithmetic: the local time `minutes` after local midnight,
    # fold=0, then its UTC instant.
    return (datetime.combine(day, time(), tzinfo=zone) + timedelta(minutes=minutes)).astimezone(UTC)


@lru_cache(maxsize=16384)
def _day(wt: WorkingTime, day: date) -> tuple[Interval, ...]:
    """The working intervals of local date `day`, in order, disjoint, inside the day's own span."""
    ranges = wt.week[day.weekday()]
    if not ranges or day in wt.holidays:
        return ()
    zone = _zone(wt.zone)
    cursor = _utc_at(day, 0, zone)
    day_end = _utc_at(day, DAY_MINUTES, zone)
    found: list[Interval] = []
    for start_minutes, end_minutes in ranges:
        start = max(_utc_at(day, start_minutes, zone), cursor)
        end = min(_utc_at(day, end_minutes, zone), day_end)
        if end > start:
            found.append((start, end))
            cursor = end
    return tuple(found)


def _local_date(t: datetime, zone: ZoneInfo) -> date:
    return t.astimezone(zone).date()


def _forward(wt: WorkingTime, t: datetime, until: datetime | None = None) -> Iterator[Interval]:
    """Working intervals ending after t (UTC), the first clipped to start at t, in order. With `until`:
    those that may start before it (the caller clips); without: until HORIZON_DAYS pass with no
    working time, then NoWorkingTime."""
    zone = _zone(wt.zone)
    try:
        day = _local_date(t, zone) - _ONE_DAY
        last = day + timedelta(days=HORIZON_DAYS) if until is None else _local_date(until, zone) + _ONE_DAY
        while day <= last:
            for start, end in _day(wt, day):
                if end > t:
                    yield max(start, t), end
                    if until is None:
                        last = day + timedelta(days=HORIZON_DAYS)
            day += _ONE_DAY
    except OverflowError:  # the end of the calendar (year 9999)
        pass
    if until is None:
        raise NoWorkingTime(f"no working time within 10 years after {t.isoformat()}")


def _backward(wt: WorkingTime, t: datetime) -> Iterator[Interval]:
    """Working intervals starting before t (UTC), the first clipped to end at t, latest first; after
    HORIZON_DAYS with no working time, NoWorkingTime."""
    zone = _zone(wt.zone)
    try:
        day = _local_date(t, zone) + _ONE_DAY
        last = day - timedelta(days=HORIZON_DAYS)
        while day >= last:
            for start, end in reversed(_day(wt, day)):
                if start < t:
                    yield start, min(end, t)
                    last = day - timedelta(days=HORIZON_DAYS)
            day -= _ONE_DAY
    except OverflowError:  # the start of the calendar (year 1)
        pass
    raise NoWorkingTime(f"no working time within 10 years before {t.isoformat()}")


def add(wt: WorkingTime, start: datetime, amount: timedelta) -> datetime:
    """The earliest instant t >= start with between(wt, start, t) == amount, in UTC (amount == 0
    returns start unchanged). For amount > 0 the result lies inside a working interval or exactly
    at its end, never in closed hours."""
    at = _utc(start, "start")
    if amount < timedelta(0):
        raise ValueError("amount must not be negative")
    if not amount:
        return start
    if wt._always:
        return at + amount
    remaining = amount
    for begin, end in _forward(wt, at):
        if remaining <= end - begin:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: _forward ends by raising")  # pragma: no cover


def subtract(wt: WorkingTime, end: datetime, amount: timedelta) -> datetime:
    """The latest instant t <= end with between(wt, t, end) == amount, in UTC (amount == 0 returns
    end unchanged)."""
    at = _utc(end, "end")
    if amount < timedelta(0):
        raise ValueError("amount must not be negative")
    if not amount:
        return end
    if wt._always:
        return at - amount
    remaining = amount
    for begin, finish in _backward(wt, at):
        if remaining <= finish - begin:
            return finish - remaining
        remaining -= finish - begin
    raise AssertionError("unreachable: _backward ends by raising")  # pragma: no cover


def intervals(wt: WorkingTime, a: datetime, b: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The working intervals clipped to [a, b), in order, as UTC datetimes. Touching intervals (one
    range ending where the next begins, or at midnight) come merged."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b <= a:
        return
    if wt._always:
        yield a, b
        return
    current: Interval | None = None
    for start, end in _forward(wt, a, until=b):
        if start >= b:
            break
        end = min(end, b)
        if current is not None and current[1] == start:
            current = (current[0], end)
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def between(wt: WorkingTime, a: datetime, b: datetime) -> timedelta:
    """Business time in [a, b); timedelta(0) when b <= a."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b <= a:
        return timedelta(0)
    if wt._always:
        return b - a
    total = timedelta(0)
    for start, end in intervals(wt, a, b):
        total += end - start
    return total
