"""Every response the HTTP tests get is checked against the OpenAPI schema: schema and behaviour
cannot drift apart again.

For a response to a documented operation: its status is one the operation documents; its body
validates against the schema documented for that status (schemathesis' validator); and every
header documented as `required` for that status is there. Responses to undocumented paths (the
docs pages, /metrics, unknown paths, unsupported methods) are not checked here.
"""

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from schemathesis.specs.openapi.schemas import OpenApiSchema

from app.main import app


@cache
def contract() -> OpenApiSchema:
    schema = schemathesis.openapi.from_dict(app.openapi())
    assert isinstance(schema, OpenApiSchema)
    return schema


class ContractViolation(AssertionError):
    pass


def check(method: str, url: str, response: Any) -> None:
    path = urlsplit(str(url)).path
    operation = contract().find_operation_by_path(method, path)
    if operation is None:
        return
    label = f"{method.upper()} {path} -> {response.status_code}"
    documented = operation.definition.raw.get("responses", {})
    answer = documented.get(str(response.status_code)) or documented.get(f"{str(response.status_code)[0]}XX")
    if answer is None:
        raise ContractViolation(f"{label}: status not documented ({', '.join(sorted(documented))})")
    for name, header in (answer.get("headers") or {}).items():
        if header.get("required") and name.lower() not in response.headers:
            raise ContractViolation(f"{label}: the documented header {name} is missing")
    try:
        operation.validate_response(response)
    except Exception as exc:  # schemathesis' FailureGroup: say which response, then what
        raise ContractViolation(f"{label}: the body does not match the schema: {exc}") from exc
