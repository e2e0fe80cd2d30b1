"""The request path's database: an async engine, and `Database`, what the API's code uses to read
and to write.

Transactions are as short as the work:
- Reads (`await db.connection()` for Core and prepared statements, `await db.reader()` for an ORM
  session on the same connection): PostgreSQL runs each statement on its own (the engine's connections
  are in autocommit: no BEGIN and ROLLBACK round trips); SQLite reads in a deferred transaction, which
  takes no write lock.
- A write (`async with db.write() as session:`) is a transaction of its own, begun when the write
  starts (after the request's reads are over, so no read holds anything while it waits), committed
  at the end of the block, rolled back on any error, and its connection returned before the block
  is left, on the event loop. PostgreSQL: READ COMMITTED. SQLite: BEGIN IMMEDIATE, so writers queue
  for the write lock (the busy timeout) instead of failing when a reading transaction tries to write.

Every wait is bounded: a pooled connection (DB_POOL_TIMEOUT_SECONDS), a lock (DB_LOCK_TIMEOUT_SECONDS:
PostgreSQL's lock_timeout, SQLite's busy timeout), a statement (DB_STATEMENT_TIMEOUT_SECONDS, by the
server), a new connection (DB_CONNECT_TIMEOUT_SECONDS); a server that stops answering altogether is
caught by the request deadline (app.api.deadline). Pooled connections are not pinged before use: when
one turns out dead (a database restart), SQLAlchemy invalidates the whole pool at once.

Nothing connects at import time: `get_async_engine()` builds the engine on first use from the
settings; `use_async_engine()` swaps it (tests, scripts).
"""

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import get_settings
from app.core.db import sqlite_file_ready

# An execution option on a connection: its transaction writes (SQLite: BEGIN IMMEDIATE).
WRITE = "incident_desk_write"

_engine: AsyncEngine | None = None


def async_url(url: str) -> str:
    """The async driver's URL: aiosqlite for SQLite; psycopg 3 serves both for PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def create_async_db_engine(url: str, **overrides: Any) -> AsyncEngine:
    """An async engine for `url` with the project's settings for its backend."""
    settings = get_settings()
    url = async_url(url)
    backend = make_url(url).get_backend_name()
    options: dict[str, Any] = {}
    # The pool's bounds, unless another pool is asked for (tests: none) or the database is in
    # memory (one shared connection).
    pooled = "poolclass" not in overrides and make_url(url).database not in (None, "", ":memory:")
    if pooled:
        options["pool_timeout"] = settings.DB_POOL_TIMEOUT_SECONDS
        options["pool_size"] = settings.DB_POOL_SIZE
        options["max_overflow"] = settings.DB_POOL_SIZE
    if backend == "sqlite":
        sqlite_file_ready(url)
        options["connect_args"] = {"timeout": settings.DB_LOCK_TIMEOUT_SECONDS}
    else:
        server_options = [
            "-c timezone=UTC",  # timestamps arrive in UTC; list pages pass them to JSON as they are
            f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_SECONDS * 1000}",
            f"-c lock_timeout={settings.DB_LOCK_TIMEOUT_SECONDS * 1000}",
            f"-c idle_in_transaction_session_timeout={settings.DB_STATEMENT_TIMEOUT_SECONDS * 2000}",
        ]
        # Reads run each statement on its own; a write asks for a transaction (WRITE_OPTIONS).
        options["isolation_level"] = "AUTOCOMMIT"
        options["connect_args"] = {
            "connect_timeout": settings.DB_CONNECT_TIMEOUT_SECONDS,
            "options": " ".join(server_options),
            # A peer that vanished (a dead host, a cut network) is noticed by the kernel in seconds.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
    options.update(overrides)
    engine = create_async_engine(url, **options)
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys on, WAL, and transactions that SQLAlchemy begins itself: deferred for reads,
    IMMEDIATE for writes (see the module docstring)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def get_async_engine() -> AsyncEngine:
    """The process-wide async engine, built on first use from the settings."""
    global _engine
    if _engine is None:
        _engine = create_async_db_engine(get_settings().SQLALCHEMY_DATABASE_URI)
    return _engine


def use_async_engine(engine: AsyncEngine | None) -> AsyncEngine | None:
    """Replace the process-wide async engine (None: build again from settings); returns the old one."""
    global _engine
    previous, _engine = _engine, engine
    return previous


async def _quietly(ending: Awaitable[None]) -> None:
    """Roll back or close, where a connection that died with the database (an outage) is no error:
    the pool has already invalidated it and the server has dropped its transaction. Raised there,
    the error would replace the one being handled, or come after the response had started, and the
    client would get a dropped connection instead of an answer."""
    try:
        await ending
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise


async def dispose_async_engine() -> None:
    """Close the process-wide engine's connections and forget it (the app's shutdown)."""
    engine = use_async_engine(None)
    if engine is not None:
        await engine.dispose()


class Database:
    """One request's (or one command's) way to the database: reads, and write transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: AsyncConnection | None = None
        self._session: AsyncSession | None = None

    async def connection(self) -> AsyncConnection:
        """The connection of this request's reads (checked out on first use, kept until `close()` or
        a write), for Core and prepared statements (app.crud.prepared)."""
        if self._connection is None:
            self._connection = await self.engine.connect()
        return self._connection

    async def reader(self) -> AsyncSession:
        """A session for ORM reads, on the same connection."""
        if self._session is None:
            self._session = _session(await self.connection())
        return self._session

    async def end_reads(self) -> None:
        """Give back the reads' connection (SQLite: end its transaction)."""
        session, connection = self._session, self._connection
        self._session = self._connection = None
        if session is not None:
            await _quietly(session.close())
        if connection is not None:
            await _quietly(connection.close())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        await self.end_reads()
        session = _session(self.engine)
        begin = session.connection(execution_options=_WRITES[self.engine.dialect.name])  # BEGIN now
        async with _committed(session, begin):
            yield session

    async def close(self) -> None:
        await self.end_reads()


@asynccontextmanager
async def _committed(session: AsyncSession, begin: Awaitable[object]) -> AsyncIterator[None]:
    """Begin (awaiting `begin`), run the block, commit; roll back if anything raises, close always."""
    try:
        await begin
        yield
        await session.commit()
    except BaseException:
        await _quietly(session.rollback())
        raise
    finally:
        await _quietly(session.close())


def _session(bind: AsyncEngine | AsyncConnection, **options: Any) -> AsyncSession:
    # expire_on_commit=False: objects keep the values this session wrote after the commit, so a
    # response shows the state its own write produced.
    return AsyncSession(bind, expire_on_commit=False, **options)


# How a write's connection begins its transaction: PostgreSQL connections are in autocommit (reads)
# until a write asks for READ COMMITTED; SQLite's begin IMMEDIATE (the `begin` event).
_WRITES: dict[str, dict[str, Any]] = {
    "postgresql": {WRITE: True, "isolation_level": "READ COMMITTED"},
    "sqlite": {WRITE: True},
}


class ConnectionDatabase(Database):
    """A Database whose reads and writes all go through one connection (tests: the connection of the
    test's transaction, rolled back at its end; each write is a SAVEPOINT released on success)."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection.engine)
        self._shared = connection

    async def connection(self) -> AsyncConnection:
        return self._shared

    async def reader(self) -> AsyncSession:
        if self._session is None:
            self._session = _session(self._shared, join_transaction_mode="create_savepoint")
        return self._session

    async def end_reads(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await _quietly(session.close())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        await self.end_reads()
        session = _session(self._shared, join_transaction_mode="create_savepoint")
        async with _committed(session, session.begin()):
            yield session
