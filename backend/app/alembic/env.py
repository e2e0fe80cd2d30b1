"""Alembic environment: URL from the settings (or the caller), metadata from app.models."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from app import models  # noqa: F401  (registers every table on the metadata)
from app.core.config import get_settings
from app.core.db import create_db_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata

# Full-text search lives outside models.py because it differs per database (migration 0003):
# PostgreSQL tsvector columns with GIN indexes, SQLite FTS5 tables. Autogenerate leaves them alone.
SEARCH_COLUMNS = {"search_vector"}
SEARCH_INDEXES = {"ix_tickets_search_vector", "ix_comments_search_vector"}
SEARCH_TABLE_PREFIXES = ("tickets_fts", "comments_fts")


def include_object(_obj: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
    if type_ == "table" and name and name.startswith(SEARCH_TABLE_PREFIXES):
        return False
    if type_ == "column" and name in SEARCH_COLUMNS:
        return False
    return not (type_ == "index" and name in SEARCH_INDEXES)


def database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().SQLALCHEMY_DATABASE_URI


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,
        include_object=include_object,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # SQLite: foreign keys off while migrating (a table rebuild must not cascade), checked before
    # the commit instead.
    engine = create_db_engine(database_url(), sqlite_foreign_keys=False)
    try:
        with engine.connect() as conn:
            configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
                if conn.dialect.name == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(
                            f"the migration left {len(broken)} broken foreign keys: {broken[:5]}"
                        )
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
