"""Calendars and SLA policies through the API: what admins may change, what agents may read, each
bad input refused with nothing written, and every change queued for the worker's recompute."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.crud import common, sla_clock
from app.models import (
    MINUTES_PER_YEAR,
    Calendar,
    EventAction,
    SlaPolicy,
    SlaRecompute,
    SlaTimer,
    TicketEvent,
    TimerKind,
)
from tests.conftest import RunDb
from tests.utils import API, create_ticket, error_body

Headers = dict[str, str]
CALENDARS = f"{API}/calendars/"
POLICIES = f"{API}/sla-policies/"
OFFICE = {day: ["09:00-17:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}


def calendar_body(**fields: Any) -> dict[str, Any]:
    return {"name": "Berlin office", "time_zone": "Europe/Berlin", "working_hours": OFFICE, **fields}


def policy_body(calendar_id: int, **fields: Any) -> dict[str, Any]:
    body = {"name": "Urgent", "position": 10, "priority": "urgent", "calendar_id": calendar_id}
    return {**body, "first_response_minutes": 30, "resolution_minutes": 240, **fields}


def builtin_id(session: Session) -> int:
    calendar = session.exec(select(Calendar).where(col(Calendar.builtin))).one()
    assert calendar.id is not None and calendar.name == "24x7"
    return calendar.id


def queued(session: Session) -> list[str]:
    """The reasons of the recomputes waiting for the worker, oldest first."""
    return list(session.exec(select(SlaRecompute.reason).order_by(col(SlaRecompute.id))).all())


def rows(session: Session, model: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def make_calendar(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    response = client.post(CALENDARS, json=calendar_body(**fields), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_policy(client: TestClient, headers: Headers, calendar_id: int, **fields: Any) -> dict[str, Any]:
    response = client.post(POLICIES, json=policy_body(calendar_id, **fields), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def field_error(response: Any, loc: list[Any], fragment: str) -> None:
    """A 422 whose single problem is at `loc` and mentions `fragment`."""
    assert response.status_code == 422, response.text
    [problem] = error_body(response)["detail"]
    assert problem["loc"] == loc, problem
    assert fragment in problem["msg"], problem


# --- Calendars -----------------------------------------------------------------------------------


def test_calendar_create_read_update_delete(client: TestClient, session: Session, as_admin: Headers) -> None:
    created = client.post(
        CALENDARS,
        json=calendar_body(
            working_hours={"tuesday": ["13:00-17:00", "08:00-12:00"], "monday": ["09:00-17:00"]},
            holidays=[
                {"date": "2026-12-25", "name": "Christmas Day"},
                {"date": "2026-01-01", "name": "New Year"},
            ],
        ),
        headers=as_admin,
    )
    assert created.status_code == 201, created.text
    calendar = created.json()
    assert {k: v for k, v in calendar.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "Berlin office",
        "time_zone": "Europe/Berlin",
        # stored in week order, each day's ranges sorted; holidays sorted by date
        "working_hours": {"monday": ["09:00-17:00"], "tuesday": ["08:00-12:00", "13:00-17:00"]},
        "holidays": [
            {"date": "2026-01-01", "name": "New Year"},
            {"date": "2026-12-25", "name": "Christmas Day"},
        ],
        "builtin": False,
    }
    url = f"{CALENDARS}{calendar['id']}"
    assert client.get(url, headers=as_admin).json() == calendar

    listing = client.get(CALENDARS, headers=as_admin).json()
    assert [c["name"] for c in listing["data"]] == ["24x7", "Berlin office"]  # by name
    assert listing["count"] == 2

    updated = client.patch(
        url, json={"name": "Munich office", "time_zone": "Europe/Berlin"}, headers=as_admin
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Munich office"
    assert updated.json()["working_hours"] == calendar["working_hours"]  # left out: kept

    assert client.delete(url, headers=as_admin).status_code == 204
    gone = client.get(url, headers=as_admin)
    assert gone.status_code == 404
    assert error_body(gone) == {"detail": "Calendar not found"}
    assert queued(session) == [
        "calendar 'Berlin office' created",
        "calendar 'Munich office' updated",
        "calendar 'Munich office' deleted",
    ]


def test_the_builtin_calendar_cannot_be_changed(
    client: TestClient, session: Session, as_admin: Headers
) -> None:
    url = f"{CALENDARS}{builtin_id(session)}"
    before = client.get(url, headers=as_admin).json()
    assert before["builtin"] is True
    edit = client.patch(url, json={"time_zone": "Europe/Paris"}, headers=as_admin)
    assert edit.status_code == 409
    assert error_body(edit) == {"detail": "The built-in calendar '24x7' cannot be changed"}
    delete = client.delete(url, headers=as_admin)
    assert delete.status_code == 409
    assert error_body(delete) == {"detail": "The built-in calendar '24x7' cannot be deleted"}
    fill = client.post(f"{url}/holidays", json={"country": "DE", "year": 2026}, headers=as_admin)
    assert fill.status_code == 409
    assert error_body(fill) == {"detail": "The built-in calendar '24x7' cannot be changed"}
    assert client.get(url, headers=as_admin).json() == before
    assert queued(session) == []


BAD_CALENDARS: list[tuple[str, dict[str, Any], list[Any], str]] = [
    ("overlapping ranges", {"working_hours": {"monday": ["09:00-12:00", "11:00-13:00"]}}, ["body"],
     "monday: ranges 09:00-12:00 and 11:00-13:00 overlap"),
    ("inverted range", {"working_hours": {"monday": ["17:00-09:00"]}}, ["body"],
     "monday: range 17:00-09:00 ends before it starts"),
    ("not a time of day", {"working_hours": {"friday": ["25:00-26:00"]}}, ["body"],
     "friday: 25:00 is not a time of day"),
    ("no working time", {"working_hours": {"monday": [], "sunday": []}}, ["body"],
     "the week has no working time"),
    ("unknown time zone", {"time_zone": "Mars/Olympus"}, ["body"], "unknown time zone 'Mars/Olympus'"),
    ("range not HH:MM-HH:MM", {"working_hours": {"monday": ["9-17"]}}, ["body", "working_hours", "monday", 0],
     "String should match pattern"),
    ("unknown weekday", {"working_hours": {"funday": ["09:00-17:00"]}},
     ["body", "working_hours", "funday", "[key]"], "Input should be 'monday'"),
    ("empty name", {"name": " "}, ["body", "name"], "String should"),
    ("unknown field", {"builtin": True}, ["body", "builtin"], "Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "loc", "fragment"), [c[1:] for c in BAD_CALENDARS], ids=[c[0] for c in BAD_CALENDARS]
)
def test_a_bad_calendar_is_422_naming_the_problem(
    client: TestClient,
    session: Session,
    as_admin: Headers,
    change: dict[str, Any],
    loc: list[Any],
    fragment: str,
) -> None:
    field_error(client.post(CALENDARS, json=calendar_body(**change), headers=as_admin), loc, fragment)
    assert rows(session, Calendar) == 1  # the built-in one only
    calendar = make_calendar(client, as_admin)
    if "name" not in change and "builtin" not in change:  # an update checks the same rules
        url = f"{CALENDARS}{calendar['id']}"
        field_error(client.patch(url, json=change, headers=as_admin), loc, fragment)
        assert client.get(url, headers=as_admin).json() == calendar
    assert queued(session) == ["calendar 'Berlin office' created"]


def test_calendar_names_are_unique(client: TestClient, session: Session, as_admin: Headers) -> None:
    make_calendar(client, as_admin)
    again = client.post(CALENDARS, json=calendar_body(), headers=as_admin)
    assert again.status_code == 409
    assert error_body(again) == {"detail": "A calendar named 'Berlin office' already exists"}
    other = make_calendar(client, as_admin, name="Paris office")
    rename = client.patch(f"{CALENDARS}{other['id']}", json={"name": "24x7"}, headers=as_admin)
    assert rename.status_code == 409
    assert error_body(rename) == {"detail": "A calendar named '24x7' already exists"}
    assert client.get(f"{CALENDARS}{other['id']}", headers=as_admin).json()["name"] == "Paris office"
    assert queued(session) == ["calendar 'Berlin office' created", "calendar 'Paris office' created"]


def test_a_calendar_in_use_cannot_be_deleted(client: TestClient, session: Session, as_admin: Headers) -> None:
    calendar = make_calendar(client, as_admin)
    make_policy(client, as_admin, calendar["id"], name="High", position=20, priority="high")
    make_policy(client, as_admin, calendar["id"])
    response = client.delete(f"{CALENDARS}{calendar['id']}", headers=as_admin)
    assert response.status_code == 409
    assert error_body(response) == {
        "detail": "The calendar 'Berlin office' is used by SLA policies 'Urgent', 'High'; "
        "give them another calendar first"
    }
    assert client.get(f"{CALENDARS}{calendar['id']}", headers=as_admin).status_code == 200
    assert len(queued(session)) == 3  # the creates only


def test_holidays_fill_merges_a_years_public_holidays(
    client: TestClient, session: Session, as_admin: Headers
) -> None:
    calendar = make_calendar(
        client,
        as_admin,
        holidays=[
            {"date": "2026-12-25", "name": "Office closed"},
            {"date": "2026-08-03", "name": "Summer day"},
        ],
    )
    url = f"{CALENDARS}{calendar['id']}/holidays"
    response = client.post(url, json={"country": "DE", "subdivision": "BY", "year": 2026}, headers=as_admin)
    assert response.status_code == 200, response.text
    holidays = response.json()["holidays"]
    dates = [h["date"] for h in holidays]
    assert dates == sorted(dates) and len(dates) == len(set(dates))
    by_date = {h["date"]: h["name"] for h in holidays}
    assert by_date["2026-12-25"] == "Office closed"  # existing names are kept
    assert by_date["2026-08-03"] == "Summer day"
    assert by_date["2026-01-06"] == "Epiphany"  # Bavaria's, not all of Germany's
    assert by_date["2026-10-03"] == "German Unity Day"
    assert client.get(f"{CALENDARS}{calendar['id']}", headers=as_admin).json()["holidays"] == holidays
    again = client.post(url, json={"country": "DE", "subdivision": "BY", "year": 2026}, headers=as_admin)
    assert again.json()["holidays"] == holidays  # merging twice changes nothing
    assert queued(session)[1:] == ["calendar 'Berlin office': DE-BY holidays of 2026 added"] * 2


@pytest.mark.parametrize(
    ("fill", "loc", "fragment"),
    [
        ({"country": "XX", "year": 2026}, ["body", "country"], "no public holidays known for country 'XX'"),
        ({"country": "DE", "subdivision": "ZZ", "year": 2026}, ["body", "subdivision"],
         "country 'DE' has no subdivision 'ZZ'"),
        ({"country": "de", "year": 2026}, ["body", "country"], "String should match pattern"),
        ({"country": "DE", "year": 1800}, ["body", "year"], "greater than or equal to 1970"),
        ({"country": "IN", "year": 1990}, ["body", "year"],
         "country 'IN': Requested Holidays are available only from 2001 to 2035"),
        ({"country": "DE"}, ["body", "year"], "Field required"),
    ],
)  # fmt: skip
def test_a_bad_holidays_fill_is_422_naming_it(
    client: TestClient,
    session: Session,
    as_admin: Headers,
    fill: dict[str, Any],
    loc: list[Any],
    fragment: str,
) -> None:
    calendar = make_calendar(client, as_admin)
    field_error(
        client.post(f"{CALENDARS}{calendar['id']}/holidays", json=fill, headers=as_admin), loc, fragment
    )
    assert client.get(f"{CALENDARS}{calendar['id']}", headers=as_admin).json() == calendar
    assert len(queued(session)) == 1


def test_holidays_fill_of_a_missing_calendar_is_404(client: TestClient, as_admin: Headers) -> None:
    response = client.post(
        f"{CALENDARS}999999/holidays", json={"country": "DE", "year": 2026}, headers=as_admin
    )
    assert response.status_code == 404
    assert error_body(response) == {"detail": "Calendar not found"}


# --- Policies ------------------------------------------------------------------------------------


def test_policy_create_read_update_delete(
    client: TestClient, session: Session, as_admin: Headers, make_team: Any
) -> None:
    team = make_team(name="Network")
    calendar_id = builtin_id(session)
    low = make_policy(client, as_admin, calendar_id, name="Low", position=40, priority="low")
    created = make_policy(client, as_admin, calendar_id, team_id=team.id, warn_at_percent=80)
    assert {k: v for k, v in created.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "Urgent",
        "position": 10,
        "priority": "urgent",
        "team_id": team.id,
        "calendar_id": calendar_id,
        "first_response_minutes": 30,
        "resolution_minutes": 240,
        "warn_at_percent": 80,
    }
    assert low["warn_at_percent"] == 75  # the default
    url = f"{POLICIES}{created['id']}"
    assert client.get(url, headers=as_admin).json() == created
    listing = client.get(POLICIES, headers=as_admin).json()
    assert [p["name"] for p in listing["data"]] == ["Urgent", "Low"] and listing["count"] == 2  # by position

    updated = client.patch(
        url,
        json={"team_id": None, "first_response_minutes": None, "resolution_minutes": 120},
        headers=as_admin,
    )
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in ("team_id", "first_response_minutes", "resolution_minutes")} == {
        "team_id": None,
        "first_response_minutes": None,
        "resolution_minutes": 120,
    }
    assert client.delete(url, headers=as_admin).status_code == 204
    gone = client.get(url, headers=as_admin)
    assert gone.status_code == 404
    assert error_body(gone) == {"detail": "SLA policy not found"}
    assert queued(session) == [
        "policy 'Low' created",
        "policy 'Urgent' created",
        "policy 'Urgent' updated",
        "policy 'Urgent' deleted",
    ]


BAD_POLICIES: list[tuple[str, dict[str, Any], list[Any], str]] = [
    ("target of 0", {"resolution_minutes": 0}, ["body", "resolution_minutes"], "greater than or equal to 1"),
    ("target over a year", {"first_response_minutes": MINUTES_PER_YEAR + 1}, ["body", "first_response_minutes"],
     f"less than or equal to {MINUTES_PER_YEAR}"),
    ("target as text", {"resolution_minutes": "240"}, ["body", "resolution_minutes"], "valid integer"),
    ("warning at 100%", {"warn_at_percent": 100}, ["body", "warn_at_percent"], "less than or equal to 99"),
    ("position 0", {"position": 0}, ["body", "position"], "greater than or equal to 1"),
    ("unknown priority", {"priority": "whenever"}, ["body", "priority"], "Input should be"),
    ("unknown team", {"team_id": 999999}, ["body", "team_id"], "no team with id 999999"),
    ("unknown calendar", {"calendar_id": 999999}, ["body", "calendar_id"], "no calendar with id 999999"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "loc", "fragment"), [c[1:] for c in BAD_POLICIES], ids=[c[0] for c in BAD_POLICIES]
)
def test_a_bad_policy_is_422_naming_the_problem(
    client: TestClient,
    session: Session,
    as_admin: Headers,
    change: dict[str, Any],
    loc: list[Any],
    fragment: str,
) -> None:
    calendar_id = builtin_id(session)
    field_error(
        client.post(POLICIES, json={**policy_body(calendar_id), **change}, headers=as_admin), loc, fragment
    )
    assert rows(session, SlaPolicy) == 0
    policy = make_policy(client, as_admin, calendar_id)
    url = f"{POLICIES}{policy['id']}"
    field_error(client.patch(url, json=change, headers=as_admin), loc, fragment)
    assert client.get(url, headers=as_admin).json() == policy
    assert queued(session) == ["policy 'Urgent' created"]


def test_policy_conflicts_are_409_naming_them(
    client: TestClient, session: Session, as_admin: Headers
) -> None:
    calendar_id = builtin_id(session)
    fallback = make_policy(client, as_admin, calendar_id, name="Everything else", position=100, priority=None)
    urgent = make_policy(client, as_admin, calendar_id)
    cases = [
        (policy_body(calendar_id, position=20), "An SLA policy named 'Urgent' already exists"),
        (policy_body(calendar_id, name="Other"), "Position 10 is taken by SLA policy 'Urgent'"),
        (
            policy_body(calendar_id, name="Catch-all", position=200, priority=None),
            "SLA policy 'Everything else' is already the fallback (no priority and no team); "
            "give this one a priority or a team",
        ),
    ]
    for body, detail in cases:
        response = client.post(POLICIES, json=body, headers=as_admin)
        assert response.status_code == 409, response.text
        assert error_body(response) == {"detail": detail}
    url = f"{POLICIES}{urgent['id']}"
    for change, detail in [
        ({"priority": None}, "SLA policy 'Everything else' is already the fallback"),
        ({"position": 100}, "Position 100 is taken by SLA policy 'Everything else'"),
        ({"name": "Everything else"}, "An SLA policy named 'Everything else' already exists"),
    ]:
        response = client.patch(url, json=change, headers=as_admin)
        assert response.status_code == 409, response.text
        assert error_body(response)["detail"].startswith(detail)
    assert client.get(url, headers=as_admin).json() == urgent
    # the fallback itself may be edited, and a policy may take a position that is being given up
    assert (
        client.patch(
            f"{POLICIES}{fallback['id']}", json={"resolution_minutes": 60}, headers=as_admin
        ).status_code
        == 200
    )
    assert rows(session, SlaPolicy) == 2
    assert queued(session) == [
        "policy 'Everything else' created",
        "policy 'Urgent' created",
        "policy 'Everything else' updated",
    ]


def test_a_team_used_by_a_policy_cannot_be_deleted(
    client: TestClient, session: Session, as_admin: Headers, make_team: Any
) -> None:
    team = make_team(name="Network")
    make_policy(client, as_admin, builtin_id(session), name="Network urgent", team_id=team.id)
    response = client.delete(f"{API}/teams/{team.id}", headers=as_admin)
    assert response.status_code == 409
    assert error_body(response) == {
        "detail": "The team is matched by SLA policies 'Network urgent'; change or delete them first",
        "tickets": 0,
    }
    assert client.get(f"{API}/teams/{team.id}", headers=as_admin).status_code == 200


# --- Role rules ----------------------------------------------------------------------------------


def test_agents_read_service_levels_and_only_admins_change_them(
    client: TestClient, session: Session, as_admin: Headers, as_agent: Headers, as_reporter: Headers
) -> None:
    calendar = make_calendar(client, as_admin)
    policy = make_policy(client, as_admin, calendar["id"])
    cal_url, pol_url = f"{CALENDARS}{calendar['id']}", f"{POLICIES}{policy['id']}"
    assert client.get(cal_url, headers=as_agent).json() == calendar
    assert client.get(pol_url, headers=as_agent).json() == policy
    assert client.get(CALENDARS, headers=as_agent).json()["count"] == 2
    assert client.get(POLICIES, headers=as_agent).json()["data"] == [policy]
    writes = [
        ("POST", CALENDARS, calendar_body(name="Other")),
        ("PATCH", cal_url, {"name": "Other"}),
        ("DELETE", cal_url, None),
        ("POST", f"{cal_url}/holidays", {"country": "DE", "year": 2026}),
        ("POST", POLICIES, policy_body(calendar["id"], name="Other", position=50)),
        ("PATCH", pol_url, {"name": "Other"}),
        ("DELETE", pol_url, None),
    ]
    for method, url, body in writes:
        for headers, role in ((as_agent, "agents"), (as_reporter, "reporters")):
            response = client.request(method, url, json=body, headers=headers)
            assert response.status_code == 403, (method, url, role)
            assert error_body(response) == {"detail": f"{role} may not manage service levels"}
        assert client.request(method, url, json=body).status_code == 401
    for url in (CALENDARS, cal_url, POLICIES, pol_url):
        response = client.get(url, headers=as_reporter)
        assert response.status_code == 403
        assert error_body(response) == {"detail": "reporters may not read service levels"}
    assert client.get(cal_url, headers=as_admin).json() == calendar
    assert client.get(pol_url, headers=as_admin).json() == policy
    assert len(queued(session)) == 2


# --- The worker's recompute ----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """`clock[0]` is what ticket writes, the admin's changes and the worker take for now."""
    now = [datetime(2026, 11, 30, 10, 0, tzinfo=UTC)]
    monkeypatch.setattr(common, "utcnow", lambda: now[0])
    yield now


