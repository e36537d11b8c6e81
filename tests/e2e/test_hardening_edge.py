"""E2E for issue 7 findings 1, 2, 3 and 11 against a real ``bffgate serve`` (real IdP, Redis,
echo upstream), with raw sockets so nothing is normalised on the way: forbidden and
per-route methods, servlet matrix parameters, duplicated headers and cookies, overlong
UTF-8 in paths, and a client that leaves mid-response. Every refusal is a problem+json,
leaves its audit event, and the upstream never sees the request."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, login
from support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_config, new_ports

pytestmark = pytest.mark.e2e

COOKIE = "__Host-bffgate"


async def raw(port: int, request_line: str, headers: list[tuple[str, str]] | None = None,
              body: bytes = b"") -> tuple[int, dict[str, list[str]], bytes]:
    """One request on a fresh connection, headers exactly as given (duplicates included)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    names = {k.lower() for k, _ in headers or []}
    head = request_line + "\r\n"
    if "host" not in names:
        head += "Host: localhost\r\n"
    head += "Connection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers or []) + "\r\n"
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head_part, _, payload = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    out: dict[str, list[str]] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return status, out, payload


def _problem(status: int, headers: dict[str, list[str]], payload: bytes, expected: int,
             slug: str) -> dict[str, Any]:
    assert status == expected, payload
    assert headers["content-type"] == ["application/problem+json"], headers
    body = json.loads(payload)
    assert body["type"].endswith("/" + slug), body
    return dict(body)


def _marker() -> str:
    return "m" + secrets.token_hex(6)


def _upstream_saw(upstream: Any, marker: str) -> bool:
    return any(marker in rec["path"] or marker in rec["query"] for rec in upstream.seen)


def _reasons(gw: GatewayProcess, event: str = "request.rejected") -> list[str]:
    return [e.get("reason", "") for e in gw.audit(event)]


async def _session_cookie(browser: Any, idp_client: Any, redis_url: str) -> str:
    await login(browser, idp_client, redis_url)
    cookie = browser.cookie(COOKIE)
    assert cookie
    return cookie


@pytest.fixture(scope="module")
def edge_gw(idp: Any, redis_server: Any, upstream: Any) -> Iterator[GatewayProcess]:
    """A gateway with the new route keys: a read-only route and one that opts in to
    matrix parameters (no login needed on it: the checks come first)."""
    port, admin = new_ports()
    config = gateway_config(
        port=port, admin_port=admin, issuer=idp.issuer, client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, redis_url=redis_server.url, upstream=upstream.url,
        cookie_key=COOKIE_KEY,
        routes=[
            {"prefix": "/ro", "upstream": upstream.url, "token": "user",
             "methods": ["GET", "HEAD"]},
            {"prefix": "/matrix", "upstream": upstream.url, "token": "none",
             "allow_matrix_params": True},
            {"prefix": "/public", "upstream": upstream.url, "token": "none"},
        ])
    gw = GatewayProcess(config).start()
    yield gw
    gw.terminate()


# --- Finding 1: methods ----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
async def test_trace_and_connect_with_a_live_session_never_forwarded(
        browser, idp_client, redis_server, gateway, upstream, method) -> None:
    """TRACE on a token=user route used to be proxied with the bearer attached (an echoing
    upstream handed the access token to whoever held the cookie). Now 405 at the edge."""
    cookie = await _session_cookie(browser, idp_client, redis_server.url)
    m = _marker()
    status, headers, payload = await raw(
        gateway.port, f"{method} /api/{m} HTTP/1.1",
        [("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", "1")])
    _problem(status, headers, payload, 405, "method-not-allowed")
    assert not _upstream_saw(upstream, m)
    if method == "TRACE":  # CONNECT is refused by the HTTP framing layer, before the edge
        assert headers["allow"] == ["GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"]
        assert "method_forbidden" in _reasons(gateway)
    status, _, payload = await raw(gateway.port, f"{method} /bff/user HTTP/1.1",
                                   [("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", "1")])
    assert status == 405, payload


