"""An interrupted seed leaves the empty migrated schema, never part of the data.

`db seed` runs as a real process, is caught while it inserts, and is killed (SIGKILL: no chance to
clean up) or stopped (SIGTERM, like Ctrl-C: it rolls back and says so).
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import migrations
from app.core.config import BACKEND_DIR
from tests.cli.conftest import SEEDED_TABLES, connect, count, revision, rows
from tests.coverage_hook import without_hook
from tests.databases import is_postgres, scratch_database

BIN = Path(sys.executable).parent


def seed_process(url: str, tickets: int, *, measured: bool = True) -> subprocess.Popen[str]:
    """`db seed` as a process; `measured=False` for one that will be killed with SIGKILL (it never
    saves its coverage data: measuring it would only slow it down, tests/coverage_hook.py)."""
    env = {k: v for k, v in (os.environ if measured else without_hook()).items() if k != "TEST_DATABASE_URL"}
    env.update(DATABASE_URL=url, PYTHONUNBUFFERED="1", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    command = ["db", "seed", "--yes", "--tickets", str(tickets), "--users", "300", "--seed", "5"]
    return subprocess.Popen(
        command, cwd=BACKEND_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until_inserting(process: subprocess.Popen[str], url: str) -> None:
    """Past the reset, and rows are being written (COPY running / the write-ahead log growing)."""
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "inserting" in line, line + (process.stderr.read() if process.stderr else "")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "the seed finished before it could be interrupted"
        if writing(url):
            time.sleep(0.3)
            return
        time.sleep(0.05)
    pytest.fail("the seed never started writing rows")


def writing(url: str) -> bool:
    if is_postgres(url):
        with connect(url) as conn:
            sql = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND left(query, 4) = 'COPY'"
            )
            return bool(conn.exec_driver_sql(sql).scalar())
    wal = Path(url.removeprefix("sqlite:///") + "-wal")
    return wal.exists() and wal.stat().st_size > 2_000_000


@pytest.fixture
def url() -> Iterator[str]:
    with scratch_database() as scratch:
        yield scratch


def tickets_for(url: str) -> int:
    return 40_000 if is_postgres(url) else 15_000


def assert_empty_migrated_schema(url: str) -> None:
    assert revision(url) == migrations.head_revision()
    for table in SEEDED_TABLES:
        # The built-in "24x7" calendar is the migration's: the empty schema has it.
        held = (
            count(url, table)
            if table != "calendars"
            else rows(url, "SELECT count(*) FROM calendars WHERE NOT builtin")[0][0]
        )
        assert held == 0, table
    with connect(url) as conn:
        assert migrations.schema_differences(conn) == []  # indexes and foreign keys all there


def test_killed_seed_leaves_the_empty_migrated_schema(url: str) -> None:
    process = seed_process(url, tickets_for(url), measured=False)
    try:
        wait_until_inserting(process, url)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert_empty_migrated_schema(url)
    # What the kill leaves is a normal database: the next seed fills it with the full count.
    again = seed_process(url, 50)
    _out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert count(url, "tickets") == 50


def test_stopped_seed_rolls_back_and_says_so(url: str) -> None:
    process = seed_process(url, tickets_for(url))
    try:
        wait_until_inserting(process, url)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: interrupted: nothing was committed; the database holds the empty migrated schema"
    ]
    assert "Traceback" not in err
    assert_empty_migrated_schema(url)
