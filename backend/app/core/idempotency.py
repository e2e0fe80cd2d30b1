"""Safe retries of creates: the `Idempotency-Key` header on POST /tickets/ and POST /tickets/{id}/comments.

A retry with the same key from the same user gets the original response again (same status, same
body, and `Idempotent-Replayed: true`) without a second write. The same key on a different request
(method, path or body) is 422; the same key while its first request is still running is 409 with
Retry-After. A key is remembered for IDEMPOTENCY_TTL_HOURS (default 24) after its first use.

How: `begin()` stores the key as in progress in a transaction of its own, before the write. The
route then writes with `claim.completes(...)` as the write's before-commit hook, so the response is
stored on the key in the write's own transaction: a key is completed exactly when the created row
exists. A write that fails (4xx, or the database) releases the key, so a corrected retry proceeds.
A key left in progress by a request that died is taken over after ABANDONED_AFTER.
"""

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.exceptions import HTTPException

from app import crud
from app.core.config import get_settings
from app.models import IdempotencyKey, IdempotencyState, User, utcnow

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


@dataclass
class Replay:
    """The stored response of the key's first request."""

    status: int
    body: Any

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            self.body, status_code=self.status, headers={**(headers or {}), REPLAYED_HEADER: "true"}
        )


@dataclass
class Claim:
    """A key this request holds while it writes."""

    session: Session
    row: IdempotencyKey
    user_id: int
    key: str

    def completes(self, status: int, public: type[BaseModel]) -> Callable[[Any], None]:
        """A before-commit hook: store `public` of the created row as the key's response."""

        def complete(created: Any) -> None:
            body = public.model_validate(created).model_dump_json()
            crud.complete_idempotency_key(session=self.session, row=self.row, status=status, body=body)

        return complete


def begin(
    session: Session, *, user: User, key: str | None, request: Request, body: BaseModel
) -> Claim | Replay | None:
    """None without a key; a Claim to go ahead and write; a Replay to answer with. Raises 409 and 422."""
    if key is None:
        return None
    assert user.id is not None
    this_request = fingerprint(request.method, request.url.path, body)
    row, claimed = crud.claim_idempotency_key(
        session=session,
        user_id=user.id,
        key=key,
        fingerprint=this_request,
        now=utcnow(),
        ttl=timedelta(hours=get_settings().IDEMPOTENCY_TTL_HOURS),
        abandoned_after=ABANDONED_AFTER,
    )
    if claimed:
        return Claim(session, row, user.id, key)
    if row.fingerprint != this_request:
        error = {"type": "idempotency_key_reused", "loc": ("header", HEADER), "msg": REUSED, "input": key}
        raise RequestValidationError([error])
    if row.state != IdempotencyState.completed or row.response_status is None or row.response_body is None:
        raise HTTPException(409, IN_PROGRESS, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    logger.info("replaying the response stored for an Idempotency-Key")
    return Replay(status=row.response_status, body=json.loads(row.response_body))


@contextmanager
def released_on_error(session: Session, claim: Claim | None) -> Iterator[None]:
    """Around the write: if it fails, forget the key (best effort) and let the error through."""
    try:
        yield
    except Exception:
        if claim is not None:
            with suppress(SQLAlchemyError):  # the database is gone: the key is abandoned, then taken over
                crud.release_idempotency_key(session=session, user_id=claim.user_id, key=claim.key)
        raise
