"""E2E: long-lived streams (Server-Sent Events) through ``bffgate serve`` and the route's
three timeouts (connect, response, idle), against raw-socket upstreams that time every byte.

Routes (token = "none": the timeouts, not the session, are under test here):
- /calm:    timeout = 1, idle_timeout = 0      -> a quiet gap of any length is fine
- /shorty:  timeout = 1                        -> the shorthand: 1 s between body bytes
- /twitchy: idle_timeout = 1 (timeout 30)      -> cut after 1 s of quiet
- /mute:    response_timeout = 1, idle_timeout = 0 -> no headers in 1 s is a 504
- /hole:    connect_timeout = 1 (timeout 30)   -> a connect that hangs is a 504 in ~1 s
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY
from support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_config, new_ports
from support.sse_upstream import BlackHole, SseUpstream

pytestmark = pytest.mark.e2e

GAP = 1.8  # seconds of quiet between the two events: longer than every 1 s limit above


@pytest.fixture(scope="module")
def sse_upstream() -> Iterator[SseUpstream]:
    up = SseUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture(scope="module")
def stream_gateway(idp: Any, redis_server: Any, sse_upstream: SseUpstream,
                   black_hole: BlackHole) -> Iterator[GatewayProcess]:
    port, admin_port = new_ports()
    up = sse_upstream.url
    routes = [
        {"prefix": "/calm", "upstream": up, "token": "none", "timeout": 1, "idle_timeout": 0},
        {"prefix": "/shorty", "upstream": up, "token": "none", "timeout": 1},
        {"prefix": "/twitchy", "upstream": up, "token": "none", "idle_timeout": 1},
        {"prefix": "/mute", "upstream": up, "token": "none", "response_timeout": 1,
         "idle_timeout": 0},
        {"prefix": "/hole", "upstream": black_hole.url, "token": "none", "connect_timeout": 1},
    ]
    config = gateway_config(port=port, admin_port=admin_port, issuer=idp.issuer,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=up, cookie_key=COOKIE_KEY,
                            routes=routes)
    gw = GatewayProcess(config).start()
    yield gw
    gw.terminate()


async def _read_stream(gw: GatewayProcess, path: str) -> tuple[list[tuple[float, bytes]], str]:
    """The chunks of one streamed GET as they arrived (monotonic time, bytes), and how the
    stream ended: "complete" or "cut" (the connection closed before the last chunk)."""
    got: list[tuple[float, bytes]] = []
    async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=10) as c:
        try:
            async with c.stream("GET", path, headers={"accept": "text/event-stream"}) as r:
                assert r.status_code == 200, await r.aread()
                assert r.headers["content-type"] == "text/event-stream"
                assert r.headers["x-accel-buffering"] == "no"  # passed through, not ours
                assert "content-length" not in r.headers
                async for chunk in r.aiter_raw():
                    got.append((time.monotonic(), chunk))
        except httpx.RemoteProtocolError:
            return got, "cut"
    return got, "complete"


def _events(got: list[tuple[float, bytes]]) -> list[str]:
    text = b"".join(c for _, c in got).decode()
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


async def _upstream_error_count(gw: GatewayProcess, route: str, kind: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(trust_env=False) as c:
        m = await c.get(gw.admin_url + "/metrics",
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert m.status_code == 200
    for family in text_string_to_metric_families(m.text):
        for s in family.samples:
            if (s.name == "bffgate_upstream_errors_total"
                    and s.labels == {"route": route, "kind": kind}):
                return s.value
    return 0.0


async def test_quiet_gap_survives_with_idle_timeout_0_and_first_event_is_not_buffered(
        stream_gateway: GatewayProcess, sse_upstream: SseUpstream) -> None:
    sid = uuid.uuid4().hex
    got, end = await _read_stream(stream_gateway, f"/calm/events?gap={GAP}&id={sid}")
    rec = sse_upstream.streams[sid]
    assert end == "complete" and _events(got) == ["first", "second"]
    first_arrived = next(t for t, c in got if b"first" in c)
    # The first event reached the client before the upstream even sent the second: each
    # upstream chunk goes out as it arrives, nothing waits for more.
    assert first_arrived < rec.second_sent, (first_arrived - rec.first_sent, GAP)
    assert first_arrived - rec.first_sent < 0.5
    assert rec.second_sent - rec.first_sent >= GAP - 0.05
    assert rec.request_headers.get("accept") == "text/event-stream"


@pytest.mark.parametrize("route", ["/twitchy", "/shorty"])
async def test_a_quiet_gap_longer_than_idle_timeout_cuts_the_stream(
        route: str, stream_gateway: GatewayProcess, sse_upstream: SseUpstream) -> None:
    """idle_timeout = 1 (and the shorthand timeout = 1): the first event arrives, then the
    gateway closes the connection after ~1 s of quiet; audited and counted by kind."""
    before = await _upstream_error_count(stream_gateway, route, "upstream_idle_timeout")
    sid = uuid.uuid4().hex
    started = time.monotonic()
    got, end = await _read_stream(stream_gateway, f"{route}/events?gap={GAP}&id={sid}")
    cut_after = time.monotonic() - started
    assert end == "cut" and _events(got) == ["first"]
    assert 0.9 <= cut_after < GAP, cut_after
    after = await _upstream_error_count(stream_gateway, route, "upstream_idle_timeout")
    assert after == before + 1
    audited = [e for e in stream_gateway.audit("request.proxied")
               if e.get("route") == route and e.get("reason") == "upstream_idle_timeout"]
    assert audited and audited[-1]["status"] == 200


async def test_no_response_headers_within_response_timeout_is_504(
        stream_gateway: GatewayProcess, sse_upstream: SseUpstream) -> None:
    """/mute has idle_timeout = 0 and the default timeout of 30 s: the response timeout
    alone bounds the wait for the headers."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stream_gateway.url, trust_env=False,
                                 timeout=10) as c:
        r = await c.get("/mute/silent")
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/upstream-timeout")
    assert 0.9 <= elapsed < 3, elapsed
    assert await _upstream_error_count(stream_gateway, "/mute", "upstream_timeout") >= 1


async def test_connect_that_hangs_is_504_within_connect_timeout(
        stream_gateway: GatewayProcess) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stream_gateway.url, trust_env=False,
                                 timeout=10) as c:
        r = await c.get("/hole/anything")
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert r.json()["type"].endswith("/upstream-timeout")
    assert 0.9 <= elapsed < 3, elapsed  # connect_timeout 1, not the route's 30 s
    assert await _upstream_error_count(stream_gateway, "/hole",
                                       "upstream_connect_timeout") >= 1
    reasons = [e.get("reason") for e in stream_gateway.audit("request.proxied")]
    assert "upstream_connect_timeout" in reasons
