"""The API's routers, and the dependency overrides they share with the app.

Each router carries its full path (/api/v1/...) and the app takes their routes into its own route
table (app.main): FastAPI matches the routes of an included router twice per request (once to pick
the router, once to pick the route), which cost more than the user check's query. A route built
outside `include_router` takes its operation id function and its dependency overrides from its
router, so the routers name operations as the app does, and share one overrides mapping with it
(tests replace the request's database there).
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from app.api.openapi import operation_id
from app.api.strict_json import StrictJSONRoute
from app.core.config import API_V1_STR


class SharedOverrides:
    def __init__(self) -> None:
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}


OVERRIDES = SharedOverrides()


def api_router(path: str, tag: str, *, versioned: bool = True) -> APIRouter:
    """A router for `path` under /api/v1 (or at the root, `versioned=False`)."""
    return APIRouter(
        prefix=f"{API_V1_STR if versioned else ''}{path}",
        tags=[tag],
        route_class=StrictJSONRoute,
        dependency_overrides_provider=OVERRIDES,
        generate_unique_id_function=operation_id,
    )
