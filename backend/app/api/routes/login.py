from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request, Response, status

from app import crud
from app.api.deps import DbDep
from app.api.openapi import answers
from app.api.routing import api_router
from app.core import security
from app.core.config import get_settings
from app.models import LoginForm, Message, PasswordRecovery, PasswordReset, Token

router = api_router("", "login")


@router.post(
    "/login/access-token",
    responses=answers(400, 422, 429),
)
async def login_access_token(
    db: DbDep, request: Request, response: Response, form: Annotated[LoginForm, Form()]
) -> Token:
    """OAuth2 password flow: `username` is the e-mail address. Returns a bearer token."""
    user = await crud.log_in(db=db, email=form.username, password=form.password, client=_client(request))
    settings = get_settings()
    assert user.id is not None
    token = security.create_access_token(
        user.id,
        user.auth_stamp,
        secret=settings.SECRET_KEY,
        expires=timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES),
    )
    # RFC 6749 5.1: a response carrying a token is never stored by a cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return Token(access_token=token)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


RECOVERY_SENT = "If this address has an active account, a password recovery e-mail is on its way"


@router.post("/password-recovery", status_code=status.HTTP_202_ACCEPTED, responses=answers(422, 429))
async def recover_password(db: DbDep, request: Request, body: PasswordRecovery) -> Message:
    """Queue an e-mail with a link to set a new password (valid PASSWORD_RESET_TOKEN_MINUTES, single
    use). The same answer whatever the address. Counts as a login attempt for the address and the
    client (429 over the limit)."""
    await crud.request_password_reset(db=db, email=body.email, client=_client(request))
    return Message(message=RECOVERY_SENT)


@router.post("/reset-password", responses=answers(400, 422, 429))
async def reset_password(db: DbDep, request: Request, body: PasswordReset) -> Message:
    """Set a new password with the token of a recovery or invitation link. 400 when the token is
    unknown, used, expired or voided by a password change; every access token and other link of the
    user stop working. Bad tokens count as failed logins of the client (429 over the limit)."""
    await crud.reset_password(
        db=db, token=body.token, new_password=body.new_password, client=_client(request)
    )
    return Message(message="Password updated")
