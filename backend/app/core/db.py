"""The synchronous engine: for the CLI (seed, reset, check), Alembic, scripts and test fixtures.

The API's request path is async (app.core.database). Nothing connects at import time: `get_engine()`
builds the process-wide engine on first use from the settings, and `use_engine()` swaps it.
"""

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from app.core.config import get_settings

_engine: Engine | None = None


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    """Foreign keys on (off only for migrations), and transactions that SQLAlchemy controls (so
    SAVEPOINT works)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: this engine's users write, and concurrent writers
        # then queue (busy timeout) instead of failing when a reading transaction tries to write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, *, sqlite_foreign_keys: bool = True, **overrides: Any) -> Engine:
    """An engine for `url` with the project's settings for its backend.

    `sqlite_foreign_keys=False` is for migrations only (app/alembic/env.py): SQLite rebuilds a table
    to change it, and with foreign keys on, dropping the old table would cascade to its children.
    """
    settings = get_settings()
    backend = make_url(url).get_backend_name()
    options: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite":
        options["connect_args"] = {"check_same_thread": False, "timeout": 15}
    else:
        # Sessions in UTC: timestamps then arrive as UTC from the driver, and list pages pass them
        # to JSON as they are (app.crud).
        options["connect_args"] = {
            "connect_timeout": settings.DB_CONNECT_TIMEOUT_SECONDS,
            "options": "-c timezone=UTC",
        }
        options["pool_size"] = settings.DB_POOL_SIZE
        options["max_overflow"] = settings.DB_POOL_SIZE
        options["pool_timeout"] = settings.DB_CONNECT_TIMEOUT_SECONDS
    options.update(overrides)
    if backend == "sqlite":
        sqlite_file_ready(url)
    engine = create_engine(url, **options)
    if backend == "sqlite":
        _configure_sqlite(engine, foreign_keys=sqlite_foreign_keys)
    return engine


def sqlite_file_ready(url: str) -> None:
    """Make the folder of a SQLite file (SQLite makes the file, not its folder; if the folder cannot
    be made, SQLite says so when it connects)."""
    database = make_url(url).database
    if database and database != ":memory:":
        with contextlib.suppress(OSError):
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def get_engine() -> Engine:
    """The process-wide engine, built on first use from DATABASE_URL."""
    global _engine
    if _engine is None:
        _engine = create_db_engine(get_settings().SQLALCHEMY_DATABASE_URI)
    return _engine


def use_engine(engine: Engine | None) -> Engine | None:
    """Replace the process-wide engine (None: build again from settings); returns the old one."""
    global _engine
    previous, _engine = _engine, engine
    return previous
