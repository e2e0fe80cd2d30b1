"""app.ticket_query.ListPlan: what a list query means, worked out once (search, sort, cursor,
fingerprint), and the sort table it reads."""

from datetime import UTC, datetime
from typing import Any

import pytest

from app import search, ticket_query
from app.models import Ticket, TicketQuery, TicketSort
from app.ticket_query import SORT_KEYS, ListPlan, encode_cursor

MOMENT = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)


def plan(**params: Any) -> ListPlan:
    return ListPlan(TicketQuery.model_validate(params))


def test_a_plan_without_search_or_cursor() -> None:
    planned = plan(status=["open"], priority=["high"], limit="50")
    assert (planned.search, planned.sort, planned.descending, planned.after) == (
        None,
        "created_at",
        True,
        None,
    )


def test_the_search_is_parsed_and_ranks_unless_sorted() -> None:
    planned = plan(q="vpn -printer")
    assert planned.search == search.parse("vpn -printer")
    assert (planned.sort, planned.descending) == ("relevance", True)
    assert (plan(q="vpn", sort="priority").sort, plan(q="vpn", sort="priority").descending) == (
        "priority",
        False,
    )


def test_a_search_that_is_not_valid_syntax_is_refused_naming_q() -> None:
    with pytest.raises(ValueError, match="q: each alternative needs at least one word"):
        plan(q="-vpn")


def test_the_fingerprint_ignores_paging_and_follows_filters_search_and_sort() -> None:
    base = plan(status=["open"]).fingerprint
    assert plan(status=["open"], limit="5", offset="3", exact_count="true").fingerprint == base
    for other in (
        {"status": ["closed"]},
        {"status": ["open"], "q": "vpn"},
        {"status": ["open"], "sort": "priority"},
    ):
        assert plan(**other).fingerprint != base
    # The same text as before the plan existed: cursors issued by an older server stay valid.
    assert plan(status=["open"], priority=["high"]).fingerprint == "a851882740d5c53e"


def test_a_cursor_is_decoded_into_the_position_it_continues_after() -> None:
    query = TicketQuery.model_validate({"status": ["open"]})
    token = encode_cursor("created_at", MOMENT, 41, ticket_query.query_fingerprint(query))
    planned = plan(status=["open"], cursor=token)
    assert planned.after == (MOMENT, 41)


def test_a_cursor_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    decode, digest = ticket_query.decode_cursor, ticket_query.fingerprint

    def counted_decode(*args: Any, **kwargs: Any) -> Any:
        calls.append("decode")
        return decode(*args, **kwargs)

    def counted_digest(params: dict[str, Any]) -> str:
        calls.append("fingerprint")
        return digest(params)

    token = encode_cursor("priority", 2, 41, plan(sort="priority").fingerprint)
    monkeypatch.setattr(ticket_query, "decode_cursor", counted_decode)
    monkeypatch.setattr(ticket_query, "fingerprint", counted_digest)
    planned = plan(sort="priority", cursor=token)
    assert planned.after == (2, 41)
    assert planned.fingerprint  # for the next page's cursor: the one computed to check this one
    assert calls == ["fingerprint", "decode"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "-priority"}, "different query"),  # the same cursor with another sort
        ({"sort": "priority", "status": ["open"]}, "different query"),  # or other filters
        ({"sort": "priority", "q": "vpn"}, "different query"),  # or a search
        ({"sort": "priority", "forge": True}, "not a valid cursor"),  # a tampered signature
        ({"sort": "priority", "junk": True}, "not a valid cursor"),
    ],
)
def test_a_forged_or_mismatched_cursor_is_refused(params: dict[str, Any], message: str) -> None:
    token = encode_cursor("priority", 2, 41, plan(sort="priority").fingerprint)
    if params.pop("forge", False):
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    if params.pop("junk", False):
        token = "bm90LWpzb24"
    with pytest.raises(ValueError, match=message):
        plan(**params, cursor=token)


def test_every_sort_a_client_may_give_is_in_the_sort_table() -> None:
    for sort in TicketSort:
        planned = plan(sort=sort.value)
        assert (planned.sort, planned.descending) == (sort.value.lstrip("-"), sort.value.startswith("-"))
        assert SORT_KEYS[planned.sort].column is not None
    assert plan(q="vpn").sort == "relevance" and SORT_KEYS["relevance"].column is None


def test_each_sort_column_leads_an_index_with_the_id() -> None:
    """A page (and a keyset page at any depth) is read in index order: (sort column, id)."""
    indexed = {tuple(c.name for c in index.columns) for index in Ticket.__table__.indexes}  # type: ignore[attr-defined]
    for name, key in SORT_KEYS.items():
        if key.column is not None:
            assert (key.column.key, "id") in indexed, name
