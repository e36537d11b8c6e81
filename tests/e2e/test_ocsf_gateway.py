"""E2E: `bffgate serve` with log.audit_format = "ocsf" (real oidc-provider, redis-server and
echo upstream): a login, a proxied call and a logout write the login and session events as
OCSF Authentication records (class 3002) that satisfy the OCSF schema's class, while the
proxied call's line keeps the JSON form of bffgate/audit_schema.json. (The suite-wide check,
tests/support/audit_check.py, validates both kinds of line again.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support import ocsf_check
from support.audit_check import line_errors
from support.browser import Browser
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta, login, read_session_tokens
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ocsf_gateway(redis_server: RedisServer,
                 upstream: EchoUpstream) -> Iterator[tuple[GatewayProcess, OidcProviderProcess]]:
    port, admin = new_ports()
    with OidcProviderProcess([client_meta(port)], access_token_ttl=300) as op:
        config = gateway_config(port=port, admin_port=admin, issuer=op.issuer,
                                client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                redis_url=redis_server.url, upstream=upstream.url,
                                cookie_key=COOKIE_KEY, log={"audit_format": "ocsf"})
        gw = GatewayProcess(config).start()
        try:
            yield gw, op
        finally:
            gw.terminate()


def _records(gw: GatewayProcess) -> list[dict[str, Any]]:
    return [e for e in gw.events() if e.get("class_uid") == 3002]


async def test_login_and_logout_are_ocsf_authentication_records(
        ocsf_gateway: tuple[GatewayProcess, OidcProviderProcess],
        redis_server: RedisServer) -> None:
    gw, _op = ocsf_gateway
    browser = Browser(gw.url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_client:
            resp = await login(browser, idp_client, redis_server.url)
        assert resp.status_code == 302, resp.text
        cookie = browser.cookie("__Host-bffgate") or ""
        short = read_session_tokens(redis_server.url, cookie)["key"][:16]
        assert (await browser.api("GET", "/api/ocsf")).status_code == 200
        user = (await browser.api("GET", "/bff/user")).json()
        out = await browser.get(user["logout_url"])
        assert out.status_code == 302
    finally:
        await browser.aclose()

    records = {r["message"]: r for r in _records(gw)}
    assert {"login.started", "login.succeeded", "session.created",
            "session.ended"} <= set(records), sorted(records)
    for record in records.values():
        assert ocsf_check.errors(record) == [], record
        for version in ocsf_check.versions():
            assert ocsf_check.errors(record, version, required_only=True) == [], version
        assert record["metadata"]["product"]["name"] == "bffgate"
        assert record["src_endpoint"] == {"ip": "127.0.0.1"}
    logon, logoff = records["login.succeeded"], records["session.ended"]
    assert (logon["activity_id"], logon["status"], logon["type_uid"]) == (1, "Success", 300201)
    assert (logoff["activity_id"], logoff["status"], logoff["type_uid"]) == (2, "Success", 300202)
    assert logoff["status_detail"].startswith("logout")
    for record in (logon, logoff):
        assert record["user"]["uid"] == "alice"
        assert record["session"] == {"uid": short}
    assert cookie[3:] not in gw.log()  # the session id travels in the cookie, never in a log

    [proxied] = [e for e in gw.audit("request.proxied") if e.get("path") == "/api/ocsf"]
    assert proxied["status"] == 200 and "class_uid" not in proxied
    for line in gw.log().splitlines():
        assert line_errors(line) == []
