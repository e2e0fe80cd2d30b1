"""The one shape of every error response: `{"detail": ..., "request_id": ...}` (+ extra fields).

`detail` is a message, or FastAPI's list of field errors for 422. `request_id` equals the
`X-Request-ID` response header, so a client can quote it and an operator can find the log lines.
"""

from collections.abc import Mapping
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.core.request_context import current_request_id


def error_response(
    status_code: int, detail: Any, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"detail": detail, **extra, "request_id": current_request_id() or ""}
    return JSONResponse(jsonable_encoder(body), status_code=status_code, headers=headers)
