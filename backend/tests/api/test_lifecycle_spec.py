"""The lifecycle written out by hand: app/lifecycle.py's table and the API must both match it.

tests/api/test_lifecycle.py drives the API from `lifecycle.TRANSITIONS` itself, so a move or a
requirement dropped from the table drops its own test with it. Here the rules are stated literally,
as USAGE.md ("The lifecycle") states them: changing a rule means changing it here too, on purpose.
"""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import lifecycle
from app.models import TicketStatus, User
from tests.api.test_tickets import counts
from tests.utils import API, auth, create_ticket, error_body, move

Headers = dict[str, str]
OPEN, WORKING, HOLD, RESOLVED, CLOSED, CANCELLED = (
    "open",
    "in_progress",
    "on_hold",
    "resolved",
    "closed",
    "cancelled",
)
STATES = [OPEN, WORKING, HOLD, RESOLVED, CLOSED, CANCELLED]

# (from, to): (what the move requires, whether it reopens, whether a reporter may make it on their
# own ticket). "assignee_id" means an assignee on the ticket after the move (already set, or given).
EXPECTED: dict[tuple[str, str], tuple[tuple[str, ...], bool, bool]] = {
    (OPEN, WORKING):      (("assignee_id",), False, False),
    (OPEN, RESOLVED):     (("resolution",),  False, False),
    (OPEN, CANCELLED):    (("reason",),      False, True),
    (WORKING, HOLD):      (("reason",),      False, False),
    (WORKING, RESOLVED):  (("resolution",),  False, False),
    (WORKING, CANCELLED): (("reason",),      False, False),
    (HOLD, WORKING):      ((),               False, False),
    (HOLD, RESOLVED):     (("resolution",),  False, False),
    (HOLD, CANCELLED):    (("reason",),      False, False),
    (RESOLVED, CLOSED):   ((),               False, True),
    (RESOLVED, WORKING):  (("reason",),      True,  True),
}  # fmt: skip
FINAL = {CLOSED, CANCELLED}
TEXT = {"resolution": "Replaced the switch", "reason": "Waiting on the vendor"}

# How a freshly filed ticket (no assignee) reaches each state: (status, body) moves made by an agent.
ASSIGN = {"assignee_id": "agent"}
REACH: dict[str, list[tuple[str, dict[str, Any]]]] = {
    OPEN: [],
    WORKING: [(WORKING, ASSIGN)],
    HOLD: [(WORKING, ASSIGN), (HOLD, {"reason": "Parts ordered"})],
    RESOLVED: [(WORKING, ASSIGN), (RESOLVED, {"resolution": "Rebooted"})],
    CLOSED: [(WORKING, ASSIGN), (RESOLVED, {"resolution": "Rebooted"}), (CLOSED, {})],
    CANCELLED: [(CANCELLED, {"reason": "Duplicate"})],
}


def expected_moves(source: str, *, reporter: bool = False) -> dict[str, tuple[str, ...]]:
    return {
        target: requires
        for (start, target), (requires, _, reporter_may) in EXPECTED.items()
        if start == source and (reporter_may or not reporter)
    }


def test_the_table_states_exactly_the_expected_moves() -> None:
    table = {
        (t.source.value, t.target.value): (t.requires, t.reopen, t.reporter_may)
        for t in lifecycle.TRANSITIONS
    }
    assert table == EXPECTED
    assert len(lifecycle.TRANSITIONS) == len(EXPECTED)  # no move listed twice
    assert {s.value for s in lifecycle.FINAL} == FINAL
    assert [s.value for s in TicketStatus] == STATES


@pytest.mark.parametrize("source", STATES)
@pytest.mark.parametrize("target", STATES)
def test_the_lookups_agree_with_the_expected_moves(source: str, target: str) -> None:
    found = lifecycle.find(TicketStatus(source), TicketStatus(target))
    if (source, target) not in EXPECTED:
        assert found is None
        return
    requires, reopen, reporter_may = EXPECTED[source, target]
    assert found is not None
    assert (found.source.value, found.target.value) == (source, target)
    assert (found.requires, found.reopen, found.reporter_may) == (requires, reopen, reporter_may)
    assert lifecycle.required_fields(found, has_assignee=False) == list(requires)
    assert lifecycle.required_fields(found, has_assignee=True) == [f for f in requires if f != "assignee_id"]
    targets = {t.target.value for t in lifecycle.moves_from(TicketStatus(source))}
    assert targets == set(expected_moves(source))


