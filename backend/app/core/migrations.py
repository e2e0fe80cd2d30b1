"""Alembic, driven from Python: the one place the API, the CLI and the tests run migrations.

Also the operations on a whole schema that `db migrate`, `db reset` and `db seed` need: what state
a database is in, how its tables differ from the migrations, stamping, dropping everything, and
deferring indexes and foreign keys during a bulk load.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, column, insert, inspect, table, update

from app.core.config import BACKEND_DIR

ALEMBIC_INI = BACKEND_DIR / "alembic.ini"


def alembic_config(database_url: str | None = None, *, connection: Connection | None = None) -> Config:
    """Config for backend/alembic.ini; env.py uses `database_url` (default: the settings)."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(Path(BACKEND_DIR, "app", "alembic")))
    config.attributes["configure_logger"] = False
    if database_url:
        config.attributes["database_url"] = database_url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# What a query says when a table or column it needs is missing: SQLite's messages, PostgreSQL's codes.
_MISSING_SCHEMA_TEXT = ("no such table", "no such column")
_MISSING_SCHEMA_CODES = frozenset({"42P01", "42703"})  # undefined_table, undefined_column


def missing_schema(exc: BaseException) -> bool:
    """Whether a database error says the schema lacks a table or column (not migrated to head)."""
    original = getattr(exc, "orig", None)
    if getattr(original, "sqlstate", None) in _MISSING_SCHEMA_CODES:
        return True
    return any(text in str(original or "") for text in _MISSING_SCHEMA_TEXT)


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@cache
def head_revisions() -> tuple[str, ...]:
    """The migrations' heads, read once per process (the scripts do not change while it runs)."""
    return tuple(script_directory().get_heads())


class SeveralHeads(RuntimeError):
    """The migration history has more than one head (the `db` command exits 4)."""


def head_revision() -> str:
    """The single head; more than one head is a broken migration history (SeveralHeads)."""
    heads = head_revisions()
    if len(heads) != 1:
        raise SeveralHeads(f"the migrations have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


# --- Whole-schema operations (db migrate, db reset, db seed) --------------------------------------

VERSION_TABLE = "alembic_version"


def table_names(connection: Connection) -> list[str]:
    """The tables in the database's default schema, alembic's version table included."""
    return sorted(inspect(connection).get_table_names())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


SchemaState = Literal["empty", "versioned", "unversioned"]


def schema_state(connection: Connection) -> SchemaState:
    """empty: no tables but alembic's; versioned: alembic has a revision; unversioned: tables
    made without alembic (by hand, or an older tool)."""
    if current_revision(connection) is not None:
        return "versioned"
    return "unversioned" if set(table_names(connection)) - {VERSION_TABLE} else "empty"


def schema_differences(connection: Connection) -> list[str]:
    """How the database's schema differs from what the migrations produce, one line per difference.

    alembic's autogenerate comparison run through env.py, so with exactly the options `alembic check`
    uses (what it compares and what it leaves alone): tables, columns, types, nullability, indexes,
    unique and foreign-key constraints. It does not see triggers, functions or CHECK constraints.
    """
    config = alembic_config(connection=connection)
    script = ScriptDirectory.from_config(config)
    found: list[Any] = []

    def compare(_heads: Any, context: MigrationContext) -> list[Any]:
        found.extend(compare_metadata(context, context.opts["target_metadata"]))
        return []  # nothing to run

    with EnvironmentContext(config, script, fn=compare):
        script.run_env()
    return [_describe(diff) for diff in _flatten(found)]


def _flatten(diffs: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    for diff in diffs:
        if isinstance(diff, list):
            yield from _flatten(diff)
        else:
            yield tuple(diff)


def _describe(diff: tuple[Any, ...]) -> str:
    kind = diff[0]
    match kind:
        case "add_table":
            return f"table {diff[1].name}: missing"
        case "remove_table":
            return f"table {diff[1].name}: not in the migrations"
        case "add_column":
            return f"column {diff[2]}.{diff[3].name}: missing"
        case "remove_column":
            return f"column {diff[2]}.{diff[3].name}: not in the migrations"
        case "add_index" | "add_constraint" | "add_fk":
            return f"{_what(diff[1])} on {diff[1].table.name}: missing"
        case "remove_index" | "remove_constraint" | "remove_fk":
            return f"{_what(diff[1])} on {diff[1].table.name}: not in the migrations"
        case "modify_type":
            return f"column {diff[2]}.{diff[3]}: type {diff[5]}, the migrations have {diff[6]}"
        case "modify_nullable":
            wanted = "NULL" if diff[6] else "NOT NULL"
            return f"column {diff[2]}.{diff[3]}: {'NULL' if diff[5] else 'NOT NULL'}, the migrations have {wanted}"
        case "modify_default":
            return f"column {diff[2]}.{diff[3]}: default {diff[5]!r}, the migrations have {diff[6]!r}"
    return f"{kind}: {' '.join(str(part) for part in diff[1:])}"


def _what(item: Any) -> str:
    kind = {
        "Index": "index",
        "UniqueConstraint": "unique constraint",
        "ForeignKeyConstraint": "foreign key",
    }.get(type(item).__name__, type(item).__name__)
    return f"{kind} {item.name}" if item.name else kind


def stamp_head(connection: Connection) -> str:
    """Record the head revision on an unversioned schema (in alembic's table and db_metadata)."""
    head = head_revision()
    command.stamp(alembic_config(connection=connection), head)
    if "db_metadata" in table_names(connection):
        metadata = table("db_metadata", column("id"), column("version"))
        updated = connection.execute(update(metadata).where(metadata.c.id == 1).values(version=head))
        if updated.rowcount == 0:
            connection.execute(insert(metadata).values(id=1, version=head))
    return head


def drop_everything(connection: Connection) -> None:
    """Drop every table (alembic's too), view, sequence, function and type in the default schema.

    Inside the caller's transaction: on PostgreSQL and SQLite DDL is transactional, so a failure or
    a kill leaves the database as it was.
    """
    if connection.dialect.name == "postgresql":
        for statement in _postgres_drops(connection):
            connection.exec_driver_sql(statement)
        return
    _sqlite_drop_everything(connection)


def _sqlite_drop_everything(connection: Connection) -> None:
    connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # checked at commit, when all is gone
    listing = "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'table') AND name NOT LIKE 'sqlite_%'"
    objects = connection.exec_driver_sql(listing).all()
    for kind, name, _sql in objects:
        if kind == "view":
            connection.exec_driver_sql(f"DROP VIEW IF EXISTS {_quote(connection, name)}")
    for kind, name, definition in objects:  # virtual tables (FTS) take their shadow tables along
        if kind == "table" and (definition or "").upper().startswith("CREATE VIRTUAL TABLE"):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_quote(connection, name)}")
    ordered = [name for name, _fks in inspect(connection).get_sorted_table_and_fkc_names() if name]
    for name in reversed(ordered):  # children before their parents
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_quote(connection, name)}")


