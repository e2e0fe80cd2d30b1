"""Calendars and SLA policies as admins manage them, and the default policies `db sla-defaults`
installs.

Every create, update and delete also queues an `SlaRecompute` row in the same transaction: the
worker (app.crud.sla_clock.recompute_pass) brings the running timers up to date in batches later;
an admin's request never recomputes tickets itself. The built-in "24x7" calendar is read-only.
"""

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import holidays as public_holidays
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import calendars, sla
from app.core.database import Database
from app.core.errors import Conflict, Invalid, NotFound
from app.crud import common
from app.crud.common import check_team, flush, page
from app.models import (
    NAME_MAX,
    WEEKDAYS,
    Calendar,
    CalendarCreate,
    CalendarUpdate,
    HolidayFill,
    SlaPolicy,
    SlaPolicyCreate,
    SlaPolicyUpdate,
    SlaRecompute,
)

CALENDAR_NOT_FOUND = "Calendar not found"
POLICY_NOT_FOUND = "SLA policy not found"
POLICY_TAKEN = "An SLA policy with this name or position already exists"
MAX_HOLIDAYS = 1000  # as CalendarCreate accepts
REASON_MAX = 200  # SlaRecompute.reason


# --- Shared --------------------------------------------------------------------------------------


def _queue_recompute(session: AsyncSession, reason: str) -> None:
    """Ask the worker to recompute the running timers (committed with the change that needs it)."""
    session.add(SlaRecompute(reason=reason[:REASON_MAX]))


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


# --- Calendars -----------------------------------------------------------------------------------


def _stored_hours(hours: Mapping[Any, Sequence[str]]) -> dict[str, list[str]]:
    """Working hours as stored: weekdays in week order, each day's ranges sorted."""
    return {day: sorted(hours[day]) for day in WEEKDAYS if day in hours}


def _stored_holidays(holidays: Iterable[Any]) -> list[Any]:
    """Holidays as the JSON column stores them: `{"date": "YYYY-MM-DD", "name": ...}`, one per date
    (the first given wins), sorted by date. (Calendar.holidays is annotated with the API's Holiday;
    the rows hold these plain objects, which app.calendars reads.)"""
    by_date: dict[str, str] = {}
    for holiday in holidays:
        day, name = (
            (holiday["date"], holiday["name"])
            if isinstance(holiday, Mapping)
            else (holiday.date, holiday.name)
        )
        by_date.setdefault(day.isoformat() if isinstance(day, date) else str(day), name)
    return [{"date": day, "name": by_date[day]} for day in sorted(by_date)]


async def get_calendar(*, db: Database, calendar_id: int) -> Calendar:
    session = await db.reader()
    calendar = await session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(CALENDAR_NOT_FOUND)
    return calendar


async def list_calendars(*, db: Database, offset: int, limit: int) -> tuple[list[Calendar], int]:
    stmt = select(Calendar).order_by(col(Calendar.name), col(Calendar.id))
    return await page(await db.reader(), stmt, offset=offset, limit=limit)


async def _editable_calendar(session: AsyncSession, calendar_id: int, action: str) -> Calendar:
    calendar = await session.get(Calendar, calendar_id, with_for_update=True)
    if calendar is None:
        raise NotFound(CALENDAR_NOT_FOUND)
    if calendar.builtin:
        raise Conflict(f"The built-in calendar '{calendar.name}' cannot be {action}")
    return calendar


async def create_calendar(*, db: Database, calendar_in: CalendarCreate) -> Calendar:
    async with db.write() as session:
        calendar = Calendar(
            name=calendar_in.name,
            time_zone=calendar_in.time_zone,
            working_hours=_stored_hours(calendar_in.working_hours),
            holidays=_stored_holidays(calendar_in.holidays),
        )
        session.add(calendar)
        await flush(session, conflict=f"A calendar named '{calendar_in.name}' already exists")
        _queue_recompute(session, f"calendar '{calendar.name}' created")
    return calendar


