"""The API's session dependency: safe methods get read-only sessions."""

import asyncio

import pytest
from sqlalchemy import Engine
from starlette.requests import Request

from app.api.deps import request_session
from app.core import db


@pytest.mark.parametrize(
    ("method", "read_only"),
    [("GET", True), ("HEAD", True), ("OPTIONS", True), ("POST", False), ("PATCH", False), ("DELETE", False)],
)
def test_safe_methods_get_read_only_sessions(engine: Engine, method: str, read_only: bool) -> None:
    async def bind_options() -> dict[str, object]:
        sessions = request_session(Request({"type": "http", "method": method, "headers": []}))
        session = await anext(sessions)
        options = dict(session.get_bind().get_execution_options())
        await sessions.aclose()  # closes the session in the threadpool
        return options

    assert asyncio.run(bind_options()).get(db.READ_ONLY, False) is read_only