def test_a_policy_change_is_recomputed_from_the_tickets_creation_by_the_worker(
    client: TestClient, session: Session, run_db: RunDb, as_admin: Headers, clock: list[datetime]
) -> None:
    created_at = clock[0]
    policy = make_policy(client, as_admin, builtin_id(session))  # 24x7: business time is wall time
    ticket = create_ticket(client, as_admin, priority="urgent")
    assert ticket["sla_state"] == "running"
    assert datetime.fromisoformat(ticket["sla_due_at"]) == created_at + timedelta(minutes=30)
    run_db(lambda db: sla_clock.recompute_pass(db))  # the creation's job: nothing to change
    assert queued(session) == []

    clock[0] = created_at + timedelta(minutes=10)
    changed = client.patch(
        f"{POLICIES}{policy['id']}",
        json={"first_response_minutes": 60, "resolution_minutes": 480},
        headers=as_admin,
    )
    assert changed.status_code == 200
    url = f"{API}/tickets/{ticket['id']}"
    # the request only queued the work: the ticket is as it was
    assert client.get(url, headers=as_admin).json()["sla_due_at"] == ticket["sla_due_at"]
    assert queued(session) == ["policy 'Urgent' updated"]

    assert run_db(lambda db: sla_clock.recompute_pass(db)) == 1
    assert queued(session) == []
    after = client.get(url, headers=as_admin).json()
    # from the ticket's creation, not from the change: 10:00 + 60 min, not 10:10 + 60 min
    assert datetime.fromisoformat(after["sla_due_at"]) == created_at + timedelta(minutes=60)
    session.expire_all()
    timers = {
        t.kind: t for t in session.exec(select(SlaTimer).where(SlaTimer.ticket_id == ticket["id"])).all()
    }
    assert {kind: (t.started_at, t.due_at) for kind, t in timers.items()} == {
        TimerKind.first_response: (created_at, created_at + timedelta(minutes=60)),
        TimerKind.resolution: (created_at, created_at + timedelta(minutes=480)),
    }
    actions = session.exec(
        select(TicketEvent.action).where(TicketEvent.ticket_id == ticket["id"]).order_by(col(TicketEvent.id))
    ).all()
    assert actions.count(EventAction.sla_recomputed) >= 1
    events = client.get(f"{url}/events", headers=as_admin).json()["data"]
    recomputed = [e for e in events if e["action"] == "sla_recomputed"]
    assert recomputed and recomputed[0]["actor_id"] is None
