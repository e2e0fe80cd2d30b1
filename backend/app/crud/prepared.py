"""Hot statements: built once, compiled once per database, run on the driver's own connection.

The statements that most requests run (the user check of every authenticated request, a ticket by
id, a page of the ticket list) skip SQLAlchemy's per-execution work: building the statement and
its cache key, the execution context, the result wrapper (together 0.1-0.5 ms of CPU a statement,
more than the driver's own work). What SQLAlchemy would still do for them is done here, from the
statement's own types: parameters and results converted as the column types say (e.g. SQLite's
text timestamps), and a driver error raised as SQLAlchemy's, through the connection's own handler,
which invalidates the connection (and after a disconnect the pool), so error handling and recovery
see exactly what they see for any other statement.

A statement's values are all named bind parameters (`bindparam("name")`): lists travel as one
array (PostgreSQL `= ANY(:values)`) or one JSON text (SQLite `IN (SELECT value FROM json_each(:values))`),
so that the SQL text does not depend on how many values there are.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import CompoundSelect
from sqlalchemy.util import greenlet_spawn

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # the parameters in order (positional drivers: SQLite), else None
    defaults: dict[str, Any]  # values bound into the statement itself (literals, constants)
    binds: tuple[tuple[str, Processor], ...]  # parameter conversions (only those that convert)


class Prepared:
    """One statement (a Select or a union of them) for `rows()`."""

    def __init__(self, statement: Select[Any] | CompoundSelect[Any]) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}
        # Per dialect: the result columns' conversions (None when none converts), found on the first
        # run, as some depend on the driver's column types (PostgreSQL numerics).
        self._results: dict[str, tuple[tuple[int, Processor], ...] | None] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiler = self.statement.compile(dialect=dialect)
        assert isinstance(compiler, SQLCompiler)
        if compiler.literal_execute_params or compiler.post_compile_params:
            raise ValueError("a prepared statement cannot have expanding or literal-execute parameters")
        binds = []
        for bind, name in compiler.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binds.append((name, processor))
        return _Compiled(
            sql=compiler.string,
            names=tuple(compiler.positiontup) if compiler.positiontup is not None else None,
            defaults={name: value for name, value in compiler.params.items() if value is not None},
            binds=tuple(binds),
        )

    def _result_processors(
        self, dialect: Dialect, description: Sequence[Any]
    ) -> tuple[tuple[int, Processor], ...] | None:
        """(column index, conversion) for the result columns that convert; None when none does."""
        processors = []
        for index, (column, described) in enumerate(
            zip(self.statement.selected_columns, description, strict=True)
        ):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, described[1])
            if processor is not None:
                processors.append((index, processor))
        return tuple(processors) or None

    async def rows(self, connection: AsyncConnection, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """All rows, their values converted by the result columns' types."""
        dialect = connection.dialect
        compiled = self.compiled(dialect)
        values = {**compiled.defaults, **params}
        for name, processor in compiled.binds:
            values[name] = processor(values.get(name))
        arguments: Any = values if compiled.names is None else tuple(values[n] for n in compiled.names)
        driver = await _driver_connection(connection)
        try:
            cursor = await driver.execute(compiled.sql, arguments)
            rows: list[Any] = await cursor.fetchall()
            if dialect.name not in self._results:
                self._results[dialect.name] = self._result_processors(dialect, cursor.description)
            if dialect.name == "sqlite":
                await cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            # SQLAlchemy's handler: wraps the error (DBAPIError and its kinds), invalidates a dead
            # connection and, after a disconnect, the pool; it runs in a greenlet, as it may close
            # connections.
            await greenlet_spawn(
                connection.sync_connection._handle_dbapi_exception,  # type: ignore[union-attr]
                exc,
                compiled.sql,
                arguments,
                None,
                None,
            )
            raise  # not reached: the handler raises
        processors = self._results[dialect.name]
        if processors is None:
            return rows
        converted: list[Sequence[Any]] = []
        for row in rows:
            values_ = list(row)
            for index, processor in processors:
                values_[index] = processor(values_[index])
            converted.append(values_)
        return converted


async def _driver_connection(connection: AsyncConnection) -> Any:
    """The driver's connection under `connection`. While the DB-API connection is in hand (neither
    closed nor invalidated), reading it does no I/O, so it skips the greenlet hop SQLAlchemy's
    `get_raw_connection()` takes for the case where it must reconnect."""
    sync = connection.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection.driver_connection
    return (await connection.get_raw_connection()).driver_connection
