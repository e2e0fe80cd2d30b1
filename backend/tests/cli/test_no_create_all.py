"""Alembic owns the schema: the normal path never builds tables with create_all.

DEVELOPMENT.md documents create_all for throwaway prototypes only; this keeps it out of the app, the
scripts and the commands prestart and the docs run.
"""

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData
from typer.testing import CliRunner

from app.cli import app
from app.core.config import BACKEND_DIR
from tests.cli.conftest import PointAt
from tests.databases import scratch_database


def test_no_code_calls_create_all() -> None:
    pattern = re.compile(r"\bcreate_all\s*\(")
    offenders = [
        str(path.relative_to(BACKEND_DIR))
        for folder in ("app", "scripts", "tests")
        for path in (BACKEND_DIR / folder).rglob("*.py")
        if path.name != "test_no_create_all.py" and pattern.search(path.read_text())
    ]
    assert offenders == []


@pytest.fixture
def no_create_all(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("create_all was called: the schema belongs to the migrations")

    monkeypatch.setattr(MetaData, "create_all", refuse)
    yield


def test_the_default_path_builds_the_schema_with_migrations_only(
    no_create_all: None, point_cli_at: PointAt
) -> None:
    runner = CliRunner()
    with scratch_database() as url:
        point_cli_at(url)
        for args in (
            ["migrate"],
            ["seed", "--yes", "--tickets", "5", "--users", "4", "--teams", "1"],
            ["reset", "--yes"],
            ["create-superuser", "--from-settings"],
        ):
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
        point_cli_at("sqlite://")
