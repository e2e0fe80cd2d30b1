"""What a ticket list request means, worked out once: its plan, the sort table, and keyset cursors.

`ListPlan(query)` turns a validated TicketQuery into what app.crud.ticket_list runs: the `q` search
parsed (app.search), the sort key and direction, the position a cursor continues from, and the
query's fingerprint. Each is worked out once per request, with no SQL built: the list's statements
are prepared once per shape (app.crud.ticket_list), and a plan only picks one and fills its values.

A cursor carries the sort key and id of the last row of a page, plus a fingerprint of the query
that produced it; it is refused with any other filters or sort. Cursors are signed (HMAC-SHA256
under a key derived from SECRET_KEY): a client can read one but not make one, and what a cursor
decodes to is checked again (types and ranges) before it reaches a query.
"""

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from app import search
from app.core.config import get_settings
from app.core.types import MAX_ID
from app.models import Ticket, TicketQuery, TicketSort


def _timestamp(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise TypeError
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError("naive")
    return value.astimezone(UTC)  # OverflowError at the edges of the calendar


def _optional_timestamp(raw: Any) -> datetime | None:
    return None if raw is None else _timestamp(raw)


def _rank(raw: Any) -> int:
    if type(raw) is not int or not 0 <= raw < 100:
        raise ValueError("rank")
    return raw


def _relevance(raw: Any) -> float:
    if type(raw) not in (int, float) or not math.isfinite(raw):
        raise ValueError("relevance")
    return float(raw)


class SortKey(NamedTuple):
    """What a sort key means: what it orders by, and its value's type in a cursor."""

    column: Any  # the indexed Ticket column (models.py indexes each); None: the search's relevance
    cursor_value: Callable[[Any], Any]  # a cursor's stored value back to its Python type, or raise
    # The column may be null: rows without a value come after all the others, in both directions,
    # by id (app.crud.ticket_list reads them as a second arm; a cursor there holds a null key).
    nulls_last: bool = False


# The sort table: sort key name -> what it means. A `sort` value is a key name, `-` first for
# descending (TicketSort, app.models, lists the values a client may give); relevance ranks a search
# (its expression depends on the database: app.crud.ticket_list builds it).
SORT_KEYS: dict[str, SortKey] = {
    "created_at": SortKey(Ticket.created_at, _timestamp),
    "updated_at": SortKey(Ticket.updated_at, _timestamp),
    "priority": SortKey(Ticket.priority_rank, _rank),
    "status": SortKey(Ticket.status_rank, _rank),
    "sla_due_at": SortKey(Ticket.sla_due_at, _optional_timestamp, nulls_last=True),
    "relevance": SortKey(None, _relevance),
}
INVALID = "not a valid cursor (pass next_cursor exactly as a page returned it)"
DEFAULT_SORT = TicketSort.created_at_desc.value
RELEVANCE = "-relevance"
# What a query's fingerprint leaves out: paging moves along the same list.
PAGING = {"limit", "offset", "cursor", "exact_count"}
# Filters added after cursors were first issued: left out of the fingerprint while empty, so that a
# cursor an older server issued stays valid.
ADDED_LATER = frozenset({"sla_state"})


def effective_sort(sort: str | None, *, searching: bool) -> tuple[str, bool]:
    """(sort key, descending): the given sort, else relevance when searching, else newest first."""
    chosen = sort or (RELEVANCE if searching else DEFAULT_SORT)
    return chosen.lstrip("-"), chosen.startswith("-")


def fingerprint(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def query_fingerprint(query: TicketQuery) -> str:
    """What a cursor of `query` is bound to: its filters, search and sort, not its paging."""
    unused = {name for name in ADDED_LATER if not getattr(query, name)}
    return fingerprint(query.model_dump(mode="json", exclude=PAGING | unused))


def parse_search(text: str | None) -> search.SearchQuery | None:
    """`q` parsed; ValueError naming `q` when it is not valid search syntax."""
    if text is None:
        return None
    try:
        return search.parse(text)
    except search.SearchSyntaxError as exc:
        raise ValueError(f"q: {exc}") from None


class ListPlan:
    """One request's ticket list, worked out once from its validated query (app.crud.ticket_list
    runs it): `search` parsed, the `sort` key and whether `descending`, the (sort value, id) a cursor
    continues `after`, and the query's `fingerprint` for the next page's cursor.

    Built once per request by the list route's dependency (app.api.query_params.query_model), so its
    ValueError is a 422 like the query's own validation errors.
    """

    __slots__ = ("_fingerprint", "after", "descending", "query", "search", "sort")

    def __init__(self, query: TicketQuery) -> None:
        """ValueError when `q` is not valid syntax or the cursor is not one this query was given
        (checked once: signature, query and sort, then its values' types and ranges)."""
        self.query = query
        self.search = parse_search(query.q)
        self.sort, self.descending = effective_sort(query.sort, searching=query.q is not None)
        self._fingerprint: str | None = None
        self.after: tuple[Any, int] | None = None
        if query.cursor is not None:
            self.after = decode_cursor(query.cursor, sort_key=self.sort, query=self.fingerprint)

    @property
    def fingerprint(self) -> str:
        """query_fingerprint(query), computed when first needed (a cursor to check or to issue)."""
        if self._fingerprint is None:
            self._fingerprint = query_fingerprint(self.query)
        return self._fingerprint


@cache
def _signing_key(secret: str) -> bytes:
    """A key for cursors only, derived from SECRET_KEY (never the token-signing key itself)."""
    return hmac.new(secret.encode(), b"incident-desk ticket list cursor", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def _signature(payload: str) -> str:
    key = _signing_key(get_settings().SECRET_KEY)
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16])


def encode_cursor(sort_key: str, value: Any, row_id: int, query: str) -> str:
    """`<payload>.<signature>`, both base64url: the payload is JSON (sort value, id, query, sort)."""
    raw = value.isoformat() if isinstance(value, datetime) else value
    payload = _b64(
        json.dumps({"k": raw, "i": row_id, "q": query, "s": sort_key}, separators=(",", ":")).encode()
    )
    return f"{payload}.{_signature(payload)}"


def decode_cursor(token: str, *, sort_key: str, query: str) -> tuple[Any, int]:
    """(sort value, id) after which the next page starts; ValueError when it is not ours to take."""
    payload, _, signature = token.partition(".")
    if not signature or not hmac.compare_digest(signature, _signature(payload)):
        raise ValueError(INVALID)
    try:
        data = json.loads(_unb64(payload))
        raw, row_id, made_for = data["k"], data["i"], (data["q"], data["s"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error):
        raise ValueError(INVALID) from None
    if made_for != (query, sort_key):
        raise ValueError("the cursor belongs to a different query (filters, q or sort changed)")
    try:
        value = SORT_KEYS[sort_key].cursor_value(raw)
    except (ValueError, TypeError, OverflowError, KeyError):
        raise ValueError(INVALID) from None
    if type(row_id) is not int or not 1 <= row_id <= MAX_ID:
        raise ValueError(INVALID)
    return value, row_id
