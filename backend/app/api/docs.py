"""The API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), with everything they load served
by this application (FastAPI's "self-hosting JavaScript and CSS for docs"), so that they work on a
network without internet.

The scripts, styles and favicon are the upstream swagger-ui-dist and ReDoc bundles shipped by the
fastapi-offline package (pinned in poetry.lock): only its static folder is used, mounted at
STATIC_URL. The pages load nothing from another origin: no CDN, no Google Fonts. Their
Content-Security-Policy is DOCS_POLICY (app.api.security_headers), which also blocks the one remote
load left in ReDoc's bundle, its footer logo (ReDoc then leaves the logo out).

Like FastAPI's own pages, they answer GET and HEAD and stay out of the OpenAPI document.
"""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
STATIC_URL = "/docs-static"
# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
ASSETS = Path(fastapi_offline.__file__).parent / "static"


def add_docs(application: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect, /redoc and their assets for `application`, which must be
    created with `docs_url=None, redoc_url=None` (FastAPI's own pages load everything from CDNs)."""
    assert application.docs_url is None and application.redoc_url is None
    assert application.openapi_url is not None
    openapi_url = application.openapi_url
    application.mount(STATIC_URL, StaticFiles(directory=ASSETS), name="docs-static")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{application.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=application.swagger_ui_init_oauth,
            swagger_ui_parameters=application.swagger_ui_parameters,
        )

    async def swagger_ui_oauth2_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{application.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    application.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    application.add_route(OAUTH2_REDIRECT_URL, swagger_ui_oauth2_redirect, include_in_schema=False)
    application.add_route(REDOC_URL, redoc, include_in_schema=False)
