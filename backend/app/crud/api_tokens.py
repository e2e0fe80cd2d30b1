"""API tokens: made, listed, revoked, and checked on each request with their rate limit.

The secret is `idt_` + 43 URL-safe characters (32 random bytes); the database keeps its SHA-256
(found by equality on an indexed column, then compared with `hmac.compare_digest`) and its first
12 characters to recognise it. A token works while it is not revoked, not expired, and its owner
is active; its rate limit (API_TOKEN_RATE_LIMIT_PER_MINUTE) is a fixed one-minute window counted
in the database by one upsert per request, so every worker and replica shares it.
"""

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, case, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from app.core.config import get_settings
from app.core.database import Database
from app.core.errors import Forbidden, Invalid, NotFound
from app.core.types import UTCDateTime
from app.crud import common
from app.crud.common import page
from app.models import (
    API_TOKEN_PREFIX,
    ApiToken,
    ApiTokenCreate,
    RateLimitWindow,
    Role,
    TokenScope,
    User,
)

SECRET_BYTES = 32
SHOWN_PREFIX = 12  # "idt_" and 8 characters of the secret
LAST_USED_EVERY = timedelta(minutes=1)
RATE_WINDOW = timedelta(minutes=1)
TOKEN_NOT_FOUND = "Token not found"


def new_secret() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_token(credential: str) -> bool:
    return credential.startswith(API_TOKEN_PREFIX)


async def create_token(*, db: Database, token_in: ApiTokenCreate, creator: User) -> tuple[ApiToken, str]:
    """A new token and its secret (returned this once). Yours, or (admins) any active user's."""
    owner_id = token_in.user_id if token_in.user_id is not None else creator.id
    assert owner_id is not None
    if owner_id != creator.id and creator.role != Role.admin:
        raise Forbidden("only admins may make tokens for someone else")
    secret = new_secret()
    now = common.utcnow()
    async with db.write() as session:
        owner = await session.get(User, owner_id)
        if owner is None or not owner.is_active:
            raise Invalid("user_id", "no active user with this id")
        token = ApiToken(
            user_id=owner_id,
            name=token_in.name,
            scopes=[scope.value for scope in token_in.scopes],
            prefix=secret[:SHOWN_PREFIX],
            token_hash=digest(secret),
            created_by_id=creator.id,
            created_at=now,
            expires_at=now + timedelta(days=token_in.expires_in_days),
        )
        session.add(token)
    return token, secret


async def list_tokens(
    *, db: Database, viewer: User, user_id: int | None, offset: int, limit: int
) -> tuple[list[ApiToken], int]:
    """Your tokens; admins may name any user's (`user_id`) or see every token (`user_id` None)."""
    stmt = select(ApiToken)
    if viewer.role != Role.admin:
        if user_id not in (None, viewer.id):
            raise Forbidden("only admins may list someone else's tokens")
        stmt = stmt.where(ApiToken.user_id == viewer.id)
    elif user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return await page(await db.reader(), stmt.order_by(col(ApiToken.id)), offset=offset, limit=limit)


async def revoke_token(*, db: Database, token_id: int, actor: User) -> ApiToken:
    """Revoked at once, on every worker (the check reads the row on every request). Yours, or any
    (admins); someone else's token is a 404 to a non-admin. Revoking twice keeps the first time."""
    async with db.write() as session:
        token = await session.get(ApiToken, token_id, with_for_update=True)
        if token is None or (token.user_id != actor.id and actor.role != Role.admin):
            raise NotFound(TOKEN_NOT_FOUND)
        if token.revoked_at is None:
            token.revoked_at = common.utcnow()
            session.add(token)
    return token


@dataclass(frozen=True)
class TokenUse:
    """A request's token, checked: whose, which scopes, and the rate limit after this request."""

    token_id: int
    user_id: int
    scopes: frozenset[TokenScope]
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0


_TOKENS = ApiToken.__table__  # type: ignore[attr-defined]
_WINDOWS = RateLimitWindow.__table__  # type: ignore[attr-defined]


async def use_token(*, db: Database, secret: str) -> TokenUse | None:
    """The token this secret names, counted against its rate limit; None when it names no usable
    token (unknown, revoked, expired). The owner's state is checked by the caller, as for a JWT.
    One read, then one short write transaction (the count, and `last_used_at` once a minute)."""
    hashed = digest(secret)
    session = await db.reader()
    token = (await session.exec(select(ApiToken).where(ApiToken.token_hash == hashed))).first()
    now = common.utcnow()
    if (
        token is None
        or not hmac.compare_digest(token.token_hash, hashed)
        or token.revoked_at is not None
        or token.expires_at <= now
    ):
        return None
    assert token.id is not None
    limit = get_settings().API_TOKEN_RATE_LIMIT_PER_MINUTE
    async with db.write() as write:
        dialect = (await write.connection()).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        over = _WINDOWS.c.window_started_at <= bindparam("cutoff", now - RATE_WINDOW, type_=UTCDateTime())
        new = insert(_WINDOWS).values(token_id=token.id, requests=1, window_started_at=now)
        upsert = new.on_conflict_do_update(
            index_elements=[_WINDOWS.c.token_id],
            set_={
                "requests": case((over, 1), else_=_WINDOWS.c.requests + 1),
                "window_started_at": case(
                    (over, new.excluded.window_started_at), else_=_WINDOWS.c.window_started_at
                ),
            },
        ).returning(_WINDOWS.c.requests, _WINDOWS.c.window_started_at)
        requests, started = (await write.exec(upsert)).one()
        await write.exec(
            update(_TOKENS)
            .where(
                _TOKENS.c.id == token.id,
                or_(_TOKENS.c.last_used_at.is_(None), _TOKENS.c.last_used_at <= now - LAST_USED_EVERY),
            )
            .values(last_used_at=now)
        )
    reset = max(1, math.ceil((started + RATE_WINDOW - now).total_seconds()))
    return TokenUse(
        token_id=token.id,
        user_id=token.user_id,
        scopes=frozenset(TokenScope(scope) for scope in token.scopes),
        limit=limit,
        remaining=limit - int(requests),
        reset_seconds=reset,
    )
