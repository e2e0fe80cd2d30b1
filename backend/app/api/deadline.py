"""Every request under /api/v1 answers within API_REQUEST_TIMEOUT_SECONDS.

The database's own bounds (pool, lock, statement and connect timeouts: app.core.database) give a
503 in seconds when the database is slow, busy or down. One case escapes them all: a server that
stops answering without closing its connections (frozen processes, a hung host, a network that
drops packets silently). A query on such a connection waits forever. Here the request runs as a
task of its own; if it has not answered by the deadline, the client gets 503 "Database unavailable"
with Retry-After at once, and the task is cancelled and left to unwind in the background (the
driver then gives up on the connection, which the pool discards).
"""

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.error_body import error_response
from app.api.error_handlers import DATABASE_UNAVAILABLE

logger = logging.getLogger("app.errors")


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, prefix: str, seconds: float) -> None:
        self.app = app
        self.prefix = prefix
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = answered = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:  # the deadline has answered already: the late response goes nowhere
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        loop = asyncio.get_running_loop()
        task: asyncio.Future[None] = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        # Wake when the request is done or the deadline passes, whichever comes first (what
        # asyncio.wait does, without its per-call sets and callbacks: this is on every request).
        woken: asyncio.Future[None] = loop.create_future()
        task.add_done_callback(lambda _: _wake(woken))
        timer = loop.call_later(self.seconds, _wake, woken)
        try:
            await woken
        finally:
            timer.cancel()
        if task.done():
            task.result()  # its exception, if any, goes to the handlers outside
            return
        task.cancel()
        task.add_done_callback(_forget)
        logger.warning("request deadline passed (%s s): %s %s", self.seconds, scope["method"], scope["path"])
        if not started:
            answered = True
            await error_response(503, DATABASE_UNAVAILABLE, headers={"Retry-After": "5"})(
                scope, receive, send
            )


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def _forget(task: "asyncio.Future[None]") -> None:
    """Collect a cancelled request's outcome, so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
