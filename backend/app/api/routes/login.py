from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from app import crud
from app.api.deps import SessionDep
from app.core import security
from app.core.config import get_settings
from app.core.errors import Invalid
from app.models import Token

router = APIRouter(tags=["login"])


@router.post(
    "/login/access-token",
    responses={400: {"description": "Incorrect email or password"}, 429: {"description": "Throttled"}},
)
def login_access_token(
    session: SessionDep, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """OAuth2 password flow: `username` is the e-mail address. Returns a bearer token."""
    if "\x00" in form.username:  # as in every JSON body: PostgreSQL cannot even look it up
        raise Invalid("username", "must not contain NUL characters")
    client = request.client.host if request.client else "unknown"
    user = crud.log_in(session=session, email=form.username, password=form.password, client=client)
    settings = get_settings()
    assert user.id is not None
    token = security.create_access_token(
        user.id,
        secret=settings.SECRET_KEY,
        expires=timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES),
    )
    return Token(access_token=token)
