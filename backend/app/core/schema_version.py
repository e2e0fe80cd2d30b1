"""The `db_metadata` row that every migration stamps with its revision id."""

import sqlalchemy as sa
from alembic import op


def set_schema_version(revision: str | None) -> None:
    """Record `revision` in db_metadata (id 1). None: the table is gone (downgraded to base)."""
    if revision is None:
        return
    op.execute(sa.text("UPDATE db_metadata SET version = :version WHERE id = 1").bindparams(version=revision))
