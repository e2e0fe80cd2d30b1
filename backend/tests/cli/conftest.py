from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from app.core import db
from app.core.config import get_settings
from tests.databases import scratch_database


@pytest.fixture
def point_cli_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Make the settings and the process-wide engine use DATABASE_URL=url (restored afterwards)."""
    previous = db.use_engine(None)

    def point(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        engine = db.use_engine(None)
        if engine is not None:
            engine.dispose()

    yield point
    engine = db.use_engine(previous)
    if engine is not None:
        engine.dispose()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def scratch_url(point_cli_at: Callable[[str], None]) -> Iterator[str]:
    """An empty throw-away database that the CLI points at."""
    with scratch_database() as url:
        point_cli_at(url)
        yield url
        point_cli_at("sqlite://")  # release the scratch database before it is dropped


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