async def test_track_never_forwarded(gateway, upstream) -> None:
    """TRACK: 405 from the gateway, or a 400 from an HTTP parser that knows no such method;
    never forwarded either way."""
    m = _marker()
    status, _, payload = await raw(gateway.port, f"TRACK /public/{m} HTTP/1.1")
    assert status in (400, 405), payload
    assert not _upstream_saw(upstream, m)


async def test_route_methods_refused_before_the_session(edge_gw, upstream) -> None:
    """A method not in the route's list is 405 with Allow before CSRF or the session (no
    cookie here: 405, not 401) and before anything is forwarded."""
    for method in ("DELETE", "POST", "PROPFIND"):
        m = _marker()
        status, headers, payload = await raw(edge_gw.port, f"{method} /ro/{m} HTTP/1.1",
                                             [("Content-Length", "0")])
        _problem(status, headers, payload, 405, "method-not-allowed")
        assert headers["allow"] == ["GET, HEAD"]
        assert not _upstream_saw(upstream, m)
    assert _reasons(edge_gw).count("method_not_allowed") == 3
    status, _, _ = await raw(edge_gw.port, "GET /ro/x HTTP/1.1")
    assert status == 401  # allowed method: on to the session check


# --- Finding 2: matrix parameters --------------------------------------------------------------

@pytest.mark.parametrize("template", [
    pytest.param("/api/..;/{m}", id="dotdot-semicolon"),
    pytest.param("/api/x/..;jsessionid=1/{m}", id="dotdot-jsessionid"),
    pytest.param("/api/.;/{m}", id="dot-semicolon"),
    pytest.param("/api/..%3b/{m}", id="dotdot-encoded-semicolon"),
    pytest.param("/api/a;v=1/{m}", id="semicolon-not-opted-in"),
    pytest.param("/api;x/{m}", id="semicolon-in-prefix"),
])
async def test_matrix_params_refused(browser, idp_client, redis_server, gateway, upstream,
                                     template) -> None:
    """`/api/..;/secret` reached the upstream unchanged (Tomcat/Jetty/Spring read `..;` as
    `..`). Now 400 path-rejected, with a live session and the CSRF header."""
    cookie = await _session_cookie(browser, idp_client, redis_server.url)
    m = _marker()
    status, headers, payload = await raw(
        gateway.port, f"GET {template.format(m=m)} HTTP/1.1",
        [("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", "1")])
    _problem(status, headers, payload, 400, "path-rejected")
    assert not _upstream_saw(upstream, m)
    assert any(r.startswith("path:") for r in _reasons(gateway))


async def test_matrix_params_on_a_route_that_opts_in(edge_gw, upstream) -> None:
    m = _marker()
    status, _, payload = await raw(edge_gw.port, f"GET /matrix/a;v=1/{m} HTTP/1.1")
    assert status == 200, payload
    assert upstream.last_for(m)["path"] == f"/matrix/a;v=1/{m}"
    for path in (f"/matrix/..;/{m}", f"/matrix/.;x/{m}", f"/matrix;x/{m}", f"/public/a;b/{m}"):
        status, headers, payload = await raw(edge_gw.port, f"GET {path} HTTP/1.1")
        _problem(status, headers, payload, 400, "path-rejected")
    assert upstream.last_for(m)["path"] == f"/matrix/a;v=1/{m}"  # nothing else got through


# --- Finding 11: overlong UTF-8 ------------------------------------------------------------

@pytest.mark.parametrize("template", [
    pytest.param("/api/%c0%ae%c0%ae/{m}", id="overlong-2-byte-dotdot"),
    pytest.param("/api/%e0%80%ae%e0%80%ae/{m}", id="overlong-3-byte-dotdot"),
    pytest.param("/api/%f0%80%80%ae%f0%80%80%ae/{m}", id="overlong-4-byte-dotdot"),
    pytest.param("/api/..%c0%af{m}", id="overlong-slash"),
    pytest.param("/api/%c0%2e%c0%2e/{m}", id="lead-byte-then-encoded-dot"),
    pytest.param("/api/%ff/{m}", id="invalid-byte"),
])
async def test_overlong_utf8_refused(browser, idp_client, redis_server, gateway, upstream,
                                     template) -> None:
    """Found by the raw-socket fuzzer: these reached the upstream as written."""
    cookie = await _session_cookie(browser, idp_client, redis_server.url)
    m = _marker()
    status, headers, payload = await raw(
        gateway.port, f"GET {template.format(m=m)} HTTP/1.1",
        [("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", "1")])
    _problem(status, headers, payload, 400, "path-rejected")
    assert not _upstream_saw(upstream, m)


