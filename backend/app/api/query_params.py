"""A whole query string validated into one pydantic model, as a dependency, with its OpenAPI parameters.

FastAPI's own query-parameter models (`Annotated[Model, Query()]`) re-inspect every field's
annotation on each request; on the ticket list, with 15 parameters, that cost more than its SQL. This
validates the query string in one `model_validate` call instead, answers the same 422s (locations
start with "query"), and documents the same parameters, generated from the same model.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, get_origin, overload

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.constants import REF_PREFIX
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P")


@overload
def query_model(model: type[M]) -> Callable[[Request], Awaitable[M]]: ...
@overload
def query_model(model: type[M], then: Callable[[M], P]) -> Callable[[Request], Awaitable[P]]: ...
def query_model(
    model: type[M], then: Callable[[M], Any] | None = None
) -> Callable[[Request], Awaitable[Any]]:
    """A dependency: the request's query string as `model`, or what `then` makes of it. List fields
    take every value given (`?status=open&status=on_hold`); other fields take the last one.

    `then` works out what the query means (e.g. app.ticket_query.ListPlan): its ValueError is a 422
    exactly like one from the model's own validators, so rules that need that work (parsing a search,
    checking a cursor) are checked once, by the code that uses the result."""
    repeatable = frozenset(
        name for name, field in model.model_fields.items() if get_origin(field.annotation) is list
    )

    async def parse(request: Request) -> Any:  # no I/O: runs on the event loop, no thread hop
        params = request.query_params
        data = {name: params.getlist(name) if name in repeatable else params[name] for name in params}
        try:
            validated = model.model_validate(data)
            return validated if then is None else then(validated)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        except ValueError as exc:  # from `then`: as pydantic reports a model validator's
            error = InitErrorDetails(type="value_error", loc=(), input=data, ctx={"error": exc})
            errors = ValidationError.from_exception_data(model.__name__, [error]).errors(include_url=False)
        raise RequestValidationError([{**error, "loc": ("query", *error["loc"])} for error in errors])

    return parse


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI `parameters` of `model`'s fields, each an optional query parameter. Enums are
    references to the shared components (TicketStatus, Priority, TicketSort: app.api.openapi makes
    sure they exist), so generated clients use one type for them everywhere."""
    schema = model.model_json_schema(ref_template=f"{REF_PREFIX}{{model}}")
    parameters = []
    for name, field_schema in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": False, "schema": field_schema}
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        parameters.append(parameter)
    return parameters
