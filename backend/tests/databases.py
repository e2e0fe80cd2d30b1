"""Where the tests keep their data: never the development database.

SQLite by default (a file in a temporary folder); PostgreSQL when TEST_DATABASE_URL is set.
`scratch_database()` makes a throw-away empty database on the same server for tests that
migrate, reset or seed a whole database.
"""

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import normalise_database_url

_tmp = Path(tempfile.mkdtemp(prefix="incident-desk-tests-"))


def test_database_url() -> str:
    raw = os.environ.get("TEST_DATABASE_URL")
    return normalise_database_url(raw) if raw else f"sqlite:///{_tmp / 'test.sqlite3'}"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


@contextmanager
def scratch_database() -> Iterator[str]:
    """An empty database, dropped afterwards: a new SQLite file, or a new PostgreSQL database."""
    base = test_database_url()
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    if not is_postgres(base):
        path = _tmp / f"{name}.sqlite3"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    url = make_url(base)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
