"""`db`: manage the Incident Desk database (`poetry run db --help`).

Every failure is one red `error:` line on stderr (no traceback) and one of these exit codes:

0 success; 1 the command failed (the line says why); 2 bad usage or input (unknown revision,
invalid configuration, impossible counts); 3 the database cannot be reached; 4 the schema is not at
the migrations' single head, or the migrations have several heads; 5 refused: not confirmed, or
ENVIRONMENT=production without --force; 6 `db migrate` found tables without alembic's version table
that differ from the migrations (the differences follow the error line); 130 interrupted (Ctrl-C or
SIGTERM).
"""

import asyncio
import functools
import logging
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from app.core.config import ConfigError, get_settings

# Speed: each command imports what it needs when it runs (`db wait` needs neither alembic, nor the
# models, nor the factories' faker), so that a `db` process starts in a fraction of a second.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from app import seed as seeding
    from app.core.database import Database
    from app.models import User, UserCreate

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_AT_HEAD = 1, 2, 3, 4
EXIT_REFUSED, EXIT_SCHEMA_DIFFERS, EXIT_INTERRUPTED = 5, 6, 130

app = typer.Typer(
    help="Manage the Incident Desk database: migrations, checks, reset and demo data.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code, self.details = code, details


def fail(message: str, code: int = EXIT_FAILED, details: Sequence[str] = ()) -> NoReturn:
    raise CliError(message, code, details)


def one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def loaded(module: str, name: str) -> tuple[type[BaseException], ...]:
    """The exception class `module.name` if that module has been imported, else no class: an
    exception of a module never imported cannot have been raised (the modules load lazily)."""
    found = sys.modules.get(module)
    return (getattr(found, name),) if found is not None else ()


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every known failure into one red line on stderr and its documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        details: Sequence[str] = ()
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            code, message, details = exc.code, str(exc), exc.details
        except loaded("app.core.migrations", "SeveralHeads") as exc:
            code, message = EXIT_NOT_AT_HEAD, str(exc)
        except KeyboardInterrupt:
            code, message = EXIT_INTERRUPTED, "interrupted"
        except ConfigError as exc:
            code, message = EXIT_USAGE, str(exc)
        except loaded("alembic.util.exc", "CommandError") as exc:
            code, message = EXIT_USAGE, one_line(exc)
        except SQLAlchemyError as exc:
            from app.core.migrations import missing_schema

            if missing_schema(exc):
                code = EXIT_NOT_AT_HEAD
                said = one_line(getattr(exc, "orig", None) or exc)
                message = f"database not migrated ({said}): run `db migrate`"
            elif isinstance(exc, OperationalError):
                code, message = EXIT_UNREACHABLE, f"database unreachable: {one_line(exc.orig or exc)}"
            else:
                code, message = EXIT_FAILED, f"database error: {one_line(exc)}"
        err.print(Text.assemble(("error:", "red"), f" {message}"), highlight=False, soft_wrap=True)
        for detail in details:
            err.print(f"  - {detail}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(code)

    return wrapper


def database_url() -> str:
    return get_settings().SQLALCHEMY_DATABASE_URI


def engine() -> "Engine":
    from app.core.db import get_engine

    return get_engine()


def current_revision() -> str | None:
    from app.core import migrations

    with engine().connect() as connection:
        return migrations.current_revision(connection)


T = TypeVar("T")


def with_database(work: "Callable[[Database], Awaitable[T]]") -> T:
    """Run async data access (app.crud) from a command: an event loop and an async engine of its own."""
    from app.core.database import Database, create_async_db_engine

    async def main() -> T:
        async_engine = create_async_db_engine(database_url())
        db = Database(async_engine)
        try:
            return await work(db)
        finally:
            await db.close()
            await async_engine.dispose()

    return asyncio.run(main())


def quiet_alembic() -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)


# PostgreSQL errors that waiting cannot fix: the database does not exist, the login is refused.
PERMANENT_SQLSTATES = {
    "3D000": "the database does not exist",
    "28P01": "password authentication failed",
    "28000": "the server refused this login",
}


def permanent_problem(exc: BaseException) -> str | None:
    """Why connecting can never succeed, or None when trying again may help."""
    original = getattr(exc, "orig", None)
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in PERMANENT_SQLSTATES:
        return PERMANENT_SQLSTATES[sqlstate]
    text_ = str(original or exc)
    for fragment, reason in (
        ("does not exist", "the database does not exist"),
        ("password authentication failed", "password authentication failed"),
        ("no pg_hba.conf entry", "the server refused this login"),
        ("unable to open database file", "the SQLite file cannot be created (does its folder exist?)"),
    ):
        if fragment in text_:
            return reason
    return None


class PermanentConnectError(Exception):
    pass


@app.command()
@command
def wait(
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to keep trying before giving up [default: DB_WAIT_SECONDS, 60].", min=0),
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between tries.", min=0.1)] = 1,
    server: Annotated[
        bool,
        typer.Option(
            "--server",
            help="Wait for the database's server only (PostgreSQL: its `postgres` database), for "
            "a database that something else will create.",
        ),
    ] = False,
) -> None:
    """Wait until the database accepts connections (exit 3 on timeout).

    A problem that waiting cannot fix (the database does not exist, the login is refused) fails at
    once with exit 3 instead of retrying until the timeout.
    """
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

    from app.core.db import create_db_engine

    started = time.monotonic()
    if timeout is None:
        timeout = float(get_settings().DB_WAIT_SECONDS)
    url = make_url(database_url())
    if server and url.get_backend_name() != "sqlite":
        url = url.set(database="postgres")
    target = engine() if not server else create_db_engine(url.render_as_string(hide_password=False))

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

    def connect() -> None:
        try:
            with target.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            if problem := permanent_problem(exc):
                raise PermanentConnectError(f"{problem}: {one_line(exc.orig or exc)}") from None
            raise

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_exception_type(OperationalError),
        before_sleep=log_try,
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                connect()
    except PermanentConnectError as exc:
        fail(f"database not usable, not waiting: {exc}", EXIT_UNREACHABLE)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        reason = one_line(getattr(cause, "orig", None) or cause) if cause else "unknown"
        fail(f"database not reachable after {timeout:g}s: {reason}", EXIT_UNREACHABLE)
    finally:
        if server:
            target.dispose()
    out.print(f"database is up ({time.monotonic() - started:.1f}s)")


@app.command()
@command
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    from app.core import migrations

    quiet_alembic()
    migrations.upgrade(database_url(), revision)
    out.print(f"schema at {current_revision()}")


# ignore_unknown_options: `db downgrade -1` (as `alembic downgrade -1`) is a revision, not an option.
@app.command(context_settings={"ignore_unknown_options": True})
@command
def downgrade(
    revision: Annotated[str, typer.Argument(help="-1 (one step), -2, ..., base, or a revision id.")],
) -> None:
    """Downgrade the schema to REVISION (`db downgrade -1` goes one migration back)."""
    from app.core import migrations

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
    from app.core import migrations

    for head in migrations.head_revisions():
        out.print(head)


@app.command()
@command
def history() -> None:
    """List the migrations, newest first."""
    from app.core import migrations

    for script in migrations.script_directory().walk_revisions():
        out.print(f"{script.revision}  {script.doc}", highlight=False, soft_wrap=True)


@app.command()
@command
def check() -> None:
    """Exit 0 only when the database is at the migrations' single head (else 4)."""
    from app.core import migrations

    head = migrations.head_revision()
    revision = current_revision()
    if revision != head:
        fail(f"database at {revision or 'base'}, expected head {head}", EXIT_NOT_AT_HEAD)
    out.print(f"database at head {revision}")


@app.command()
@command
def migrate() -> None:
    """Bring the schema to head: what prestart runs. Stamps a matching schema made without alembic.

    An empty or alembic-managed database is upgraded to head. Tables without alembic's version
    table (made by hand or by an older tool) are compared with the migrations: identical -> stamped
    at head, no DDL run; different -> refused with the differences listed (exit 6), nothing changed.
    """
    from app.core import migrations

    quiet_alembic()
    head = migrations.head_revision()
    with engine().begin() as conn:
        state = migrations.schema_state(conn)
        if state == "unversioned":
            differences = migrations.schema_differences(conn)
            if differences:
                many = f"{len(differences)} difference{'s' if len(differences) > 1 else ''}"
                fail(
                    f"the database has tables but no alembic revision, and they differ from the migrations "
                    f"({many}); refusing to stamp it (fix the schema, or `db reset`):",
                    EXIT_SCHEMA_DIFFERS,
                    differences,
                )
            migrations.stamp_head(conn)
    if state == "unversioned":
        out.print(f"the existing schema matches the migrations: stamped it at head {head}", highlight=False)
    else:
        migrations.upgrade(database_url(), "head")
    out.print(f"schema at {current_revision()}")


def holds_data() -> bool:
    """Whether any of the app's tables has a row (False for a database without tables)."""
    from sqlmodel import Session, SQLModel

    from app import seed_load
    from app.core import migrations

    # Tables whose rows do not make a database "hold data" (schema bookkeeping, transient state).
    not_data = frozenset({migrations.VERSION_TABLE, "db_metadata", "login_throttle"})
    with Session(engine()) as session:
        existing = set(migrations.table_names(session.connection()))
        tables = [name for name in SQLModel.metadata.tables if name in existing and name not in not_data]
        return seed_load.has_rows(session=session, tables=tables)


def shown_url() -> str:
    return make_url(database_url()).render_as_string(hide_password=True)


def guard_destruction(*, action: str, yes: bool, force: bool) -> None:
    """Refuse in production without --force; ask unless --yes (no answer, e.g. no stdin: refuse)."""
    environment = get_settings().ENVIRONMENT
    if environment == "production" and not force:
        fail(
            f"ENVIRONMENT is production: {action} deletes all data; pass --force to do it anyway",
            EXIT_REFUSED,
        )
    if yes:
        return
    try:
        confirmed = typer.confirm(f"{action} deletes all data in {shown_url()}. Continue?", default=False)
    except typer.Abort:
        out.print()
        confirmed = False
    if not confirmed:
        fail("not confirmed; nothing was changed (pass --yes to skip the question)", EXIT_REFUSED)


@contextmanager
def interruptible() -> Iterator[Callable[[], None]]:
    """Let SIGTERM (docker stop, kill) and SIGINT (Ctrl-C) unwind as KeyboardInterrupt, so
    transactions roll back visibly.

    The handler raises at once, and also records the signal: Python drops an exception raised while
    a weakref callback or `__del__` runs (SQLAlchemy has such callbacks), so the yielded `check()`
    raises it again at the caller's safe points (between seed batches, before the commit).
    """
    stopped = threading.Event()

    def interrupt(_signum: int, _frame: object) -> None:
        stopped.set()
        raise KeyboardInterrupt

    def check() -> None:
        if stopped.is_set():
            raise KeyboardInterrupt

    try:
        previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield check
        return
    try:
        yield check
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def reset_schema() -> str:
    """Drop everything and migrate to head in one transaction; returns the head."""
    from app.core import migrations

    quiet_alembic()
    head = migrations.head_revision()  # before connecting: several heads is exit 4, whatever the database
    with interruptible(), engine().begin() as conn:
        migrations.reset(conn)
    return head


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Allow it when ENVIRONMENT is production.")]


@app.command()
@command
def reset(yes: YesOption = False, force: ForceOption = False) -> None:
    """Drop every table (alembic's version table included) and migrate to head: an empty database
    but for the first admin from the settings (FIRST_SUPERUSER), as prestart makes it.

    Asks for confirmation unless --yes; refuses when ENVIRONMENT is production unless --force.
    """
    guard_destruction(action="db reset", yes=yes, force=force)
    head = reset_schema()
    out.print(f"database reset: empty schema at head {head}")
    out.print(ensure_first_superuser())


DEFAULT_TEAMS, DEFAULT_USERS, DEFAULT_TICKETS = 8, 200, 2_000
# app.seed's limits, for the help (importing app.seed would load the factories and faker for every
# command); tests/cli/test_seed_command.py checks that they are the same.
MAX_TEAMS, MAX_USERS, MAX_TICKETS = 10_000, 1_000_000, 5_000_000
ANCHOR_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


@app.command()
@command
def seed(
    tickets: Annotated[
        int, typer.Option(help=f"Tickets to create (0 to {MAX_TICKETS:,}).")
    ] = DEFAULT_TICKETS,
    users: Annotated[
        int, typer.Option(help=f"Users, the 3 demo logins included (3 to {MAX_USERS:,}).")
    ] = DEFAULT_USERS,
    teams: Annotated[int, typer.Option(help=f"Teams (1 to {MAX_TEAMS:,}).")] = DEFAULT_TEAMS,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed: the same seed and counts give the same rows.")
    ] = None,
    anchor: Annotated[
        datetime | None,
        typer.Option(
            formats=ANCHOR_FORMATS,
            metavar="DATETIME",
            help="When the history ends, UTC unless an offset is given "
            "(default: 2026-01-01T00:00:00Z with --seed, else now).",
        ),
    ] = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only seed a database that holds no data; else do nothing.")
    ] = False,
    yes: YesOption = False,
    force: ForceOption = False,
) -> None:
    """Reset the database, then fill it with demo data built by the factories (one transaction).

    Users of every role across the teams, tickets in every lifecycle state with histories replayed
    from the lifecycle table, comments and internal notes. Asks before replacing existing data
    unless --yes (never for an empty database); refuses in production unless --force. Interrupted,
    it leaves the empty migrated schema, never part of the data.
    """
    from sqlmodel import Session

    from app import seed as seeding

    try:
        plan = seeding.make_plan(teams=teams, users=users, tickets=tickets, seed=seed, anchor=anchor)
    except seeding.SeedError as exc:
        fail(str(exc), EXIT_USAGE)
    has_data = holds_data()
    if if_empty and has_data:
        out.print("the database already holds data; not seeding (--if-empty)")
        return
    guard_destruction(action="db seed", yes=yes or not has_data, force=force)
    started = time.monotonic()
    head = reset_schema()
    out.print(
        f"schema reset to head {head}; inserting {plan.tickets:,} tickets in one transaction "
        "(an interruption leaves the empty schema)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        with interruptible() as check, Session(engine()) as session, seed_progress(plan, check) as progress:
            seeding.seed_database(session, plan, progress)
    except KeyboardInterrupt:
        fail(
            "interrupted: nothing was committed; the database holds the empty migrated schema",
            EXIT_INTERRUPTED,
        )
    first_admin = ensure_first_superuser()
    print_seed_summary(plan, time.monotonic() - started)
    out.print(first_admin)


@contextmanager
def seed_progress(plan: "seeding.Plan", check: Callable[[], None]) -> "Iterator[seeding.Progress]":
    """A progress bar; each update first calls `check()` (which raises if the seed was interrupted)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from app import seed as seeding

    columns = (
        TextColumn("{task.description:<25}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("starting", total=plan.tickets)

        def phase(text: str) -> None:
            check()
            bar.update(task, description=text)

        def tickets_done(count: int) -> None:
            check()
            bar.advance(task, count)

        yield seeding.Progress(phase=phase, tickets_done=tickets_done, check=check)
        bar.update(task, description="done")


def print_seed_summary(plan: "seeding.Plan", elapsed: float) -> None:
    from rich import box
    from rich.table import Column, Table
    from sqlmodel import Session

    from app import factories, seed_load
    from app import seed as seeding

    with Session(engine()) as session:
        counts = seed_load.count_rows(session=session, tables=[str(m.__tablename__) for m in seeding.TABLES])
    total = sum(counts.values())
    table = Table(
        "table", Column("rows", justify="right"), box=box.SIMPLE, title="seeded", title_justify="left"
    )
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("total", f"{total:,}", style="bold")
    out.print(table)
    anchor = plan.anchor.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.print(
        f"elapsed {elapsed:.1f} s ({total / max(elapsed, 1e-9):,.0f} rows/s); seed {plan.seed}, anchor {anchor}",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"same data again: db seed --seed {plan.seed} --anchor {anchor} --teams {plan.teams} "
        f"--users {plan.users} --tickets {plan.tickets}",
        highlight=False,
        soft_wrap=True,
    )
    logins = Table("role", "e-mail", "password", box=box.SIMPLE, title="demo logins", title_justify="left")
    for role, email in seeding.DEMO_LOGINS.items():
        logins.add_row(role.value, email, factories.DEMO_PASSWORD)
    out.print(logins)


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
    from app import crud
    from app.core import passwords

    if from_settings:
        out.print(ensure_first_superuser())
        return
    if email is None:
        email = typer.prompt("E-mail")
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user_in = superuser_input(email, password)
    if problem := passwords.weakness(user_in.password, [user_in.email]):
        fail(f"invalid superuser: password: {problem}", EXIT_USAGE)

    async def create(db: "Database") -> "User | None":
        if await crud.get_user_by_email(db=db, email=user_in.email) is not None:
            return None
        return await crud.create_user(db=db, user_in=user_in)

    user = with_database(create)
    if user is None:
        fail(f"a user with e-mail {user_in.email} already exists")
    out.print(f"created admin {user.email}")


def superuser_input(email: str, password: str) -> "UserCreate":
    from pydantic import ValidationError

    from app.models import Role, UserCreate

    try:
        return UserCreate(email=email, password=password, role=Role.admin, full_name="Administrator")
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        fail(f"invalid superuser: {problems}", EXIT_USAGE)


def ensure_first_superuser() -> str:
    """Create the admin FIRST_SUPERUSER / FIRST_SUPERUSER_PASSWORD name unless that user exists
    (prestart, and after `db reset` and `db seed`, which empty the users table). Says what it did.

    The settings were checked when read: outside ENVIRONMENT=local the password passes the policy;
    in local the development placeholder is allowed.
    """
    from app import crud
    from app.core import security

    settings = get_settings()
    user_in = superuser_input(settings.FIRST_SUPERUSER, settings.FIRST_SUPERUSER_PASSWORD)

    async def ensure(db: "Database") -> str:
        if await crud.get_user_by_email(db=db, email=user_in.email) is not None:
            return f"first superuser {user_in.email} already exists"
        hashed = security.hash_password(user_in.password)
        await crud.create_user(db=db, user_in=user_in, hashed_password=hashed)
        return f"created admin {user_in.email} (FIRST_SUPERUSER)"

    return with_database(ensure)


@app.command("sla-defaults")
@command
def sla_defaults(
    time_zone: Annotated[
        str | None,
        typer.Option(help="The IANA time zone of the business-hours calendar [default: SLA_TIME_ZONE]."),
    ] = None,
) -> None:
    """Install the default SLA policies (urgent, high, medium, low) on a Monday-Friday 09:00-17:00
    calendar, unless a policy exists already (then nothing changes)."""
    from app import calendars, crud

    zone = time_zone or get_settings().SLA_TIME_ZONE
    if problems := calendars.problems(zone, None):
        fail(f"invalid --time-zone: {'; '.join(problems)}", EXIT_USAGE)
    done = with_database(lambda db: crud.install_defaults(db=db, time_zone=zone))
    if not done.policies:
        out.print(f"{done.existing_policies} SLA policies exist already; nothing installed", highlight=False)
        return
    how = (
        f"created calendar '{done.calendar}' ({zone})"
        if done.calendar_created
        else f"using calendar '{done.calendar}'"
    )
    out.print(f"{how}; installed SLA policies {', '.join(done.policies)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    app()
