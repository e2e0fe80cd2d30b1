"""The floor for scripts/bench_list.py: a minimal Starlette + psycopg endpoint that runs the same SQL
as `GET /api/v1/tickets/?status=...&priority=...&limit=...[&exact_count=true]` (the user lookup, then
one page with its count, capped at 1,000 or exact, in the same statement) and returns the same JSON,
with nothing else (no ORM, no validation, no auth checks, no middleware).

Run: DATABASE_URL=postgresql://... uvicorn scripts.bench_floor:app --port 8001  (from backend/)
"""

import json
import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.core.config import Settings
from app.models import TicketQuery
from app.ticket_query import encode_cursor, query_fingerprint

COLUMNS = (
    "title, description, priority, assignee_id, team_id, id, status, reporter_id, created_at, updated_at, "
    "resolved_at, closed_at, resolution, reopen_count, version, sla_due_at, sla_state"
)
NAMES = [c.strip() for c in COLUMNS.split(",")]
COUNT_LIMIT: int = Settings.model_fields["TICKET_COUNT_LIMIT"].default  # the API's default
_pool: "queue.Queue[psycopg.Connection[Any]]" = queue.Queue()


def _dsn() -> str:
    return os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def connection() -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = _pool.get_nowait()
    except queue.Empty:
        conn = psycopg.connect(_dsn(), autocommit=True)
    try:
        yield conn
    finally:
        _pool.put(conn)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def tickets(request: Request) -> Response:
    statuses = request.query_params.getlist("status")
    priorities = request.query_params.getlist("priority")
    limit = int(request.query_params.get("limit", "20"))
    exact_count = request.query_params.get("exact_count") == "true"
    where = "status = ANY(%(s)s) AND priority = ANY(%(p)s)"
    matching = f"SELECT id FROM tickets WHERE {where}" + ("" if exact_count else " LIMIT %(c)s")
    params = {"s": statuses, "p": priorities, "c": COUNT_LIMIT + 1, "n": limit + 1}
    with connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, email, role, is_active FROM users WHERE id = %(u)s", {"u": 1})
        cur.fetchone()
        cur.execute(
            f"SELECT {COLUMNS}, (SELECT count(*) FROM ({matching}) AS m) AS total FROM tickets "
            f"WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %(n)s",
            params,
        )
        rows = cur.fetchall()
    count = rows[0][-1] if rows else 0
    exact = exact_count or count <= COUNT_LIMIT
    data = [{name: _json(value) for name, value in zip(NAMES, row, strict=False)} for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        query = TicketQuery.model_validate({"status": statuses, "priority": priorities})
        next_cursor = encode_cursor("created_at", last[8], last[5], query_fingerprint(query))
    body = json.dumps(
        {
            "data": data,
            "count": count if exact else COUNT_LIMIT,
            "count_exact": exact,
            "next_cursor": next_cursor,
        },
        separators=(",", ":"),
    )
    return Response(body, media_type="application/json")


app = Starlette(routes=[Route("/floor/tickets", tickets)])
