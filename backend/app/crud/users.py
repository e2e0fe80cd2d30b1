"""Users, the per-request user check, and logging in with its throttling.

Password hashing is CPU work of about 0.1 s: it runs in the password threads (app.core.offload),
never on the event loop.
"""

import hashlib
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import configure_mappers
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import passwords, security
from app.core.config import get_settings
from app.core.database import Database
from app.core.errors import BadCredentials, Conflict, Invalid, NotFound, Throttled
from app.core.offload import run_cpu_bound
from app.core.types import UTCDateTime
from app.crud import common
from app.crud.common import check_team, flush, page
from app.crud.prepared import Prepared
from app.models import (
    Comment,
    LoginThrottle,
    Role,
    Ticket,
    TicketEvent,
    User,
    UserCreate,
    UserUpdate,
    UserUpdateMe,
    new_auth_stamp,
)

EMAIL_TAKEN = "A user with this email already exists"
BAD_CREDENTIALS = "Incorrect email or password"
THROTTLED = "Too many failed logins; try again later"

# The user check of every authenticated request: one prepared statement (app.crud.prepared); the
# caller compares the token's stamp and the active flag. Its User is built with model_construct,
# which needs the ORM's mappers ready before the first request (no I/O).
configure_mappers()
_USERS = User.__table__  # type: ignore[attr-defined]
_USER_FIELDS = tuple(User.model_fields)
_USER_BY_ID = Prepared(
    select(*(_USERS.c[name] for name in _USER_FIELDS)).where(_USERS.c.id == bindparam("user_id"))
)


async def current_user(*, db: Database, user_id: int) -> User | None:
    """The user with this id, or None: a snapshot of the row for permission checks and ids, built
    without validation (the values come from the database) and never added to a session."""
    rows = await _USER_BY_ID.rows(await db.connection(), {"user_id": user_id})
    return User.model_construct(**dict(zip(_USER_FIELDS, rows[0], strict=True))) if rows else None


async def get_user(*, db: Database, user_id: int) -> User:
    session = await db.reader()
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


async def get_user_by_email(*, db: Database, email: str) -> User | None:
    session = await db.reader()
    return (await session.exec(select(User).where(User.email == email.lower()))).first()


async def list_users(*, db: Database, offset: int, limit: int) -> tuple[list[User], int]:
    return await page(await db.reader(), select(User).order_by(col(User.id)), offset=offset, limit=limit)


async def _email_taken(db: Any, email: str, *, other_than: int | None = None) -> bool:
    existing = (await db.exec(select(User).where(User.email == email.lower()))).first()
    return existing is not None and existing.id != other_than


async def _checked_hash(password: str, *, field: str, user_inputs: Iterable[str | None]) -> str:
    """The hash of a new password that passes the policy (app.core.passwords), else Invalid."""
    problem = await run_cpu_bound(passwords.weakness, password, [v for v in user_inputs if v])
    if problem:
        raise Invalid(field, problem)
    return await run_cpu_bound(security.hash_password, password)


async def create_user(
    *,
    db: Database,
    user_in: UserCreate,
    hashed_password: str | None = None,
    before_commit: Callable[[AsyncSession, User], Awaitable[Any]] | None = None,
) -> User:
    """A new user; `hashed_password` skips the policy (the first admin from the validated settings,
    an invited user's unusable password). `before_commit(session, user)` may add rows to the same
    transaction (an invitation and its e-mail: app.crud.account_tokens)."""
    if hashed_password is None:
        assert user_in.password is not None, "a password or its hash"
        hashed_password = await _checked_hash(
            user_in.password, field="password", user_inputs=(user_in.email, user_in.full_name)
        )
    async with db.write() as session:
        if await _email_taken(session, user_in.email):
            raise Conflict(EMAIL_TAKEN)
        await check_team(session, user_in.team_id)
        user = User.model_validate(user_in, update={"hashed_password": hashed_password})
        session.add(user)
        await flush(session, conflict=EMAIL_TAKEN)
        if before_commit is not None:
            await before_commit(session, user)
    return user


