"""How ticket lists are sorted and paged: sort fields and opaque keyset cursors (no SQL here).

A cursor carries the sort key and id of the last row of a page, plus a fingerprint of the query
that produced it; it is refused with any other filters or sort.
"""

import base64
import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

# sort name -> parse the key stored in a cursor back into its Python type
SORT_KEYS: dict[str, Any] = {
    "created_at": datetime.fromisoformat,
    "updated_at": datetime.fromisoformat,
    "priority": int,
    "status": int,
    "relevance": float,
}


class TicketSort(StrEnum):
    """`-` sorts descending. priority: low < medium < high < urgent; status: lifecycle order."""

    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"
    priority = "priority"
    priority_desc = "-priority"
    status = "status"
    status_desc = "-status"


DEFAULT_SORT = TicketSort.created_at_desc.value
RELEVANCE = "-relevance"


def effective_sort(sort: str | None, *, searching: bool) -> tuple[str, bool]:
    """(sort key, descending): the given sort, else relevance when searching, else newest first."""
    chosen = sort or (RELEVANCE if searching else DEFAULT_SORT)
    return chosen.lstrip("-"), chosen.startswith("-")


def fingerprint(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(sort_key: str, value: Any, row_id: int, query: str) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    payload = json.dumps({"k": raw, "i": row_id, "q": query, "s": sort_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(token: str, *, sort_key: str, query: str) -> tuple[Any, int]:
    """(sort value, id) after which the next page starts; ValueError when it is not ours to take."""
    try:
        payload = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
        raw, row_id, made_for = payload["k"], payload["i"], (payload["q"], payload["s"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):  # binascii.Error is a ValueError
        raise ValueError("not a valid cursor") from None
    if made_for != (query, sort_key):
        raise ValueError("the cursor belongs to a different query (filters, q or sort changed)")
    try:
        value = SORT_KEYS[sort_key](raw)
    except (ValueError, TypeError):
        raise ValueError("not a valid cursor") from None
    if not isinstance(row_id, int) or isinstance(row_id, bool):
        raise ValueError("not a valid cursor")
    return value, row_id
