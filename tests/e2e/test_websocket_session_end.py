"""E2E: a WebSocket ends with its session for the causes test_websocket.py does not cover —
back-channel logout, idle timeout, absolute timeout and a refresh the IdP rejects — each
closed with 4401 within the documented bound (the watcher's 1 s + one store round trip;
asserted ≤ 2 s). Real processes: the oidc-provider (short access tokens, back-channel
logout registered), redis-server, a `websockets` upstream and two `bffgate serve`: one with
the default session lifetimes, one with idle_timeout = 2 s and absolute_timeout = 5 s."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login, read_session_tokens
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.ws_upstream import WsUpstream

pytestmark = pytest.mark.e2e
CLIENT = "bff-websocket-end"
COOKIE = "__Host-bffgate"
IDLE, ABSOLUTE = 2, 5  # the short-lived gateway's session.idle_timeout / absolute_timeout
BOUND = 2.0  # the documented bound (1 s + one store round trip), with margin


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    ports = [(free_port(), free_port()) for _ in range(2)]
    state = Path(tempfile.mkdtemp(prefix="bffgate-op-")) / "state.json"
    op = OidcProviderProcess([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports],
        "backchannel_logout_uri": f"http://localhost:{ports[0][0]}/bff/backchannel",
        "backchannel_logout_session_required": True,
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    }], state_file=str(state), access_token_ttl=6).start()
    redis = RedisServer().start()
    ws = WsUpstream().start()
    gateways: list[GatewayProcess] = []
    try:
        for (p, a), session in zip(ports, ({}, {"idle_timeout": IDLE,
                                                "absolute_timeout": ABSOLUTE}), strict=True):
            gateways.append(GatewayProcess(gateway_config(
                session=session, port=p, admin_port=a, issuer=op.issuer, client_id=CLIENT,
                client_secret=CLIENT_SECRET, redis_url=redis.url, upstream=ws.url,
                cookie_key=COOKIE_KEY, routes=[
                    {"prefix": "/ws", "upstream": ws.url, "token": "user", "websocket": True},
                    {"prefix": "/plain", "upstream": ws.url, "token": "user"},
                ])).start())
        yield {"op": op, "redis": redis, "ws": ws, "gateways": gateways}
    finally:
        for gw in gateways:
            gw.terminate()
        ws.stop()
        op.close()
        redis.close()


async def _login(cluster: dict[str, Any], gw: GatewayProcess,
                 user: str = "alice") -> tuple[Browser, str, dict[str, Any]]:
    b = Browser(gw.url)
    async with httpx.AsyncClient(trust_env=False) as idp_client:
        assert (await login(b, idp_client, cluster["redis"].url, user=user)).status_code == 302
    cookie = b.cookie(COOKIE)
    assert cookie
    return b, cookie, read_session_tokens(cluster["redis"].url, cookie)


def _open(gw: GatewayProcess, cookie: str) -> Any:
    return connect(f"ws://localhost:{gw.port}/ws/echo",
                   additional_headers=[("Cookie", f"{COOKIE}={cookie}"), ("Origin", gw.url)],
                   compression=None)


async def _closed_at(sock: ClientConnection, timeout: float = 10) -> float:
    """Wait for the gateway to close ``sock``; the monotonic time it was seen closed."""
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(sock.recv(), timeout)
    return time.monotonic()


async def _echo(sock: ClientConnection) -> None:
    await sock.send("ping")
    assert await sock.recv() == "ping"


async def _echo_until_closed(sock: ClientConnection) -> None:
    """Send a frame every 0.2 s until the gateway closes the socket."""
    try:
        while True:
            await _echo(sock)
            await asyncio.sleep(0.2)
    except ConnectionClosed:
        return


def _closed_audit(gw: GatewayProcess, *why: str) -> bool:
    """Eventually (the audit line follows the close frame) a websocket.closed for ``why``."""
    deadline = time.monotonic() + 5
    while not any(e.get("reason") in why for e in gw.audit("websocket.closed")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_backchannel_logout_closes_the_socket(cluster: dict[str, Any]) -> None:
    gw = cluster["gateways"][0]
    _, cookie, first = await _login(cluster, gw, user="bcl-ws")
    async with _open(gw, cookie) as sock:
        await _echo(sock)
        started = time.monotonic()
        sent = cluster["op"].send_backchannel_logout("bcl-ws", sid=first["record"]["sid"],
                                                     client_id=CLIENT)
        assert sent == [{"client_id": CLIENT, "ok": True}], sent
        latency = await _closed_at(sock) - started
        assert (sock.close_code, sock.close_reason) == (4401, "session ended")
    print(f"close-on-backchannel-logout latency: {latency * 1000:.0f} ms")
    assert latency <= BOUND
    assert _closed_audit(gw, "session_ended")


async def test_idle_timeout_closes_the_socket_and_socket_traffic_is_no_activity(
        cluster: dict[str, Any]) -> None:
    gw = cluster["gateways"][1]
    _, cookie, _ = await _login(cluster, gw)
    touched = time.monotonic()  # the handshake is the session's last use: at or after this
    async with _open(gw, cookie) as sock:
        await _echo_until_closed(sock)  # frames keep the socket busy, not the session
        latency = time.monotonic() - (touched + IDLE)
        assert (sock.close_code, sock.close_reason) == (4401, "session ended")
    print(f"close-on-idle-timeout latency (after the {IDLE} s idle window): "
          f"{latency * 1000:.0f} ms")
    assert -0.05 <= latency <= BOUND
    assert _closed_audit(gw, "session_ended")


async def test_absolute_timeout_closes_a_socket_whose_session_is_in_use(
        cluster: dict[str, Any]) -> None:
    gw = cluster["gateways"][1]
    browser, cookie, first = await _login(cluster, gw)
    absolute = first["record"]["abs"]  # wall clock (the gateway's and ours)
    async with _open(gw, cookie) as sock:
        await _echo(sock)
        while time.time() < absolute - 0.3:  # HTTP use keeps the idle window sliding
            assert (await browser.get("/bff/user", headers={"X-CSRF": "1"})).status_code \
                == 200
            await asyncio.sleep(0.5)
        closed = await _closed_at(sock)
        latency = time.time() - (time.monotonic() - closed) - absolute
        assert sock.close_code == 4401
        assert sock.close_reason in {"session ended", "session expired"}
    print(f"close-on-absolute-timeout latency: {latency * 1000:.0f} ms")
    assert latency <= BOUND
    assert _closed_audit(gw, "session_ended", "session_expired")


async def test_a_rejected_refresh_ends_the_session_and_closes_the_socket(
        cluster: dict[str, Any]) -> None:
    gw, op = cluster["gateways"][0], cluster["op"]
    _, cookie, first = await _login(cluster, gw)
    headers = {"X-CSRF": "1", "cookie": f"{COOKIE}={cookie}"}
    async with _open(gw, cookie) as sock:
        await _echo(sock)
        op.revoke(first["tokens"]["rt"], CLIENT, CLIENT_SECRET, "refresh_token")
        await asyncio.sleep(max(0.0, first["record"]["rat"] + 0.05 - time.time()))
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            r = await c.get(f"{gw.url}/plain/anything", headers=headers)
        started = time.monotonic()
        assert r.status_code == 401 and r.json()["type"].endswith("/session-ended")
        latency = await _closed_at(sock) - started
        assert (sock.close_code, sock.close_reason) == (4401, "session ended")
    print(f"close-on-failed-refresh latency: {latency * 1000:.0f} ms")
    assert latency <= BOUND
    assert any(e.get("reason") == "invalid_grant" for e in gw.audit("session.refresh_failed"))
    assert _closed_audit(gw, "session_ended")


async def test_a_token_refresh_keeps_the_socket_open(cluster: dict[str, Any]) -> None:
    """The socket is authorised at its handshake: a successful refresh of the session's tokens
    (rotated refresh token, new access token) ends nothing, so the socket keeps relaying."""
    gw = cluster["gateways"][0]
    _, cookie, first = await _login(cluster, gw)
    headers = {"X-CSRF": "1", "cookie": f"{COOKIE}={cookie}"}
    async with _open(gw, cookie) as sock:
        await _echo(sock)
        await asyncio.sleep(max(0.0, first["record"]["rat"] + 0.05 - time.time()))
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            r = await c.get(f"{gw.url}/plain/anything", headers=headers)
        # /plain's upstream is the WebSocket server: its 426 means the call went through
        assert r.status_code == 426, r.text
        assert "problem" not in r.headers.get("content-type", "")
        after = read_session_tokens(cluster["redis"].url, cookie)
        assert after["tokens"]["at"] != first["tokens"]["at"]  # the refresh really happened
        await asyncio.sleep(BOUND)  # past the watcher's bound: it saw the live session
        await _echo(sock)
        assert sock.close_code is None
