"""E2E: hostile inputs against the running gateway. Each gets a 4xx problem+json, creates
no session, and leaves exactly the audit event its reason names."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from support.browser import Browser
from support.e2e import login, start_login
from support.idp import complete_idp_login

pytestmark = pytest.mark.e2e


async def raw_request(port: int, request_line: str, headers: dict[str, str]) -> tuple[int, bytes]:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = request_line + "\r\nHost: localhost\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1"))
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data


def _problem(resp, status: int, slug: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["type"].endswith("/" + slug), body
    return body


def _no_session_cookie(resp) -> None:
    assert not any(c.startswith("__Host-bffgate=") for c in resp.headers.get_list("set-cookie"))


def _failed_reasons(gateway) -> list[str]:
    return [e.get("reason", "") for e in gateway.audit("login.failed")]


async def _callback_url(browser, idp_client) -> str:
    authorize = await start_login(browser)
    return await complete_idp_login(idp_client, authorize, browser.base_url + "/bff/callback")


async def test_callback_without_state(browser, gateway) -> None:
    r = await browser.get("/bff/callback?code=abc")
    _problem(r, 400, "login-rejected")
    _no_session_cookie(r)
    assert "state_missing" in _failed_reasons(gateway)


async def test_callback_with_forged_state(browser, idp_client, gateway) -> None:
    cb = await _callback_url(browser, idp_client)
    q = parse_qs(urlsplit(cb).query)
    q["state"] = ["forged-" + q["state"][0][7:]]
    r = await browser.get("/bff/callback?" + urlencode({k: v[0] for k, v in q.items()}))
    _problem(r, 400, "login-rejected")
    _no_session_cookie(r)
    assert "state_unknown" in _failed_reasons(gateway)


async def test_replayed_callback(browser, idp_client, gateway) -> None:
    """The state is single use: the exact callback URL replayed fails, in any browser."""
    cb = await _callback_url(browser, idp_client)
    assert (await browser.get(cb)).status_code == 302
    r = await browser.get(cb)
    _problem(r, 400, "login-rejected")
    other = Browser(gateway.url)
    r2 = await other.get(cb)
    _problem(r2, 400, "login-rejected")
    await other.aclose()


async def test_callback_from_another_browser(browser, idp_client, gateway) -> None:
    """Login CSRF: the victim's browser (no/other binding cookie) can't finish my login."""
    cb = await _callback_url(browser, idp_client)
    victim = Browser(gateway.url)
    await victim.get("/bff/login")  # the victim has a binding cookie of its own
    r = await victim.get(cb)
    _problem(r, 400, "login-rejected")
    _no_session_cookie(r)
    assert "binding_mismatch" in _failed_reasons(gateway)
    # and the attacker's record was consumed, not left for a retry
    r2 = await browser.get(cb)
    _problem(r2, 400, "login-rejected")
    await victim.aclose()


async def test_code_replay_with_fresh_state(browser, idp_client, gateway) -> None:
    """A used code, smuggled into a new login's callback, is refused by the IdP."""
    cb = await _callback_url(browser, idp_client)
    assert (await browser.get(cb)).status_code == 302
    old_code = parse_qs(urlsplit(cb).query)["code"][0]
    authorize = await start_login(browser)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    iss = parse_qs(urlsplit(cb).query)["iss"][0]
    r = await browser.get("/bff/callback?" + urlencode({"code": old_code, "state": state,
                                                         "iss": iss}))
    _problem(r, 400, "login-rejected")
    _no_session_cookie(r)
    assert "token_exchange:invalid_grant" in _failed_reasons(gateway)


async def test_iss_mismatch_and_missing(browser, idp_client, gateway) -> None:
    for iss, reason in (("https://evil.example", "iss_mismatch"), (None, "iss_missing")):
        cb = await _callback_url(browser, idp_client)
        q = {k: v[0] for k, v in parse_qs(urlsplit(cb).query).items()}
        if iss is None:
            q.pop("iss")
        else:
            q["iss"] = iss
        r = await browser.get("/bff/callback?" + urlencode(q))
        _problem(r, 400, "login-rejected")
        _no_session_cookie(r)
        assert reason in _failed_reasons(gateway)


async def test_idp_error_response(browser, gateway, idp) -> None:
    authorize = await start_login(browser)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    r = await browser.get("/bff/callback?" + urlencode({
        "error": "access_denied", "error_description": "<script>alert(1)</script>",
        "state": state, "iss": idp.issuer}))
    body = _problem(r, 400, "login-rejected")
    assert "<script>" not in r.text
    assert body["detail"] == "the identity provider answered access_denied"
    assert "idp_error:access_denied" in _failed_reasons(gateway)


async def test_front_channel_tokens_and_duplicate_params_refused(browser) -> None:
    for query in ("state=a&state=a&code=x", "code=x&state=y&access_token=z",
                  "code=x&state=y&id_token=z"):
        r = await browser.get("/bff/callback?" + query)
        _problem(r, 400, "login-rejected")


