"""Engines and sessions for the API, the CLI, Alembic and the tests.

Nothing connects at import time: `get_engine()` builds the process-wide engine on first use from
the settings, and `use_engine()` swaps it (the tests point it at their own database).
"""

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app.core.config import get_settings

_engine: Engine | None = None
_reader: Engine | None = None  # the same engine and pool, for read-only sessions

# An execution option: the session only reads (see get_session).
READ_ONLY = "incident_desk_read_only"


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
        # IMMEDIATE takes the write lock up front: concurrent writers queue (busy timeout) instead of
        # failing when a read transaction later tries to write. Readers are not blocked (WAL), and
        # read-only sessions take no write lock at all.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


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
    database = make_url(url).database
    if backend == "sqlite" and database and database != ":memory:":
        with contextlib.suppress(OSError):  # SQLite makes the file, not its folder (else it says so)
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    if backend == "sqlite":
        _configure_sqlite(engine, foreign_keys=sqlite_foreign_keys)
    return engine


def get_engine() -> Engine:
    """The process-wide engine, built on first use from DATABASE_URL."""
    global _engine
    if _engine is None:
        _engine = create_db_engine(get_settings().SQLALCHEMY_DATABASE_URI)
    return _engine


def use_engine(engine: Engine | None) -> Engine | None:
    """Replace the process-wide engine (None: build again from settings); returns the old one."""
    global _engine, _reader
    previous, _engine, _reader = _engine, engine, None
    return previous


def read_only_engine() -> Engine:
    """The process-wide engine for reads only: no transaction on PostgreSQL, and on SQLite a
    deferred one that takes no write lock (see get_session)."""
    return _read_only_engine()


def _read_only_engine() -> Engine:
    global _reader
    if _reader is None:
        engine = get_engine()
        options: dict[str, Any] = {READ_ONLY: True}
        if engine.dialect.name != "sqlite":  # SQLite reads in a deferred transaction instead
            options["isolation_level"] = "AUTOCOMMIT"
        _reader = engine.execution_options(**options)
    return _reader


def get_session(*, read_only: bool = False) -> Generator[Session]:
    """One session per request or command; closed (and rolled back if uncommitted) at the end.

    A `read_only` session (the API's GET requests) runs each statement on its own on PostgreSQL
    (autocommit: no BEGIN and ROLLBACK round trips; each statement sees one snapshot, as it would
    under READ COMMITTED anyway), and in a deferred transaction that takes no write lock on SQLite. It
    must not write: nothing would undo a write after an error.

    Objects keep the values this session wrote after a commit (expire_on_commit=False): a response
    then shows the state its own write produced, not a later write that committed in between.

    A connection that died with the database (an outage) does not fail the close: the pool has
    already invalidated it and the server has dropped its transaction. Raised there, the error
    would come after the response had started, and the client would get a dropped connection.
    """
    session = Session(_read_only_engine() if read_only else get_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        try:
            session.close()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
