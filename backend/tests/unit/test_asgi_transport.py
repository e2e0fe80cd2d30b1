"""The one-call transport (tests/asgi_transport.py) gives the app what Starlette's TestClient gives."""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.asgi_transport import OneCallTransport


async def echo(request: Request) -> Response:
    scope = {key: request.scope[key] for key in ("path", "raw_path", "query_string", "client", "server")}
    return JSONResponse(
        {
            **{key: value.decode() if isinstance(value, bytes) else value for key, value in scope.items()},
            "method": request.method,
            "headers": sorted(request.headers.items()),
            "body": (await request.body()).decode(),
        },
        headers={"x-echo": "1"},
    )


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"chunk {n}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def crash(request: Request) -> Response:
    raise RuntimeError("the app failed")


app = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "HEAD"]),
        Route("/stream", stream),
        Route("/crash", crash),
    ]
)


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        plain, one_call = TestClient(app), TestClient(app)
        one_call._transport = OneCallTransport(one_call)
        one_call.portal = portal
        yield plain, one_call


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/echo/a%20b/c?x=1&y=%C3%A9", None),
        ("POST", "/echo/tickets", {"title": "Printer on fire", "priority": "high"}),
        ("GET", "/echo/x?", None),
    ],
)
def test_the_app_sees_the_same_request(
    clients: tuple[TestClient, TestClient], method: str, url: str, body: Any
) -> None:
    plain, one_call = clients
    expected = plain.request(method, url, json=body)
    got = one_call.request(method, url, json=body)
    assert got.status_code == expected.status_code == 200
    assert got.json() == expected.json()
    assert got.json()["client"] == ["testclient", 50000]
    assert got.headers["x-echo"] == "1"
    assert got.headers["content-length"] == expected.headers["content-length"]
    if body is not None:
        assert json.loads(got.json()["body"]) == body


def test_head_has_the_headers_and_no_body(clients: tuple[TestClient, TestClient]) -> None:
    plain, one_call = clients
    got = one_call.head("/echo/x")
    assert got.status_code == 200
    assert got.content == b""
    assert got.headers["content-length"] == plain.head("/echo/x").headers["content-length"]


def test_a_streamed_response_arrives_whole(clients: tuple[TestClient, TestClient]) -> None:
    _, one_call = clients
    got = one_call.get("/stream")
    assert got.status_code == 200
    assert got.text == "chunk 0\nchunk 1\nchunk 2\n"


def test_an_exception_in_the_app_reaches_the_test(clients: tuple[TestClient, TestClient]) -> None:
    _, one_call = clients
    with pytest.raises(RuntimeError, match="the app failed"):
        one_call.get("/crash")
