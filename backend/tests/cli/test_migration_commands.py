from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.core import migrations

PointAt = Callable[[str], None]


def test_upgrade_current_check(runner: CliRunner, scratch_url: str) -> None:
    head = migrations.head_revision()

    result = runner.invoke(app, ["check"])
    assert result.exit_code == 4
    assert f"database at base, expected head {head}" in result.output

    result = runner.invoke(app, ["current"])
    assert result.exit_code == 0
    assert result.output.strip() == "base (not migrated)"

    result = runner.invoke(app, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"schema at {head}"

    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0
    assert result.output.strip() == f"database at head {head}"


def test_downgrade_to_base_and_back(runner: CliRunner, scratch_url: str) -> None:
    assert runner.invoke(app, ["upgrade"]).exit_code == 0
    result = runner.invoke(app, ["downgrade", "base"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "schema at base (empty)"
    assert runner.invoke(app, ["current"]).output.strip() == "base (not migrated)"


def test_unknown_revision_is_one_line_and_exit_2(runner: CliRunner, scratch_url: str) -> None:
    result = runner.invoke(app, ["upgrade", "nosuchrev"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "nosuchrev" in result.output
    assert "Traceback" not in result.output


def test_heads_and_history_list_the_migrations(runner: CliRunner) -> None:
    result = runner.invoke(app, ["heads"])
    assert result.exit_code == 0
    assert result.output.split() == list(migrations.head_revisions())
    history = runner.invoke(app, ["history"])
    assert history.exit_code == 0
    revisions = [s.revision for s in migrations.script_directory().walk_revisions()]
    assert [line.split()[0] for line in history.output.splitlines()] == revisions


def test_wait_succeeds_on_a_reachable_database(runner: CliRunner, scratch_url: str) -> None:
    result = runner.invoke(app, ["wait", "--timeout", "5"])
    assert result.exit_code == 0
    assert result.output.startswith("database is up")


def test_wait_times_out_with_one_line_per_try(runner: CliRunner, point_cli_at: PointAt) -> None:
    point_cli_at("postgresql://nobody@127.0.0.1:9/nowhere")
    result = runner.invoke(app, ["wait", "--timeout", "1.5", "--interval", "0.5"])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert all(line.startswith("waiting for the database (try ") for line in lines[:-1])
    assert len(lines) >= 3
    assert lines[-1].startswith("error: database not reachable after 1.5s:")
    assert "Traceback" not in result.output


def test_wait_gives_up_after_db_wait_seconds_by_default(
    runner: CliRunner, point_cli_at: PointAt, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_WAIT_SECONDS", "1")
    point_cli_at("postgresql://nobody@127.0.0.1:9/nowhere")  # also reloads the settings
    result = runner.invoke(app, ["wait", "--interval", "0.5"])
    assert result.exit_code == 3
    assert result.output.strip().splitlines()[-1].startswith("error: database not reachable after 1s:")


def test_malformed_database_url_is_exit_2(runner: CliRunner, point_cli_at: PointAt) -> None:
    point_cli_at("mysql://u@h/db")
    result = runner.invoke(app, ["current"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: invalid configuration: DATABASE_URL: unsupported database 'mysql' "
        "(use postgresql:// or sqlite://)"
    )
