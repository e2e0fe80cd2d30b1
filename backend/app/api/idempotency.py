"""Safe retries of creates: the `Idempotency-Key` header on POST /tickets/ and POST /tickets/{id}/comments.

A retry with the same key from the same user gets the original response again (same status, same
body, and `Idempotent-Replayed: true`) without a second write. The same key on a different request
(method, path or body) is 422; the same key while its first request is still running is 409 with
Retry-After. A key is remembered for IDEMPOTENCY_TTL_HOURS (default 24) after its first use.

How (`create_once`, the one helper every create route uses): the key is stored as in progress in a
transaction of its own, before the write; the write then stores the response on the key through its
before-commit hook, in the write's own transaction, so a key is completed exactly when the created
row exists. A write that fails (4xx, or the database) releases the key, so a corrected retry
proceeds. A key left in progress by a request that died is taken over after ABANDONED_AFTER.
"""

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException

from app import crud
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.database import Database
from app.models import IdempotencyState, User

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# 1-255 printable ASCII characters, not starting or ending with a space (HTTP strips those).
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
ABANDONED_AFTER = timedelta(seconds=60)
RETRY_AFTER_SECONDS = 1
IN_PROGRESS = "A request with this Idempotency-Key is still being processed; retry shortly"
REUSED = "This Idempotency-Key was already used for a different request"

logger = logging.getLogger("app.idempotency")


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """`METHOD path sha256`, the hash over the validated body as canonical JSON (sorted keys)."""
    data = body.model_dump(mode="json", exclude_unset=True)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{method} {path} {hashlib.sha256(canonical.encode()).hexdigest()}"


Hook = Callable[[AsyncSession, Any], Awaitable[None]]
T = TypeVar("T")


async def create_once(
    *,
    db: Database,
    user: User,
    key: str | None,
    request: Request,
    body: BaseModel,
    public: type[BaseModel],
    write: Callable[[Hook | None], Awaitable[T]],
    replay_headers: Callable[[dict[str, Any]], Mapping[str, str]] = lambda _body: {},
    status: int = 201,
) -> T | JSONResponse:
    """Run a create at most once per Idempotency-Key: `write(hook)` creates (passing `hook` as the
    write's before-commit hook, which stores the response on the key in the write's transaction), or
    the stored response of the key's first request is answered again (with `replay_headers(body)`
    and Idempotent-Replayed: true). Without a key, just `write(None)`. Raises 409 and 422."""
    if key is None:
        return await write(None)
    assert user.id is not None
    this_request = fingerprint(request.method, request.url.path, body)
    row, claimed = await crud.claim_idempotency_key(
        db=db,
        user_id=user.id,
        key=key,
        fingerprint=this_request,
        now=utcnow(),
        ttl=timedelta(hours=get_settings().IDEMPOTENCY_TTL_HOURS),
        abandoned_after=ABANDONED_AFTER,
    )
    if not claimed:
        if row.fingerprint != this_request:
            error = {"type": "idempotency_key_reused", "loc": ("header", HEADER), "msg": REUSED, "input": key}
            raise RequestValidationError([error])
        if (
            row.state != IdempotencyState.completed
            or row.response_status is None
            or row.response_body is None
        ):
            raise HTTPException(409, IN_PROGRESS, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        logger.info("replaying the response stored for an Idempotency-Key")
        stored = json.loads(row.response_body)
        headers = {**replay_headers(stored), REPLAYED_HEADER: "true"}
        return JSONResponse(stored, status_code=row.response_status, headers=headers)

    async def complete(session: AsyncSession, created: Any) -> None:
        response = public.model_validate(created).model_dump_json()
        await crud.complete_idempotency_key(session=session, row=row, status=status, body=response)

    try:
        return await write(complete)
    except Exception:
        # The write failed (4xx, or the database): forget the key, so that a corrected retry can use
        # it. Best effort: with the database gone, the key is abandoned, then taken over.
        with suppress(SQLAlchemyError):
            await crud.release_idempotency_key(db=db, user_id=user.id, key=key)
        raise
