"""E2E: a developer's setup (config/dev.toml) with real processes: a Vite dev server
(tests/vite, pinned by its lockfile) behind ``bffgate serve`` on the `/` route with
``websocket = true``, the API on `/api`, a page opened in Debian's Chromium on the gateway's
origin. Vite's hot-reload socket must connect through the gateway (never straight to Vite)
and a source edit must reach the open page as a hot update, without a reload."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from support.chromium import ChromiumSession
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.vite import ViteDevServer

pytestmark = pytest.mark.e2e

CHANGED = "hot update through the gateway"
DEV_TOML = Path(__file__).resolve().parents[2] / "config" / "dev.toml"


async def wait_until(chromium: ChromiumSession, expression: str, vite: ViteDevServer,
                     sockets: list[str]) -> None:
    """Wait for a JS condition in the page; on timeout fail with what the browser saw."""
    try:
        await chromium.page.wait_for_function(expression, timeout=15_000)
    except PlaywrightError as exc:
        pytest.fail(f"not reached: {expression}\n{exc}\n{chromium.describe()}\n"
                    f"sockets={sockets}\nvite log:\n{vite.log()}", pytrace=False)


def dev_routes(upstreams: dict[str, str]) -> list[dict[str, Any]]:
    """config/dev.toml's routes as they are, each upstream replaced by this run's process:
    the test checks the file a developer starts from, not a copy of it."""
    routes: list[dict[str, Any]] = tomllib.loads(DEV_TOML.read_text(encoding="utf-8"))["routes"]
    assert sorted(r["prefix"] for r in routes) == sorted(upstreams), routes
    return [{**r, "upstream": upstreams[r["prefix"]]} for r in routes]


async def wait_console(chromium: ChromiumSession, text: str, vite: ViteDevServer,
                       sockets: list[str], timeout: float = 15.0) -> None:
    """Wait until the page logged ``text`` to the console (collected from the start)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(message == text for _, message in chromium.console):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"no console message {text!r}\n{chromium.describe()}\n"
                        f"sockets={sockets}\nvite log:\n{vite.log()}", pytrace=False)
        await asyncio.sleep(0.05)


@pytest.fixture
def dev_setup(idp: Any, redis_server: Any, upstream: Any
              ) -> Iterator[tuple[GatewayProcess, ViteDevServer]]:
    port, admin_port = new_ports()
    with ViteDevServer(gateway_port=port) as vite:
        config = gateway_config(
            port=port, admin_port=admin_port, issuer=idp.issuer, client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET, redis_url=redis_server.url, upstream=upstream.url,
            cookie_key=COOKIE_KEY,
            routes=dev_routes({"/api": upstream.url, "/": vite.url}))
        gateway = GatewayProcess(config).start()
        try:
            yield gateway, vite
        finally:
            gateway.terminate()


@pytest.fixture
async def chromium(dev_setup: tuple[GatewayProcess, ViteDevServer]
                   ) -> AsyncIterator[ChromiumSession]:
    async with ChromiumSession(record_origins=[dev_setup[0].url]) as session:
        yield session


async def test_vite_hot_reload_through_the_gateway(
        dev_setup: tuple[GatewayProcess, ViteDevServer], chromium: ChromiumSession) -> None:
    gateway, vite = dev_setup
    page = chromium.page
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    await page.goto(gateway.url + "/")
    await wait_until(chromium, "document.getElementById('message').textContent === "
                     "'hello from vite'", vite, sockets)
    # Vite's client logs this once its HMR socket got the server's "connected" message
    # (possibly before main.js runs: the console is the one place that never misses it).
    await wait_console(chromium, "[vite] connected.", vite, sockets)
    diag = f"{chromium.describe()}\nsockets={sockets}\nvite log:\n{vite.log()}"
    # One HMR socket, on the gateway's origin (hmr.clientPort: no direct fallback to Vite).
    assert sockets == [f"ws://localhost:{gateway.port}/"], diag
    assert not [u for u in chromium.requests if f":{vite.port}" in u], diag

    # The page's API calls go to the API route (no session here: the problem answer).
    api = await chromium.fetch("GET", "/api/hello", {"X-CSRF": "1"})
    assert api["status"] == 401, api
    assert api["headers"]["content-type"].startswith("application/problem+json"), api

    # Edit a source file: Vite pushes the update over the socket, the page swaps the module.
    await page.evaluate("window.__samePage = true")
    vite.write("src/message.js", f'export const message = "{CHANGED}";\n')
    await wait_until(chromium, f"document.getElementById('message').textContent === {CHANGED!r}",
                     vite, sockets)
    assert await page.evaluate("window.__samePage === true && window.__hotUpdates === 1"), (
        "the page was reloaded instead of hot-updated\n" + chromium.describe())
    await wait_console(chromium, "[vite] hot updated: /src/message.js via /src/main.js",
                       vite, sockets)
    assert sockets == [f"ws://localhost:{gateway.port}/"], chromium.describe()
    assert not chromium.page_errors, chromium.describe()


async def test_vite_socket_from_another_site_is_refused(
        dev_setup: tuple[GatewayProcess, ViteDevServer]) -> None:
    """token = "none" sends Vite no token, but the HMR socket is still the gateway's origin
    only: another site's page (or no Origin) gets a 403, audited csrf.rejected, before the
    gateway dials Vite."""
    gateway, _ = dev_setup
    for origin in ("http://evil.localhost:5173", None):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{gateway.port}/", origin=(
                    Origin(origin) if origin else None), subprotocols=[Subprotocol("vite-hmr")],
                    proxy=None, open_timeout=10):
                pass
        assert refused.value.response.status_code == 403, origin
    rejected = [e.get("reason") for e in gateway.audit("csrf.rejected")]
    assert rejected == ["websocket_origin_mismatch", "websocket_origin_missing"], rejected
