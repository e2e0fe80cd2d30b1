"""The migrations are the schema: they round-trip on each database and match models.py."""

from alembic import command
from sqlalchemy import inspect, text

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
