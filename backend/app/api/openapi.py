"""The OpenAPI document as a contract that generated clients read well.

- Operation ids are the route functions' names (`list_tickets`, `move_ticket`), not FastAPI's
  `list_tickets_api_v1_tickets__get`.
- Each operation declares what it can answer and nothing else: `answers(...)` in the route
  decorators names the errors (one body model per kind: app.models ApiError, InvalidRequestError,
  StaleVersionError, MoveRefusedError, ...) and the response headers a client relies on (ETag,
  Location, Idempotent-Replayed, Retry-After, WWW-Authenticate). `complete()` adds what every
  operation shares: X-Request-ID on every response, 500 everywhere, 401, 403 and 429 where a token is
  needed (an API token's scopes and rate limit), 400
  and 413 where there is a body, 503 under /api/v1, and the 422 body model instead of FastAPI's.
- Query parameters reference the shared enums; the sort enum names its members for code generators
  (`x-enum-varnames`: `created_at_desc` rather than `VALUE_1`).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.api.context_middleware import REQUEST_ID_HEADER
from app.core.config import API_V1_STR
from app.models import ApiError, InvalidRequestError, StaleVersionError, TicketSort

REF = "#/components/schemas/"


def operation_id(route: APIRoute) -> str:
    """The route function's name: short, and unique (tests/api/test_contract.py checks it)."""
    return route.name


# `required`: sent with every response the header is declared on.
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": 'The ticket\'s version, e.g. `"3"`: send it back in If-Match to refuse lost updates.',
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The URL of the created resource.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with the same "
        "Idempotency-Key (nothing was written again).",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer"},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`: how to authenticate.",
        "required": True,
        "schema": {"type": "string"},
    },
    REQUEST_ID_HEADER: {
        "description": "The request's id (the client's, when well-formed, else a new one); also in logs "
        "and in error bodies.",
        "required": True,
        "schema": {"type": "string"},
    },
}

DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8), or the login was refused",
    401: "Missing, invalid, expired or revoked bearer token",
    403: "Your role (or your API token's scopes) may not do this",
    404: "Not found (or not visible to you)",
    409: "Conflicts with the resource's current state",
    412: "If-Match names an older version",
    413: "Request body larger than MAX_BODY_BYTES",
    422: "The request's parameters or body are not valid",
    429: "Too many attempts, or an API token's rate limit reached; see Retry-After",
    500: "Unexpected server error; quote the request_id",
    503: "Database unavailable (or not migrated); see Retry-After",
}
MODELS: dict[int, type[BaseModel]] = {412: StaleVersionError, 422: InvalidRequestError}
ERROR_HEADERS: dict[int, list[str]] = {401: ["WWW-Authenticate"], 429: ["Retry-After"], 503: ["Retry-After"]}

Error = int | tuple[int, type[BaseModel]] | tuple[int, type[BaseModel], Sequence[str]]


def answers(
    *errors: Error, status: int = 200, headers: Iterable[str] = ()
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: its success `status` with `headers`, and its errors.

    An error is a status (its usual model), `(status, model)` or `(status, model, headers)`.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    if names := list(headers):
        responses[status] = {"headers": {name: HEADERS[name] for name in names}}
    for error in errors:
        code, model, extra = (error, None, ()) if isinstance(error, int) else (*error, ())[:3]
        responses[code] = {
            "model": model or MODELS.get(code, ApiError),
            "description": DESCRIPTIONS[code],
            "headers": {name: HEADERS[name] for name in [*ERROR_HEADERS.get(code, []), *extra]},
        }
    return responses


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add what every operation shares (see the module docstring); returns `schema`."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ApiError, InvalidRequestError):  # the routes' answers() usually brought them already
        definition = model.model_json_schema(ref_template=REF + "{model}", mode="serialization")
        schemas.update(definition.pop("$defs", {}))
        schemas.setdefault(model.__name__, definition)
    schemas["TicketSort"] = {
        "type": "string",
        "enum": [member.value for member in TicketSort],
        "x-enum-varnames": [member.name for member in TicketSort],
        "title": "TicketSort",
        "description": TicketSort.__doc__ or "",
    }
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            shared = [500]
            if operation.get("security"):  # an API token may lack the scope, or reach its rate limit
                shared.extend((401, 403, 429))
            if "requestBody" in operation:
                shared.extend((400, 413))
            if path.startswith(API_V1_STR):
                shared.append(503)
            for code, answer in answers(*(c for c in shared if str(c) not in responses)).items():
                responses[str(code)] = _with_content(answer)
            for code, response in responses.items():
                _fix_validation_error(response)
                if code.startswith(("4", "5")) and "content" not in response:
                    response.update(_with_content({"model": ApiError}))
                response.setdefault("headers", {})[REQUEST_ID_HEADER] = HEADERS[REQUEST_ID_HEADER]
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's own, replaced by ours
        schemas.pop(name, None)
    return schema


def _with_content(answer: dict[str, Any]) -> dict[str, Any]:
    model = answer.pop("model", None)
    if model is not None:
        answer["content"] = {"application/json": {"schema": {"$ref": REF + model.__name__}}}
    answer.setdefault("description", "Error")
    return answer


def _fix_validation_error(response: dict[str, Any]) -> None:
    """FastAPI's HTTPValidationError -> InvalidRequestError (ours has request_id and typed fields)."""
    for media in response.get("content", {}).values():
        if media.get("schema", {}).get("$ref") == REF + "HTTPValidationError":
            media["schema"] = {"$ref": REF + InvalidRequestError.__name__}
