"""`db`: manage the Incident Desk database (`poetry run db --help`).

Exit codes: 0 success; 1 the command failed (the line says why); 2 bad usage or input;
3 the database cannot be reached; 4 the schema is not at the migrations' single head.
"""

import functools
import logging
import time
from collections.abc import Callable
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer
from alembic.util.exc import CommandError
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_fixed,
)

from app import crud
from app.core import migrations
from app.core.config import ConfigError, get_settings
from app.core.db import get_engine
from app.models import Role, UserCreate

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_AT_HEAD = 1, 2, 3, 4

app = typer.Typer(
    help="Manage the Incident Desk database: migrations, checks, reset and demo data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise CliError(message, code)


def one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every known failure into one red line on stderr and its documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            code, message = exc.code, str(exc)
        except ConfigError as exc:
            code, message = EXIT_USAGE, str(exc)
        except OperationalError as exc:
            code, message = (
                EXIT_UNREACHABLE,
                f"database unreachable: {one_line(exc.orig or exc)}",
            )
        except CommandError as exc:
            code, message = EXIT_USAGE, one_line(exc)
        except SQLAlchemyError as exc:
            code, message = EXIT_FAILED, f"database error: {one_line(exc)}"
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(code)

    return wrapper


def database_url() -> str:
    return get_settings().SQLALCHEMY_DATABASE_URI


def engine() -> Engine:
    return get_engine()


def current_revision() -> str | None:
    with Session(engine()) as session:
        return crud.get_schema_revision(session=session)


def quiet_alembic() -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
@command
def wait(
    timeout: Annotated[float, typer.Option(help="Seconds to keep trying before giving up.", min=0)] = 60,
    interval: Annotated[float, typer.Option(help="Seconds between tries.", min=0.1)] = 1,
) -> None:
    """Wait until the database accepts connections (exit 3 on timeout)."""
    started = time.monotonic()

    def log_try(state: object) -> None:
        attempt = getattr(state, "attempt_number", 0)
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome is not None else None
        reason = one_line(getattr(exc, "orig", None) or exc) if exc else "?"
        err.print(
            f"waiting for the database (try {attempt}): {reason}",
            highlight=False,
            soft_wrap=True,
        )

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_exception_type(OperationalError),
        before_sleep=log_try,
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt, engine().connect() as conn:
                conn.execute(text("SELECT 1"))
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        reason = one_line(getattr(cause, "orig", None) or cause) if cause else "unknown"
        fail(f"database not reachable after {timeout:g}s: {reason}", EXIT_UNREACHABLE)
    out.print(f"database is up ({time.monotonic() - started:.1f}s)")


@app.command()
@command
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    quiet_alembic()
    migrations.upgrade(database_url(), revision)
    out.print(f"schema at {current_revision()}")


@app.command()
@command
def downgrade(
    revision: Annotated[str, typer.Argument(help="-1, base, or a revision id.")],
) -> None:
    """Downgrade the schema to REVISION."""
    quiet_alembic()
    migrations.downgrade(database_url(), revision)
    out.print(f"schema at {current_revision() or 'base (empty)'}")


@app.command()
@command
def current() -> None:
    """Print the database's revision."""
    out.print(current_revision() or "base (not migrated)")


@app.command()
@command
def heads() -> None:
    """Print the migrations' head revision(s)."""
    for head in migrations.head_revisions():
        out.print(head)


@app.command()
@command
def history() -> None:
    """List the migrations, newest first."""
    for script in migrations.script_directory().walk_revisions():
        out.print(f"{script.revision}  {script.doc}", highlight=False)


@app.command()
@command
def check() -> None:
    """Exit 0 only when the database is at the migrations' single head (else 4)."""
    heads = migrations.head_revisions()
    if len(heads) != 1:
        fail(
            f"the migrations have {len(heads)} heads ({', '.join(heads)}); merge them",
            EXIT_NOT_AT_HEAD,
        )
    revision = current_revision()
    if revision != heads[0]:
        fail(
            f"database at {revision or 'base'}, expected head {heads[0]}",
            EXIT_NOT_AT_HEAD,
        )
    out.print(f"database at head {revision}")


@app.command("create-superuser")
@command
def create_superuser(
    email: Annotated[str | None, typer.Option(help="The admin's e-mail (prompted when omitted).")] = None,
    password: Annotated[
        str | None, typer.Option(help="The admin's password (prompted, hidden, when omitted).")
    ] = None,
    from_settings: Annotated[
        bool,
        typer.Option(
            "--from-settings",
            help="Use FIRST_SUPERUSER / FIRST_SUPERUSER_PASSWORD; do nothing if that user exists.",
        ),
    ] = False,
) -> None:
    """Create an admin account (idempotent with --from-settings, as prestart runs it)."""
    if from_settings:
        settings = get_settings()
        email, password = settings.FIRST_SUPERUSER, settings.FIRST_SUPERUSER_PASSWORD
    if email is None:
        email = typer.prompt("E-mail")
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_in = UserCreate(email=email, password=password, role=Role.admin, full_name="Administrator")
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        fail(f"invalid superuser: {problems}", EXIT_USAGE)
    with Session(engine()) as session:
        existing = crud.get_user_by_email(session=session, email=user_in.email)
        if existing is not None:
            if from_settings:
                out.print(f"first superuser {existing.email} already exists")
                return
            fail(f"a user with e-mail {existing.email} already exists")
        user = crud.create_user(session=session, user_in=user_in)
    out.print(f"created admin {user.email}")


if __name__ == "__main__":  # pragma: no cover
    app()
