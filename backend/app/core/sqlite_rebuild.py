"""Rebuilding SQLite tables inside a migration, for the changes ALTER TABLE cannot make there (a
NOT NULL dropped or added, a CHECK changed, AUTOINCREMENT): SQLite's documented 12-step procedure,
keeping every row, index and trigger. Used by the migrations only."""

import re
from collections.abc import Callable, Sequence

from alembic import op


def rebuild_tables(
    tables: Sequence[str], transform: Callable[[str, str], str], *, keep: str | None = None
) -> None:
    """Rebuild `tables` (parents first) with `transform(table, CREATE TABLE sql)` applied; `keep`, a
    WHERE clause, leaves out the rows that do not match it (a downgrade dropping what the older
    schema cannot hold; append-only triggers are off during the rebuild). Foreign keys must be off (app/alembic/env.py turns them off for migrations and checks them before the
    commit)."""
    if op.get_context().as_sql:  # the rebuild reads the live schema: offline SQL cannot do it
        op.execute(f"-- rebuilding {', '.join(tables)} needs an online migration (db migrate)")
        return
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar() and any(
        bind.exec_driver_sql(f"SELECT 1 FROM {t} LIMIT 1").first() for t in tables
    ):
        raise RuntimeError("rebuilding tables that hold rows needs PRAGMA foreign_keys=OFF")
    master = "SELECT name, sql FROM sqlite_master WHERE type = ? AND tbl_name = ? AND sql IS NOT NULL"
    # Triggers name other tables; they are dropped first and made again at the end.
    triggers = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    ).all()
    for name, _sql in triggers:
        op.execute(f'DROP TRIGGER "{name}"')
    for table in tables:
        (ddl,) = bind.exec_driver_sql(master.replace("name, sql", "sql"), ("table", table)).one()
        indexes = bind.exec_driver_sql(master, ("index", table)).all()
        columns = ", ".join(
            f'"{row[1]}"' for row in bind.exec_driver_sql(f'PRAGMA table_info("{table}")').all()
        )  # table_info leaves out generated columns: they are computed again
        rebuilt = f"{table}__rebuild"
        where = f" WHERE {keep}" if keep else ""
        new_ddl = re.sub(
            rf'^CREATE TABLE\s+("?){table}\1\s*\(',
            f'CREATE TABLE "{rebuilt}" (',
            transform(table, ddl),
            count=1,
        )
        op.execute(new_ddl)
        op.execute(f'INSERT INTO "{rebuilt}" ({columns}) SELECT {columns} FROM "{table}"{where}')
        op.execute(f'DROP TABLE "{table}"')
        op.execute(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
        for _name, index_sql in indexes:
            op.execute(index_sql)
    for _name, trigger_sql in triggers:
        op.execute(trigger_sql)
