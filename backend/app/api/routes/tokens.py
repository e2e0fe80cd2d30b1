from typing import Annotated

from fastapi import Depends, Query, status

from app import crud
from app.api.deps import CurrentUser, DbDep, Page, PageDep, PathId, UserAdmin, paging
from app.api.openapi import answers
from app.api.routing import api_router
from app.core.types import MAX_ID
from app.models import (
    ApiToken,
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    ApiTokensPublic,
    ServiceAccountCreate,
    User,
    UserPublic,
    UsersPublic,
)

router = api_router("/tokens", "tokens")
service_accounts = api_router("/service-accounts", "tokens")


@router.post(
    "/", response_model=ApiTokenCreated, status_code=status.HTTP_201_CREATED, responses=answers(403, 422)
)
async def create_token(db: DbDep, user: CurrentUser, token_in: ApiTokenCreate) -> ApiTokenCreated:
    """A new API token for yourself (admins: for any active user or service account). The secret
    is in `token`, shown this once: only its hash is kept."""
    token, secret = await crud.create_token(db=db, token_in=token_in, creator=user)
    return ApiTokenCreated.model_validate(token, update={"token": secret})


@router.get("/", response_model=ApiTokensPublic, responses=answers(403, 422))
async def list_tokens(
    db: DbDep,
    user: CurrentUser,
    page: Annotated[Page, Depends(paging("user_id"))],
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Admins: one user's tokens.")] = None,
) -> ApiTokensPublic:
    """Your tokens (admins: everyone's, or one user's); never a secret."""
    tokens, count = await crud.list_tokens(
        db=db, viewer=user, user_id=user_id, offset=page.offset, limit=page.limit
    )
    return ApiTokensPublic(data=[ApiTokenPublic.model_validate(t) for t in tokens], count=count)


@router.delete("/{token_id:id}", response_model=ApiTokenPublic, responses=answers(404, 422))
async def revoke_token(db: DbDep, user: CurrentUser, token_id: PathId) -> ApiToken:
    """Revoke a token (yours; admins: any): it stops working at once, on every server."""
    return await crud.revoke_token(db=db, token_id=token_id, actor=user)


@service_accounts.post(
    "/", response_model=UserPublic, status_code=status.HTTP_201_CREATED, responses=answers(403, 409, 422)
)
async def create_service_account(db: DbDep, _: UserAdmin, account_in: ServiceAccountCreate) -> User:
    """A user for an integration: no password login, only the API tokens an admin makes for it."""
    return await crud.create_service_account(db=db, account_in=account_in)


@service_accounts.get("/", response_model=UsersPublic, responses=answers(403, 422))
async def list_service_accounts(db: DbDep, _: UserAdmin, page: PageDep) -> UsersPublic:
    users, count = await crud.list_service_accounts(db=db, offset=page.offset, limit=page.limit)
    return UsersPublic(data=[UserPublic.model_validate(u) for u in users], count=count)
