"""Where the tests keep their data: never the development database.

SQLite by default (a file in a temporary folder, removed when the run ends); PostgreSQL when
TEST_DATABASE_URL is set. The suite runs in parallel (pytest-xdist): each worker process gets a
database of its own, `<name>_<worker>` on PostgreSQL, created when the run starts and dropped when
it ends; the database TEST_DATABASE_URL names is created too when it does not exist yet.
`scratch_database()` makes a throw-away empty database on the same server for tests that migrate,
reset or seed a whole database.
"""

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app.core.config import normalise_database_url

_tmp = Path(tempfile.mkdtemp(prefix="incident-desk-tests-"))
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist; "" otherwise


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _create_if_missing(url: URL) -> None:
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database})
            if exists.first() is None:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def _drop(url: URL) -> None:
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_database_url() -> str:
    """This process's test database (created if missing); the same value on every call."""
    global _chosen
    if _chosen is not None:
        return _chosen
    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        _chosen = f"sqlite:///{_tmp / 'test.sqlite3'}"
        return _chosen
    url = make_url(normalise_database_url(raw))
    _create_if_missing(url)  # a TEST_DATABASE_URL that names a new database is fine
    if WORKER:
        url = url.set(database=f"{url.database}_{WORKER}")
        _drop(url)  # left over by an interrupted run
        _create_if_missing(url)
        atexit.register(_drop, url)
    _chosen = url.render_as_string(hide_password=False)
    return _chosen


_chosen: str | None = None


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