# The default schema's own objects (not those of extensions), as DROP statements.
_POSTGRES_OBJECTS = """
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
       quote_ident(c.relname)
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'SEQUENCE', quote_ident(c.relname)
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
       p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = current_schema()::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, quote_ident(t.typname)
FROM pg_type t
WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
"""


def _postgres_drops(connection: Connection) -> list[str]:
    rows = connection.exec_driver_sql(_POSTGRES_OBJECTS).all()
    # Tables and views first (CASCADE takes their triggers, owned sequences and dependent views).
    order = ["VIEW", "MATERIALIZED VIEW", "TABLE", "SEQUENCE", "FUNCTION", "PROCEDURE", "AGGREGATE"]
    rank = {kind: n for n, kind in enumerate(order)}
    rows = sorted(rows, key=lambda row: rank.get(row[0], len(order)))
    return [f"DROP {kind} IF EXISTS {name} CASCADE" for kind, name in rows]


def reset(connection: Connection) -> str:
    """Drop everything and migrate to head, in the caller's transaction; returns the head."""
    head = head_revision()
    drop_everything(connection)
    command.upgrade(alembic_config(connection=connection), head)
    return head


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


@contextmanager
def indexes_deferred(connection: Connection, tables: Sequence[str]) -> Iterator[None]:
    """PostgreSQL: drop the secondary indexes and foreign keys of `tables`; recreate them on exit.

    For bulk loads in one transaction: building an index once and checking a foreign key with one
    join costs far less than maintaining them row by row. The definitions are read from the catalog
    first, so exactly what was there comes back. If the body raises, nothing is recreated: rolling
    back the caller's transaction restores them. A no-op on other databases.
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    indexes: list[str] = []
    foreign_keys: list[str] = []
    for name in tables:
        quoted = _quote(connection, name)
        for index_name, definition in connection.exec_driver_sql(_SECONDARY_INDEXES, (quoted,)).all():
            connection.exec_driver_sql(f"DROP INDEX {_quote(connection, index_name)}")
            indexes.append(definition)
        for fk_name, definition in connection.exec_driver_sql(_FOREIGN_KEYS, (quoted,)).all():
            connection.exec_driver_sql(f"ALTER TABLE {quoted} DROP CONSTRAINT {_quote(connection, fk_name)}")
            foreign_keys.append(
                f"ALTER TABLE {quoted} ADD CONSTRAINT {_quote(connection, fk_name)} {definition}"
            )
    yield
    for statement in [*indexes, *foreign_keys]:
        connection.exec_driver_sql(statement)


_SECONDARY_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""
_FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'
ORDER BY conname
"""