async def _guard_last_admin(session: Any, user: User, *, stays_admin: bool) -> None:
    if user.role != Role.admin or not user.is_active or stays_admin:
        return
    admins = await session.exec(
        select(func.count()).where(User.role == Role.admin, col(User.is_active).is_(True))
    )
    if admins.one() <= 1:
        raise Conflict("This is the last active admin; make another admin first")


async def update_user(*, db: Database, user_id: int, user_in: UserUpdate | UserUpdateMe) -> User:
    # The schema decides what may be null (only fields that may be cleared); here a field given is
    # a field set, whatever its value.
    data = user_in.model_dump(exclude_unset=True)
    password = data.pop("password", None)
    async with db.write() as session:
        db_user = await session.get(User, user_id, with_for_update=True)
        if db_user is None:
            raise NotFound("User not found")
        if "email" in data and await _email_taken(session, data["email"], other_than=db_user.id):
            raise Conflict(EMAIL_TAKEN)
        await check_team(session, data.get("team_id"))
        role = data.get("role", db_user.role)
        active = data.get("is_active", db_user.is_active)
        await _guard_last_admin(session, db_user, stays_admin=role == Role.admin and active)
        if password is not None:
            names = (data.get("email", db_user.email), data.get("full_name", db_user.full_name))
            data["hashed_password"] = await _checked_hash(password, field="password", user_inputs=names)
        if password is not None or role != db_user.role or (db_user.is_active and not active):
            data["auth_stamp"] = new_auth_stamp()  # revokes every token issued before this change
        db_user.sqlmodel_update(data)
        session.add(db_user)
        await flush(session, conflict=EMAIL_TAKEN)
    return db_user


async def change_password(*, db: Database, user_id: int, current: str, new: str) -> None:
    async with db.write() as session:
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("User not found")
        if not await run_cpu_bound(security.verify_password, current, user.hashed_password):
            raise Invalid("current_password", "incorrect password")
        if current == new:
            raise Invalid("new_password", "must differ from the current password")
        user.hashed_password = await _checked_hash(
            new, field="new_password", user_inputs=(user.email, user.full_name)
        )
        user.auth_stamp = (
            new_auth_stamp()
        )  # every token issued before, this request's included, stops working
        session.add(user)


async def delete_user(*, db: Database, user_id: int) -> None:
    async with db.write() as session:
        db_user = await session.get(User, user_id, with_for_update=True)
        if db_user is None:
            raise NotFound("User not found")
        await _guard_last_admin(session, db_user, stays_admin=False)
        activity = [
            select(Ticket.id).where((Ticket.reporter_id == user_id) | (Ticket.assignee_id == user_id)),
            select(TicketEvent.id).where(TicketEvent.actor_id == user_id),
            select(Comment.id).where(Comment.author_id == user_id),
        ]
        for stmt in activity:
            if (await session.exec(stmt.limit(1))).first() is not None:
                raise Conflict("This user has tickets, comments or audit events; deactivate them instead")
        await session.delete(db_user)


async def authenticate(*, db: Database, email: str, password: str) -> User | None:
    """The user if the password matches; the same work is done when the address is unknown."""
    user = await get_user_by_email(db=db, email=email)
    if user is None or user.is_service_account:  # a service account has no password to log in with
        await run_cpu_bound(security.verify_nobody, password)
        return None
    matches = await run_cpu_bound(security.verify_password, password, user.hashed_password)
    return user if matches else None


# --- Login throttling -----------------------------------------------------------------------------
# An attempt is counted BEFORE its password is checked, in one atomic statement (an upsert), and
# committed at once: however many requests arrive together, at most `limit` of them per window get
# a password check; the others are refused unchecked. A success takes its attempt back.


def throttle_key(kind: str, value: str) -> str:
    """`account:<sha256 of the e-mail>` (fixed length, whatever was typed) or `client:<address>`."""
    if kind == "account":
        return f"account:{hashlib.sha256(value.strip().lower().encode()).hexdigest()}"
    return f"client:{value[:64]}"


_THROTTLE = LoginThrottle.__table__  # type: ignore[attr-defined]


