import io
from collections.abc import Generator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.core import db, migrations
from tests.conftest import TEST_URL


def test_sqlite_engines_enforce_foreign_keys_and_use_wal(tmp_path: object) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path}/fk.sqlite3")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        engine.dispose()


def test_sqlite_savepoints_roll_back_inside_a_transaction() -> None:
    engine = db.create_db_engine("sqlite://")
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            savepoint = conn.begin_nested()
            conn.execute(text("INSERT INTO t VALUES (1)"))
            savepoint.rollback()
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        engine.dispose()


def test_use_engine_swaps_the_process_engine() -> None:
    replacement = db.create_db_engine("sqlite://")
    previous = db.use_engine(replacement)
    try:
        assert db.get_engine() is replacement
    finally:
        db.use_engine(previous)
        replacement.dispose()


def test_offline_migrations_render_sql() -> None:
    config = migrations.alembic_config("sqlite://")
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE db_metadata" in sql
    assert "UPDATE db_metadata SET version" in sql


def _sessions_on(engine: Engine, *, read_only: bool) -> Generator[Session]:
    previous = db.use_engine(engine)
    try:
        yield from db.get_session(read_only=read_only)
    finally:
        db.use_engine(previous)


def test_sqlite_read_only_sessions_do_not_hold_the_write_lock(tmp_path: object) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path}/locks.sqlite3", connect_args={"timeout": 0.2})
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        reader = _sessions_on(engine, read_only=True)
        reading = next(reader)
        assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 0  # its transaction is open
        with engine.begin() as writer:  # BEGIN IMMEDIATE: would time out behind a locking reader
            writer.execute(text("INSERT INTO t VALUES (1)"))
        reader.close()

        locker = _sessions_on(engine, read_only=False)
        locking = next(locker)
        locking.execute(text("SELECT count(*) FROM t"))
        with pytest.raises(OperationalError, match="locked"), engine.begin() as writer:
            writer.execute(text("INSERT INTO t VALUES (2)"))
        locker.close()
    finally:
        engine.dispose()


@pytest.mark.skipif(not TEST_URL.startswith("postgresql"), reason="PostgreSQL only")
def test_postgresql_read_only_sessions_run_each_statement_on_its_own() -> None:
    engine = db.create_db_engine(TEST_URL)
    try:
        for read_only, state in ((True, "idle"), (False, "idle in transaction")):
            sessions = _sessions_on(engine, read_only=read_only)
            session = next(sessions)
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert session.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
            with engine.connect() as observer:  # a read-only session leaves no transaction open
                query = text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
                assert observer.execute(query, {"pid": pid}).scalar_one() == state
            sessions.close()
    finally:
        engine.dispose()
