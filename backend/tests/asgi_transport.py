"""The test client's HTTP requests, each in one call into the test's event loop.

Starlette's TestClient crosses from the test's thread into the loop eight times per request (two
events, a memory stream, a cancel scope, the app's task, the wait for the response, each body
chunk), which cost 1.8 ms of the 4.7 ms of CPU a `GET /users/me` took in a test: more than the app
itself spends on that request. Here the whole exchange (request body in, the app run to its end, the
response collected) is one `portal.call`. The scope is the one TestClient builds (client address
`testclient:50000`, host `testserver`), and an exception the app raises reaches the test as
TestClient's does (raise_server_exceptions=True). WebSocket requests still go through TestClient.
"""

from typing import Any
from urllib.parse import unquote

import anyio
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient

# starlette.testclient imports httpx2 (its own httpx) where it is installed: the client's types.
from starlette.testclient import httpx
from starlette.types import Message


class OneCallTransport(httpx.BaseTransport):
    def __init__(self, client: TestClient) -> None:
        self._client = client
        self._fallback: Any = client._transport  # TestClient's own: WebSockets, and no portal set

    def handle_request(self, request: Any) -> Any:
        portal: BlockingPortal | None = self._client.portal
        if portal is None or request.url.scheme not in ("http", "https"):
            return self._fallback.handle_request(request)
        body = request.read()
        status, headers, content = portal.call(self._exchange, request, body)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content), request=request)

    async def _exchange(self, request: Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        fallback = self._fallback
        url = request.url
        headers = [] if "host" in request.headers else [(b"host", url.netloc)]
        headers += [(key.lower().encode(), value.encode()) for key, value in request.headers.multi_items()]
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": request.method,
            "path": unquote(url.path),  # as TestClient does
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": fallback.root_path,
            "scheme": url.scheme,
            "query_string": url.query,
            "headers": headers,
            "client": fallback.client,
            "server": [url.host, url.port or {"http": 80, "https": 443}[url.scheme]],
            "state": dict(fallback.app_state),
        }
        sent = False
        done = anyio.Event()
        start: Message | None = None
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # a streaming response listens for the disconnect: not before its end
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                assert start is None, 'Received multiple "http.response.start" messages.'
                start = message
            elif message["type"] == "http.response.body":
                assert start is not None, 'Received "http.response.body" without "http.response.start".'
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        try:
            await fallback.app(scope, receive, send)
        except Exception:
            if fallback.raise_server_exceptions:
                raise
        finally:
            done.set()
        if start is None:
            if fallback.raise_server_exceptions:
                raise AssertionError("TestClient did not receive any response.")
            return 500, [], b""
        content = b"" if request.method == "HEAD" else b"".join(chunks)
        return (
            start["status"],
            [(key.decode(), value.decode()) for key, value in start.get("headers", [])],
            content,
        )
