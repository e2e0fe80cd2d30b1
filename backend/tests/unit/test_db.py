"""The synchronous engine (CLI, Alembic, fixtures)."""

import io

from alembic import command
from sqlalchemy import text

from app.core import db, migrations


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
