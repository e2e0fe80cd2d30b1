"""A database that answers but was never migrated: the API says so and names the fix.

Every request that needs the schema answers 503 "Database schema is not at head; run `db migrate`"
(not "Database unavailable"), with one warning line each naming the revision, and the server says
it once at startup, so a bare `uvicorn` on a fresh clone (or the VS Code debug configuration)
points the user at the fix.
"""

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.core import database, migrations, security
from app.core.config import get_settings
from app.main import app
from tests.databases import scratch_database
from tests.utils import API, error_body


@pytest.fixture
def unmigrated() -> Iterator[str]:
    """The app pointed at an empty database (no tables), restored afterwards."""
    with scratch_database() as url:
        previous = database.use_async_engine(database.create_async_db_engine(url))
        try:
            yield url  # the app's shutdown (end of `with TestClient(app)`) disposes the engine
        finally:
            database.use_async_engine(previous)


def test_an_unmigrated_database_answers_503_naming_the_fix(
    unmigrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = security.create_access_token(
        1, "0" * 32, secret=get_settings().SECRET_KEY, expires=timedelta(minutes=5)
    )
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        startup = [
            r.getMessage() for r in caplog.records if r.name == "app.startup" and "schema" in r.getMessage()
        ]
        caplog.clear()
        response = client.get(f"{API}/tickets/", headers={"Authorization": f"Bearer {token}"})
        login = client.post(f"{API}/login/access-token", data={"username": "a@example.com", "password": "x"})
    head = migrations.head_revision()
    assert startup == [
        f"database schema at base (empty), head {head}: the API answers 503 until `db migrate` runs"
    ]
    for answer in (response, login):
        assert answer.status_code == 503, answer.text
        assert error_body(answer) == {"detail": "Database schema is not at head; run `db migrate`"}
        assert answer.headers["retry-after"] == "10"
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.errors"]
    assert warnings == [f"database schema at base (empty), head {head}: run `db migrate`"] * 2
    assert not [r for r in caplog.records if r.exc_info]  # no traceback


def test_a_database_at_an_older_revision_names_it(unmigrated: str, caplog: pytest.LogCaptureFixture) -> None:
    head = migrations.script_directory().get_current_head()
    older = "0005"  # users exist, but not users.auth_stamp (0006), which the user check reads
    migrations.upgrade(unmigrated, older)
    token = security.create_access_token(
        1, "0" * 32, secret=get_settings().SECRET_KEY, expires=timedelta(minutes=5)
    )
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        response = client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert error_body(response)["detail"] == "Database schema is not at head; run `db migrate`"
    assert f"database schema at {older}, head {head}: run `db migrate`" in caplog.text
