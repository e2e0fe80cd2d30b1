"""The API docs work on a network without internet: /docs (Swagger UI) and /redoc (ReDoc) load their
scripts, styles and images from the application, render every operation in a real browser (Debian's
headless Chromium) that cannot reach any host but the test server, under their Content-Security-Policy,
and Swagger UI's Authorize logs in.

The browser tests are skipped only when there is no `chromium` (scripts/ci-chromium.sh installs it).
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import ClientConnection, connect

from app.api.docs import STATIC_URL
from app.api.security_headers import API_POLICY, DOCS_POLICY
from app.core import migrations
from app.core.config import BACKEND_DIR
from scripts.benchkit import BIN, dockerfile_command, free_port, wait_until_healthy
from tests.databases import scratch_database
from tests.utils import API

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no `chromium` on PATH to render /docs and /redoc (bash scripts/ci-chromium.sh installs it)",
)
# No name resolves but the test server's address: every fetch from another origin fails.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    OFFLINE,
]
DOCS_PAGES = ["/docs", "/redoc"]


# --- The pages and their assets, in-process -----------------------------------------------------


CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)|@import\s+['\"]([^'\"]+)")


class Resources(HTMLParser):
    """The URLs a page loads from its markup: scripts, stylesheets, icons, images, frames, media."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"])
        if tag != "a" and found.get("src"):
            self.urls.append(found["src"])
        self.urls += [part.split()[0] for part in found.get("srcset", "").split(",") if part.strip()]
        self.urls += [a or b for a, b in CSS_URL.findall(found.get("style", ""))]
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.urls += [a or b for a, b in CSS_URL.findall(data)]


def resources(html: str) -> list[str]:
    parser = Resources()
    parser.feed(html)
    return parser.urls


def remote(urls: list[str], origin: str) -> list[str]:
    """The URLs that name another origin (absolute or scheme-relative, not `origin`)."""
    return [
        url
        for url in urls
        if re.match(r"([a-z][a-z0-9+.-]*:)?//", url, re.I) and not url.startswith(origin + "/")
    ]


def test_the_docs_pages_load_only_the_applications_own_assets(client: TestClient) -> None:
    for page in DOCS_PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-security-policy"] == DOCS_POLICY
        assert "fonts.googleapis.com" not in response.text
        urls = resources(response.text)
        assert len(urls) >= 2, urls  # the script (and stylesheet) and the favicon
        assert all(url.startswith(f"{STATIC_URL}/") for url in urls), urls
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-security-policy"] == API_POLICY  # nothing runs if opened
            kind = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
            assert asset.headers["content-type"].startswith(kind), url
        assert client.head(page).status_code == 200, page


def test_swagger_ui_is_set_up_for_the_oauth2_password_flow(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in page
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "swaggerUIRedirectOauth2" in redirect.text
    assert redirect.headers["content-security-policy"] == DOCS_POLICY
    schema = client.get(f"{API}/openapi.json").json()
    password_flow = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
    assert password_flow["tokenUrl"] == f"{API}/login/access-token"


def test_the_docs_routes_stay_out_of_the_schema(client: TestClient) -> None:
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]


# --- In a real browser, offline -------------------------------------------------------------------


@dataclass
class DocsServer:
    base: str
    email: str
    password: str
    operations: list[tuple[str, str]]  # (first tag, operationId) of every documented operation


