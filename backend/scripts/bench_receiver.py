"""A webhook receiver for scripts/bench_webhooks.py: answers every POST with 200, counts nothing.

.venv/bin/uvicorn scripts.bench_receiver:app --port 9999 --log-level warning
"""

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the body
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
