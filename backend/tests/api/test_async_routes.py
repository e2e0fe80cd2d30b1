"""Every request under /api/v1 runs on the event loop: no endpoint and no dependency is a sync
`def` (FastAPI would run it in the threadpool, a hop each way). CPU-bound work (password hashing)
is offloaded explicitly inside async code (app.crud.users)."""

import inspect
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.core.config import API_V1_STR
from app.main import app


def runs_on_the_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    if inspect.isfunction(call) or inspect.isclass(call):
        return False
    return inspect.iscoroutinefunction(type(call).__call__)  # a callable instance (OAuth2PasswordBearer)


def calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from calls(sub)


def sync_parts(application: FastAPI) -> list[str]:
    """`METHOD path: function` for every sync endpoint or dependency under /api/v1."""
    found = []
    for route in application.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(API_V1_STR):
            continue
        for call in (route.endpoint, *calls(route.dependant)):
            if not runs_on_the_loop(call):
                name = getattr(call, "__qualname__", type(call).__qualname__)
                found.extend(f"{method} {route.path}: {name}" for method in sorted(route.methods))
    return found


def test_every_api_route_and_dependency_is_async() -> None:
    # The whole tree is inspected: every operation of the schema under /api/v1 is a route here.
    operations = sum(len(ops) for path, ops in app.openapi()["paths"].items() if path.startswith(API_V1_STR))
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith(API_V1_STR)]
    assert sum(len(r.methods) for r in routes) == operations >= 20
    assert sync_parts(app) == []


def test_the_check_finds_a_sync_endpoint_and_a_sync_dependency() -> None:
    probe = FastAPI()

    def sync_dependency() -> int:
        return 1

    async def fine() -> int:
        return 2

    @probe.get(f"{API_V1_STR}/sync")
    def sync_endpoint() -> None: ...

    @probe.get(f"{API_V1_STR}/async")
    async def async_endpoint(
        a: Annotated[int, Depends(sync_dependency)], b: Annotated[int, Depends(fine)]
    ) -> None: ...

    assert sync_parts(probe) == [
        f"GET {API_V1_STR}/sync: test_the_check_finds_a_sync_endpoint_and_a_sync_dependency.<locals>.sync_endpoint",
        f"GET {API_V1_STR}/async: test_the_check_finds_a_sync_endpoint_and_a_sync_dependency.<locals>.sync_dependency",
    ]