@pytest.mark.parametrize("value", [
    pytest.param("https://evil.example/", id="absolute"),
    pytest.param("//evil.example", id="protocol-relative"),
    pytest.param("/\\evil.example", id="slash-backslash"),
    pytest.param("/%2f%2fevil.example", id="encoded-slashes"),
    pytest.param("/%09/evil.example", id="encoded-tab"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("/%0d%0aSet-Cookie:%20x=y", id="crlf"),
    pytest.param("https://app.example.com@evil.example/", id="userinfo"),
])
async def test_open_redirect_return_urls_refused(browser, gateway, value) -> None:
    r = await browser.get("/bff/login", params={"returnUrl": value})
    _problem(r, 400, "invalid-return-url")
    assert "location" not in r.headers
    assert any(x.startswith("return_url:") for x in _failed_reasons(gateway))


async def test_tampered_cookie_is_401(browser, idp_client, redis_server) -> None:
    await login(browser, idp_client, redis_server.url)
    good = browser.cookie("__Host-bffgate")
    assert good
    for bad in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
                "v2." + good[3:], good.replace("v1.", "v1.x", 1), "garbage"):
        for path in ("/bff/user", "/api/x"):
            r = await browser.api("GET", path, headers={"cookie": f"__Host-bffgate={bad}"})
            _problem(r, 401, "not-authenticated")
            # A dead cookie is cleared (the browser that sent it holds nothing usable).
            assert any(c.startswith("__Host-bffgate=;") and "Max-Age=0" in c
                       for c in r.headers.get_list("set-cookie"))
    # The live session itself is untouched (the jar took the clearing: send it again).
    r = await browser.api("GET", "/bff/user", headers={"cookie": f"__Host-bffgate={good}"})
    assert r.status_code == 200


async def test_missing_csrf_header(browser, idp_client, redis_server, gateway, upstream) -> None:
    await login(browser, idp_client, redis_server.url)
    before = len(upstream.seen)
    for method, path in (("GET", "/bff/user"), ("GET", "/api/x"), ("POST", "/api/x")):
        r = await browser.request(method, path)
        _problem(r, 401, "csrf-rejected")
    r = await browser.api("POST", "/api/x", headers={"origin": "https://evil.example"})
    _problem(r, 401, "csrf-rejected")
    assert len(upstream.seen) == before  # nothing reached the upstream
    reasons = [e.get("reason") for e in gateway.audit("csrf.rejected")]
    assert "csrf_header_missing" in reasons and "origin_mismatch" in reasons


@pytest.mark.parametrize("path", [
    pytest.param("/api/../admin", id="dotdot"),
    pytest.param("/api/%2e%2e/admin", id="encoded-dotdot"),
    pytest.param("/api/%252e%252e/admin", id="double-encoded-dotdot"),
    pytest.param("/api/x%2f..%2fadmin", id="encoded-slash"),
    pytest.param("/api/x%5c..%5cadmin", id="encoded-backslash"),
    pytest.param("/api//admin", id="empty-segment"),
    pytest.param("/api/./x", id="dot"),
])
async def test_path_escape_refused(browser, idp_client, redis_server, upstream, gateway,
                                   path) -> None:
    before = len(upstream.seen)
    # a raw socket: httpx (like browsers) would normalise dot segments before sending
    status, body = await raw_request(gateway.port, f"GET {path} HTTP/1.1", {"X-CSRF": "1"})
    assert status == 400, body
    assert b"/path-rejected" in body
    assert len(upstream.seen) == before


async def _websocket_handshake(port: int, path: str, cookie: str | None) -> bytes:
    """A browser's WebSocket opening handshake (RFC 6455 4.1) on a raw socket; returns
    everything the gateway sent until it closed the connection (bounded wait)."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:{port}\r\n")
    if cookie:
        head += f"Cookie: __Host-bffgate={cookie}\r\n"
    writer.write((head + "\r\n").encode("latin-1"))
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(), 10)  # until the gateway closes
    finally:
        writer.close()
    return data


async def test_unknown_route_404_and_websocket_refused(browser, idp_client, redis_server,
                                                       upstream, gateway) -> None:
    r = await browser.api("GET", "/nothing-here")
    _problem(r, 404, "not-found")

    # No route speaks WebSocket: a handshake, even with a live session on a token route, is
    # refused (never 101 Switching Protocols), the connection is closed, and nothing of it
    # reaches the upstream (which records every request it gets, upgrades included).
    await login(browser, idp_client, redis_server.url)
    cookie = browser.cookie("__Host-bffgate")
    assert cookie
    for path in ("/api/ws-probe-e2e", "/bff/ws-probe-e2e", "/ws-probe-e2e"):
        data = await _websocket_handshake(gateway.port, path, cookie)
        status_line, _, rest = data.partition(b"\r\n")
        assert not status_line.startswith(b"HTTP/1.1 101"), data[:300]
        assert status_line.split(b" ")[1:2] == [b"400"], data[:300]
        assert b"content-type: application/problem+json" in rest.lower(), data[:300]
        assert b"/upgrade-refused" in rest, data[:300]
        assert b"sec-websocket-accept" not in rest.lower()
    assert not [rec for rec in upstream.seen if "ws-probe-e2e" in rec["path"]]
    assert (await browser.api("GET", "/bff/user")).status_code == 200  # the session is intact


async def test_logout_needs_sid(browser, idp_client, redis_server) -> None:
    """A cross-site link to /bff/logout can't end the session."""
    await login(browser, idp_client, redis_server.url)
    r = await browser.get("/bff/logout")
    _problem(r, 403, "forbidden")
    r = await browser.get("/bff/logout?sid=wrong")
    _problem(r, 403, "forbidden")
    assert (await browser.api("GET", "/bff/user")).status_code == 200
