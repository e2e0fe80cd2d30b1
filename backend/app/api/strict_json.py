"""Request bodies are read as strict JSON: UTF-8 text, finite numbers, no lone surrogates.

Python's `json.loads` accepts what JSON (RFC 8259) and the rest of the stack do not: UTF-16 and
UTF-32 bytes, `NaN`, `Infinity` and numbers that overflow to infinity (`1e999999`), and `\\ud800`
escapes that decode to lone UTF-16 surrogates, which no database can store and no response can
encode. Every route of the API uses StrictJSONRoute, so such a body is refused where it enters:
bytes that are not UTF-8 answer 400 ("There was an error parsing the body"), and the rest answer
FastAPI's 422 `json_invalid` with the reason in `ctx.error`, before anything is validated or written.
"""

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# A \uD800-\uDFFF escape: the only way a lone surrogate gets into decoded text (raw surrogates
# cannot appear in valid UTF-8). Pairs are fine; only what is left unpaired after decoding is not.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite numbers ({name}) are not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def decode(body: bytes) -> Any:
    """The JSON value of `body`. UnicodeDecodeError for bytes that are not UTF-8 (a 400), and
    json.JSONDecodeError for anything else that is refused (FastAPI's 422 `json_invalid`)."""
    text = body.decode("utf-8")  # strict: UTF-16/32 and Latin-1 bodies are refused
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # from the hooks above, or an integer with too many digits
        raise json.JSONDecodeError(str(exc), text, 0) from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise json.JSONDecodeError("lone UTF-16 surrogates (e.g. \\ud800) are not text", text, 0)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose request body is decoded by `decode`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
