"""Calendars as the API writes them (`"HH:MM-HH:MM"` ranges per weekday, holidays as dates) and as
app.business_time counts them (a WorkingTime)."""

from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from app import business_time
from app.models import WEEKDAYS, Calendar

BUILTIN_NAME = "24x7"
_ANY_WEEK: tuple[tuple[business_time.Range, ...], ...] = (((0, 1440),),) * 7


def _week(
    hours: Mapping[str, Sequence[str]],
) -> tuple[list[str], tuple[tuple[business_time.Range, ...], ...]]:
    problems: list[str] = []
    week: list[tuple[business_time.Range, ...]] = []
    for day in WEEKDAYS:
        ranges: list[business_time.Range] = []
        for text in hours.get(day, ()):
            try:
                ranges.append(business_time.parse_range(text))
            except business_time.CalendarError as exc:
                problems.append(f"{day}: {exc}")
        week.append(tuple(sorted(ranges)))
    return problems, tuple(week)


def problems(zone: str | None, hours: Mapping[str, Sequence[str]] | None) -> list[str]:
    """What makes a calendar unusable, each named: an unknown zone, a range that is not a time of
    day, inverted or overlapping ranges, a week with no working time. Either part may be None (an
    update that leaves it as it is): the two parts are checked independently."""
    found: list[str] = []
    if zone is not None:
        found += business_time.problems(zone, _ANY_WEEK)
    if hours is not None:
        unreadable, week = _week(hours)
        found += unreadable or business_time.problems("UTC", week)
    return found


def holiday_dates(holidays: Sequence[Any]) -> frozenset[date]:
    """Holidays as stored (JSON objects with a `date`) or as models."""
    dates = set()
    for holiday in holidays:
        value = holiday["date"] if isinstance(holiday, Mapping) else holiday.date
        dates.add(value if isinstance(value, date) else date.fromisoformat(value))
    return frozenset(dates)


@lru_cache(maxsize=256)
def _working_time(
    zone: str, week: tuple[tuple[business_time.Range, ...], ...], holidays: frozenset[date]
) -> business_time.WorkingTime:
    if zone == "UTC" and week == _ANY_WEEK and not holidays:
        return business_time.WorkingTime.always()
    return business_time.WorkingTime(zone=zone, week=week, holidays=holidays)


def working_time(calendar: Calendar) -> business_time.WorkingTime:
    """The calendar as business_time counts it (built once per distinct calendar content)."""
    return working_time_of(calendar.time_zone, calendar.working_hours, calendar.holidays)


def working_time_of(
    zone: str, hours: Mapping[str, Sequence[str]], holidays: Sequence[Any]
) -> business_time.WorkingTime:
    """`working_time` from a calendar's stored values."""
    _unreadable, week = _week(hours)
    return _working_time(zone, week, holiday_dates(holidays))


def always_open_hours() -> dict[str, list[str]]:
    return {day: ["00:00-24:00"] for day in WEEKDAYS}


def office_hours() -> dict[str, list[str]]:
    """Monday to Friday, 09:00-17:00: the seeded business calendar."""
    return {day: ["09:00-17:00"] for day in WEEKDAYS[:5]}
