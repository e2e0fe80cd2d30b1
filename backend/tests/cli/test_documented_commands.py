"""Commands the docs give a newcomer, run as the docs give them.

- `db downgrade -1` (and -2) step back like `alembic downgrade -1`;
- `db wait` gives up at once when waiting cannot help (a missing database, a refused login);
- backend/scripts/*.sh work without an activated virtualenv, and a partial test run does not fail on
  the coverage floor meant for the whole suite;
- a TEST_DATABASE_URL naming a database that does not exist yet works (the suite creates it), and a
  test run leaves no temporary folder behind.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import app
from app.core import migrations
from app.core.config import BACKEND_DIR
from tests import databases
from tests.cli.conftest import PointAt, one_error, revision
from tests.coverage_hook import without_hook
from tests.databases import is_postgres

VENV_BIN = str(Path(sys.executable).parent)


def test_downgrade_minus_one_and_minus_two_step_back(runner: CliRunner, scratch_url: str) -> None:
    revisions = [s.revision for s in migrations.script_directory().walk_revisions()]  # newest first
    assert runner.invoke(app, ["upgrade"]).exit_code == 0
    result = runner.invoke(app, ["downgrade", "-1"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"schema at {revisions[1]}"
    result = runner.invoke(app, ["downgrade", "-2"])
    assert result.exit_code == 0, result.output
    assert revision(scratch_url) == revisions[3]
    assert runner.invoke(app, ["upgrade"]).exit_code == 0
    assert revision(scratch_url) == revisions[0]


def test_db_downgrade_minus_one_in_a_shell(scratch_url: str) -> None:
    """Exactly as USAGE.md writes it, through the installed `db` script."""
    migrations.upgrade(scratch_url, "head")
    env = {**os.environ, "DATABASE_URL": scratch_url}
    result = subprocess.run(
        [f"{VENV_BIN}/db", "downgrade", "-1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    previous = [s.revision for s in migrations.script_directory().walk_revisions()][1]
    assert result.stdout.strip() == f"schema at {previous}"


def missing_database_url() -> str:
    base = databases.test_database_url()
    if is_postgres(base):
        return (
            make_url(base)
            .set(database=f"nosuch_{uuid.uuid4().hex[:8]}")
            .render_as_string(hide_password=False)
        )
    return "sqlite:////proc/1/no-such-folder/db.sqlite3"  # a folder nobody can create


def test_wait_gives_up_at_once_when_waiting_cannot_help(runner: CliRunner, point_cli_at: PointAt) -> None:
    point_cli_at(missing_database_url())
    started = time.monotonic()
    result = runner.invoke(app, ["wait", "--timeout", "60", "--interval", "0.2"])
    assert time.monotonic() - started < 10
    assert result.exit_code == 3
    line = one_error(result.output, "database not usable, not waiting:")
    assert "does not exist" in line or "cannot be created" in line
    assert "waiting for the database (try" not in result.output


def test_wait_for_the_server_only(runner: CliRunner, point_cli_at: PointAt) -> None:
    if not is_postgres(databases.test_database_url()):
        pytest.skip("PostgreSQL only: SQLite has no server to wait for")
    point_cli_at(missing_database_url())
    result = runner.invoke(app, ["wait", "--server", "--timeout", "10"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("database is up")


def without_venv_env(**extra: str) -> dict[str, str]:
    """A new shell's environment: the virtualenv is not activated, not on PATH."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != VENV_BIN)
    # Nor this suite's coverage hook: the scripts run a suite of their own under `coverage run`.
    env = {k: v for k, v in without_hook().items() if k not in ("VIRTUAL_ENV", "COV_CORE_SOURCE")}
    return {**env, "PATH": path, **extra}


def test_the_test_scripts_work_in_a_new_shell_create_the_database_and_clean_up(tmp_path: Path) -> None:
    """`bash scripts/tests-start.sh ARGS` (which runs scripts/test.sh) from backend/, in a shell whose
    virtualenv is not activated, on a partial run: it passes (the 90 % coverage floor is for the whole
    suite), creates a TEST_DATABASE_URL database that does not exist yet, and leaves no temporary
    folder behind."""
    env = without_venv_env(
        COVERAGE_FILE=str(tmp_path / "coverage" / ".coverage"), TEST_WORKERS="0", TMPDIR=str(tmp_path)
    )
    env.pop("PYTEST_XDIST_WORKER", None)
    (tmp_path / "coverage").mkdir()
    created = None
    if is_postgres(databases.test_database_url()):
        created = make_url(databases.test_database_url()).set(database=f"fresh_{uuid.uuid4().hex[:8]}")
        env["TEST_DATABASE_URL"] = created.render_as_string(hide_password=False)
    try:
        result = subprocess.run(
            ["bash", "scripts/tests-start.sh", "tests/unit/test_cursor.py", "-q", "-p", "no:cacheprovider"],
            cwd=BACKEND_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert " passed" in result.stdout and "TOTAL" in result.stdout  # coverage of one file: far below 90 %
        assert "command not found" not in result.stderr
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("incident-desk-tests-")] == []
        if created is not None:
            admin = create_engine(created.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                exists = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": created.database}
                )
                assert exists.first() is not None
            admin.dispose()
    finally:
        if created is not None:
            admin = create_engine(created.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{created.database}" WITH (FORCE)'))
            admin.dispose()


def test_lint_script_finds_its_tools_without_an_activated_venv() -> None:
    # `bash scripts/lint.sh` runs mypy first (slow): check that it resolves every tool it calls.
    script = (BACKEND_DIR / "scripts" / "lint.sh").read_text()
    probe = script.split("\nmypy app", 1)[0] + "\ncommand -v mypy ruff\n"
    result = subprocess.run(
        ["bash", "-c", probe, "lint.sh"],
        cwd=BACKEND_DIR / "scripts",
        env=without_venv_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert [Path(line).name for line in result.stdout.split()] == ["mypy", "ruff"]
