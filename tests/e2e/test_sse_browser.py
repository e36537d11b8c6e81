"""E2E with Debian's Chromium: an ``EventSource`` through ``bffgate serve`` receives an event
that comes after a quiet gap longer than the route's response timeout, which the single
``timeout`` of before would have cut (here 1 s, to keep the test fast; 30 s by default).

A gateway of its own (with an OP of its own, whose client knows this gateway's port):
- /page:     token = "none", the test page (served by the SSE upstream);
- /sse:      token = "none", timeout = 1, idle_timeout = 0 (a quiet stream is fine);
- /sse-old:  token = "none", timeout = 1 (the single timeout: the stream is cut);
- /api/sse:  token = "user", timeout = 1, idle_timeout = 0.
The user signs in first with the OP's own login pages, as in test_browser.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from e2e.test_browser import browser_login
from support.chromium import ChromiumSession
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.sse_upstream import SseUpstream

pytestmark = pytest.mark.e2e

GAP = 1.8  # seconds between the two events: longer than the routes' 1 s timeout


@pytest.fixture(scope="module")
def sse_up() -> Iterator[SseUpstream]:
    up = SseUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def sse_ports() -> tuple[int, int]:
    return new_ports()


@pytest.fixture(scope="module")
def sse_idp(sse_ports: tuple[int, int]) -> Iterator[OidcProviderProcess]:
    with OidcProviderProcess([client_meta(sse_ports[0])], access_token_ttl=300) as op:
        yield op


@pytest.fixture(scope="module")
def sse_gateway(sse_ports: tuple[int, int], sse_idp: OidcProviderProcess, redis_server: Any,
                sse_up: SseUpstream) -> Iterator[GatewayProcess]:
    up = sse_up.url
    routes = [
        {"prefix": "/page", "upstream": up, "token": "none"},
        {"prefix": "/sse", "upstream": up, "token": "none", "timeout": 1, "idle_timeout": 0},
        {"prefix": "/sse-old", "upstream": up, "token": "none", "timeout": 1},
        {"prefix": "/api/sse", "upstream": up, "token": "user", "timeout": 1,
         "idle_timeout": 0},
        {"prefix": "/public", "upstream": up, "token": "none"},
    ]
    config = gateway_config(port=sse_ports[0], admin_port=sse_ports[1], issuer=sse_idp.issuer,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=up, cookie_key=COOKIE_KEY,
                            routes=routes)
    gw = GatewayProcess(config).start()
    yield gw
    gw.terminate()


@pytest.fixture
async def chromium(sse_gateway: GatewayProcess) -> AsyncIterator[ChromiumSession]:
    async with ChromiumSession(record_origins=[sse_gateway.url]) as session:
        yield session


async def _open_page(chromium: ChromiumSession, gw: GatewayProcess, src: str) -> None:
    await chromium.page.goto(f"{gw.url}/page/page?src={src}")


async def _sse_state(chromium: ChromiumSession) -> dict[str, Any]:
    state: dict[str, Any] = await chromium.page.evaluate("window.sse")
    return state


async def test_event_source_gets_the_event_after_a_quiet_gap(
        chromium: ChromiumSession, sse_gateway: GatewayProcess, sse_idp: Any,
        redis_server: Any, sse_up: SseUpstream) -> None:
    """Signed in, the page's EventSource gets "first" at once and "second" after 1.8 s of
    quiet on a route whose response timeout is 1 s (idle_timeout = 0)."""
    await browser_login(chromium, sse_gateway, sse_idp, redis_server.url,
                        return_url="/public/landing")
    sid = uuid.uuid4().hex
    await _open_page(chromium, sse_gateway, f"/sse/events?gap={GAP}%26id={sid}")
    page = chromium.page
    await page.wait_for_function("window.sse && window.sse.events.length >= 1", timeout=5000)
    # Delivered unbuffered: the page has the first event while the upstream has not yet
    # sent the second.
    assert sse_up.streams[sid].second_sent == 0.0
    await page.wait_for_function("window.sse.events.length >= 2", timeout=GAP * 1000 + 5000)
    state = await _sse_state(chromium)
    assert [e["data"] for e in state["events"]] == ["first", "second"]
    assert state["errors"] == 0 and state["opened"] == 1
    spread_ms = state["events"][1]["at"] - state["events"][0]["at"]
    assert spread_ms >= GAP * 1000 - 200, spread_ms
    assert "cookie" not in sse_up.streams[sid].request_headers  # never the gateway's cookie


async def test_the_single_timeout_of_before_cuts_the_same_stream(
        chromium: ChromiumSession, sse_gateway: GatewayProcess, sse_up: SseUpstream) -> None:
    """Control: the same stream on a route with only timeout = 1 loses its connection
    after the first event (EventSource's onerror), as every route did before."""
    sid = uuid.uuid4().hex
    await _open_page(chromium, sse_gateway, f"/sse-old/events?gap={GAP}%26id={sid}")
    await chromium.page.wait_for_function("window.sse && window.sse.errors >= 1",
                                          timeout=GAP * 1000 + 5000)
    state = await _sse_state(chromium)
    assert [e["data"] for e in state["events"]] == ["first"]


async def test_fetch_stream_on_a_user_route_after_a_quiet_gap(
        chromium: ChromiumSession, sse_gateway: GatewayProcess, sse_idp: Any,
        redis_server: Any, sse_up: SseUpstream) -> None:
    """On a token = "user" route the page reads the stream with fetch() and X-CSRF: the
    bearer goes upstream, the first chunk is read before the second is sent, and the
    stream outlives the 1 s response timeout."""
    await browser_login(chromium, sse_gateway, sse_idp, redis_server.url,
                        return_url="/public/landing")
    sid = uuid.uuid4().hex
    await chromium.page.goto(f"{sse_gateway.url}/public/blank")  # a same-origin page
    script = """async (src) => {
      const r = await fetch(src, {headers: {"X-CSRF": "1"}});
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      window.chunks = [];
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        window.chunks.push(dec.decode(value));
      }
      return {status: r.status, type: r.headers.get("content-type"), chunks: window.chunks};
    }"""
    task = asyncio.ensure_future(
        chromium.page.evaluate(script, f"/api/sse/events?gap={GAP}&id={sid}"))
    await chromium.page.wait_for_function(
        "window.chunks && window.chunks.join('').includes('first')", timeout=5000)
    assert sse_up.streams[sid].second_sent == 0.0  # the first chunk came unbuffered
    result = await asyncio.wait_for(task, GAP + 5)
    assert result["status"] == 200 and result["type"] == "text/event-stream"
    assert "data: second" in "".join(result["chunks"])
    assert sse_up.streams[sid].request_headers.get("authorization", "").startswith("Bearer ")


async def test_event_source_on_a_user_route(
        chromium: ChromiumSession, sse_gateway: GatewayProcess, sse_idp: Any,
        redis_server: Any, sse_up: SseUpstream) -> None:
    """EventSource cannot send X-CSRF: on a token = "user" route the gateway accepts its
    GET (Accept: text/event-stream) on the browser's Sec-Fetch-Site: same-origin instead
    (edge/csrf.py); the upstream gets the bearer, never the cookie."""
    await browser_login(chromium, sse_gateway, sse_idp, redis_server.url,
                        return_url="/public/landing")
    sid = uuid.uuid4().hex
    await _open_page(chromium, sse_gateway, f"/api/sse/events?gap=0.2%26id={sid}")
    await chromium.page.wait_for_function(
        "window.sse && (window.sse.events.length >= 2 || window.sse.errors >= 1)",
        timeout=5000)
    state = await _sse_state(chromium)
    assert [e["data"] for e in state["events"]] == ["first", "second"]
    seen = sse_up.streams[sid].request_headers
    assert seen.get("authorization", "").startswith("Bearer ") and "cookie" not in seen
