"""E2E against a SECOND, different OpenID provider: npm ``oauth2-mock-server`` 8.x
(tests/idp2/server.mjs), not oidc-provider. Nothing in the gateway may be tuned to one IdP.

How this IdP differs from tests/idp (and the gateway must cope): no login page (/authorize
redirects straight back with a code), no RFC 9207 ``iss`` in the authorization response and
not advertised, ``token_endpoint_auth_methods_supported: ["none"]`` (it authenticates no
client; the gateway's default client_secret_basic is accepted anyway), JWT access tokens,
``sub`` always "johndoe", no ``sid``, a new refresh token on every grant while ANY refresh
token is accepted, a /revoke that forgets nothing, /endsession that just redirects.

Refresh: the mock issues refresh tokens, so the test drives a real refresh-token grant
(access tokens live ACCESS_TTL s here) and, separately, a refused refresh (the mock never
refuses one by itself, so tests/idp2 can make the next refresh grant answer invalid_grant).

Node dependencies: ``npm ci --prefix tests/idp2``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bffgate.crypto.cookie_codec import CookieCodec
from support.browser import Browser
from support.e2e import COOKIE_KEY, read_session_tokens, start_login
from support.gateway import GatewayProcess, gateway_config
from support.idp import free_port
from support.processes import ChildProcess, log_line
from support.redis import RedisServer
from support.secrets_scan import remember
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e

IDP2_DIR = Path(__file__).resolve().parents[1] / "idp2"
CLIENT_ID = "bff-e2e-idp2"
CLIENT_SECRET = "idp2-" + secrets.token_urlsafe(24)
remember("client_secret", CLIENT_SECRET)
ACCESS_TTL = 4  # seconds; with refresh_ahead 2 the gateway refreshes ~2 s after a grant
SESSION_COOKIE = "__Host-bffgate"


class MockIdpProcess:
    """``node tests/idp2/server.mjs`` on 127.0.0.1, started and stopped by PID."""

    def __init__(self, access_token_ttl: int) -> None:
        self.access_token_ttl = access_token_ttl
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bffgate-idp2-"))
        self.child: ChildProcess | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MockIdpProcess:
        if not (IDP2_DIR / "node_modules" / "oauth2-mock-server").is_dir():
            pytest.fail(f"{IDP2_DIR / 'node_modules'} is missing: install the second test "
                        "IdP's node dependencies with `npm ci --prefix tests/idp2` "
                        "(from the repository root)", pytrace=False)
        node = shutil.which("node")
        if node is None:
            pytest.fail("`node` is not on PATH: the second test IdP needs Node.js 20.19+",
                        pytrace=False)
        for attempt in range(3):
            try:
                return self._spawn(node)
            except RuntimeError as exc:
                if attempt < 2 and "EADDRINUSE" in str(exc):
                    self.port = free_port()
                    continue
                raise
        raise AssertionError("unreachable")

    def _spawn(self, node: str) -> MockIdpProcess:
        env = dict(os.environ, IDP2_PORT=str(self.port),
                   IDP2_ACCESS_TOKEN_TTL=str(self.access_token_ttl), IDP2_EXIT_ON_STDIN_EOF="1")
        child = ChildProcess("tests/idp2", [node, str(IDP2_DIR / "server.mjs")],
                             self.dir / "stdout.log", env=env, cwd=IDP2_DIR, stdin_pipe=True,
                             stderr_path=self.dir / "stderr.log")
        child.log_path.write_bytes(b"")  # READY is looked for in this start's output only
        self.child = child.start()
        try:
            child.wait_ready(log_line(child, "READY "), timeout=20, what="READY")
        except RuntimeError:
            self.child = None
            raise
        return self

    def stop(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.stop(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # test-only endpoints of tests/idp2/server.mjs
    def _http(self) -> httpx.Client:
        return httpx.Client(base_url=self.issuer, timeout=10, trust_env=False)

    def metadata(self) -> dict[str, Any]:
        with self._http() as http:
            doc: dict[str, Any] = http.get("/.well-known/openid-configuration").json()
            return doc

    def stats(self) -> dict[str, Any]:
        with self._http() as http:
            data: dict[str, Any] = http.get("/test/stats").raise_for_status().json()
        for req in data["token_requests"]:
            for kind in ("access_token", "refresh_token", "id_token"):
                remember(kind, req.get(f"{kind}_issued"))
        return data

    def reset(self) -> None:
        with self._http() as http:
            http.post("/test/reset").raise_for_status()

    def fail_next_refresh(self) -> None:
        with self._http() as http:
            http.post("/test/fail-next-refresh").raise_for_status()


@pytest.fixture(scope="module")
def idp2() -> Iterator[MockIdpProcess]:
    mock = MockIdpProcess(ACCESS_TTL).start()
    yield mock
    mock.close()


@pytest.fixture(scope="module")
def gateway2(idp2: MockIdpProcess, redis_server: RedisServer,
             upstream: EchoUpstream) -> Iterator[GatewayProcess]:
    # The gateway's defaults throughout (client_secret_basic, scopes, no PAR): only the
    # issuer and the client registration differ from the main e2e tier.
    config = gateway_config(port=free_port(), admin_port=free_port(), issuer=idp2.issuer,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=upstream.url, cookie_key=COOKIE_KEY)
    gw = GatewayProcess(config).start()
    yield gw
    gw.terminate()


@pytest.fixture
async def browser2(gateway2: GatewayProcess) -> Any:
    b = Browser(gateway2.url)
    yield b
    await b.aclose()


async def login_via_mock(browser: Browser, idp_client: httpx.AsyncClient, idp2: MockIdpProcess,
                         return_url: str = "/app") -> httpx.Response:
    """/bff/login → the mock's /authorize (no login page: one redirect back) → callback."""
    authorize = await start_login(browser, return_url)
    assert authorize.startswith(idp2.issuer + "/authorize?"), authorize
    r = await idp_client.get(authorize, follow_redirects=False)
    assert r.status_code == 302, r.text
    callback = r.headers["location"]
    assert callback.startswith(browser.base_url + "/bff/callback?"), callback
    remember("authorization_code", parse_qs(urlsplit(callback).query).get("code", [""])[0])
    resp: httpx.Response = await browser.get(callback)
    remember("session_cookie", browser.cookie(SESSION_COOKIE))
    return resp