async def update_calendar(*, db: Database, calendar_id: int, calendar_in: CalendarUpdate) -> Calendar:
    async with db.write() as session:
        calendar = await _editable_calendar(session, calendar_id, "changed")
        changes = calendar_in.model_dump(exclude_unset=True)
        if "working_hours" in changes:
            changes["working_hours"] = _stored_hours(changes["working_hours"])
        if "holidays" in changes:
            changes["holidays"] = _stored_holidays(changes["holidays"])
        calendar.sqlmodel_update({**changes, "updated_at": common.utcnow()})
        session.add(calendar)
        await flush(session, conflict=f"A calendar named '{calendar.name}' already exists")
        _queue_recompute(session, f"calendar '{calendar.name}' updated")
    return calendar


async def delete_calendar(*, db: Database, calendar_id: int) -> None:
    async with db.write() as session:
        calendar = await _editable_calendar(session, calendar_id, "deleted")
        policies = (
            await session.exec(
                select(SlaPolicy.name)
                .where(SlaPolicy.calendar_id == calendar.id)
                .order_by(col(SlaPolicy.position))
            )
        ).all()
        if policies:
            raise Conflict(
                f"The calendar '{calendar.name}' is used by SLA policies {_quoted(policies)}; "
                "give them another calendar first"
            )
        await session.delete(calendar)
        _queue_recompute(session, f"calendar '{calendar.name}' deleted")


def public_holidays_of(fill: HolidayFill) -> list[dict[str, str]]:
    """A year's public holidays of a country (and subdivision) from the `holidays` package, as stored;
    an unknown country or subdivision is Invalid naming it."""
    try:
        with warnings.catch_warnings(record=True) as caught:  # no await inside: nothing else runs
            warnings.simplefilter("always")
            found = public_holidays.country_holidays(fill.country, subdiv=fill.subdivision, years=fill.year)
    except NotImplementedError:
        if fill.country not in public_holidays.list_supported_countries():
            raise Invalid("country", f"no public holidays known for country '{fill.country}'") from None
        raise Invalid(
            "subdivision", f"country '{fill.country}' has no subdivision '{fill.subdivision}'"
        ) from None
    if caught:  # e.g. "Requested Holidays are available only from 2001 to 2035."
        raise Invalid("year", f"country '{fill.country}': {str(caught[0].message).rstrip('.')}")
    return [{"date": day.isoformat(), "name": name[:NAME_MAX]} for day, name in sorted(found.items())]


async def fill_holidays(*, db: Database, calendar_id: int, fill: HolidayFill) -> Calendar:
    """Merge a year's public holidays into the calendar's (by date: the names it has are kept)."""
    async with db.write() as session:
        calendar = await _editable_calendar(session, calendar_id, "changed")
        added = public_holidays_of(fill)
        merged = _stored_holidays([*calendar.holidays, *added])
        if len(merged) > MAX_HOLIDAYS:
            raise Invalid("year", f"the calendar would have more than {MAX_HOLIDAYS} holidays")
        calendar.holidays = merged
        calendar.updated_at = common.utcnow()
        session.add(calendar)
        await session.flush()
        where = fill.country + (f"-{fill.subdivision}" if fill.subdivision else "")
        _queue_recompute(session, f"calendar '{calendar.name}': {where} holidays of {fill.year} added")
    return calendar


# --- Policies ------------------------------------------------------------------------------------


async def get_policy(*, db: Database, policy_id: int) -> SlaPolicy:
    session = await db.reader()
    policy = await session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(POLICY_NOT_FOUND)
    return policy


async def list_policies(*, db: Database, offset: int, limit: int) -> tuple[list[SlaPolicy], int]:
    stmt = select(SlaPolicy).order_by(col(SlaPolicy.position))
    return await page(await db.reader(), stmt, offset=offset, limit=limit)