async def count_login_attempts(
    *, db: Database, keys: Iterable[str], window: timedelta, now: datetime
) -> dict[str, tuple[int, datetime]]:
    """Count one attempt against each key (a new window when the last one is over), in one
    transaction. Per key: (attempts in this window, this one included; when the window started)."""
    counted = {}
    async with db.write() as session:
        dialect = (await session.connection()).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        over = _THROTTLE.c.window_started_at <= bindparam("window_cutoff", now - window, type_=UTCDateTime())
        for key in sorted(keys):  # rows locked in one order by every transaction: no deadlock
            new = insert(_THROTTLE).values(key=key, failures=1, window_started_at=now)
            upsert = new.on_conflict_do_update(
                index_elements=[_THROTTLE.c.key],
                set_={
                    "failures": case((over, 1), else_=_THROTTLE.c.failures + 1),
                    "window_started_at": case(
                        (over, new.excluded.window_started_at), else_=_THROTTLE.c.window_started_at
                    ),
                },
            ).returning(_THROTTLE.c.failures, _THROTTLE.c.window_started_at)
            attempts, started = (await session.exec(upsert)).one()
            counted[key] = (int(attempts), started)
    return counted


async def settle_login_attempts(
    *, db: Database, take_back: dict[str, datetime], clear: Iterable[str] = ()
) -> None:
    """In one transaction: uncount an attempt from each key of `take_back` (if still in the window
    that started then), and forget the keys of `clear`. Rows are locked in key order, as
    count_login_attempts locks them: two logins settling and counting at once cannot deadlock."""
    forget = set(clear)
    async with db.write() as session:
        for key in sorted(forget | set(take_back)):
            if key in forget:
                await session.exec(delete(_THROTTLE).where(_THROTTLE.c.key == key))
                continue
            await session.exec(
                update(_THROTTLE)
                .where(
                    _THROTTLE.c.key == key,
                    _THROTTLE.c.window_started_at == take_back[key],
                    _THROTTLE.c.failures > 0,
                )
                .values(failures=_THROTTLE.c.failures - 1)
            )


async def count_attempt(*, db: Database, limits: dict[str, int]) -> dict[str, tuple[int, datetime]]:
    """Count one attempt against each key (its limit per LOGIN_WINDOW_SECONDS); over any limit, take
    the attempt back from every key (a refused attempt is not an attempt) and raise Throttled with
    the wait. Per key: (attempts in this window, when the window started). Logins, password
    recoveries and resets (app.crud.account_tokens) count through here."""
    window = timedelta(seconds=get_settings().LOGIN_WINDOW_SECONDS)
    now = common.utcnow()
    counted = await count_login_attempts(db=db, keys=limits, window=window, now=now)
    waits = [
        (started + window - now).total_seconds()
        for key, (attempts, started) in counted.items()
        if attempts > limits[key]
    ]
    if waits:
        await settle_login_attempts(db=db, take_back={key: started for key, (_, started) in counted.items()})
        raise Throttled(THROTTLED, retry_after=max(1, math.ceil(max(waits))))
    return counted


async def log_in(*, db: Database, email: str, password: str, client: str) -> User:
    """The user these credentials name, with throttling per account and per client address.

    Each attempt is counted against both keys before the password is checked; over either limit
    in the window, it is refused with Throttled and counts against neither. A wrong password, an
    unknown address and an inactive account all answer BadCredentials alike and stay counted; a
    success clears the account's count and takes its attempt back from the address's count (so
    logging into one's own account never resets what the address has tried elsewhere). Two short
    write transactions per attempt: the count, then the refusal's or the success's settlement.
    """
    settings = get_settings()
    account, address = throttle_key("account", email), throttle_key("client", client)
    counted = await count_attempt(
        db=db,
        limits={
            account: settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
            address: settings.LOGIN_MAX_FAILURES_PER_CLIENT,
        },
    )
    user = await authenticate(db=db, email=email.strip(), password=password)
    if user is None or not user.is_active:  # an inactive account says nothing about its password
        raise BadCredentials(BAD_CREDENTIALS)
    await settle_login_attempts(db=db, take_back={address: counted[address][1]}, clear=[account])
    return user