def last_grant(idp2: MockIdpProcess, grant_type: str) -> dict[str, Any]:
    grants = [t for t in idp2.stats()["token_requests"] if t["grant_type"] == grant_type]
    assert grants, f"the mock saw no {grant_type} grant"
    grant: dict[str, Any] = grants[-1]
    return grant


async def sleep_until_refresh_point(redis_url: str, cookie: str) -> dict[str, Any]:
    """Wait for the session's refresh point (as the gateway stored it), still before expiry."""
    record: dict[str, Any] = read_session_tokens(redis_url, cookie)["record"]
    await asyncio.sleep(max(0.0, record["rat"] - time.time() + 0.2))
    assert time.time() < record["exp"], "too slow: the access token expired before the refresh"
    return record


def session_in_redis(redis_url: str, cookie: str) -> bool:
    import redis

    handle = CookieCodec([COOKIE_KEY]).decode(cookie)
    r = redis.Redis.from_url(redis_url)
    try:
        return bool(r.exists(f"bffgate:s:{{{handle.key}}}"))
    finally:
        r.close()


async def test_mock_is_a_different_provider(idp2: MockIdpProcess) -> None:
    """The differences this module exercises are really there (canary for a mock upgrade)."""
    meta = idp2.metadata()
    assert meta["issuer"] == idp2.issuer
    assert "S256" in meta["code_challenge_methods_supported"]  # natively; no tweak needed
    assert "authorization_response_iss_parameter_supported" not in meta
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    assert "refresh_token" not in meta["grant_types_supported"]  # yet it serves the grant
    assert "backchannel_logout_supported" not in meta