# --- Finding 3: duplicates ---------------------------------------------------------------------

async def test_duplicate_csrf_header_refused(browser, idp_client, redis_server, gateway,
                                             upstream) -> None:
    """`X-CSRF: 1` and `X-CSRF: 2` passed before (first wins); now 400, whatever the order."""
    cookie = await _session_cookie(browser, idp_client, redis_server.url)
    for values in (("1", "2"), ("2", "1"), ("1", "1")):
        m = _marker()
        status, headers, payload = await raw(
            gateway.port, f"GET /api/{m} HTTP/1.1",
            [("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", values[0]), ("X-CSRF", values[1])])
        body = _problem(status, headers, payload, 400, "bad-request")
        assert "x-csrf" in body["detail"]
        assert not _upstream_saw(upstream, m)
    assert "duplicate_header:x-csrf" in _reasons(gateway)
    # the same request with one header goes through
    m = _marker()
    status, _, _ = await raw(gateway.port, f"GET /api/{m} HTTP/1.1",
                             [("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", "1")])
    assert status == 200 and _upstream_saw(upstream, m)


@pytest.mark.parametrize("shape", ["one-header", "two-headers", "same-value-twice"])
@pytest.mark.parametrize("path", ["/api/{m}", "/bff/user?{m}", "/bff/logout?{m}"])
async def test_duplicate_session_cookie_refused(browser, idp_client, redis_server, gateway,
                                                upstream, shape, path) -> None:
    """Two session cookies in one request used one of them; now 400 naming the cookie, on
    the proxy and on the /bff endpoints, and the live session is left alone."""
    cookie = await _session_cookie(browser, idp_client, redis_server.url)
    other = {"same-value-twice": cookie}.get(shape, "v1.forged")
    cookies = [("Cookie", f"{COOKIE}={other}; {COOKIE}={cookie}")]
    if shape == "two-headers":
        cookies = [("Cookie", f"{COOKIE}={cookie}"), ("Cookie", f"a=1; {COOKIE}={other}")]
    m = _marker()
    status, headers, payload = await raw(gateway.port, f"GET {path.format(m=m)} HTTP/1.1",
                                         [*cookies, ("X-CSRF", "1")])
    body = _problem(status, headers, payload, 400, "bad-request")
    assert COOKIE in body["detail"] and cookie not in payload.decode()
    assert "set-cookie" not in headers
    assert not _upstream_saw(upstream, m)
    assert f"duplicate_cookie:{COOKIE}" in _reasons(gateway)
    assert (await browser.api("GET", "/bff/user")).status_code == 200


@pytest.mark.parametrize("path", ["/bff/callback?state=x&code=y", "/bff/login"])
async def test_duplicate_login_binding_cookie_refused(gateway, path) -> None:
    before = len(gateway.audit("login.started"))
    status, headers, payload = await raw(
        gateway.port, f"GET {path} HTTP/1.1",
        [("Cookie", f"{COOKIE}-login={'a' * 43}; {COOKIE}-login={'b' * 43}")])
    body = _problem(status, headers, payload, 400, "bad-request")
    assert f"{COOKIE}-login" in body["detail"]
    assert "location" not in headers and "set-cookie" not in headers
    assert f"duplicate_cookie:{COOKIE}-login" in _reasons(gateway)
    assert len(gateway.audit("login.started")) == before


async def test_duplicate_logout_sid_refused(browser, idp_client, redis_server, gateway) -> None:
    """`?sid=wrong&sid=<right>` logged out before (the last value won); now 400 and the
    session stays."""
    await login(browser, idp_client, redis_server.url)
    logout_url = (await browser.api("GET", "/bff/user")).json()["logout_url"]
    sid = logout_url.split("sid=", 1)[1]
    for query in (f"sid=wrong&sid={sid}", f"sid={sid}&sid={sid}"):
        r = await browser.get(f"/bff/logout?{query}")
        assert r.status_code == 400, r.text
        assert r.json()["type"].endswith("/bad-request")
        assert "location" not in r.headers
    assert (await browser.api("GET", "/bff/user")).status_code == 200
    assert "duplicate_parameter:sid" in _reasons(gateway)


