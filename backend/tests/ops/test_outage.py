"""Database outages: a dead connection never turns into a dropped response; the drill, on request."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from app.core import database
from app.core.config import BACKEND_DIR
from app.core.database import Database


class DyingSession:
    """A read session whose connection is gone by the time the request ends."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def close(self) -> None:
        raise self.error


def end_of_request(error: Exception) -> None:
    db = Database(database.create_async_db_engine("sqlite://"))
    db._session = DyingSession(error)  # type: ignore[assignment]
    asyncio.run(db.close())


def test_closing_a_session_whose_connection_died_is_not_an_error() -> None:
    died = OperationalError(
        "ROLLBACK", {}, Exception("server closed the connection"), connection_invalidated=True
    )
    end_of_request(died)  # the request is done: the close's error is dropped


def test_other_errors_on_close_still_surface() -> None:
    with pytest.raises(OperationalError, match="something else"):
        end_of_request(OperationalError("ROLLBACK", {}, Exception("something else")))


@pytest.mark.skipif(
    os.environ.get("OUTAGE_DRILL") != "1", reason="set OUTAGE_DRILL=1 (about 40 s per mode, own cluster)"
)
@pytest.mark.parametrize("mode", ["stop", "freeze"])
def test_outage_drill(mode: str) -> None:
    """scripts/outage_drill.py: its own PostgreSQL cluster, stopped (or frozen) and restarted under load."""
    script = Path(BACKEND_DIR, "scripts", "outage_drill.py")
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, str(script), "--mode", mode],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: PASS" in result.stdout