async def _check_policy(session: AsyncSession, policy: SlaPolicy) -> None:
    """409 for a name or position taken, or a second fallback; then 422 for an unknown team or
    calendar. `policy` holds its new values (its id is None when it is new)."""
    others = select(SlaPolicy).where(col(SlaPolicy.id) != policy.id) if policy.id else select(SlaPolicy)
    named = (await session.exec(others.where(SlaPolicy.name == policy.name))).first()
    if named is not None:
        raise Conflict(f"An SLA policy named '{policy.name}' already exists")
    placed = (await session.exec(others.where(SlaPolicy.position == policy.position))).first()
    if placed is not None:
        raise Conflict(f"Position {policy.position} is taken by SLA policy '{placed.name}'")
    if policy.priority is None and policy.team_id is None:
        fallback = (
            await session.exec(
                others.where(col(SlaPolicy.priority).is_(None), col(SlaPolicy.team_id).is_(None))
            )
        ).first()
        if fallback is not None:
            raise Conflict(
                f"SLA policy '{fallback.name}' is already the fallback (no priority and no team); "
                "give this one a priority or a team"
            )
    await check_team(session, policy.team_id)
    calendar = await session.get(Calendar, policy.calendar_id)
    if calendar is None:
        raise Invalid("calendar_id", f"no calendar with id {policy.calendar_id}")


async def create_policy(*, db: Database, policy_in: SlaPolicyCreate) -> SlaPolicy:
    async with db.write() as session:
        policy = SlaPolicy.model_validate(policy_in)
        await _check_policy(session, policy)
        session.add(policy)
        await flush(session, conflict=POLICY_TAKEN)
        _queue_recompute(session, f"policy '{policy.name}' created")
    return policy


async def update_policy(*, db: Database, policy_id: int, policy_in: SlaPolicyUpdate) -> SlaPolicy:
    async with db.write() as session:
        policy = await session.get(SlaPolicy, policy_id, with_for_update=True)
        if policy is None:
            raise NotFound(POLICY_NOT_FOUND)
        with session.no_autoflush:
            policy.sqlmodel_update(
                {**policy_in.model_dump(exclude_unset=True), "updated_at": common.utcnow()}
            )
            await _check_policy(session, policy)
        session.add(policy)
        await flush(session, conflict=POLICY_TAKEN)
        _queue_recompute(session, f"policy '{policy.name}' updated")
    return policy


async def delete_policy(*, db: Database, policy_id: int) -> None:
    async with db.write() as session:
        policy = await session.get(SlaPolicy, policy_id, with_for_update=True)
        if policy is None:
            raise NotFound(POLICY_NOT_FOUND)
        await session.delete(policy)
        _queue_recompute(session, f"policy '{policy.name}' deleted")


# --- Defaults ------------------------------------------------------------------------------------


@dataclass
class DefaultsInstalled:
    """What install_defaults did: nothing (policies already exist), or the calendar it made (or
    found by name) and the policies it created."""

    calendar: str | None = None
    calendar_created: bool = False
    policies: list[str] = field(default_factory=list)
    existing_policies: int = 0


async def install_defaults(*, db: Database, time_zone: str) -> DefaultsInstalled:
    """The default calendar (Monday-Friday 09:00-17:00 in `time_zone`) and policies (app.sla), only
    when there is no policy yet; a calendar already named like the default one is used as it is."""
    if problems := calendars.problems(time_zone, None):
        raise Invalid("time_zone", "; ".join(problems))
    async with db.write() as session:
        existing = len((await session.exec(select(SlaPolicy.id))).all())
        if existing:
            return DefaultsInstalled(existing_policies=existing)
        result = DefaultsInstalled(calendar=sla.DEFAULT_CALENDAR)
        calendar = (await session.exec(select(Calendar).where(Calendar.name == sla.DEFAULT_CALENDAR))).first()
        if calendar is None:
            calendar = Calendar(
                name=sla.DEFAULT_CALENDAR, time_zone=time_zone, working_hours=calendars.office_hours()
            )
            session.add(calendar)
            await session.flush()
            result.calendar_created = True
        assert calendar.id is not None
        for default in sla.DEFAULT_POLICIES:
            session.add(SlaPolicy(**default.fields(), calendar_id=calendar.id))
            result.policies.append(default.name)
        await flush(session, conflict="SLA policies were installed at the same time")
        _queue_recompute(session, "default SLA policies installed")
    return result
