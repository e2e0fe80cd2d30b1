"""Service accounts: users for integrations (monitoring, chat tools) that never log in with a
password. An admin makes one and its API tokens (app.crud.api_tokens); the tokens belong to the
service account, so they keep working when the admin who made them leaves. Deactivating or
deleting the service account (the /users endpoints) stops them at once."""

from sqlmodel import col, select

from app.core.database import Database
from app.core.errors import Conflict
from app.crud.common import check_team, flush, page
from app.crud.users import EMAIL_TAKEN
from app.models import ServiceAccountCreate, User

# Not a hash any hasher produces: no password ever matches it (and log_in refuses service
# accounts before it would check one).
NO_PASSWORD = "!service-account: no password"


async def create_service_account(*, db: Database, account_in: ServiceAccountCreate) -> User:
    async with db.write() as session:
        taken = (await session.exec(select(User.id).where(User.email == account_in.email.lower()))).first()
        if taken is not None:
            raise Conflict(EMAIL_TAKEN)
        await check_team(session, account_in.team_id)
        user = User.model_validate(
            account_in, update={"hashed_password": NO_PASSWORD, "is_service_account": True}
        )
        session.add(user)
        await flush(session, conflict=EMAIL_TAKEN)
    return user


async def list_service_accounts(*, db: Database, offset: int, limit: int) -> tuple[list[User], int]:
    stmt = select(User).where(col(User.is_service_account).is_(True)).order_by(col(User.id))
    return await page(await db.reader(), stmt, offset=offset, limit=limit)
