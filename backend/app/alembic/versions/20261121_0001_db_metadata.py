"""db_metadata: the schema version row every migration stamps

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

from app.core.schema_version import set_schema_version

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "db_metadata",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_db_metadata")),
    )
    op.execute(sa.text("INSERT INTO db_metadata (id, version) VALUES (1, :v)").bindparams(v=revision))
    set_schema_version(revision)


def downgrade() -> None:
    op.drop_table("db_metadata")
