"""Idempotency-Key rows: claim, complete, release (app.api.idempotency decides what a key means)."""

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.database import Database
from app.core.errors import Conflict
from app.models import IdempotencyKey, IdempotencyState


async def claim_idempotency_key(
    *,
    db: Database,
    user_id: int,
    key: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
    abandoned_after: timedelta,
) -> tuple[IdempotencyKey, bool]:
    """Store (user_id, key) as in progress in a transaction of its own, committed at once: (row, True).

    When the user already has this key: (their row, False), unless it is an in-progress row older
    than `abandoned_after` (its request died), which this request takes over. Expired keys of every
    user are purged on the way, so an expired key is free again.
    """
    values = {
        "fingerprint": fingerprint,
        "state": IdempotencyState.in_progress,
        "response_status": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + ttl,
    }
    for _ in range(3):
        try:
            async with db.write() as session:
                await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= now))
                existing = await session.get(IdempotencyKey, (user_id, key), with_for_update=True)
                if existing is None:
                    await session.exec(insert(IdempotencyKey).values(user_id=user_id, key=key, **values))
                    row = IdempotencyKey(
                        user_id=user_id,
                        key=key,
                        fingerprint=fingerprint,
                        state=IdempotencyState.in_progress,
                        created_at=now,
                        expires_at=now + ttl,
                    )
                    return row, True
                abandoned = existing.created_at <= now - abandoned_after
                if existing.state == IdempotencyState.in_progress and abandoned:
                    existing.sqlmodel_update(values)
                    session.add(existing)
                    return existing, True
                return existing, False
        except IntegrityError:  # another request stored it in between: look again
            continue
    raise Conflict("This Idempotency-Key is busy; retry shortly")


async def complete_idempotency_key(
    *, session: AsyncSession, row: IdempotencyKey, status: int, body: str
) -> None:
    """Store the response on the key in the caller's (the write's) transaction, which commits it."""
    await session.exec(
        update(IdempotencyKey)
        .where(col(IdempotencyKey.user_id) == row.user_id, col(IdempotencyKey.key) == row.key)
        .values(state=IdempotencyState.completed, response_status=status, response_body=body)
    )


async def release_idempotency_key(*, db: Database, user_id: int, key: str) -> None:
    """Forget a key whose write failed, so that a corrected retry can use it."""
    async with db.write() as session:
        await session.exec(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.user_id) == user_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.state) == IdempotencyState.in_progress,
            )
        )