@pytest.fixture(scope="module")
def docs_server() -> Iterator[DocsServer]:
    """The container's command on a scratch database with one admin account."""
    with scratch_database() as url:
        migrations.upgrade(url)
        env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
        env.update(DATABASE_URL=url, LOG_LEVEL="WARNING")
        email, password = "docs-reader@example.com", "Quartz-Lantern-Meadow-42"
        subprocess.run(
            [BIN / "db", "create-superuser", "--email", email, "--password", password],
            cwd=BACKEND_DIR,
            env=env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        server = subprocess.Popen(
            dockerfile_command(port),
            cwd=BACKEND_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert wait_until_healthy(base, server), "the server did not start"
            schema = httpx.get(f"{base}{API}/openapi.json").json()
            operations = [
                (operation["tags"][0], operation["operationId"])
                for methods in schema["paths"].values()
                for operation in methods.values()
            ]
            yield DocsServer(base, email, password, operations)
        finally:
            server.terminate()
            server.wait(timeout=15)


@dataclass
class Rendered:
    dom: str
    console: list[str]  # the page's console messages, CSP violations included


def start_chromium(profile: str, *args: str, output: int = subprocess.PIPE) -> "subprocess.Popen[str]":
    assert CHROMIUM is not None
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    # Its own session: stop_chromium ends the helper processes too, before the profile is removed.
    return subprocess.Popen(command, stdout=output, stderr=output, text=True, start_new_session=True)


def stop_chromium(browser: "subprocess.Popen[str]") -> None:
    """End Chromium and its helper processes (what is left of them, after --dump-dom)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(browser.pid, signal.SIGTERM)
    browser.communicate(timeout=15)


def render(url: str) -> Rendered:
    """The page's DOM once its scripts have run (headless Chromium's --dump-dom), and its console."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = start_chromium(
            profile, "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0", "--dump-dom", url
        )
        try:
            dom, log = browser.communicate(timeout=60)
        finally:
            stop_chromium(browser)
    assert browser.returncode == 0, log[-2000:]
    console = re.findall(r":CONSOLE(?:\(\d+\)|:\d+)\] \"(.*)\", source: ", log)
    return Rendered(dom, console)


def blocked_own_content(console: list[str], origin: str) -> list[str]:
    """CSP violations that stopped something of the page's own: a script, style, image, worker or
    fetch of this origin, inline or data:/blob:. (Loads from other origins must be blocked.)"""
    blocked = []
    for message in console:
        if "Content Security Policy" not in message:
            continue
        named = re.match(r"[\w ]+ '([^']+)' violates", message)
        if named and remote([named.group(1)], origin):
            continue
        blocked.append(message)
    return blocked


def check_offline_page(rendered: Rendered, origin: str) -> None:
    assert not remote(resources(rendered.dom), origin), remote(resources(rendered.dom), origin)
    assert not blocked_own_content(rendered.console, origin), rendered.console
    assert not [message for message in rendered.console if "Uncaught" in message], rendered.console


@needs_chromium
def test_swagger_ui_renders_every_operation_offline(docs_server: DocsServer) -> None:
    page = render(f"{docs_server.base}/docs")
    dom = page.dom
    assert 'id="operations-tag-tickets"' in dom
    assert re.search(r'<button class="btn authorize[^"]*"><span>Authorize</span>', dom), dom[:2000]
    missing = [op for op in docs_server.operations if f'id="operations-{op[0]}-{op[1]}"' not in dom]
    assert not missing, missing
    check_offline_page(page, docs_server.base)


@needs_chromium
def test_redoc_renders_every_operation_offline(docs_server: DocsServer) -> None:
    page = render(f"{docs_server.base}/redoc")
    dom = page.dom
    assert re.search(r'class="[^"]*\bredoc-wrap\b', dom), dom[:2000]
    assert 'aria-label="List Tickets"' in dom
    missing = [
        op for op in docs_server.operations if f'data-item-id="tag/{op[0]}/operation/{op[1]}"' not in dom
    ]
    assert not missing, missing
    check_offline_page(page, docs_server.base)


