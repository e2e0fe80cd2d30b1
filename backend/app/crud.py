"""All data access. Functions take the session and their arguments by keyword."""

from alembic.runtime.migration import MigrationContext
from sqlmodel import Session


def get_schema_revision(*, session: Session) -> str | None:
    """The revision alembic last stamped on this database (None: never migrated)."""
    return MigrationContext.configure(session.connection()).get_current_revision()
