"""The request path's database (app.core.database): reads without transactions or locks, writes in
short transactions of their own, every wait bounded."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.core import database
from app.core.database import Database
from tests.async_bridge import run_on_own_engine
from tests.conftest import TEST_URL


def run(work: Callable[[Database], Awaitable[Any]], url: str, **options: Any) -> Any:
    return run_on_own_engine(work, url, **options)


def test_the_async_url_picks_the_async_drivers() -> None:
    assert database.async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert database.async_url("postgresql+psycopg://u:p@h/d") == "postgresql+psycopg://u:p@h/d"


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    async def pragmas(db: Database) -> tuple[int, str]:
        reader = await db.reader()
        keys = (await reader.exec(text("PRAGMA foreign_keys"))).scalar_one()
        journal = (await reader.exec(text("PRAGMA journal_mode"))).scalar_one()
        return keys, journal

    assert run(pragmas, f"sqlite:///{tmp_path}/fk.sqlite3") == (1, "wal")


def test_sqlite_reads_take_no_write_lock_and_writes_take_it_up_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/locks.sqlite3"

    async def scenario(db: Database) -> list[str]:
        async with db.write() as session:
            await session.exec(text("CREATE TABLE t (x INTEGER)"))
        seen = []
        other = Database(db.engine)
        reading = await db.reader()  # its (deferred) transaction stays open
        assert (await reading.exec(text("SELECT count(*) FROM t"))).scalar_one() == 0
        async with other.write() as session:  # would wait, then fail, behind a locking reader
            await session.exec(text("INSERT INTO t VALUES (1)"))
        seen.append("wrote past an open read")
        async with db.write():  # holds the write lock before running a statement (IMMEDIATE)
            with pytest.raises(OperationalError, match="locked"):
                async with other.write() as session:
                    await session.exec(text("INSERT INTO t VALUES (2)"))
            seen.append("second writer refused after the busy timeout")
        await other.close()
        return seen

    # A short busy timeout for the refused writer; the engine default is DB_LOCK_TIMEOUT_SECONDS.
    assert run(scenario, url, connect_args={"timeout": 0.2}) == [
        "wrote past an open read",
        "second writer refused after the busy timeout",
    ]


def test_a_write_block_commits_at_its_end_and_rolls_back_on_error(tmp_path: Path) -> None:
    """On the app's own engine (PostgreSQL: connections in autocommit until a write begins)."""
    url = TEST_URL if TEST_URL.startswith("postgresql") else f"sqlite:///{tmp_path}/atomic.sqlite3"
    name = f"atomic_{uuid.uuid4().hex[:12]}"

    async def scenario(db: Database) -> list[int]:
        async with db.write() as session:
            await session.exec(text(f"CREATE TABLE {name} (x INTEGER)"))
            await session.exec(text(f"INSERT INTO {name} VALUES (1)"))
        try:
            with pytest.raises(RuntimeError, match="half-way"):
                async with db.write() as session:
                    await session.exec(text(f"INSERT INTO {name} VALUES (2)"))
                    raise RuntimeError("half-way")
            rows = await (await db.reader()).exec(text(f"SELECT x FROM {name} ORDER BY x"))
            return list(rows.scalars())
        finally:
            async with db.write() as session:
                await session.exec(text(f"DROP TABLE {name}"))

    assert run(scenario, url) == [1]


def test_use_async_engine_swaps_and_dispose_forgets_the_process_engine() -> None:
    replacement = database.create_async_db_engine("sqlite://")
    previous = database.use_async_engine(replacement)
    try:
        assert database.get_async_engine() is replacement
        asyncio.run(database.dispose_async_engine())
        assert database.use_async_engine(None) is None  # disposed and forgotten
    finally:
        database.use_async_engine(previous)


@pytest.mark.skipif(not TEST_URL.startswith("postgresql"), reason="PostgreSQL only")
def test_postgresql_reads_run_each_statement_alone_and_every_wait_is_bounded() -> None:
    async def scenario(db: Database) -> dict[str, Any]:
        reader = await db.reader()
        pid = (await reader.exec(text("SELECT pg_backend_pid()"))).scalar_one()
        settings = {
            name: (await reader.exec(text(f"SHOW {name}"))).scalar_one()
            for name in (
                "TimeZone",
                "lock_timeout",
                "statement_timeout",
                "idle_in_transaction_session_timeout",
            )
        }
        state = text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
        # Autocommit: pg_stat_activity is read once per transaction, and each look must be fresh.
        async with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as observer:
            settings["read"] = (await observer.execute(state, {"pid": pid})).scalar_one()
            async with db.write() as session:
                writer = (await session.exec(text("SELECT pg_backend_pid()"))).scalar_one()
                settings["write"] = (await observer.execute(state, {"pid": writer})).scalar_one()
        return settings

    assert run(scenario, TEST_URL) == {
        "TimeZone": "UTC",
        "lock_timeout": "5s",
        "statement_timeout": "15s",
        "idle_in_transaction_session_timeout": "30s",
        "read": "idle",  # no transaction left open by a read
        "write": "idle in transaction",
    }
