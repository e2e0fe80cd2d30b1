"""`db create-superuser`: prompts for what is not given, refuses bad input with one line."""

import asyncio

from typer.testing import CliRunner

from app import crud
from app.cli import app
from app.core import database, migrations
from app.core.database import Database
from app.models import Role
from tests.cli.conftest import count, one_error


def authenticated_role(url: str, email: str, password: str) -> Role | None:
    async def role() -> Role | None:
        engine = database.create_async_db_engine(url)
        db = Database(engine)
        try:
            user = await crud.authenticate(db=db, email=email, password=password)
            return user.role if user else None
        finally:
            await db.close()
            await engine.dispose()

    return asyncio.run(role())


def test_prompts_for_email_and_hidden_password(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    answers = "Boss@Example.com\nsecret-pass-1\nsecret-pass-1\n"
    result = runner.invoke(app, ["create-superuser"], input=answers)
    assert result.exit_code == 0, result.output
    assert (
        "E-mail:" in result.output
        and "Password:" in result.output
        and "Repeat for confirmation:" in result.output
    )
    assert "secret-pass-1" not in result.output  # hidden
    assert result.output.strip().endswith("created admin boss@example.com")
    assert authenticated_role(scratch_url, "boss@example.com", "secret-pass-1") == Role.admin


def test_options_skip_the_prompts_and_duplicates_fail(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    args = ["create-superuser", "--email", "ops@example.com", "--password", "another-pass-2"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "created admin ops@example.com"
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    one_error(again.output, "a user with e-mail ops@example.com already exists")
    assert count(scratch_url, "users") == 1


def test_prompted_password_only(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    result = runner.invoke(
        app, ["create-superuser", "--email", "x@example.com"], input="pw-long-1\npw-long-1\n"
    )
    assert result.exit_code == 0, result.output
    assert "E-mail:" not in result.output
    assert authenticated_role(scratch_url, "x@example.com", "pw-long-1") == Role.admin


def test_invalid_input_is_exit_2(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    result = runner.invoke(app, ["create-superuser", "--email", "not-an-address", "--password", "short"])
    assert result.exit_code == 2
    one_error(result.output, "invalid superuser:", "email:", "password:")
    assert count(scratch_url, "users") == 0


def test_a_guessable_password_is_refused_with_one_line(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")
    result = runner.invoke(
        app, ["create-superuser", "--email", "ops@example.com", "--password", "password123"]
    )
    assert result.exit_code == 2
    one_error(result.output, "invalid superuser: password: too easy to guess")
    assert authenticated_role(scratch_url, "ops@example.com", "password123") is None
