"""Dependencies shared by the routes, as `Annotated` aliases."""

import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from pydantic import BeforeValidator
from starlette.convertors import Convertor, register_url_convertor

from app import crud
from app.api import idempotency
from app.api.context_middleware import route_template
from app.core import request_context, security
from app.core.config import API_V1_STR, get_settings
from app.core.database import Database, get_async_engine
from app.core.errors import Forbidden, Throttled
from app.core.types import MAX_ID
from app.models import User
from app.models import drop_null as not_null  # a header is never `null`: absent or a string
from app.permissions import Permission, require, scope_needed, token_allows


async def request_database() -> AsyncIterator[Database]:
    """The request's way to the database (app.core.database): reads, and write transactions that
    begin when a write starts. Everything, the close included, runs on the event loop."""
    db = Database(get_async_engine())
    try:
        yield db
    finally:
        await db.close()


DbDep = Annotated[Database, Depends(request_database)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_V1_STR}/login/access-token", auto_error=False)
# The same Authorization header, documented a second way so that Swagger's Authorize dialog also
# takes a pasted API token (`idt_...`); get_current_user reads the header once, through the first.
api_token_scheme = HTTPBearer(
    auto_error=False, scheme_name="APIToken", description="An API token (`idt_...`) from POST /tokens."
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def get_current_user(
    request: Request,
    db: DbDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    _pasted: Annotated[HTTPAuthorizationCredentials | None, Depends(api_token_scheme)],
) -> User:
    """The user a valid bearer token names; 401 for a missing, bad, expired or revoked token (the
    stamp), or a user who no longer exists or is inactive. One statement, on every request.

    The bearer may also be an API token (`idt_...`): then `token_user` decides."""
    if not token:
        raise _unauthorized("Not authenticated")
    if crud.looks_like_api_token(token):
        return await token_user(request, db, token)
    try:
        subject = security.read_access_token(token, secret=get_settings().SECRET_KEY)
    except security.InvalidToken:
        raise _unauthorized("Could not validate credentials")
    user = await crud.current_user(db=db, user_id=subject.user_id)
    if user is None or not user.is_active or not hmac.compare_digest(user.auth_stamp, subject.stamp):
        raise _unauthorized("Could not validate credentials")
    request_context.set_user_id(user.id)  # for the access log line of this request
    return user


async def token_user(request: Request, db: Database, secret: str) -> User:
    """The owner of a usable API token, if the operation is within the token's scopes (403
    otherwise) and the token is within its rate limit (429 with Retry-After otherwise). Every
    answer to a token carries its RateLimit-* headers."""
    use = await crud.use_token(db=db, secret=secret)
    if use is None:
        raise _unauthorized("Could not validate credentials")
    user = await crud.current_user(db=db, user_id=use.user_id)
    if user is None or not user.is_active:
        raise _unauthorized("Could not validate credentials")
    request_context.set_user_id(user.id)
    request_context.add_response_headers(
        {
            "RateLimit-Limit": str(use.limit),
            "RateLimit-Remaining": str(max(0, use.remaining)),
            "RateLimit-Reset": str(use.reset_seconds),
        }
    )
    if use.exceeded:
        raise Throttled(f"Rate limit of {use.limit} requests a minute reached", retry_after=use.reset_seconds)
    needed = scope_needed(request.method, route_template(request.scope).removeprefix(API_V1_STR))
    if not token_allows(use.scopes, needed):
        raise Forbidden(f"this API token lacks the scope {needed}")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def if_match(
    header: Annotated[
        str | None,
        Header(
            json_schema_extra=not_null,
            alias="If-Match",
            description='The ETag from GET, e.g. "3". A stale version is refused with 412.',
        ),
    ] = None,
) -> set[int] | None:
    """The ticket versions an If-Match header accepts; None when absent or `*` (no precondition).

    Entries that are not one of our ETags can never match, so they end in 412 like a stale one.
    """
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        value = tag.strip().removeprefix("W/").strip('"')
        if value.isdigit():
            versions.add(int(value))
    return versions


IfMatch = Annotated[set[int] | None, Depends(if_match)]


def etag(version: int) -> str:
    return f'"{version}"'


MAX_OFFSET = 10_000_000


@dataclass(frozen=True)
class Page:
    """`offset` (at most MAX_OFFSET) and `limit` (default 20, at most 100: larger is a 422, not a
    silent cap)."""

    offset: int
    limit: int


PAGE_PARAMETERS = frozenset({"offset", "limit"})


def paging(*filters: str) -> Callable[..., Awaitable[Page]]:
    """The paging of a list whose other query parameters are `filters` (declared by the route).
    Any other query parameter is a 422, as on the ticket list."""
    allowed = PAGE_PARAMETERS | set(filters)

    async def page(
        request: Request,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")] = 0,
        limit: Annotated[int, Query(ge=1, le=100, description="Rows to return (1-100).")] = 20,
    ) -> Page:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            message = f"unknown parameter; allowed: {', '.join(sorted(allowed))}"
            raise RequestValidationError(
                [{"type": "extra_forbidden", "loc": ("query", name), "msg": message} for name in unknown]
            )
        return Page(offset, limit)

    return page


page = paging()
PageDep = Annotated[Page, Depends(page)]


class IdConvertor(Convertor[str]):
    """`{name:id}` in a route path: one path segment, except the words other routes use (`me`).

    So `DELETE /users/me` is a 405 (`/users/me` takes GET and PATCH), not `/users/{user_id}` with a
    bad id. The segment is then validated as an id by PathId (422 unless plain digits).
    """

    regex = "(?!me$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
_DIGITS = re.compile(r"[1-9][0-9]*")


def _plain_digits(value: object) -> object:
    """Path ids are written as plain digits: `1.0`, `1 `, `01`, `+1` are not ticket 1."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("expected a positive integer id written in digits")
    return value


PathId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="A positive integer id."), BeforeValidator(_plain_digits)
]


def allowed(permission: Permission, action: str) -> Callable[[User], Awaitable[User]]:
    """A dependency: the current user, if their role has `permission` (else 403)."""

    async def check(user: CurrentUser) -> User:
        require(user, permission, action)
        return user

    return check


TeamReader = Annotated[User, Depends(allowed(Permission.team_read, "read teams"))]
TeamAdmin = Annotated[User, Depends(allowed(Permission.team_write, "manage teams"))]
UserReader = Annotated[User, Depends(allowed(Permission.user_read, "read users"))]
UserAdmin = Annotated[User, Depends(allowed(Permission.user_write, "manage users"))]
WebhookAdmin = Annotated[User, Depends(allowed(Permission.webhook_manage, "manage webhooks"))]
SlaReader = Annotated[User, Depends(allowed(Permission.sla_read, "read service levels"))]
SlaAdmin = Annotated[User, Depends(allowed(Permission.sla_manage, "manage service levels"))]
NotificationAdmin = Annotated[User, Depends(allowed(Permission.notification_manage, "manage notifications"))]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            pattern=idempotency.KEY_PATTERN,
            json_schema_extra=not_null,
            description=(
                "Makes the create safe to retry: the same key from the same user within "
                "IDEMPOTENCY_TTL_HOURS (24 h) returns the original response without a second write. "
                "1-255 printable ASCII characters, e.g. a UUID."
            ),
        ),
    ] = None,
) -> str | None:
    return key


IdempotencyKeyHeader = Annotated[str | None, Depends(idempotency_key)]
