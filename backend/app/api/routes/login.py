from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request, Response

from app import crud
from app.api.deps import DbDep
from app.api.openapi import answers
from app.api.routing import api_router
from app.core import security
from app.core.config import get_settings
from app.models import LoginForm, Token

router = api_router("", "login")


@router.post(
    "/login/access-token",
    responses=answers(400, 422, 429),
)
async def login_access_token(
    db: DbDep, request: Request, response: Response, form: Annotated[LoginForm, Form()]
) -> Token:
    """OAuth2 password flow: `username` is the e-mail address. Returns a bearer token."""
    client = request.client.host if request.client else "unknown"
    user = await crud.log_in(db=db, email=form.username, password=form.password, client=client)
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
