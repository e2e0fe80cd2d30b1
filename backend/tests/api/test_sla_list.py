"""GET /tickets/: the `sla_state` filter and the `sla_due_at` sort, whose keyset cursors cross the
boundary between tickets with a due time and those without (which come last in both directions)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.factories import TicketFactory
from app.models import Role, SlaState, Ticket, User
from tests.utils import API, MAX_PAGES, auth

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = SlaState
# (due in hours from T0 or None, sla_state, reported by the reporter?), in id order: ties on the
# due time, nulls between and around them, states of every kind.
PLAN: list[tuple[int | None, SlaState, bool]] = [
    (5, S.running, True),
    (None, S.none, False),
    (2, S.at_risk, False),
    (5, S.breached, True),
    (None, S.met, True),
    (-3, S.breached, False),
    (2, S.at_risk, True),
    (None, S.cancelled, False),
    (7, S.paused, True),
    (5, S.running, False),
    (None, S.none, True),
    (-3, S.at_risk, True),
    (None, S.met, False),
]


@pytest.fixture
def mixed(session: Session, make_user: Any) -> tuple[User, User, list[Ticket]]:
    reporter, other = make_user(Role.reporter), make_user(Role.reporter)
    tickets = []
    for index, (hours, state, mine) in enumerate(PLAN):
        ticket = TicketFactory.build(
            reporter_id=(reporter if mine else other).id,
            created_at=T0 - timedelta(days=1, minutes=index),
            sla_due_at=None if hours is None else T0 + timedelta(hours=hours),
            sla_state=state,
        )
        session.add(ticket)
        session.commit()
        tickets.append(ticket)
    return reporter, other, tickets


def expected(tickets: list[Ticket], *, descending: bool) -> list[int]:
    """The documented order: by due time then id, in the direction asked; without one, last, by id
    in the same direction."""
    dated = sorted(
        (t for t in tickets if t.sla_due_at is not None),
        key=lambda t: (t.sla_due_at, t.id),
        reverse=descending,
    )
    undated = sorted(
        (t for t in tickets if t.sla_due_at is None), key=lambda t: t.id or 0, reverse=descending
    )
    return [t.id or 0 for t in [*dated, *undated]]


def by_cursor(client: TestClient, user: User, query: str) -> list[list[int]]:
    pages, cursor = [], None
    for _ in range(MAX_PAGES):
        url = f"{API}/tickets/?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=auth(user))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([t["id"] for t in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the cursor never ends")


def by_offset(client: TestClient, user: User, query: str, limit: int) -> list[list[int]]:
    pages, offset = [], 0
    for _ in range(MAX_PAGES):
        response = client.get(f"{API}/tickets/?{query}&offset={offset}", headers=auth(user))
        assert response.status_code == 200, response.text
        page = [t["id"] for t in response.json()["data"]]
        if not page:
            return pages
        pages.append(page)
        offset += limit
    raise AssertionError("offsets never end")


@pytest.mark.parametrize("sort", ["sla_due_at", "-sla_due_at"])
@pytest.mark.parametrize("limit", [1, 2, 3, 5, 20])
def test_cursors_page_through_due_times_ties_and_nulls(
    client: TestClient, agent: User, mixed: tuple[User, User, list[Ticket]], sort: str, limit: int
) -> None:
    tickets = mixed[2]
    want = expected(tickets, descending=sort.startswith("-"))
    query = f"sort={sort}&limit={limit}"
    pages = by_cursor(client, agent, query)
    assert [i for page in pages for i in page] == want
    assert all(len(page) == limit for page in pages[:-1])
    assert pages == by_offset(client, agent, query, limit)


def test_the_order_is_as_documented(
    client: TestClient, agent: User, mixed: tuple[User, User, list[Ticket]]
) -> None:
    """Spelled out once: due times ascending (ties by id), then the tickets without one by id."""
    ids = [t.id for t in mixed[2]]
    response = client.get(f"{API}/tickets/?sort=sla_due_at&limit=100", headers=auth(agent))
    body = response.json()
    order = [ids.index(t["id"]) for t in body["data"]]
    assert order == [5, 11, 2, 6, 0, 3, 9, 8, 1, 4, 7, 10, 12]
    assert body["count"] == 13 and body["count_exact"] is True
    assert [t["sla_due_at"] is None for t in body["data"]] == [False] * 8 + [True] * 5
    descending = client.get(f"{API}/tickets/?sort=-sla_due_at&limit=100", headers=auth(agent)).json()
    assert [ids.index(t["id"]) for t in descending["data"]] == [8, 9, 3, 0, 6, 2, 11, 5, 12, 10, 7, 4, 1]


@pytest.mark.parametrize(
    ("states", "indexes"),
    [
        (["at_risk"], [2, 6, 11]),
        (["breached", "at_risk"], [2, 3, 5, 6, 11]),
        (["none"], [1, 10]),
        (["met", "cancelled", "paused"], [4, 7, 8, 12]),
        (["running"], [0, 9]),
    ],
)
def test_the_sla_state_filter(
    client: TestClient,
    agent: User,
    mixed: tuple[User, User, list[Ticket]],
    states: list[str],
    indexes: list[int],
) -> None:
    tickets = mixed[2]
    query = "&".join(f"sla_state={s}" for s in states)
    body = client.get(f"{API}/tickets/?{query}&limit=100", headers=auth(agent)).json()
    assert sorted(t["id"] for t in body["data"]) == sorted(tickets[i].id for i in indexes)
    assert {t["sla_state"] for t in body["data"]} == set(states)
    assert body["count"] == len(indexes)
    # Filtered and sorted by due time, paged by cursor across the null boundary.
    chosen = [tickets[i] for i in indexes]
    pages = by_cursor(client, agent, f"{query}&sort=sla_due_at&limit=1")
    assert [i for page in pages for i in page] == expected(chosen, descending=False)


def test_a_bad_sla_state_is_a_422_naming_the_values(client: TestClient, agent: User) -> None:
    response = client.get(f"{API}/tickets/?sla_state=late", headers=auth(agent))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "sla_state", 0]
    assert "'none', 'running', 'at_risk', 'paused', 'breached', 'met' or 'cancelled'" in error["msg"]


def test_a_cursor_of_another_sla_filter_or_sort_is_refused(
    client: TestClient, agent: User, mixed: tuple[User, User, list[Ticket]]
) -> None:
    first = client.get(
        f"{API}/tickets/?sla_state=breached&sort=sla_due_at&limit=1", headers=auth(agent)
    ).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    for other in (
        "sla_state=at_risk&sort=sla_due_at",
        "sla_state=breached&sort=-sla_due_at",
        "sort=sla_due_at",
    ):
        response = client.get(f"{API}/tickets/?{other}&limit=1&cursor={cursor}", headers=auth(agent))
        assert response.status_code == 422, other
        assert "different query" in response.text


@pytest.mark.parametrize("sort", ["sla_due_at", "-sla_due_at"])
def test_reporters_page_their_own_tickets_by_due_time(
    client: TestClient, mixed: tuple[User, User, list[Ticket]], sort: str
) -> None:
    reporter, _other, tickets = mixed
    own = [t for t in tickets if t.reporter_id == reporter.id]
    pages = by_cursor(client, reporter, f"sort={sort}&limit=2")
    assert [i for page in pages for i in page] == expected(own, descending=sort.startswith("-"))
    body = client.get(f"{API}/tickets/?sla_state=at_risk&limit=100", headers=auth(reporter)).json()
    assert sorted(t["id"] for t in body["data"]) == sorted(tickets[i].id for i in (6, 11))
    assert all(t["sla_due_at"] is not None for t in body["data"])


@pytest.mark.parametrize("sort", ["sla_due_at", "-sla_due_at"])
def test_a_search_sorted_by_due_time_pages_across_the_nulls(
    client: TestClient, session: Session, agent: User, mixed: tuple[User, User, list[Ticket]], sort: str
) -> None:
    tickets = mixed[2]
    for index, ticket in enumerate(tickets):
        ticket.title = f"Badge reader {index}" if index % 3 else f"Door badge {index} fails"
        session.add(ticket)
    session.commit()
    want = expected(tickets, descending=sort.startswith("-"))
    pages = by_cursor(client, agent, f"q=badge&sort={sort}&limit=2")
    assert [i for page in pages for i in page] == want
    assert pages == by_offset(client, agent, f"q=badge&sort={sort}&limit=2", 2)
