"""A user's notification settings: per kind of PREFERENCE_KINDS, on or off (no row: on).

They are read when a notification is queued (app.crud.notify, through app.crud.watchers.people),
so a change applies to every notification queued after it.
"""

from collections.abc import Mapping

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from app.core.database import Database
from app.models import PREFERENCE_KINDS, NotificationKind, NotificationSetting

_SETTINGS = NotificationSetting.__table__  # type: ignore[attr-defined]


async def get_notification_settings(*, db: Database, user_id: int) -> dict[NotificationKind, bool]:
    """Every kind a user may switch off, with their choice (default on)."""
    session = await db.reader()
    stmt = select(NotificationSetting.kind, NotificationSetting.enabled).where(
        NotificationSetting.user_id == user_id
    )
    stored = {NotificationKind(kind): bool(enabled) for kind, enabled in (await session.exec(stmt)).all()}
    return {kind: stored.get(kind, True) for kind in PREFERENCE_KINDS}


async def update_notification_settings(
    *, db: Database, user_id: int, changes: Mapping[NotificationKind, bool]
) -> dict[NotificationKind, bool]:
    """Set the kinds given (an upsert each, in one transaction); the others keep their setting.
    Returns every kind's setting afterwards."""
    assert set(changes) <= set(PREFERENCE_KINDS), "the schema admits only PREFERENCE_KINDS"
    async with db.write() as session:
        dialect = (await session.connection()).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for kind in sorted(changes):  # one order in every transaction: no deadlock
            row = insert(_SETTINGS).values(user_id=user_id, kind=kind, enabled=changes[kind])
            await session.exec(
                row.on_conflict_do_update(
                    index_elements=[_SETTINGS.c.user_id, _SETTINGS.c.kind], set_={"enabled": changes[kind]}
                )
            )
    return await get_notification_settings(db=db, user_id=user_id)
