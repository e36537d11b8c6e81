"""E2E with Debian's Chromium: a page served through ``bffgate serve`` signs in on the OP's
own pages, opens ``new WebSocket('/ws/echo')`` on a ``token = "user"``, ``websocket = true``
route and gets its messages echoed by a real ``websockets`` upstream, which sees the route's
bearer on the handshake and never the gateway's cookie.

A gateway of its own (with an OP of its own, whose client knows this gateway's port):
- /public: token = "none", the page (an empty HTML page from a static upstream);
- /ws:     token = "user", websocket = true, to tests/support/ws_upstream.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from e2e.test_browser import browser_login
from support.chromium import ChromiumSession
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.sse_upstream import SseUpstream
from support.ws_upstream import WsUpstream

pytestmark = pytest.mark.e2e

COOKIE = "__Host-bffgate"

# Opens the socket from the page, sends one text and one binary message, returns what came
# back (the binary as a list of bytes) and how the socket closed.
ECHO_JS = """async (path) => {
  const ws = new WebSocket(path);
  ws.binaryType = "arraybuffer";
  const got = [];
  const done = new Promise((resolve, reject) => {
    ws.onmessage = (e) => {
      got.push(typeof e.data === "string" ? e.data : Array.from(new Uint8Array(e.data)));
      if (got.length === 2) ws.close(1000, "bye");
    };
    ws.onclose = (e) => resolve({code: e.code, reason: e.reason, clean: e.wasClean});
    setTimeout(() => reject(new Error("no echo within 10 s: " + JSON.stringify(got))), 10000);
  });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const url = ws.url, protocol = ws.protocol;
  ws.send("hello from chromium");
  ws.send(new Uint8Array([0, 1, 255]));
  const closed = await done;
  return {got: got, closed: closed, url: url, protocol: protocol};
}"""


@pytest.fixture(scope="module")
def page_up() -> Iterator[SseUpstream]:
    up = SseUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def ws_up() -> Iterator[WsUpstream]:
    up = WsUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def ws_ports() -> tuple[int, int]:
    return new_ports()


@pytest.fixture(scope="module")
def ws_idp(ws_ports: tuple[int, int]) -> Iterator[OidcProviderProcess]:
    with OidcProviderProcess([client_meta(ws_ports[0])], access_token_ttl=300) as op:
        yield op


@pytest.fixture(scope="module")
def ws_gateway(ws_ports: tuple[int, int], ws_idp: OidcProviderProcess, redis_server: Any,
               page_up: SseUpstream, ws_up: WsUpstream) -> Iterator[GatewayProcess]:
    routes = [
        {"prefix": "/public", "upstream": page_up.url, "token": "none"},
        {"prefix": "/ws", "upstream": ws_up.url, "token": "user", "websocket": True},
    ]
    config = gateway_config(port=ws_ports[0], admin_port=ws_ports[1], issuer=ws_idp.issuer,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=page_up.url,
                            cookie_key=COOKIE_KEY, routes=routes)
    gw = GatewayProcess(config).start()
    yield gw
    gw.terminate()


@pytest.fixture
async def chromium(ws_gateway: GatewayProcess) -> AsyncIterator[ChromiumSession]:
    async with ChromiumSession(record_origins=[ws_gateway.url]) as session:
        yield session


async def test_page_websocket_echo_through_the_gateway(
        chromium: ChromiumSession, ws_gateway: GatewayProcess, ws_idp: Any,
        redis_server: Any, ws_up: WsUpstream) -> None:
    """Signed in, the page's WebSocket (the browser's own Origin and SameSite=Strict cookie,
    no X-CSRF) is proxied: text and binary echoed, a clean 1000 close, the upstream handshake
    carries the bearer and no cookie."""
    await browser_login(chromium, ws_gateway, ws_idp, redis_server.url,
                        return_url="/public/landing")
    await chromium.page.goto(f"{ws_gateway.url}/public/blank")  # a same-origin page
    cookie = await chromium.cookie(ws_gateway.url, COOKIE)
    assert cookie is not None and cookie["sameSite"] == "Strict"
    before = len(ws_up.handshakes)
    result = await chromium.page.evaluate(ECHO_JS, "/ws/echo")
    assert result["url"].startswith("ws://"), result  # the relative URL, resolved same-origin
    assert result["got"] == ["hello from chromium", [0, 1, 255]], result
    assert result["closed"]["code"] == 1000 and result["closed"]["clean"], result
    assert len(ws_up.handshakes) == before + 1
    shake = ws_up.handshakes[-1]
    names = {k.lower(): v for k, v in shake["headers"]}
    assert shake["path"] == "/ws/echo"
    assert names["authorization"].startswith("Bearer ")
    assert "cookie" not in names and cookie["value"] not in json.dumps(shake)
    assert ws_gateway.audit("websocket.opened")


async def test_page_websocket_without_a_session_never_reaches_the_upstream(
        chromium: ChromiumSession, ws_gateway: GatewayProcess, ws_up: WsUpstream) -> None:
    """Control: the same page without signing in gets no socket (the handshake is refused
    401) and the upstream is never dialled."""
    await chromium.page.goto(f"{ws_gateway.url}/public/blank")
    before = len(ws_up.handshakes)
    outcome = await chromium.page.evaluate("""(path) => new Promise((resolve) => {
      const ws = new WebSocket(path);
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("error");
    })""", "/ws/echo")
    assert outcome == "error"
    assert len(ws_up.handshakes) == before