async def test_login_user_proxy_refresh_logout(browser2: Browser, idp_client: httpx.AsyncClient,
                                               idp2: MockIdpProcess, gateway2: GatewayProcess,
                                               upstream: EchoUpstream,
                                               redis_server: RedisServer) -> None:
    idp2.reset()
    # --- login: authorization request built from discovery, PKCE S256, nonce
    authorize = await start_login(browser2, "/app?from=idp2")
    q = parse_qs(urlsplit(authorize).query)
    assert q["client_id"] == [CLIENT_ID] and q["response_type"] == ["code"]
    assert q["code_challenge_method"] == ["S256"] and q["nonce"][0] and q["state"][0]
    assert q["redirect_uri"] == [gateway2.url + "/bff/callback"]
    r = await idp_client.get(authorize, follow_redirects=False)
    assert r.status_code == 302
    callback = r.headers["location"]
    cbq = parse_qs(urlsplit(callback).query)
    assert cbq["state"] == q["state"] and "iss" not in cbq  # no RFC 9207 at this IdP
    remember("authorization_code", cbq["code"][0])
    resp = await browser2.get(callback)
    assert resp.status_code == 302, resp.text
    assert resp.headers["location"] == "/app?from=idp2"
    cookie = browser2.cookie(SESSION_COOKIE)
    assert cookie and cookie.startswith("v1.")
    remember("session_cookie", cookie)

    code_grant = last_grant(idp2, "authorization_code")
    assert code_grant["status"] == 200
    assert code_grant["client_auth"] == "basic"  # the gateway's configured method
    assert code_grant["code_verifier"] is True  # and the mock checked it against S256
    assert code_grant["redirect_uri"] == gateway2.url + "/bff/callback"

    # --- /bff/user: the mock's claims (sub "johndoe", no email/name in its ID token)
    user = await browser2.api("GET", "/bff/user")
    assert user.status_code == 200, user.text
    body = user.json()
    assert body["sub"] == "johndoe"
    assert body["claims"]["iss"] == idp2.issuer
    assert body["logout_url"].startswith("/bff/logout?sid=")
    assert "access_token" not in user.text and "refresh_token" not in user.text

    stored = read_session_tokens(redis_server.url, cookie)
    at1, rt1 = stored["tokens"]["at"], stored["tokens"]["rt"]
    assert at1 == code_grant["access_token_issued"]
    assert rt1 == code_grant["refresh_token_issued"]
    assert stored["tokens"]["it"] == code_grant["id_token_issued"]
    assert abs(stored["record"]["exp"] - (code_grant["ts"] + ACCESS_TTL)) < 2  # from expires_in

    # --- proxied GET: the upstream gets the mock's access token, never the cookie
    got = await browser2.api("GET", "/api/orders/7", params={"x": "1"})
    assert got.status_code == 200, got.text
    seen = upstream.last_for("/api/orders/7")
    assert header_values(seen, "authorization") == [f"Bearer {at1}"]
    assert header_values(seen, "cookie") == []
    assert seen["query"] == "x=1"

    # --- refresh: driven by expires_in, one refresh-token grant with the stored token
    grants_before = len([t for t in idp2.stats()["token_requests"]
                         if t["grant_type"] == "refresh_token"])
    await sleep_until_refresh_point(redis_server.url, cookie)
    got = await browser2.api("GET", "/api/orders/8")
    assert got.status_code == 200, got.text
    refreshes = [t for t in idp2.stats()["token_requests"] if t["grant_type"] == "refresh_token"]
    assert len(refreshes) == grants_before + 1
    grant = refreshes[-1]
    assert grant["status"] == 200 and grant["client_auth"] == "basic"
    assert grant["refresh_token_presented"] == rt1
    at2 = grant["access_token_issued"]
    assert at2 != at1
    assert header_values(upstream.last_for("/api/orders/8"), "authorization") == [f"Bearer {at2}"]
    stored = read_session_tokens(redis_server.url, cookie)
    assert stored["tokens"]["at"] == at2
    rt2 = stored["tokens"]["rt"]
    assert rt2 == grant["refresh_token_issued"] != rt1  # the rotated token is kept
    id2 = stored["tokens"]["it"]
    assert id2 == grant["id_token_issued"]  # the refreshed ID token validated and kept
    assert gateway2.audit("session.refreshed")

    got = await browser2.api("GET", "/api/orders/9")  # fresh again: no second grant
    assert got.status_code == 200
    assert header_values(upstream.last_for("/api/orders/9"), "authorization") == [f"Bearer {at2}"]
    assert len([t for t in idp2.stats()["token_requests"]
                if t["grant_type"] == "refresh_token"]) == grants_before + 1

    # --- logout: revoke the CURRENT refresh token, then the mock's end-session endpoint
    out = await browser2.get(body["logout_url"])
    assert out.status_code == 302, out.text
    end = out.headers["location"]
    assert end.startswith(idp2.issuer + "/endsession?"), end
    eq = parse_qs(urlsplit(end).query)
    assert eq["id_token_hint"] == [id2]
    assert eq["post_logout_redirect_uri"] == [gateway2.url + "/"]
    assert browser2.cookie(SESSION_COOKIE) is None
    stats = idp2.stats()
    assert stats["revocations"] == [{"token": rt2, "token_type_hint": "refresh_token",
                                     "client_auth": "basic"}]
    back = await idp_client.get(end, follow_redirects=False)
    assert back.status_code == 302
    assert back.headers["location"] == gateway2.url + "/"
    assert idp2.stats()["end_sessions"][-1]["id_token_hint"] == id2

    again = await browser2.api("GET", "/bff/user",
                               headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
    assert again.status_code == 401
    assert not session_in_redis(redis_server.url, cookie)
    assert any(e.get("reason") == "logout" for e in gateway2.audit("session.ended"))


async def test_refused_refresh_ends_the_session_with_401(browser2: Browser,
                                                          idp_client: httpx.AsyncClient,
                                                          idp2: MockIdpProcess,
                                                          gateway2: GatewayProcess,
                                                          redis_server: RedisServer) -> None:
    """The IdP answers the refresh grant with invalid_grant (as for a revoked token):
    the session is deleted and the SPA gets a 401 problem with a login_url."""
    idp2.reset()
    resp = await login_via_mock(browser2, idp_client, idp2)
    assert resp.status_code == 302, resp.text
    cookie = browser2.cookie(SESSION_COOKIE)
    assert cookie
    assert (await browser2.api("GET", "/api/a")).status_code == 200

    idp2.fail_next_refresh()
    await sleep_until_refresh_point(redis_server.url, cookie)
    r = await browser2.api("GET", "/api/b")
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/session-ended")
    assert problem["login_url"].startswith("/bff/login?returnUrl=")
    refresh = last_grant(idp2, "refresh_token")
    assert refresh["status"] == 400  # exactly one grant, refused

    assert not session_in_redis(redis_server.url, cookie)
    user = await browser2.api("GET", "/bff/user")
    assert user.status_code == 401
    failed = gateway2.audit("session.refresh_failed")
    assert failed and "invalid_grant" in json.dumps(failed[-1])
    assert len([t for t in idp2.stats()["token_requests"]
                if t["grant_type"] == "refresh_token"]) == 1