# --- The API follows the expected table ------------------------------------------------------------


def ticket_in(client: TestClient, owner: Headers, agent: User, state: str) -> dict[str, Any]:
    """A ticket filed by the reporter `owner`, moved by `agent` to `state` along REACH."""
    ticket = create_ticket(client, owner, title="Switch on floor 2 is down")
    for status, body in REACH[state]:
        filled = {k: agent.id if v == "agent" else v for k, v in body.items()}
        response = move(client, auth(agent), ticket["id"], status, **filled)
        assert response.status_code == 200, response.text
        ticket = response.json()
    assert ticket["status"] == state
    return ticket


@pytest.mark.parametrize("state", STATES)
def test_the_transitions_listing_matches_the_expected_table(
    client: TestClient, as_reporter: Headers, agent: User, state: str
) -> None:
    ticket = ticket_in(client, as_reporter, agent, state)
    has_assignee = ticket["assignee_id"] is not None
    for headers, reporter in ((auth(agent), False), (as_reporter, True)):
        listing = client.get(f"{API}/tickets/{ticket['id']}/transitions", headers=headers).json()
        assert listing["current"] == state
        listed = {option["status"]: tuple(option["requires"]) for option in listing["transitions"]}
        expected = {
            target: tuple(f for f in requires if not (f == "assignee_id" and has_assignee))
            for target, requires in expected_moves(state, reporter=reporter).items()
        }
        assert listed == expected, ("reporter" if reporter else "agent", state)


PAIRS = [(source, target) for source in STATES for target in STATES]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_each_move_behaves_as_the_expected_table_says(
    client: TestClient,
    session: Session,
    as_reporter: Headers,
    agent: User,
    source: str,
    target: str,
) -> None:
    as_agent = auth(agent)
    ticket = ticket_in(client, as_reporter, agent, source)
    tid = ticket["id"]
    before = counts(session)

    if (source, target) not in EXPECTED:
        for headers, reporter in ((as_agent, False), (as_reporter, True)):
            refused = move(client, headers, tid, target, **TEXT)
            assert refused.status_code == 409, refused.text
            body = refused.json()
            assert body["current"] == source
            assert set(body["allowed"]) == set(expected_moves(source, reporter=reporter))
        assert counts(session) == before
        return

    requires, reopen, reporter_may = EXPECTED[source, target]
    body: dict[str, Any] = {f: agent.id if f == "assignee_id" else TEXT[f] for f in requires}
    for field in requires:  # each requirement, left out, is named
        missing = move(client, as_agent, tid, target, **{k: v for k, v in body.items() if k != field})
        assert missing.status_code == 422, (field, missing.text)
        assert missing.json()["detail"][0]["loc"] == ["body", field]
    if "resolution" not in requires:  # and a resolution belongs to resolving only
        extra = move(client, as_agent, tid, target, **body, resolution="Not a resolution")
        assert extra.status_code == 422, extra.text
        assert extra.json()["detail"][0]["loc"] == ["body", "resolution"]
    if not reporter_may:
        forbidden = move(client, as_reporter, tid, target, **body)
        assert forbidden.status_code == 403, forbidden.text
        assert error_body(forbidden)["detail"].startswith("reporters may not ")
    assert counts(session) == before

    done = move(client, as_reporter if reporter_may else as_agent, tid, target, **body)
    assert done.status_code == 200, done.text
    after = done.json()
    assert after["status"] == target
    assert after["version"] == ticket["version"] + 1
    assert after["reopen_count"] == ticket["reopen_count"] + (1 if reopen else 0)
    if target == RESOLVED:
        assert (after["resolution"], after["resolved_at"] is not None) == (TEXT["resolution"], True)
    if reopen:
        assert (after["resolution"], after["resolved_at"]) == (None, None)
    assert (after["closed_at"] is not None) == (target in FINAL)
    if "assignee_id" in requires:
        assert after["assignee_id"] == agent.id