@pytest.mark.parametrize(("headers", "reason"), [
    pytest.param([("Origin", "http://evil.example"), ("Origin", "{origin}")],
                 "duplicate_header:origin", id="origin-twice"),
    pytest.param([("Origin", "{origin}, http://evil.example")], "duplicate_header:origin",
                 id="origin-list"),
    pytest.param([("Host", "localhost"), ("Host", "evil.example")], "duplicate_header:host",
                 id="host-twice"),
])
async def test_other_trusted_headers_duplicated(browser, idp_client, redis_server, gateway,
                                                upstream, headers, reason) -> None:
    cookie = await _session_cookie(browser, idp_client, redis_server.url)
    m = _marker()
    filled = [(k, v.format(origin=gateway.url)) for k, v in headers]
    status, hdrs, payload = await raw(
        gateway.port, f"POST /api/{m} HTTP/1.1",
        [*filled, ("Cookie", f"{COOKIE}={cookie}"), ("X-CSRF", "1"), ("Content-Length", "0")])
    if reason == "duplicate_header:host" and status == 400 and b"problem" not in payload:
        pytest.fail(f"the HTTP parser refused it without a problem+json: {payload!r}")
    _problem(status, hdrs, payload, 400, "bad-request")
    assert not _upstream_saw(upstream, m)
    assert reason in _reasons(gateway)


# --- Finding 11: client aborts -----------------------------------------------------------------

def _rst_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _client_closed(gw: GatewayProcess) -> float:
    text = httpx.get(gw.admin_url + "/metrics",
                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).text
    for line in text.splitlines():
        if line.startswith("bffgate_proxy_requests_total{") and \
                'route="/public"' in line and 'status_class="client_closed"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


async def test_client_closing_mid_response_is_an_abort(gateway, upstream) -> None:
    """A client that hangs up while a large response streams: one `request.aborted` warning
    with its reason, counted as client_closed; no `request.failed`, no traceback, and the
    copy from the upstream stops."""
    before, log_start = _client_closed(gateway), len(gateway.log())
    seen_before = {e.get("request_id") for e in gateway.audit("request.aborted")}

    def aborted_here() -> list[dict[str, Any]]:
        return [e for e in gateway.audit("request.aborted") if e.get("path") == "/public/big"
                and e.get("request_id") not in seen_before]

    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(b"GET /public/big?n=200000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    received = 0
    while received < 256 * 1024:
        received += len(sock.recv(65536))
    _rst_close(sock)
    assert _wait_for(lambda: bool(aborted_here()))
    aborted = aborted_here()
    assert len(aborted) == 1
    assert aborted[0]["level"] == "warning"
    assert aborted[0]["reason"] == "client_disconnected"
    assert aborted[0]["route"] == "/public"
    assert _client_closed(gateway) == before + 1
    log = gateway.log()[log_start:]  # this request's lines (the gateway is shared)
    assert "request.failed" not in log and "Traceback" not in log
    assert not [e for e in gateway.audit("request.proxied")
                if e.get("request_id") == aborted[0]["request_id"]]


async def test_client_closing_mid_request_body_is_an_abort(gateway, upstream) -> None:
    before, log_start = _client_closed(gateway), len(gateway.log())
    m = _marker()
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(f"POST /public/{m} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n"
                 "\r\n".encode() + b"a" * 4096)
    time.sleep(0.3)
    _rst_close(sock)
    assert _wait_for(lambda: any(e.get("path") == f"/public/{m}"
                                 for e in gateway.audit("request.aborted")))
    assert _client_closed(gateway) == before + 1
    log = gateway.log()[log_start:]  # this request's lines (the gateway is shared)
    assert "request.failed" not in log and "Traceback" not in log
    assert not [e for e in gateway.events() if e.get("path") == f"/public/{m}"
                and e.get("event") == "request.proxied"]
