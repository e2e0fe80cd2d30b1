"""Request size limit: bodies over MAX_BODY_BYTES are refused with 413 before the app reads them.

A declared `Content-Length` over the limit is refused without reading anything. A body with no
length (chunked) is counted as it streams in, and refused as soon as it passes the limit.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.asgi import ResponseTracker
from app.api.error_body import error_response


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"Request body too large (limit {limit} bytes)")


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body: the app's
                    # handler answers it like any other error.
                    raise BodyTooLarge(self.max_bytes)
            return message

        response = ResponseTracker(send)
        try:
            await self.app(scope, counting_receive, response.send)
        except BodyTooLarge:
            if response.started:  # pragma: no cover - the app answered before reading all of its body
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, BodyTooLarge(self.max_bytes).detail, headers={"Connection": "close"})
        await response(scope, receive, send)
