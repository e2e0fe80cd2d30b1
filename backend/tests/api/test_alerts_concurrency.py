"""Concurrent triggers with one dedup key, through a real server: exactly one ticket, every repeat
counted. The app runs in uvicorn (in a thread) against the test database with real commits, so the
requests contend for the key's lock as in production; the rows they make are deleted at the end."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select

from app.factories import UserFactory
from app.models import AlertKey, Comment, Role, Ticket, User
from tests.utils import auth

N = 20


@pytest.fixture
def monitoring(engine: Engine) -> Iterator[User]:
    """A service account (role agent) committed for real (the server does not share the test
    transaction)."""
    with Session(engine) as session:
        bot = UserFactory.build(role=Role.agent, is_service_account=True)
        session.add(bot)
        session.commit()
        session.refresh(bot)
        session.expunge(bot)
    yield bot
    with Session(engine) as session:
        tickets = session.exec(select(Ticket).where(Ticket.reporter_id == bot.id)).all()
        session.exec(delete(AlertKey).where(col(AlertKey.ticket_id).in_([t.id for t in tickets])))  # type: ignore[call-overload]
        for ticket in tickets:
            session.delete(ticket)
        session.commit()
        session.delete(session.get(User, bot.id))
        session.commit()


def test_concurrent_triggers_with_one_key_open_one_ticket(
    live_api: str, engine: Engine, monitoring: User
) -> None:
    body = {
        "action": "trigger",
        "dedup_key": "race/db1",
        "summary": "Disk full",
        "severity": "error",
        "source": "db1",
    }

    with httpx.Client(base_url=live_api, headers=auth(monitoring), timeout=30) as http:

        def send(_: int) -> httpx.Response:
            return http.post("/alerts/", json=body)

        with ThreadPoolExecutor(max_workers=N) as pool:
            responses = list(pool.map(send, range(N)))

    assert [r.status_code for r in responses] == [202] * N, [
        r.text for r in responses if r.status_code != 202
    ]
    answers = [r.json() for r in responses]
    assert sorted(a["result"] for a in answers) == ["created"] + ["deduplicated"] * (N - 1)
    assert len({a["ticket_id"] for a in answers}) == 1
    # Each trigger saw the count its predecessors left: the key's lock serialized them.
    assert sorted(a["alert_count"] for a in answers) == list(range(1, N + 1))
    (ticket_id,) = {a["ticket_id"] for a in answers}
    with Session(engine) as session:
        tickets = session.exec(select(Ticket).where(Ticket.reporter_id == monitoring.id)).all()
        assert [t.id for t in tickets] == [ticket_id]
        key = session.get(AlertKey, "race/db1")
        assert key is not None and key.ticket_id == ticket_id and key.alert_count == N
        notes = session.exec(select(Comment).where(Comment.ticket_id == ticket_id)).all()
        assert len(notes) == N - 1 and all(n.internal for n in notes)