def test_remote_and_blocked_content_are_told_apart() -> None:
    """The checks above can fail: a CDN script, an inline style the policy refused."""
    origin = "http://127.0.0.1:8000"
    html = (
        '<link rel="stylesheet" href="https://cdn.example/swagger-ui.css"><script src="/docs-static/a.js">'
        '</script><img src="//cdn.example/logo.svg"><a href="https://example.com/">docs</a>'
        '<img src="http://127.0.0.1:8000/docs-static/favicon.png"><style>@import "https://f.example/x.css";'
        "</style>"
    )
    assert remote(resources(html), origin) == [
        "https://cdn.example/swagger-ui.css",
        "//cdn.example/logo.svg",
        "https://f.example/x.css",
    ]
    console = [
        "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates the following Content "
        "Security Policy directive: \"img-src 'self' data:\". The action has been blocked.",
        "Applying inline style violates the following Content Security Policy directive 'style-src 'self''.",
        "Creating a worker from 'blob:http://127.0.0.1:8000/1f2e' violates the following Content Security "
        "Policy directive: \"script-src 'self'\".",
    ]
    assert blocked_own_content(console, origin) == console[1:]


# --- Swagger UI's Authorize, driven through the DevTools protocol ---------------------------------


class Page:
    """One browser tab, driven through the Chrome DevTools Protocol."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.last_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:  # events arrive in between; only the answer matters here
            message: dict[str, Any] = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.last_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 15) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := self.evaluate(expression):
                return value
            time.sleep(0.1)
        raise AssertionError(f"still false after {seconds}s: {expression}")


@pytest.fixture
def browser_page() -> Iterator[Page]:
    port = free_port()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = start_chromium(
            profile, f"--remote-debugging-port={port}", "about:blank", output=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 20
            targets: list[dict[str, Any]] = []
            while not targets and time.monotonic() < deadline and browser.poll() is None:
                try:
                    targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                except httpx.TransportError:
                    time.sleep(0.1)
            tab = next(target for target in targets if target["type"] == "page")
            with connect(tab["webSocketDebuggerUrl"], max_size=None) as socket:
                yield Page(socket)
        finally:
            stop_chromium(browser)


# Type into a React-controlled input: set the value with the native setter, then say so.
TYPE_INTO = """(() => {
  const input = document.getElementById(%s);
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, %s);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  return true;
})()"""


@needs_chromium
def test_authorize_in_swagger_ui_logs_in_and_try_it_out_uses_the_token(
    docs_server: DocsServer, browser_page: Page
) -> None:
    page = browser_page
    page.call("Page.navigate", url=f"{docs_server.base}/docs")
    page.wait_for("!!document.querySelector('.auth-wrapper .btn.authorize')")
    page.evaluate("document.querySelector('.auth-wrapper .btn.authorize').click()")
    page.wait_for("!!document.getElementById('oauth_username')")
    page.evaluate(TYPE_INTO % (json.dumps("oauth_username"), json.dumps(docs_server.email)))
    page.evaluate(TYPE_INTO % (json.dumps("oauth_password"), json.dumps(docs_server.password)))
    page.evaluate("document.querySelector('.auth-btn-wrapper .btn.modal-btn.authorize').click()")
    # The token endpoint answered: the dialog offers Logout, the padlock is closed.
    page.wait_for(
        "[...document.querySelectorAll('.auth-container button')].some(b => b.textContent === 'Logout')"
    )
    assert page.evaluate(
        "document.querySelector('.auth-wrapper .btn.authorize').classList.contains('locked')"
    )
    page.evaluate("document.querySelector('.auth-btn-wrapper .btn-done').click()")

    # GET /users/me with the token: Try it out, Execute, a 200 naming the account.
    operation = "#operations-users-read_me"  # the operationId (app.api.openapi)
    page.evaluate(f"document.querySelector('{operation} .opblock-summary-control').click()")
    page.wait_for(f"!!document.querySelector('{operation} .try-out__btn')")
    page.evaluate(f"document.querySelector('{operation} .try-out__btn').click()")
    page.wait_for(f"!!document.querySelector('{operation} .btn.execute')")
    page.evaluate(f"document.querySelector('{operation} .btn.execute').click()")
    status = page.wait_for(
        f"document.querySelector('{operation} .live-responses-table .response .response-col_status')?.textContent"
    )
    assert status.strip() == "200"
    body = page.evaluate(
        f"document.querySelector('{operation} .live-responses-table .response .microlight')?.textContent"
    )
    assert docs_server.email in body
