"""status index covers the other filter columns (PostgreSQL), for index-only counts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 00:05:00

"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op

import app.core.types  # noqa: F401
from app.core.schema_version import set_schema_version

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDE = ["priority", "assignee_id", "team_id", "reporter_id"]


def upgrade() -> None:
    # SQLite has no INCLUDE: its index stays as it is.
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_tickets_status_created_at_id", table_name="tickets")
        op.create_index(
            "ix_tickets_status_created_at_id",
            "tickets",
            ["status", "created_at", "id"],
            postgresql_include=INCLUDE,
        )
    set_schema_version(revision)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_tickets_status_created_at_id", table_name="tickets")
        op.create_index("ix_tickets_status_created_at_id", "tickets", ["status", "created_at", "id"])
    set_schema_version(down_revision)
