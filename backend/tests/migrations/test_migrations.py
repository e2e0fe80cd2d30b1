"""The migrations are the schema: they round-trip on each database and match models.py."""

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from app.core import db, migrations
from tests.conftest import TEST_URL
from tests.databases import scratch_database


def schema_version(url: str) -> str | None:
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("db_metadata"):
                return None
            return conn.execute(text("SELECT version FROM db_metadata WHERE id = 1")).scalar_one()
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip() -> None:
    head = migrations.head_revision()
    with scratch_database() as url:
        migrations.upgrade(url, "head")
        assert schema_version(url) == head
        migrated = tables(url)
        assert "db_metadata" in migrated

        migrations.downgrade(url, "base")
        assert tables(url) == {"alembic_version"}

        migrations.upgrade(url, "head")
        assert tables(url) == migrated
        assert schema_version(url) == head
        assert_events_are_append_only(url)


def assert_events_are_append_only(url: str) -> None:
    """On a database at head: an event can be written, never updated or deleted, except by the
    cascade of deleting its ticket (the triggers of 0002, which a round trip must bring back)."""
    engine = db.create_db_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, hashed_password, auth_stamp, role, is_active, created_at)"
                    " VALUES (1, 'u1@example.com', 'x', :stamp, 'agent', true, '2026-01-01')"
                ),
                {"stamp": "0" * 32},
            )
            for ticket_id in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO tickets (id, title, priority, status, reporter_id, created_at, updated_at,"
                        " reopen_count, version, sla_state) VALUES (:id, 'Printer on fire', 'high', 'open', 1,"
                        " '2026-01-01', '2026-01-01', 0, 1, 'none')"
                    ),
                    {"id": ticket_id},
                )
                conn.execute(
                    text(
                        "INSERT INTO ticket_events (id, ticket_id, actor_id, action, field, new_value,"
                        " ticket_version, created_at) VALUES (:id, :id, 1, 'created', 'title', 'Printer', 1,"
                        " '2026-01-01')"
                    ),
                    {"id": ticket_id},
                )
        for statement in (
            "UPDATE ticket_events SET new_value = 'forged' WHERE id = 1",
            "DELETE FROM ticket_events WHERE id = 1",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM tickets WHERE id = 2"))  # its events go with it
            remaining = conn.execute(text("SELECT id FROM ticket_events ORDER BY id")).scalars().all()
            assert remaining == [1]
    finally:
        engine.dispose()


def test_every_revision_stamps_db_metadata() -> None:
    revisions = [s.revision for s in migrations.script_directory().walk_revisions()][::-1]
    with scratch_database() as url:
        for revision in revisions:
            migrations.upgrade(url, revision)
            assert schema_version(url) == revision
        for expected in [*revisions[-2::-1]]:
            migrations.downgrade(url, "-1")
            assert schema_version(url) == expected


def test_models_and_migrations_do_not_drift(engine: object) -> None:
    # `alembic check` against the migrated test database: raises if autogenerate finds a diff.
    command.check(migrations.alembic_config(TEST_URL))


def test_0006_keeps_every_row_trigger_and_search_and_never_reuses_ids() -> None:
    """Upgrading a database that holds data to 0006 (which rebuilds SQLite's tables with
    AUTOINCREMENT) keeps its rows, search index, append-only triggers and foreign keys."""
    with scratch_database() as url:
        migrations.upgrade(url, "0005")
        engine = db.create_db_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO teams (id, name, created_at) VALUES (1, 'Ops', '2026-01-01')"))
                for user_id in (1, 2):
                    conn.execute(
                        text(
                            "INSERT INTO users (id, email, hashed_password, role, is_active, team_id, created_at)"
                            " VALUES (:id, :email, 'x', 'agent', true, 1, '2026-01-01')"
                        ),
                        {"id": user_id, "email": f"u{user_id}@example.com"},
                    )
                conn.execute(
                    text(
                        "INSERT INTO tickets (id, title, description, priority, status, reporter_id, created_at,"
                        " updated_at, reopen_count, version) VALUES (1, 'Printer on fire', 'smoke', 'high',"
                        " 'open', 1, '2026-01-01', '2026-01-01', 0, 1)"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO comments (id, body, internal, ticket_id, author_id, created_at)"
                        " VALUES (1, 'extinguisher found', false, 1, 1, '2026-01-01')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO ticket_events (id, ticket_id, actor_id, action, field, new_value,"
                        " ticket_version, created_at) VALUES (1, 1, 1, 'created', 'title', 'Printer', 1, '2026-01-01')"
                    )
                )
                if conn.dialect.name == "postgresql":  # rows with explicit ids, as `db seed` writes them
                    conn.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), 2)"))
            migrations.upgrade(url, "head")
            with engine.begin() as conn:
                counts = [
                    conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("teams", "users", "tickets", "comments", "ticket_events")
                ]
                assert counts == [1, 2, 1, 1, 1]
                stamps = conn.execute(text("SELECT auth_stamp FROM users ORDER BY id")).scalars().all()
                assert len(set(stamps)) == 2 and all(len(s) == 32 for s in stamps)
                assert conn.execute(text("SELECT priority_rank FROM tickets")).scalar_one() == 2
                if conn.dialect.name == "sqlite":
                    search = "SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH 'printer'"
                    assert conn.execute(text(search)).scalars().all() == [1]
                    assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
                # The newest user goes; the next one does not get its id back.
                conn.execute(text("DELETE FROM users WHERE id = 2"))
                conn.execute(
                    text(
                        "INSERT INTO users (email, hashed_password, auth_stamp, role, is_active, created_at)"
                        " VALUES ('u3@example.com', 'x', :stamp, 'admin', true, '2026-01-02')"
                    ),
                    {"stamp": "0" * 32},
                )
                new_id = conn.execute(
                    text("SELECT id FROM users WHERE email = 'u3@example.com'")
                ).scalar_one()
                assert new_id == 3
            with engine.begin() as conn, pytest.raises(Exception, match="append-only"):
                conn.execute(text("UPDATE ticket_events SET reason = 'rewritten' WHERE id = 1"))
        finally:
            engine.dispose()
