"""Small pieces shared by the pure ASGI middlewares."""

from starlette.types import Message, Send


class ResponseTracker:
    """Wraps `send` and remembers whether the response has started (after which no other response
    can be sent: an error then can only drop the connection)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def send(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)
