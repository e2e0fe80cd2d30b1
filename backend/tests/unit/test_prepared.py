"""app.crud.prepared: statements compiled once, run on the driver, converted as SQLAlchemy would."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, func, literal, select, type_coerce
from sqlalchemy.exc import DBAPIError

from app.core.database import Database
from app.core.types import UTCDateTime
from app.crud.prepared import Prepared
from app.models import Ticket
from tests.async_bridge import run_on_own_engine
from tests.conftest import TEST_URL


def run(work: Any) -> Any:
    return run_on_own_engine(work, TEST_URL)


def test_parameters_and_results_are_converted_by_their_types() -> None:
    """A timestamp goes to the database as the type binds it (naive UTC text on SQLite) and comes
    back as the type reads it (aware UTC on both)."""
    at = bindparam("at", type_=UTCDateTime())
    echo = Prepared(
        select(type_coerce(at, UTCDateTime()).label("at"), (literal(2) * bindparam("n")).label("twice"))
    )
    moment = datetime(2026, 11, 30, 13, 0, tzinfo=timezone(timedelta(hours=1)))

    async def work(db: Database) -> list[Any]:
        return [list(row) for row in await echo.rows(await db.connection(), {"at": moment, "n": 21})]

    assert run(work) == [[datetime(2026, 11, 30, 12, 0, tzinfo=UTC), 42]]


def test_a_driver_error_is_raised_as_sqlalchemys() -> None:
    broken = Prepared(select(func.no_such_function(bindparam("x"))))

    async def work(db: Database) -> None:
        await broken.rows(await db.connection(), {"x": 1})

    with pytest.raises(DBAPIError, match="no_such_function"):
        run(work)


def test_statements_with_list_parameters_that_expand_are_refused() -> None:
    expanding = Prepared(select(Ticket.id).where(Ticket.id.in_(bindparam("ids", expanding=True))))  # type: ignore[union-attr]

    async def work(db: Database) -> None:
        await expanding.rows(await db.connection(), {"ids": [1, 2]})

    with pytest.raises(ValueError, match="expanding"):
        run(work)


def test_one_compilation_per_database() -> None:
    statement = Prepared(select(literal(1)).where(bindparam("id") >= 0))

    async def work(db: Database) -> int:
        connection = await db.connection()
        for n in range(3):
            await statement.rows(connection, {"id": n})
        return len(statement._by_dialect)

    assert run(work) == 1
