"""GET /tickets/: typed filters, full-text search, sorting, offset and keyset pagination, role rules."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from app import search, ticket_query
from app.core.config import get_settings
from app.factories import CommentFactory, TicketFactory
from app.models import Priority, Role, Team, Ticket, TicketQuery, TicketStatus, User
from tests.conftest import TEST_URL
from tests.databases import is_postgres
from tests.utils import API, MAX_PAGES, auth

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Corpus:
    agent: User
    other_agent: User
    reporter: User
    other_reporter: User
    team: Team
    tickets: dict[str, Ticket]


def add_ticket(session: Session, name: str, reporter: User, hours: int, **fields: Any) -> Ticket:
    moment = T0 + timedelta(hours=hours)
    ticket = TicketFactory.build(
        reporter_id=reporter.id, created_at=moment, updated_at=fields.pop("updated_at", moment), **fields
    )
    session.add(ticket)
    session.commit()
    return ticket


@pytest.fixture
def corpus(session: Session, make_user: Any, make_team: Any) -> Corpus:
    agent, other_agent = make_user(Role.agent), make_user(Role.agent)
    reporter, other_reporter = make_user(Role.reporter), make_user(Role.reporter)
    team = make_team()
    S, P = TicketStatus, Priority
    tickets = {
        "vpn": add_ticket(session, "vpn", reporter, 0, title="VPN connection drops", description="Every ten minutes",
                          priority=P.high, status=S.open, team_id=team.id),
        "printer": add_ticket(session, "printer", reporter, 1, title="Printer jammed on floor 3",
                              description="Paper stuck in tray", priority=P.low, status=S.in_progress,
                              assignee_id=agent.id),
        "cert": add_ticket(session, "cert", other_reporter, 2, title="Portal shows a certificate warning",
                           description="Browsers warn about an expired certificate", priority=P.urgent,
                           status=S.open, assignee_id=other_agent.id, team_id=team.id),
        "dns": add_ticket(session, "dns", other_reporter, 3, title="DNS lookups slow",
                          description="Resolver times out; the VPN is fine", priority=P.medium,
                          status=S.resolved, resolution="Restarted the resolver", updated_at=T0 + timedelta(days=5)),
        "mail": add_ticket(session, "mail", reporter, 4, title="E-mail delivery delayed",
                           description="Queue backs up after noon", priority=P.high, status=S.closed,
                           assignee_id=agent.id),
        "laptop": add_ticket(session, "laptop", other_reporter, 5, title="Laptop will not boot",
                             description="Black screen after the logo", priority=P.urgent, status=S.on_hold,
                             assignee_id=agent.id),
    }  # fmt: skip
    for ticket_name, body, internal in (
        ("laptop", "Tried safe mode; the firmware update broke the bootloader", False),
        ("printer", "Secret vendor escalation code 4711 for the firmware", True),
    ):
        session.add(CommentFactory.build(ticket_id=tickets[ticket_name].id, author_id=agent.id, body=body,
                                         internal=internal))  # fmt: skip
    session.commit()
    return Corpus(agent, other_agent, reporter, other_reporter, team, tickets)


def names(corpus: Corpus, body: dict[str, Any]) -> list[str]:
    by_id = {t.id: name for name, t in corpus.tickets.items()}
    return [by_id[t["id"]] for t in body["data"]]


def get(client: TestClient, user: User, query: str) -> Any:
    return client.get(f"{API}/tickets/?{query}", headers=auth(user))


NEWEST_FIRST = ["laptop", "mail", "dns", "cert", "printer", "vpn"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", NEWEST_FIRST),
        ("status=open", ["cert", "vpn"]),
        ("status=open&status=on_hold", ["laptop", "cert", "vpn"]),
        ("priority=urgent", ["laptop", "cert"]),
        ("priority=high&priority=low", ["mail", "printer", "vpn"]),
        ("assignee=none", ["dns", "vpn"]),
        ("assignee=me", ["laptop", "mail", "printer"]),
        ("reporter=me", []),
        ("status=open&priority=urgent", ["cert"]),
        ("created_after=2026-03-01T11:00:00Z", ["laptop", "mail", "dns"]),
        ("created_before=2026-03-01T11:00:00Z", ["printer", "vpn"]),
        ("created_after=2026-03-01T09:00:00&created_before=2026-03-01T12:00:00", ["cert", "printer"]),
        ("updated_after=2026-03-03T00:00:00Z", ["dns"]),
        ("updated_before=2026-03-01T10:30:00%2B00:00", ["printer", "vpn"]),
        ("sort=created_at", NEWEST_FIRST[::-1]),
        ("sort=-priority", ["laptop", "cert", "mail", "vpn", "dns", "printer"]),  # ties: newest id first
        ("sort=priority", ["printer", "dns", "vpn", "mail", "cert", "laptop"]),
        ("sort=status", ["vpn", "cert", "printer", "laptop", "dns", "mail"]),
        ("sort=-updated_at&limit=2", ["dns", "laptop"]),
    ],
)
def test_filters_and_sorts(client: TestClient, corpus: Corpus, query: str, expected: list[str]) -> None:
    response = get(client, corpus.agent, query)
    assert response.status_code == 200, response.text
    assert names(corpus, response.json()) == expected
    if "limit" not in query:
        assert response.json()["count"] == len(expected)


def test_filters_by_ids(client: TestClient, corpus: Corpus) -> None:
    assert names(corpus, get(client, corpus.agent, f"team={corpus.team.id}").json()) == ["cert", "vpn"]
    assert names(corpus, get(client, corpus.agent, f"assignee={corpus.other_agent.id}").json()) == ["cert"]
    assert names(corpus, get(client, corpus.agent, f"reporter={corpus.reporter.id}").json()) == [
        "mail",
        "printer",
        "vpn",
    ]
    assert names(corpus, get(client, corpus.agent, "team=none&priority=urgent").json()) == ["laptop"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=vpn", ["vpn", "dns"]),  # title match ranks above a description match
        ("q=certificate", ["cert"]),
        ("q=connections", ["vpn"]),  # stemming: connections ~ connection
        ('q="expired certificate"', ["cert"]),
        ('q="certificate expired"', []),  # a phrase keeps its word order
        ("q=printer OR laptop", None),
        ("q=vpn -resolver", ["vpn"]),
        ("q=bootloader", ["laptop"]),  # found in a comment
        ("q=firmware", ["laptop", "printer"]),  # the internal note matches for agents
        ("q=vpn&sort=created_at", ["vpn", "dns"]),
        ("q=vpn&status=resolved", ["dns"]),
        ("q=zebra", []),
    ],
)
def test_full_text_search(client: TestClient, corpus: Corpus, query: str, expected: list[str] | None) -> None:
    response = get(client, corpus.agent, query)
    assert response.status_code == 200, response.text
    found = names(corpus, response.json())
    if expected is None:
        assert sorted(found) == ["laptop", "printer"]
    else:
        assert (
            found == expected
            if "sort" in query or len(expected) < 2 or query == "q=vpn"
            else sorted(found) == sorted(expected)
        )
    assert response.json()["count"] == len(found)


def test_comment_only_matches_rank_after_the_tickets_whose_own_text_matches(
    client: TestClient, corpus: Corpus
) -> None:
    # vpn: title; dns: description; laptop: a comment; printer: an internal note (agents see it).
    # Comment-only matches have relevance 0 and come newest first.
    page = get(client, corpus.agent, "q=firmware OR vpn").json()
    assert names(corpus, page) == ["vpn", "dns", "laptop", "printer"]
    assert (page["count"], page["count_exact"]) == (4, True)
    assert names(corpus, get(client, corpus.reporter, "q=firmware OR vpn").json()) == ["vpn"]


@pytest.mark.parametrize("query", ["q=firmware OR vpn", "q=firmware OR vpn&sort=-created_at", "q=bootloader"])
def test_offset_and_cursor_pages_agree_across_own_text_and_comment_matches(
    client: TestClient, corpus: Corpus, query: str
) -> None:
    everything = names(corpus, get(client, corpus.agent, query).json())
    by_offset = [
        name
        for offset in range(len(everything) + 1)
        for name in names(corpus, get(client, corpus.agent, f"{query}&limit=1&offset={offset}").json())
    ]
    by_cursor, cursor = [], None
    for _ in range(MAX_PAGES):
        page = get(client, corpus.agent, f"{query}&limit=1" + (f"&cursor={cursor}" if cursor else "")).json()
        by_cursor += names(corpus, page)
        if (cursor := page["next_cursor"]) is None:
            break
    else:
        pytest.fail(f"{query}: the cursor did not end within {MAX_PAGES} pages")
    assert by_offset == by_cursor == everything


def test_count_is_exact_up_to_the_limit_and_says_so_past_it(
    client: TestClient, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "TICKET_COUNT_LIMIT", 3)

    def counted(query: str) -> tuple[int, bool, int]:
        body = get(client, corpus.agent, query).json()
        return body["count"], body["count_exact"], len(body["data"])

    assert counted("") == (3, False, 6)  # 6 match: counting stopped past 3
    assert counted("exact_count=true") == (6, True, 6)
    assert counted("limit=2") == (3, False, 2)
    assert counted("status=open&status=on_hold") == (3, True, 3)  # exactly the limit: still exact
    assert counted("q=firmware OR vpn") == (3, False, 4)
    assert counted("q=firmware OR vpn&exact_count=true") == (4, True, 4)
    assert counted("offset=50") == (3, False, 0)  # past the end: the count still comes
    assert counted("offset=50&exact_count=true") == (6, True, 0)
    assert counted("status=cancelled&offset=5") == (0, True, 0)
    assert counted("status=cancelled") == (0, True, 0)
    # A cursor page has no count; exact_count does not change the cursor's query.
    cursor = get(client, corpus.agent, "limit=2").json()["next_cursor"]
    page = get(client, corpus.agent, f"limit=2&exact_count=true&cursor={cursor}").json()
    assert (page["count"], page["count_exact"], names(corpus, page)) == (None, False, ["dns", "cert"])


def test_reporters_search_only_their_tickets_and_no_internal_notes(
    client: TestClient, corpus: Corpus
) -> None:
    assert names(corpus, get(client, corpus.reporter, "q=vpn").json()) == ["vpn"]  # not other_reporter's dns
    assert names(corpus, get(client, corpus.reporter, "q=firmware").json()) == []  # the note is internal
    assert names(corpus, get(client, corpus.other_reporter, "q=firmware").json()) == ["laptop"]
    assert names(corpus, get(client, corpus.reporter, "").json()) == ["mail", "printer", "vpn"]
    assert names(corpus, get(client, corpus.reporter, f"reporter={corpus.other_reporter.id}").json()) == []
    assert get(client, corpus.reporter, "status=open").json()["count"] == 1


def test_cursor_pages_walk_the_whole_list(client: TestClient, corpus: Corpus) -> None:
    for query in (
        "",
        "sort=priority",
        "sort=-status",
        "q=vpn OR printer OR laptop OR dns",
        "q=firmware OR vpn",  # crosses from own-text matches to comment-only ones
        "q=firmware OR vpn&sort=-created_at",
        "status=open&status=closed",
    ):
        everything = get(client, corpus.agent, f"{query}&limit=100").json()
        walked: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = get(
                client, corpus.agent, f"{query}&limit=2" + (f"&cursor={cursor}" if cursor else "")
            ).json()
            # The first page carries the total; cursor pages skip it (it does not change).
            assert page["count"] == (everything["count"] if cursor is None else None)
            walked += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        else:
            pytest.fail(f"{query}: the cursor did not end within {MAX_PAGES} pages")
        assert walked == everything["data"], query
        assert everything["next_cursor"] is None


def test_offset_pages_also_give_a_cursor(client: TestClient, corpus: Corpus) -> None:
    first = get(client, corpus.agent, "limit=3&offset=1").json()
    assert names(corpus, first) == NEWEST_FIRST[1:4]
    after = get(client, corpus.agent, f"limit=3&cursor={first['next_cursor']}").json()
    assert names(corpus, after) == NEWEST_FIRST[4:]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("colour=red", "unknown parameter(s) colour; allowed: status, priority, assignee"),
        (
            "status=done",
            "Input should be 'open', 'in_progress', 'on_hold', 'resolved', 'closed' or 'cancelled'",
        ),
        ("priority=p1", "Input should be 'low', 'medium', 'high' or 'urgent'"),
        (
            "sort=title",
            "Input should be 'created_at', '-created_at', 'updated_at', '-updated_at', 'priority'",
        ),
        ("assignee=bob", "expected a positive id (at most 2147483647) or one of: me, none"),
        ("team=me", "one of: none"),
        ("created_after=yesterday", "datetime"),
        ("limit=101", "less than or equal to 100"),
        ("q=-vpn", "each alternative needs at least one word"),
        ("q=", "at least 1 character"),
        ("cursor=bm90LWpzb24", "not a valid cursor"),
        ("cursor=abc&offset=2", "use either offset or cursor, not both"),
    ],
)
def test_bad_queries_are_422_naming_what_is_allowed(
    client: TestClient, corpus: Corpus, query: str, message: str
) -> None:
    response = get(client, corpus.agent, query)
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_the_query_parameters_are_documented_from_the_model(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    operation = schema["paths"][f"{API}/tickets/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert list(parameters) == list(TicketQuery.model_fields)
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    # The shared enum, not an inline copy (generated clients then use one TicketStatus type).
    assert parameters["status"]["schema"]["items"] == {"$ref": "#/components/schemas/TicketStatus"}
    assert schema["components"]["schemas"]["TicketStatus"]["enum"] == [s.value for s in TicketStatus]
    assert parameters["limit"]["schema"] == {
        "default": 20,
        "maximum": 100,
        "minimum": 1,
        "title": "Limit",
        "type": "integer",
    }
    assert "422" in operation["responses"]


def test_a_repeated_single_valued_parameter_takes_the_last_value(client: TestClient, corpus: Corpus) -> None:
    assert len(get(client, corpus.agent, "limit=1&limit=3").json()["data"]) == 3


def test_a_cursor_only_fits_its_own_query(client: TestClient, corpus: Corpus) -> None:
    cursor = get(client, corpus.agent, "limit=2&status=open&status=closed").json()["next_cursor"]
    for other in ("status=open", "sort=priority", "q=vpn", ""):
        response = get(client, corpus.agent, f"limit=2&{other}&cursor={cursor}")
        assert response.status_code == 422
        assert "different query" in response.json()["detail"][0]["msg"]
    both = get(client, corpus.agent, f"limit=2&status=open&status=closed&cursor={cursor}&offset=1")
    assert "either offset or cursor" in both.json()["detail"][0]["msg"]


def test_a_request_parses_its_search_and_checks_its_cursor_once(
    client: TestClient, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "q=vpn&sort=priority&limit=1"  # two matches: "dns" (medium), then "vpn" (high)
    cursor = get(client, corpus.agent, query).json()["next_cursor"]
    calls: list[str] = []
    parse, digest, decode = search.parse, ticket_query.fingerprint, ticket_query.decode_cursor

    def counted(name: str, work: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return work(*args, **kwargs)

        return run

    monkeypatch.setattr(search, "parse", counted("parse", parse))
    monkeypatch.setattr(ticket_query, "fingerprint", counted("fingerprint", digest))
    monkeypatch.setattr(ticket_query, "decode_cursor", counted("decode", decode))
    page = get(client, corpus.agent, f"{query}&cursor={cursor}")
    assert page.status_code == 200
    assert names(corpus, page.json()) == ["vpn"]
    assert calls == ["parse", "fingerprint", "decode"]


def test_search_follows_an_edit_of_the_title_and_description(client: TestClient, agent: User) -> None:
    # The index is kept by the database (a generated tsvector on PostgreSQL, FTS5 triggers on SQLite):
    # after an edit the new words find the ticket and the old ones no longer do.
    headers = auth(agent)
    url = f"{API}/tickets/"
    ticket = client.post(
        url, json={"title": "Kangaroo scanner offline", "description": "Wombat tray empty"}, headers=headers
    ).json()

    def found(word: str) -> list[int]:
        response = client.get(f"{url}?q={word}", headers=headers)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["data"]]

    assert found("kangaroo") == found("wombat") == [ticket["id"]]
    assert found("platypus") == found("echidna") == []
    edited = client.patch(
        f"{url}{ticket['id']}",
        json={"title": "Platypus scanner offline", "description": "Echidna tray empty"},
        headers=headers,
    )
    assert edited.status_code == 200, edited.text
    assert found("platypus") == found("echidna") == [ticket["id"]]
    assert found("kangaroo") == found("wombat") == []
    assert found("scanner") == [ticket["id"]]  # the words that stayed still find it


def test_a_page_that_ends_the_list_exactly_has_no_next_cursor(client: TestClient, corpus: Corpus) -> None:
    full = get(client, corpus.agent, "status=open&limit=2").json()  # two match: one full page
    assert (names(corpus, full), full["next_cursor"]) == (["cert", "vpn"], None)
    first = get(client, corpus.agent, "status=open&limit=1").json()
    assert names(corpus, first) == ["cert"] and first["next_cursor"] is not None
    last = get(client, corpus.agent, f"status=open&limit=1&cursor={first['next_cursor']}").json()
    assert (names(corpus, last), last["next_cursor"]) == (["vpn"], None)
    searched = get(client, corpus.agent, "q=firmware OR vpn&limit=4").json()  # own-text and comment arms
    assert (len(searched["data"]), searched["next_cursor"]) == (4, None)


@pytest.mark.parametrize(("query", "count"), [("priority=low", 1), ("status=open", 2), ("q=vpn", 2)])
def test_an_offset_past_the_end_still_counts_the_matches(
    client: TestClient, corpus: Corpus, query: str, count: int
) -> None:
    for offset in (count, count + 1, 50):
        body = get(client, corpus.agent, f"{query}&offset={offset}").json()
        assert (body["data"], body["count"], body["count_exact"]) == ([], count, True), offset


def test_search_does_not_depend_on_the_servers_text_search_configuration(
    client: TestClient, session: Session, corpus: Corpus
) -> None:
    # The query is parsed with 'english', as the stored vectors are, whatever the server's default.
    if not is_postgres(TEST_URL):
        pytest.skip("a PostgreSQL setting")
    session.exec(text("SET LOCAL default_text_search_config = 'pg_catalog.simple'"))
    session.commit()
    assert names(corpus, get(client, corpus.agent, "q=connections").json()) == ["vpn"]  # stemmed


def test_a_page_reads_what_the_list_promises_and_no_more(
    client: TestClient, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """app.crud.ticket_list's plan, as the statements a page runs: one statement a page, reading the
    page and one row more; the total counted only up to the limit plus one, once, by the first
    statement; a relevance search reads its arms in order (own text, then comments) and not the
    comment arm once the page is full, nor the own-text arm from a cursor already past it."""
    from app.crud import ticket_list
    from app.crud.prepared import Prepared

    monkeypatch.setattr(get_settings(), "TICKET_COUNT_LIMIT", 3)
    read: list[list[Any]] = []  # the rows of each list statement a request runs
    rows = Prepared.rows

    async def recorded(self: Prepared, connection: Any, params: Any) -> Any:
        result = await rows(self, connection, params)
        if any(column.name == "sort_key" for column in self.statement.selected_columns):
            read.append([list(row) for row in result])
        return result

    monkeypatch.setattr(Prepared, "rows", recorded)
    width = len(ticket_list._PUBLIC_NAMES) + 1  # a row's fields and its sort key

    def run(query: str) -> tuple[Any, list[list[Any]]]:
        read.clear()
        body = get(client, corpus.agent, query).json()
        # Per statement, the total each row carries (None: the statement does not count).
        return body, [[row[width] if len(row) > width else None for row in statement] for statement in read]

    # One statement: limit + 1 rows (whether there is a next page), each with the total (6 match),
    # counted up to 3 + 1.
    body, totals = run("limit=2")
    assert (names(corpus, body), body["count"], body["count_exact"]) == (["laptop", "mail"], 3, False)
    assert totals == [[4, 4, 4]]
    assert run("limit=2&exact_count=true")[1] == [[6, 6, 6]]
    # By relevance: the own-text matches (vpn, dns), then the comment-only ones (laptop, printer),
    # read without the total again.
    body, totals = run("q=firmware OR vpn")
    assert (names(corpus, body), body["count"]) == (["vpn", "dns", "laptop", "printer"], 3)
    assert totals == [[4, 4], [None, None]]
    # The comment arm reads only what the page still needs, plus one.
    body, totals = run("q=firmware OR vpn&limit=2")
    assert (names(corpus, body), totals) == (["vpn", "dns"], [[4, 4], [None]])
    # The own-text arm fills the page: the comment arm is not read.
    body, totals = run("q=firmware OR vpn&limit=1")
    assert (names(corpus, body), totals) == (["vpn"], [[4, 4]])
    # A cursor in the comment-only matches: the own-text arm is not read again.
    cursor = run("q=firmware OR vpn&limit=3")[0]["next_cursor"]
    body, totals = run(f"q=firmware OR vpn&limit=3&cursor={cursor}")
    assert (names(corpus, body), totals) == (["printer"], [[None]])
    # Sorted by a column, both arms are one statement; from a cursor, it does not count.
    body, totals = run("q=firmware OR vpn&sort=-created_at&limit=1")
    assert (names(corpus, body), totals) == (["laptop"], [[4, 4]])
    body, totals = run(f"q=firmware OR vpn&sort=-created_at&limit=1&cursor={body['next_cursor']}")
    assert (names(corpus, body), totals) == (["dns"], [[None, None]])
