"""Account e-mails: password recovery, invitations, and the reset that consumes their links.

A link's token is never stored (app.core.account_tokens): a row keeps a random nonce, the SHA-256
of the token, the user's auth stamp when it was issued and when it expires. The row and its outbox
row (payload `{"token_id": id}`, no secret) are written in one transaction; the worker derives the
token again when it sends the e-mail.

A token is good once: `reset_password` marks it used with a conditional UPDATE (`used_at IS NULL`),
so of two resets at once only one succeeds, and it sets a new auth stamp, which voids every access
token and every other account link of the user (they carry the old stamp). Any other password
change voids them the same way.

Throttling: a recovery request counts one attempt against the e-mail's and the client's login keys
(app.crud.users); a reset counts against the client's key and takes its attempt back when the token
was good (even if the new password is refused as weak), so only bad tokens add up. Over a limit:
Throttled (429), whatever the address or token.

No account enumeration: a recovery request answers the same whether the address has an active
account or not. Both cases do the same work in the same order (the throttle count, a transaction
that looks the address up and derives a token digest); only an existing active account's
transaction also inserts its two rows (well under a millisecond, within the noise of a network
round trip, and the throttle caps how many samples anyone gets).
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import account_tokens
from app.core.config import get_settings
from app.core.database import Database
from app.core.errors import BadCredentials, Invalid
from app.core.offload import run_cpu_bound
from app.core.security import hash_password
from app.crud import common, outbox
from app.crud.users import (
    _checked_hash,
    count_attempt,
    create_user,
    settle_login_attempts,
    throttle_key,
)
from app.models import (
    AccountToken,
    AccountTokenPurpose,
    NotificationKind,
    User,
    UserCreateOrInvite,
    new_auth_stamp,
)

BAD_TOKEN = "Invalid or expired token"
# The outbox kind of each purpose's e-mail.
KIND_FOR: dict[AccountTokenPurpose, NotificationKind] = {
    AccountTokenPurpose.password_reset: NotificationKind.password_reset,
    AccountTokenPurpose.invitation: NotificationKind.invitation,
}


def lifetime(purpose: AccountTokenPurpose) -> timedelta:
    settings = get_settings()
    return {
        AccountTokenPurpose.password_reset: timedelta(minutes=settings.PASSWORD_RESET_TOKEN_MINUTES),
        AccountTokenPurpose.invitation: timedelta(hours=settings.INVITATION_TOKEN_HOURS),
    }[purpose]


def _new_token(purpose: AccountTokenPurpose) -> tuple[str, str]:
    """(nonce, digest of the token it derives)."""
    nonce = account_tokens.new_nonce()
    token = account_tokens.derive(get_settings().SECRET_KEY, purpose.value, nonce)
    return nonce, account_tokens.digest(token)


async def issue(session: AsyncSession, *, user: User, purpose: AccountTokenPurpose) -> AccountToken:
    """A token row for `user` and its e-mail in the outbox, in `session`'s transaction."""
    assert user.id is not None
    now = common.utcnow()
    nonce, digest = _new_token(purpose)
    row = AccountToken(
        user_id=user.id,
        purpose=purpose,
        nonce=nonce,
        token_hash=digest,
        auth_stamp=user.auth_stamp,
        created_at=now,
        expires_at=now + lifetime(purpose),
    )
    session.add(row)
    await session.flush()
    queued = outbox.Queued(kind=KIND_FOR[purpose], recipient_id=user.id, payload={"token_id": row.id})
    outbox.enqueue(session, queued, now=now)
    return row


async def request_password_reset(*, db: Database, email: str, client: str) -> None:
    """Queue a recovery e-mail if `email` names an active account; the same outcome otherwise (see
    the module docstring). Throttled like a login attempt."""
    settings = get_settings()
    await count_attempt(
        db=db,
        limits={
            throttle_key("account", email): settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
            throttle_key("client", client): settings.LOGIN_MAX_FAILURES_PER_CLIENT,
        },
    )
    async with db.write() as session:
        user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
        if user is None or not user.is_active:
            _new_token(AccountTokenPurpose.password_reset)  # the same work, nothing written
            return
        await issue(session, user=user, purpose=AccountTokenPurpose.password_reset)


async def _usable(session: AsyncSession, token: str, now: datetime) -> tuple[AccountToken, User]:
    """The token's row and user, if the token can still be used; else BadCredentials (one message,
    whichever reason)."""
    stmt = (
        select(AccountToken, User)
        .join(User, col(User.id) == AccountToken.user_id)
        .where(AccountToken.token_hash == account_tokens.digest(token))
    )
    found = (await session.exec(stmt)).first()
    if found is None:
        raise BadCredentials(BAD_TOKEN)
    row, user = found
    if row.used_at is not None or row.expires_at <= now or row.auth_stamp != user.auth_stamp:
        raise BadCredentials(BAD_TOKEN)
    if not user.is_active:
        raise BadCredentials(BAD_TOKEN)
    return row, user


async def reset_password(*, db: Database, token: str, new_password: str, client: str) -> None:
    """Set a new password with an account link's token (recovery or invitation): 400 BAD_TOKEN when
    it is unknown, used, expired, voided by a password change, or its user is inactive; 422 when the
    password is weak (the token stays good); 429 after too many bad tokens from this client."""
    address = throttle_key("client", client)
    counted = await count_attempt(db=db, limits={address: get_settings().LOGIN_MAX_FAILURES_PER_CLIENT})
    now = common.utcnow()
    _, user = await _usable(await db.reader(), token, now)
    take_back = {address: counted[address][1]}
    try:
        hashed = await _checked_hash(
            new_password, field="new_password", user_inputs=(user.email, user.full_name)
        )
    except Invalid:  # a good token with a weak password: not a bad token, not counted
        await settle_login_attempts(db=db, take_back=take_back)
        raise
    async with db.write() as session:
        row, _ = await _usable(session, token, now)
        consumed = await session.exec(
            update(AccountToken)
            .where(col(AccountToken.id) == row.id, col(AccountToken.used_at).is_(None))
            .values(used_at=now)
        )
        if consumed.rowcount != 1:  # another reset used it first
            raise BadCredentials(BAD_TOKEN)
        locked = await session.get(User, row.user_id, with_for_update=True, populate_existing=True)
        if locked is None or not locked.is_active or locked.auth_stamp != row.auth_stamp:
            raise BadCredentials(BAD_TOKEN)
        locked.hashed_password = hashed
        locked.auth_stamp = new_auth_stamp()  # voids every access token and every other link
        session.add(locked)
    await settle_login_attempts(db=db, take_back=take_back)


async def create_or_invite_user(*, db: Database, user_in: UserCreateOrInvite) -> User:
    """A new user. With a password, as app.crud.users.create_user. Without: the user gets an
    unusable password (the hash of a random secret nobody knows: logging in fails as for any wrong
    password) and an invitation link, valid INVITATION_TOKEN_HOURS, queued with its e-mail in the
    same transaction; they set their password through POST /reset-password."""
    if user_in.password is not None:
        return await create_user(db=db, user_in=user_in)
    unusable = await run_cpu_bound(hash_password, secrets.token_urlsafe(32))

    async def invite(session: AsyncSession, user: User) -> None:
        await issue(session, user=user, purpose=AccountTokenPurpose.invitation)

    return await create_user(db=db, user_in=user_in, hashed_password=unusable, before_commit=invite)
