"""All SQLModel classes: the tables and the API schemas built on them."""

from sqlmodel import Field, SQLModel

# Constraint names must be stable for migrations (and batch mode on SQLite): set before any table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# --- Operational --------------------------------------------------------------------------------


class DbMetadata(SQLModel, table=True):
    """One row (id 1) whose `version` every migration sets to its own revision id."""

    __tablename__ = "db_metadata"

    id: int = Field(default=1, primary_key=True)
    version: str = Field(max_length=64)


class Message(SQLModel):
    message: str


class StatusResponse(SQLModel):
    status: str


class DbHealth(SQLModel):
    status: str
    current_revision: str | None
    head_revision: str
    up_to_date: bool
