from fastapi import APIRouter, Response, status

from app import crud
from app.api.deps import CurrentUser, PageDep, PathId, SessionDep, UserAdmin, UserReader
from app.api.openapi import answers
from app.api.strict_json import StrictJSONRoute
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

router = APIRouter(prefix="/users", tags=["users"], route_class=StrictJSONRoute)


@router.get("/me", response_model=UserPublic)
def read_me(user: CurrentUser) -> User:
    return user


@router.patch("/me", response_model=UserPublic, responses=answers(409, 422))
def update_me(session: SessionDep, user: CurrentUser, user_in: UserUpdateMe) -> User:
    return crud.update_user(session=session, db_user=user, user_in=user_in)


@router.patch("/me/password", responses=answers(422))
def update_my_password(session: SessionDep, user: CurrentUser, body: UpdatePassword) -> Message:
    crud.change_password(session=session, user=user, current=body.current_password, new=body.new_password)
    return Message(message="Password updated")


@router.get("/", response_model=UsersPublic, responses=answers(403, 422))
def list_users(session: SessionDep, _: UserReader, page: PageDep) -> UsersPublic:
    users, count = crud.list_users(session=session, offset=page.offset, limit=page.limit)
    return UsersPublic(data=[UserPublic.model_validate(u) for u in users], count=count)


@router.post(
    "/", response_model=UserPublic, status_code=status.HTTP_201_CREATED, responses=answers(403, 409, 422)
)
def create_user(session: SessionDep, _: UserAdmin, user_in: UserCreate) -> User:
    return crud.create_user(session=session, user_in=user_in)


@router.get("/{user_id:id}", response_model=UserPublic, responses=answers(403, 404, 422))
def read_user(session: SessionDep, _: UserReader, user_id: PathId) -> User:
    return crud.get_user_or_404(session=session, user_id=user_id)


@router.patch("/{user_id:id}", response_model=UserPublic, responses=answers(403, 404, 409, 422))
def update_user(session: SessionDep, _: UserAdmin, user_id: PathId, user_in: UserUpdate) -> User:
    db_user = crud.get_user_or_404(session=session, user_id=user_id)
    return crud.update_user(session=session, db_user=db_user, user_in=user_in)


@router.delete("/{user_id:id}", status_code=status.HTTP_204_NO_CONTENT, responses=answers(403, 404, 409, 422))
def delete_user(session: SessionDep, _: UserAdmin, user_id: PathId) -> Response:
    db_user = crud.get_user_or_404(session=session, user_id=user_id)
    crud.delete_user(session=session, db_user=db_user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
