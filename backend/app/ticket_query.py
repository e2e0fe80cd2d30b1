"""How ticket lists are sorted and paged: sort fields and opaque keyset cursors (no SQL here).

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
from enum import StrEnum
from functools import cache
from typing import Any

from app.core.config import get_settings
from app.core.types import MAX_ID


def _timestamp(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise TypeError
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError("naive")
    return value.astimezone(UTC)  # OverflowError at the edges of the calendar


def _rank(raw: Any) -> int:
    if type(raw) is not int or not 0 <= raw < 100:
        raise ValueError("rank")
    return raw


def _relevance(raw: Any) -> float:
    if type(raw) not in (int, float) or not math.isfinite(raw):
        raise ValueError("relevance")
    return float(raw)


# sort name -> parse the key stored in a cursor back into its Python type (or raise)
SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "created_at": _timestamp,
    "updated_at": _timestamp,
    "priority": _rank,
    "status": _rank,
    "relevance": _relevance,
}
INVALID = "not a valid cursor (pass next_cursor exactly as a page returned it)"


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
        value = SORT_KEYS[sort_key](raw)
    except (ValueError, TypeError, OverflowError, KeyError):
        raise ValueError(INVALID) from None
    if type(row_id) is not int or not 1 <= row_id <= MAX_ID:
        raise ValueError(INVALID)
    return value, row_id
