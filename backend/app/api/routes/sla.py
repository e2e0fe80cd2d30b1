"""Service levels as admins manage them: calendars and SLA policies (agents read them)."""

from fastapi import Response, status

from app import crud
from app.api.deps import DbDep, PageDep, PathId, SlaAdmin, SlaReader
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import (
    Calendar,
    CalendarCreate,
    CalendarPublic,
    CalendarsPublic,
    CalendarUpdate,
    HolidayFill,
    SlaPoliciesPublic,
    SlaPolicy,
    SlaPolicyCreate,
    SlaPolicyPublic,
    SlaPolicyUpdate,
)

router = api_router("", "sla")

# --- Calendars -----------------------------------------------------------------------------------


@router.get("/calendars/", response_model=CalendarsPublic, responses=answers(403, 422))
async def list_calendars(db: DbDep, _: SlaReader, page: PageDep) -> CalendarsPublic:
    calendars, count = await crud.list_calendars(db=db, offset=page.offset, limit=page.limit)
    return CalendarsPublic(data=[CalendarPublic.model_validate(c) for c in calendars], count=count)


@router.post(
    "/calendars/",
    response_model=CalendarPublic,
    status_code=status.HTTP_201_CREATED,
    responses=answers(403, 409, 422),
)
async def create_calendar(db: DbDep, _: SlaAdmin, calendar_in: CalendarCreate) -> Calendar:
    return await crud.create_calendar(db=db, calendar_in=calendar_in)


@router.get("/calendars/{calendar_id:id}", response_model=CalendarPublic, responses=answers(403, 404, 422))
async def read_calendar(db: DbDep, _: SlaReader, calendar_id: PathId) -> Calendar:
    return await crud.get_calendar(db=db, calendar_id=calendar_id)


@router.patch(
    "/calendars/{calendar_id:id}", response_model=CalendarPublic, responses=answers(403, 404, 409, 422)
)
async def update_calendar(
    db: DbDep, _: SlaAdmin, calendar_id: PathId, calendar_in: CalendarUpdate
) -> Calendar:
    return await crud.update_calendar(db=db, calendar_id=calendar_id, calendar_in=calendar_in)


@router.delete(
    "/calendars/{calendar_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(403, 404, 409, 422, status=204),
)
async def delete_calendar(db: DbDep, _: SlaAdmin, calendar_id: PathId) -> Response:
    await crud.delete_calendar(db=db, calendar_id=calendar_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/calendars/{calendar_id:id}/holidays",
    response_model=CalendarPublic,
    responses=answers(403, 404, 409, 422),
)
async def fill_holidays(db: DbDep, _: SlaAdmin, calendar_id: PathId, fill: HolidayFill) -> Calendar:
    """Add a year's public holidays of a country (and subdivision) to the calendar; the holidays it
    has keep their names."""
    return await crud.fill_holidays(db=db, calendar_id=calendar_id, fill=fill)


# --- Policies ------------------------------------------------------------------------------------


@router.get("/sla-policies/", response_model=SlaPoliciesPublic, responses=answers(403, 422))
async def list_sla_policies(db: DbDep, _: SlaReader, page: PageDep) -> SlaPoliciesPublic:
    policies, count = await crud.list_policies(db=db, offset=page.offset, limit=page.limit)
    return SlaPoliciesPublic(data=[SlaPolicyPublic.model_validate(p) for p in policies], count=count)


@router.post(
    "/sla-policies/",
    response_model=SlaPolicyPublic,
    status_code=status.HTTP_201_CREATED,
    responses=answers(403, 409, 422),
)
async def create_sla_policy(db: DbDep, _: SlaAdmin, policy_in: SlaPolicyCreate) -> SlaPolicy:
    return await crud.create_policy(db=db, policy_in=policy_in)


@router.get("/sla-policies/{policy_id:id}", response_model=SlaPolicyPublic, responses=answers(403, 404, 422))
async def read_sla_policy(db: DbDep, _: SlaReader, policy_id: PathId) -> SlaPolicy:
    return await crud.get_policy(db=db, policy_id=policy_id)


@router.patch(
    "/sla-policies/{policy_id:id}", response_model=SlaPolicyPublic, responses=answers(403, 404, 409, 422)
)
async def update_sla_policy(
    db: DbDep, _: SlaAdmin, policy_id: PathId, policy_in: SlaPolicyUpdate
) -> SlaPolicy:
    return await crud.update_policy(db=db, policy_id=policy_id, policy_in=policy_in)


@router.delete(
    "/sla-policies/{policy_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(403, 404, 422, status=204),
)
async def delete_sla_policy(db: DbDep, _: SlaAdmin, policy_id: PathId) -> Response:
    await crud.delete_policy(db=db, policy_id=policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
