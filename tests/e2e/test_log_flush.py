"""E2E: log.flush_interval (default 0.1 s) on a real `bffgate serve`: audit lines are held
briefly and written together, reach the log within the interval, and none is lost when the
gateway is stopped with SIGTERM (held lines are written before it exits)."""

from __future__ import annotations

import time

import httpx
import pytest

from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e


def _proxied(gw: GatewayProcess) -> list[dict]:
    return [e for e in gw.events() if e.get("event") == "request.proxied"]


async def test_held_audit_lines_arrive_within_the_interval_and_survive_sigterm(
        idp: OidcProviderProcess, redis_server: RedisServer, upstream: EchoUpstream) -> None:
    port, admin = new_ports()
    gw = GatewayProcess(gateway_config(
        port=port, admin_port=admin, issuer=idp.issuer, client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, redis_url=redis_server.url, upstream=upstream.url,
        cookie_key=COOKIE_KEY, log={"flush_interval": 0.2})).start()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
            assert (await c.get(f"{gw.url}/public/one")).status_code == 200
            sent = time.monotonic()
            while not _proxied(gw):
                assert time.monotonic() - sent < 2.0, "the held line never reached the log"
                time.sleep(0.02)
            for i in range(5):
                assert (await c.get(f"{gw.url}/public/more/{i}")).status_code == 200
    finally:
        code = gw.terminate()  # SIGTERM right after the calls: their lines may still be held
    assert code == 0
    paths = [e.get("path") for e in _proxied(gw)]
    assert paths == ["/public/one"] + [f"/public/more/{i}" for i in range(5)]
    assert any(e.get("event") == "gateway.stopped" for e in gw.events())
