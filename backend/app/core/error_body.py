"""The one shape of every error response: `{"detail": ..., "request_id": ...}` (+ extra fields).

`detail` is a message, or FastAPI's list of field errors for 422. `request_id` equals the
`X-Request-ID` response header, so a client can quote it and an operator can find the log lines.
"""

from collections.abc import Mapping
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app.core.request_context import current_request_id


class ErrorBody(BaseModel):
    """An error. Some errors add fields (e.g. `current_version` on 412, `allowed` on 409)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    request_id: str


def error_response(
    status_code: int, detail: Any, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"detail": detail, **extra, "request_id": current_request_id() or ""}
    return JSONResponse(jsonable_encoder(body), status_code=status_code, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries with the error body schema, e.g. error_responses(401, 503)."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS.get(code, "Error")} for code in codes}


DESCRIPTIONS = {
    400: "The request body could not be read (e.g. not UTF-8)",
    401: "Missing, invalid or expired bearer token",
    403: "Your role may not do this",
    404: "Not found (or not visible to you)",
    409: "Conflicts with the resource's current state",
    412: "If-Match names an older version",
    413: "Request body larger than MAX_BODY_BYTES",
    429: "Too many requests; see Retry-After",
    500: "Unexpected server error; quote the request_id",
    503: "Database unavailable, try again shortly",
}


def document_errors(schema: dict[str, Any]) -> None:
    """Declare in an OpenAPI document the errors every operation can answer, with this body.

    401 where a bearer token is required, 400 and 413 where there is a request body, 500 everywhere and
    503 under /api/v1 (every operation there reads the database); existing error entries without a
    body schema get this one (422 keeps FastAPI's HTTPValidationError).
    """
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            codes = [500]
            if operation.get("security"):
                codes.append(401)
            if "requestBody" in operation:
                codes.extend((400, 413))
            if path.startswith("/api/"):
                codes.append(503)
            for code in codes:
                responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code.startswith(("4", "5")) and code != "422" and "content" not in response:
                    response["content"] = content
