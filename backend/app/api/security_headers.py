"""Conservative security headers on every response (OWASP's REST and secure-headers advice).

- `X-Content-Type-Options: nosniff`: a browser never guesses a type other than the declared one;
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: nothing here may be framed;
- `Referrer-Policy: no-referrer`: URLs (ticket ids, filters) never leak to other sites;
- `Content-Security-Policy: default-src 'none'` on everything but the documentation pages (JSON
  needs no scripts, styles or images; the docs pages get DOCS_POLICY). That includes the docs'
  scripts and styles under /docs-static: a response's own policy does not bind the page that
  loads it, and opened directly nothing in them may run or load;
- `Cache-Control: no-store` on API responses that did not choose their own: ticket data and tokens
  stay out of shared caches and browser history;
- `Strict-Transport-Security` when the request came over HTTPS (as seen by the server, or its
  trusted proxy: FORWARDED_ALLOW_IPS).

The `server` banner is not sent: the servers run with `--no-server-header` (an ASGI app cannot
remove a header its server adds).
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.docs import DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL
from app.core.config import API_V1_STR

DOCS_PATHS = frozenset({DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL})
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The documentation pages (app.api.docs) run Swagger UI and ReDoc served by this application only:
# their scripts and FastAPI's inline setup script, their stylesheet and the styles ReDoc injects,
# data: images, ReDoc's search worker (blob:), and fetches of the schema and "Try it out" requests.
# Nothing from another origin (ReDoc's footer logo from its CDN is blocked; ReDoc then omits it).
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, docs_policy: str = DOCS_POLICY) -> None:
        self.app = app
        self.docs_policy = docs_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        policy = self.docs_policy if path in DOCS_PATHS else API_POLICY
        is_api = path.startswith(API_V1_STR)
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", policy)
                if is_api:
                    headers.setdefault("Cache-Control", "no-store")
                if secure:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
