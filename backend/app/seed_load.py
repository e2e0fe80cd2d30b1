"""The bulk loader of `db seed` (app.seed), and the row counts the `db` command prints.

Synchronous: the seeder and the CLI run outside the request path. The rows carry their ids, so
nothing needs RETURNING: binary COPY on PostgreSQL, batched executemany (Core insert()) elsewhere.
The caller owns the transaction; nothing here commits.
"""

from collections.abc import Iterable, Sequence
from typing import Any, cast

import psycopg
from psycopg import sql
from sqlalchemy import Table, column, func, insert, literal, table
from sqlmodel import Session, SQLModel, select

Row = tuple[Any, ...]


def _table_of(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def bulk_insert(
    *, session: Session, model: type[SQLModel], columns: Sequence[str], rows: Sequence[Row]
) -> int:
    """Insert `rows` (tuples in the order of `columns`, database-ready values) into model's table."""
    if not rows:
        return 0
    connection = session.connection()
    target = _table_of(model)
    if connection.dialect.name == "postgresql":
        _copy_rows(connection.connection.dbapi_connection, target.name, columns, rows)
    else:
        connection.execute(insert(target), [dict(zip(columns, row, strict=True)) for row in rows])
    return len(rows)


def _copy_rows(dbapi_connection: Any, table_name: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    """COPY ... FROM STDIN (FORMAT BINARY) on the session's own connection (same transaction)."""
    conn = cast(psycopg.Connection[Any], dbapi_connection)
    with conn.cursor() as cursor:
        types = dict(
            cursor.execute(
                "SELECT attname, atttypid::int FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (sql.Identifier(table_name).as_string(conn),),
            ).fetchall()
        )
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with cursor.copy(statement) as copy:
            copy.set_types([types[name] for name in columns])
            for row in rows:
                copy.write_row(row)


def reset_id_sequences(*, session: Session, models: Iterable[type[SQLModel]]) -> None:
    """PostgreSQL: point each table's id sequence past its largest id, so the API's inserts follow
    the bulk-loaded rows. (SQLite picks max(id) + 1 by itself.)"""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    for model in models:
        target = _table_of(model)
        sequence = func.pg_get_serial_sequence(target.name, "id")
        next_id = func.coalesce(func.max(target.c.id), 0) + 1
        connection.execute(select(func.setval(sequence, next_id, False)).select_from(target))


def count_rows(*, session: Session, tables: Iterable[str]) -> dict[str, int]:
    return {name: session.exec(select(func.count()).select_from(table(name))).one() for name in tables}


# Rows every migrated database has (the built-in calendar): they do not make it hold data.
BUILT_IN = {"calendars": "builtin"}


def has_rows(*, session: Session, tables: Iterable[str]) -> bool:
    def rows(name: str) -> Any:
        stmt = select(literal(1)).select_from(table(name))
        if name in BUILT_IN:
            stmt = stmt.where(column(BUILT_IN[name]).is_(False))
        return stmt.limit(1)

    return any(session.exec(rows(name)).first() for name in tables)
