"""The `db` command under test: pointed at throw-away databases, read back with plain SQL."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from typer.testing import CliRunner, Result

from app.cli import app
from app.core import db, migrations
from app.core.config import get_settings
from tests.databases import scratch_database

PointAt = Callable[[str], None]


def _swap_engine() -> None:
    get_settings.cache_clear()
    engine = db.use_engine(None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def point_cli_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[PointAt]:
    """Make the settings and the process-wide engine use DATABASE_URL=url (restored afterwards)."""
    previous = db.use_engine(None)

    def point(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        _swap_engine()

    yield point
    engine = db.use_engine(previous)
    if engine is not None:
        engine.dispose()
    monkeypatch.undo()
    get_settings.cache_clear()


@contextmanager
def cli_pointed_at(url: str) -> Iterator[None]:
    """point_cli_at for fixtures wider than one test."""
    previous = db.use_engine(None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            yield
        finally:
            engine = db.use_engine(previous)
            if engine is not None:
                engine.dispose()
    get_settings.cache_clear()


@pytest.fixture
def scratch_url(point_cli_at: PointAt) -> Iterator[str]:
    """An empty throw-away database that the CLI points at."""
    with scratch_database() as url:
        point_cli_at(url)
        yield url
        point_cli_at("sqlite://")  # release the scratch database before it is dropped


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# --- Reading a database back ----------------------------------------------------------------------


@contextmanager
def connect(url: str) -> Iterator[Any]:
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = db.create_db_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def rows(source: str | Engine, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(source, Engine):
        with source.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql)).all()]
    with connect(source) as conn:
        return [tuple(row) for row in conn.execute(text(sql)).all()]


def count(source: str | Engine, table: str) -> int:
    return int(rows(source, f"SELECT count(*) FROM {table}")[0][0])


def tables(url: str) -> set[str]:
    with connect(url) as conn:
        return set(inspect(conn).get_table_names())


def revision(url: str) -> str | None:
    with connect(url) as conn:
        return migrations.current_revision(conn)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def one_error(output: str, *fragments: str) -> str:
    """The output holds exactly one error line, no traceback, and it mentions every fragment."""
    assert "Traceback" not in output
    lines = error_lines(output)
    assert len(lines) == 1, output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


SEEDED_TABLES: Sequence[str] = (
    "teams",
    "users",
    "calendars",
    "sla_policies",
    "tickets",
    "comments",
    "ticket_events",
    "sla_timers",
)
SMALL_SEED = ["--teams", "4", "--users", "40", "--tickets", "120", "--seed", "11"]


@dataclass
class Seeded:
    url: str
    engine: Engine
    result: Result


@pytest.fixture(scope="session")
def seeded() -> Iterator[Seeded]:
    """One small database seeded through the CLI, shared by the tests that only read it."""
    with scratch_database() as url:
        with cli_pointed_at(url):
            result = CliRunner().invoke(app, ["seed", *SMALL_SEED])  # empty database: no question
        engine = db.create_db_engine(url)
        yield Seeded(url, engine, result)
        engine.dispose()
