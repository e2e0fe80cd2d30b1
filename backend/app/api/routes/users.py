from fastapi import Response, status

from app import crud
from app.api.deps import CurrentUser, DbDep, PageDep, PathId, UserAdmin, UserReader
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import (
    Message,
    NotificationKind,
    NotificationSettingsPublic,
    NotificationSettingsUpdate,
    UpdatePassword,
    User,
    UserCreateOrInvite,
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


@router.get("/me/notifications", response_model=NotificationSettingsPublic)
async def read_my_notifications(db: DbDep, user: CurrentUser) -> NotificationSettingsPublic:
    """Every kind of notification you may switch off, on (the default) or off. Account e-mails
    (password recovery, invitation) are always sent."""
    assert user.id is not None
    settings = await crud.get_notification_settings(db=db, user_id=user.id)
    return NotificationSettingsPublic.model_validate(settings)


@router.put("/me/notifications", response_model=NotificationSettingsPublic, responses=answers(422))
async def update_my_notifications(
    db: DbDep, user: CurrentUser, body: NotificationSettingsUpdate
) -> NotificationSettingsPublic:
    """Switch kinds on or off (a full or partial map kind -> bool; the others keep their setting).
    Applies to notifications queued from now on. Answers every kind's setting."""
    assert user.id is not None
    changes = {NotificationKind(kind): on for kind, on in body.model_dump(exclude_unset=True).items()}
    settings = await crud.update_notification_settings(db=db, user_id=user.id, changes=changes)
    return NotificationSettingsPublic.model_validate(settings)


@router.get("/", response_model=UsersPublic, responses=answers(403, 422))
async def list_users(db: DbDep, _: UserReader, page: PageDep) -> UsersPublic:
    users, count = await crud.list_users(db=db, offset=page.offset, limit=page.limit)
    return UsersPublic(data=[UserPublic.model_validate(u) for u in users], count=count)


@router.post(
    "/", response_model=UserPublic, status_code=status.HTTP_201_CREATED, responses=answers(403, 409, 422)
)
async def create_user(db: DbDep, _: UserAdmin, user_in: UserCreateOrInvite) -> User:
    """Without `password`, the user is invited: an e-mailed link (valid INVITATION_TOKEN_HOURS) to
    set their own password through POST /reset-password; until then they cannot log in. No
    password is ever e-mailed."""
    return await crud.create_or_invite_user(db=db, user_in=user_in)


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
