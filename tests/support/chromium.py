"""A real browser for the e2e tier: Debian's Chromium driven by Playwright for Python.

``ChromiumSession`` launches ``/usr/bin/chromium`` (never a Playwright-downloaded build: do
not run ``playwright install``), opens one fresh context and page, and

- aborts every request whose host is not 127.0.0.1 / localhost (nothing leaves the machine;
  aborted URLs are listed in ``blocked``),
- records every response the browser receives from the ``record_origins`` (the gateway)
  into ``support.browser.RECORDED`` (same tuple shape as the scripted httpx Browser), so the
  suite-wide secret scan covers what a real browser saw too,
- collects uncaught page errors and console messages for diagnostics.

Usage (a test module's own fixture)::

    async with ChromiumSession(record_origins=[gateway.url]) as chromium:
        await chromium.page.goto(gateway.url + "/bff/login?returnUrl=/public/app")
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    ViewportSize,
    async_playwright,
)

from support.browser import RECORDED

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
DEFAULT_TIMEOUT_MS = 15_000
FLUSH_GRACE_S = 1.0

# fetch() from the page's own origin; returns what the SPA would see (status, headers, text).
FETCH_JS = """async ([method, path, headers, body]) => {
  const init = { method: method, headers: headers, credentials: "same-origin" };
  if (body !== null) { init.body = body; }
  const r = await fetch(path, init);
  const h = {};
  r.headers.forEach((v, k) => { h[k] = v; });
  return { status: r.status, headers: h, text: await r.text() };
}"""


def require_chromium() -> None:
    """Fail (never skip) when Debian's Chromium is missing: the browser tests are part of
    the suite, not optional."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with "
            "`apt-get install -y chromium; .ci/run does this` (never `playwright install`).",
            pytrace=False,
        )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ChromiumSession:
    """One headless Chromium with one fresh context and page (async context manager)."""

    def __init__(self, record_origins: list[str] | tuple[str, ...] = (), *,
                 viewport: ViewportSize | None = None) -> None:
        self.record_origins = {origin_of(o) for o in record_origins}
        self.viewport: ViewportSize = viewport or {"width": 1100, "height": 900}
        self.blocked: list[str] = []
        self.page_errors: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.requests: list[str] = []  # every URL requested (after the loopback filter)
        self.unrecorded: list[str] = []  # recorded responses whose body was not available
        self._pending: set[asyncio.Task[None]] = set()
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._page: Page | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ChromiumSession:
        require_chromium()
        self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                timeout=30_000)
            self._context = await self._browser.new_context(viewport=self.viewport)
            self._context.set_default_timeout(DEFAULT_TIMEOUT_MS)
            self._context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
            await self._context.route("**/*", self._only_loopback)
            self._context.on("request", self._on_request)
            self._context.on("response", self._on_response)
            self._page = await self._context.new_page()
            self._page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
            self._page.on("console", self._on_console)
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush(FLUSH_GRACE_S)
        # A body still not delivered will never be: record those responses' headers only.
        stuck = list(self._pending)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        if self._context is not None:
            with contextlib.suppress(Exception):
                await self._context.close()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
        if self._pw is not None:
            with contextlib.suppress(Exception):
                await self._pw.stop()
        self._context = self._browser = self._pw = None
        self._page = None

    @property
    def context(self) -> BrowserContext:
        assert self._context is not None, "ChromiumSession is not open"
        return self._context

    @property
    def page(self) -> Page:
        assert self._page is not None, "ChromiumSession is not open"
        return self._page

    # ------------------------------------------------------------------ handlers

    async def _only_loopback(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort("blockedbyclient")

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _on_console(self, msg: ConsoleMessage) -> None:
        self.console.append((msg.type, msg.text))

    def _on_response(self, response: Response) -> None:
        if origin_of(response.url) not in self.record_origins:
            return
        task = asyncio.ensure_future(self._record(response))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, response: Response) -> None:
        headers: list[tuple[str, str]] = [(k.lower(), v) for k, v in response.headers.items()]
        body = b""
        try:
            # raw headers (Set-Cookie included)
            headers = [(h["name"].lower(), h["value"]) for h in await response.headers_array()]
            if not 300 <= response.status < 400:  # Chromium keeps no body for redirects
                body = await response.body()
        except Error:  # e.g. navigated away before the body was read
            self.unrecorded.append(f"{response.status} {response.url}")
        except asyncio.CancelledError:  # the body never came (see flush)
            self.unrecorded.append(f"{response.status} {response.url}")
            raise
        finally:  # even when the body never came: the headers are recorded in any case
            RECORDED.append((response.url, response.status, headers, body))

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` s) until every response seen so far is recorded. A
        response whose body the page never reads (e.g. the demo page ignores the body of a
        401 from /bff/user) may never finish loading in Chromium: such bodies are recorded
        as empty when the context closes and listed in ``unrecorded``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._pending:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            await asyncio.wait(list(self._pending), timeout=remaining)
        return True

    # ------------------------------------------------------------------ helpers

    async def fetch(self, method: str, path: str, headers: dict[str, str] | None = None,
                    body: str | None = None) -> dict[str, Any]:
        """``fetch()`` from the current page's origin, as the SPA would call it."""
        result: dict[str, Any] = await self.page.evaluate(
            FETCH_JS, [method, path, headers or {}, body])
        return result

    async def cookie(self, url: str, name: str) -> dict[str, Any] | None:
        """The cookie ``name`` the browser would send to ``url`` (None if absent)."""
        for c in await self.context.cookies(url):
            if c.get("name") == name:
                return dict(c)
        return None

    def describe(self) -> str:
        """Diagnostics for assertion messages."""
        page_url = self._page.url if self._page is not None else "-"
        return (f"page={page_url}\nblocked={self.blocked}\npage_errors={self.page_errors}\n"
                f"console={self.console[-20:]}\nrequests={self.requests[-30:]}")
