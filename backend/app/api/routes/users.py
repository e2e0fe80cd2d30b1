from fastapi import Response, status

from app import crud
from app.api.deps import CurrentUser, DbDep, PageDep, PathId, UserAdmin, UserReader
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import (
    Message,
    UpdatePassword,
    User,
    UserCreate,
    UserPublic,
    UsersPublic,
    UserUpdate,
    UserUpdateMe,
)

router = api_router("/users", "users")


@router.get("/me", response_model=UserPublic)
async def read_me(user: CurrentUser) -> User:
    return user


@router.patch("/me", response_model=UserPublic, responses=answers(409, 422))
async def update_me(db: DbDep, user: CurrentUser, user_in: UserUpdateMe) -> User:
    assert user.id is not None
    return await crud.update_user(db=db, user_id=user.id, user_in=user_in)


@router.patch("/me/password", responses=answers(422))
async def update_my_password(db: DbDep, user: CurrentUser, body: UpdatePassword) -> Message:
    assert user.id is not None
    await crud.change_password(db=db, user_id=user.id, current=body.current_password, new=body.new_password)
    return Message(message="Password updated")


@router.get("/", response_model=UsersPublic, responses=answers(403, 422))
async def list_users(db: DbDep, _: UserReader, page: PageDep) -> UsersPublic:
    users, count = await crud.list_users(db=db, offset=page.offset, limit=page.limit)
    return UsersPublic(data=[UserPublic.model_validate(u) for u in users], count=count)


@router.post(
    "/", response_model=UserPublic, status_code=status.HTTP_201_CREATED, responses=answers(403, 409, 422)
)
async def create_user(db: DbDep, _: UserAdmin, user_in: UserCreate) -> User:
    return await crud.create_user(db=db, user_in=user_in)


@router.get("/{user_id:id}", response_model=UserPublic, responses=answers(403, 404, 422))
async def read_user(db: DbDep, _: UserReader, user_id: PathId) -> User:
    return await crud.get_user(db=db, user_id=user_id)


@router.patch("/{user_id:id}", response_model=UserPublic, responses=answers(403, 404, 409, 422))
async def update_user(db: DbDep, _: UserAdmin, user_id: PathId, user_in: UserUpdate) -> User:
    return await crud.update_user(db=db, user_id=user_id, user_in=user_in)


@router.delete("/{user_id:id}", status_code=status.HTTP_204_NO_CONTENT, responses=answers(403, 404, 409, 422))
async def delete_user(db: DbDep, _: UserAdmin, user_id: PathId) -> Response:
    await crud.delete_user(db=db, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
