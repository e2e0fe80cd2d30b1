"""`db migrate` (prestart's runner), `db reset`, and the guards on destructive commands."""

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.core import migrations
from app.core.config import get_settings
from tests.cli.conftest import PointAt, count, execute, one_error, revision, rows, tables
from tests.databases import is_postgres

SECRET = "a-production-secret-key-of-more-than-32-characters"


def test_migrate_upgrades_an_empty_database_then_does_nothing(runner: CliRunner, scratch_url: str) -> None:
    head = migrations.head_revision()
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"schema at {head}"
    assert revision(scratch_url) == head

    again = runner.invoke(app, ["migrate"])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == f"schema at {head}"
    assert runner.invoke(app, ["check"]).exit_code == 0


def test_migrate_continues_from_an_older_revision(runner: CliRunner, scratch_url: str) -> None:
    oldest = [s.revision for s in migrations.script_directory().walk_revisions()][-1]
    assert runner.invoke(app, ["upgrade", oldest]).exit_code == 0
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert revision(scratch_url) == migrations.head_revision()


def test_migrate_stamps_a_hand_made_schema_that_matches(runner: CliRunner, scratch_url: str) -> None:
    head = migrations.head_revision()
    migrations.upgrade(scratch_url, "head")
    execute(scratch_url, "DROP TABLE alembic_version", "UPDATE db_metadata SET version = 'by-hand'")
    made = tables(scratch_url)

    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"the existing schema matches the migrations: stamped it at head {head}",
        f"schema at {head}",
    ]
    assert revision(scratch_url) == head
    assert tables(scratch_url) == made | {"alembic_version"}  # no DDL besides alembic's own table
    assert rows(scratch_url, "SELECT version FROM db_metadata") == [(head,)]
    assert runner.invoke(app, ["check"]).exit_code == 0


def test_migrate_refuses_a_hand_made_schema_that_differs(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    execute(
        scratch_url,
        "DROP TABLE alembic_version",
        "DROP TABLE login_throttle",
        "ALTER TABLE teams DROP COLUMN description",
        "ALTER TABLE teams ADD COLUMN budget INTEGER",
    )
    before = tables(scratch_url)

    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 6
    one_error(result.output, "differ from the migrations", "refusing to stamp")
    details = [line for line in result.output.splitlines() if line.startswith("  - ")]
    assert sorted(details) == [
        "  - column teams.budget: not in the migrations",
        "  - column teams.description: missing",
        "  - table login_throttle: missing",
    ]
    assert tables(scratch_url) == before  # nothing stamped, nothing created
    assert revision(scratch_url) is None


def test_reset_drops_everything_and_migrates(runner: CliRunner, scratch_url: str) -> None:
    head = migrations.head_revision()
    migrations.upgrade(scratch_url, "head")
    execute(
        scratch_url,
        "INSERT INTO teams (id, name, created_at) VALUES (1, 'Old team', '2026-01-01 00:00:00')",
        "CREATE TABLE leftover (id INTEGER PRIMARY KEY)",
    )
    result = runner.invoke(app, ["reset", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"database reset: empty schema at head {head}",
        f"created admin {get_settings().FIRST_SUPERUSER} (FIRST_SUPERUSER)",
    ]
    assert "leftover" not in tables(scratch_url)
    assert count(scratch_url, "teams") == 0
    assert rows(scratch_url, "SELECT email, role FROM users") == [(get_settings().FIRST_SUPERUSER, "admin")]
    assert revision(scratch_url) == head
    # Twice in a row: nothing of the first migration (the PostgreSQL trigger function...) survives.
    assert runner.invoke(app, ["reset", "--yes"]).exit_code == 0
    assert runner.invoke(app, ["check"]).exit_code == 0
    if is_postgres(scratch_url):
        functions = rows(
            scratch_url, "SELECT proname FROM pg_proc WHERE proname = 'ticket_events_append_only'"
        )
        assert functions == [("ticket_events_append_only",)]


def test_reset_of_a_never_migrated_database(runner: CliRunner, scratch_url: str) -> None:
    result = runner.invoke(app, ["reset", "-y"])
    assert result.exit_code == 0, result.output
    assert revision(scratch_url) == migrations.head_revision()


def test_reset_asks_and_a_no_changes_nothing(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    execute(scratch_url, "INSERT INTO teams (id, name, created_at) VALUES (1, 'Kept', '2026-01-01 00:00:00')")

    answered_no = runner.invoke(app, ["reset"], input="n\n")
    assert answered_no.exit_code == 5
    assert "db reset deletes all data in" in answered_no.output
    one_error(answered_no.output, "not confirmed; nothing was changed")

    no_stdin = runner.invoke(app, ["reset"])  # CI: no terminal, no answer
    assert no_stdin.exit_code == 5
    one_error(no_stdin.output, "not confirmed")
    assert count(scratch_url, "teams") == 1

    answered_yes = runner.invoke(app, ["reset"], input="y\n")
    assert answered_yes.exit_code == 0, answered_yes.output
    assert count(scratch_url, "teams") == 0


def test_destructive_commands_refuse_production_without_force(
    runner: CliRunner, scratch_url: str, monkeypatch: pytest.MonkeyPatch, point_cli_at: PointAt
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "a-real-admin-password")
    point_cli_at(scratch_url)  # re-read the settings
    migrations.upgrade(scratch_url, "head")

    for command in (["reset", "--yes"], ["seed", "--yes", "--tickets", "5", "--users", "5"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 5, result.output
        one_error(result.output, "ENVIRONMENT is production", "--force")
    assert revision(scratch_url) == migrations.head_revision()

    forced = runner.invoke(app, ["reset", "--yes", "--force"])
    assert forced.exit_code == 0, forced.output
    asks_anyway = runner.invoke(app, ["reset", "--force"])
    assert asks_anyway.exit_code == 5
    one_error(asks_anyway.output, "not confirmed")


def test_unreachable_database_is_one_line_and_exit_3(runner: CliRunner, point_cli_at: PointAt) -> None:
    point_cli_at("postgresql://nobody@127.0.0.1:9/nowhere")
    for command in (["migrate"], ["reset", "--yes"], ["seed", "--yes"], ["check"], ["current"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 3, (command, result.output)
        one_error(result.output, "database unreachable")


def test_unknown_revision_for_downgrade_is_exit_2(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    result = runner.invoke(app, ["downgrade", "nosuchrev"])
    assert result.exit_code == 2
    one_error(result.output, "nosuchrev")
    assert revision(scratch_url) == migrations.head_revision()


def test_several_heads_are_refused(
    runner: CliRunner, scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "head_revisions", lambda: ("aaa1", "bbb2"))
    for command in (["check"], ["migrate"], ["reset", "--yes"], ["seed", "--yes", "--tickets", "1"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 4, (command, result.output)
        one_error(result.output, "the migrations have 2 heads (aaa1, bbb2)")
    assert tables(scratch_url) == set()
