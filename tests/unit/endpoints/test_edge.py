"""Unit tests for the edge dispatch (``Gateway.public`` driven with raw ASGI messages, memory
store, a recording fake upstream, no sockets): forbidden and per-route methods, duplicated
headers and cookies, and client aborts. Each refusal is a problem+json, audited once, and
never reaches the upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from bffgate.app import Gateway
from bffgate.config import load_settings
from bffgate.log_context import request_fields
from support.asgi_call import call

PUBLIC = "https://app.test"
COOKIE = "__Host-bffgate"


@dataclass
class StreamingResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]
    closed: bool = False

    async def body(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            await asyncio.sleep(0)  # let the client's disconnect be noticed between chunks
            yield c

    async def close(self) -> None:
        self.closed = True


@dataclass
class RecordingUpstream:
    seen: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=lambda: [b"{}"])
    responses: list[StreamingResponse] = field(default_factory=list)

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None, timeout: float) -> StreamingResponse:
        if body is not None:
            async for _ in body:
                pass
        self.seen.append((method, url))
        resp = StreamingResponse(200, [(b"content-type", b"application/json")],
                                 list(self.chunks))
        self.responses.append(resp)
        return resp

    async def close(self) -> None:
        return None


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    settings = load_settings(environ={}, overrides={
        "server": {"public_url": PUBLIC, "trusted_proxies": ["10.0.0.0/8"]},
        "oidc": {"issuer": "https://idp.test", "client_id": "bff", "client_secret": "s" * 24},
        "session": {"store": "memory"},
        "cookie": {"secret_keys": ["k" * 40]},
        "routes": [
            {"prefix": "/api", "upstream": "http://up.test", "token": "user"},
            {"prefix": "/public", "upstream": "http://up.test", "token": "none"},
            {"prefix": "/ro", "upstream": "http://up.test", "token": "user",
             "methods": ["GET", "HEAD"]},
            {"prefix": "/dav", "upstream": "http://up.test", "token": "none",
             "methods": ["GET", "PROPFIND"]},
            {"prefix": "/matrix", "upstream": "http://up.test", "token": "none",
             "allow_matrix_params": True},
        ],
    })
    gateway = Gateway(settings, upstream_factory=RecordingUpstream)
    await gateway.start(warm_idp=False)
    yield gateway
    await gateway.stop()


def _upstream(gw: Gateway) -> RecordingUpstream:
    up = gw.upstreams["http://up.test"]
    assert isinstance(up, RecordingUpstream)
    return up


def _rejected(logs: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in logs if e.get("event") == "request.rejected"]


# --- Finding 1: methods --------------------------------------------------------------------

@pytest.mark.parametrize("method", ["TRACE", "TRACK", "CONNECT"])
@pytest.mark.parametrize("path", ["/api/x", "/public/x", "/bff/user", "/bff/login", "/nowhere"])
async def test_forbidden_methods_refused_on_every_path(gw: Gateway, method: str,
                                                       path: str) -> None:
    """TRACE was proxied (bearer attached) on a token=user route; now 405 at the edge."""
    with capture_logs() as logs:
        a = await call(gw.public, method, path, [("x-csrf", "1")])
    assert a.status == 405
    assert a.problem()["type"].endswith("/method-not-allowed")
    assert _rejected(logs) == ["method_forbidden"]
    assert _upstream(gw).seen == []
    if path.startswith(("/api", "/public")):
        assert a.headers["allow"] == ["GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    pytest.param("DELETE", "/ro/x", "GET, HEAD", id="delete-on-read-only"),
    pytest.param("POST", "/ro/x", "GET, HEAD", id="post-on-read-only"),
    pytest.param("PROPFIND", "/api/x", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                 id="webdav-on-default"),
    pytest.param("BREW", "/public/x", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                 id="made-up-method"),
])
async def test_route_methods_405_before_the_session(gw: Gateway, method: str, path: str,
                                                    allow: str) -> None:
    """Not in the route's list: 405 with Allow, before CSRF or the session (no cookie here,
    still 405 and not 401) and before anything is forwarded."""
    with capture_logs() as logs:
        a = await call(gw.public, method, path)
    assert a.status == 405, a.body
    assert a.headers["allow"] == [allow]
    assert _rejected(logs) == ["method_not_allowed"]
    assert _upstream(gw).seen == []
    route = "/" + path.split("/")[1]
    assert f'bffgate_proxy_requests_total{{route="{route}",status_class="4xx"}} 1.0'.encode() \
        in gw.metrics.render()


async def test_route_methods_allow_listed(gw: Gateway) -> None:
    a = await call(gw.public, "PROPFIND", "/dav/x")
    assert a.status == 200
    assert _upstream(gw).seen == [("PROPFIND", "http://up.test/dav/x")]


# --- Finding 2: matrix params --------------------------------------------------------------

@pytest.mark.parametrize(("path", "reason"), [
    pytest.param("/public/..;/secret", "path:dot_segment", id="dotdot-semicolon"),
    pytest.param("/matrix/..;/secret", "path:dot_segment", id="dotdot-semicolon-opted-in"),
    pytest.param("/public/a;b", "path:matrix_params", id="semicolon-not-opted-in"),
    pytest.param("/public;x/y", "path:matrix_params", id="semicolon-in-prefix"),
    pytest.param("/public/%c0%ae%c0%ae/x", "path:invalid_utf8", id="overlong-dots"),
])
async def test_path_refusals(gw: Gateway, path: str, reason: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", path)
    assert a.status == 400
    assert a.problem()["type"].endswith("/path-rejected")
    assert _rejected(logs) == [reason]
    assert _upstream(gw).seen == []


async def test_matrix_params_forwarded_where_allowed(gw: Gateway) -> None:
    a = await call(gw.public, "GET", "/matrix/a;v=1/b")
    assert a.status == 200
    assert _upstream(gw).seen == [("GET", "http://up.test/matrix/a;v=1/b")]


# --- Finding 3: duplicates -----------------------------------------------------------------

@pytest.mark.parametrize(("path", "headers", "reason"), [
    pytest.param("/api/x", [("x-csrf", "1"), ("x-csrf", "2")], "duplicate_header:x-csrf",
                 id="csrf-twice"),
    pytest.param("/bff/user", [("x-csrf", "1"), ("x-csrf", "1")], "duplicate_header:x-csrf",
                 id="csrf-twice-bff"),
    pytest.param("/public/x", [("origin", PUBLIC), ("origin", "https://evil.example")],
                 "duplicate_header:origin", id="origin-twice"),
    pytest.param("/public/x", [("host", "evil.example")], "duplicate_header:host",
                 id="host-twice"),
    pytest.param("/public/x", [("content-length", "0"), ("content-length", "0")],
                 "duplicate_header:content-length", id="content-length-twice"),
    pytest.param("/public/x", [("content-length", "0, 0")],
                 "duplicate_header:content-length", id="content-length-list"),
    pytest.param("/api/x", [("x-csrf", "1"), ("cookie", f"{COOKIE}=a; {COOKIE}=b")],
                 f"duplicate_cookie:{COOKIE}", id="session-cookie-twice-one-header"),
    pytest.param("/bff/user", [("x-csrf", "1"), ("cookie", f"{COOKIE}=a"),
                               ("cookie", f"{COOKIE}=b")],
                 f"duplicate_cookie:{COOKIE}", id="session-cookie-twice-two-headers"),
    pytest.param("/bff/logout", [("cookie", f"{COOKIE}=a; {COOKIE}=b")],
                 f"duplicate_cookie:{COOKIE}", id="session-cookie-twice-logout"),
    pytest.param("/bff/callback", [("cookie", f"{COOKIE}-login=a; {COOKIE}-login=b")],
                 f"duplicate_cookie:{COOKIE}-login", id="binding-cookie-twice-callback"),
    pytest.param("/bff/login", [("cookie", f"{COOKIE}-login=a"), ("cookie", f"{COOKIE}-login=b")],
                 f"duplicate_cookie:{COOKIE}-login", id="binding-cookie-twice-login"),
])
async def test_duplicates_refused_at_the_edge(gw: Gateway, path: str,
                                              headers: list[tuple[str, str]],
                                              reason: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", path, headers)
    assert a.status == 400, a.body
    body = a.problem()
    assert body["type"].endswith("/bad-request")
    assert reason.split(":", 1)[1] in body["detail"]
    assert _rejected(logs) == [reason]
    assert _upstream(gw).seen == []
    assert "set-cookie" not in a.headers


@pytest.mark.parametrize(("headers", "reason"), [
    pytest.param([("x-request-id", "abcdef0123456789"), ("x-request-id", "0123456789abcdef")],
                 "duplicate_header:x-request-id", id="request-id-twice"),
    pytest.param([("x-forwarded-for", "unknown")], "invalid_header:x-forwarded-for",
                 id="xff-not-an-ip"),
])
async def test_ambiguous_forwarded_headers_from_trusted_proxy(
        gw: Gateway, headers: list[tuple[str, str]], reason: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", "/public/x", headers, peer="10.0.0.7")
    assert a.status == 400
    assert _rejected(logs) == [reason]
    assert _upstream(gw).seen == []
    # the same headers from an untrusted peer are ignored, not refused
    assert (await call(gw.public, "GET", "/public/x", headers, peer="203.0.113.1")).status == 200


async def test_xff_lines_from_trusted_proxy_combine(gw: Gateway) -> None:
    a = await call(gw.public, "GET", "/public/x", [("x-forwarded-for", "6.6.6.6"),
                                            ("x-forwarded-for", "1.2.3.4, 10.0.0.9")],
                   peer="10.0.0.7")
    assert a.status == 200
    assert request_fields()["client_ip"] == "1.2.3.4"


# --- Finding 11: client aborts -------------------------------------------------------------

async def test_client_gone_mid_response_is_an_abort(gw: Gateway) -> None:
    """The client leaves while a large response streams: one warning, the copy stops, the
    request is counted as client_closed; no request.failed, no traceback."""
    up = _upstream(gw)
    up.chunks = [b"x" * 1024] * 1000
    state = {"n": 0}

    async def receive() -> dict[str, Any]:
        state["n"] += 1
        if state["n"] == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    with capture_logs() as logs:
        a = await call(gw.public, "GET", "/public/big", receive=receive)
    assert a.status == 200
    assert len(a.body) < 1000 * 1024  # the copy stopped
    assert up.responses[0].closed
    aborted = [e for e in logs if e["event"] == "request.aborted"]
    assert len(aborted) == 1
    assert aborted[0]["log_level"] == "warning" and aborted[0]["reason"] == "client_disconnected"
    assert not [e for e in logs if e["event"] in ("request.failed", "request.proxied")]
    assert b'bffgate_proxy_requests_total{route="/public",status_class="client_closed"} 1.0' \
        in gw.metrics.render()


async def test_client_gone_mid_body_is_an_abort(gw: Gateway) -> None:
    msgs = iter([{"type": "http.request", "body": b"a" * 10, "more_body": True},
                 {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        return next(msgs)

    sent: list[Any] = []
    scope = {"type": "http", "method": "POST", "path": "/public/up", "raw_path": b"/public/up",
             "query_string": b"", "headers": [(b"host", b"app.test"),
                                               (b"content-length", b"100")],
             "client": ("127.0.0.1", 1)}

    async def send(m: Any) -> None:
        sent.append(m)

    with capture_logs() as logs:
        await gw.public(scope, receive, send)
    assert [e["reason"] for e in logs if e["event"] == "request.aborted"] == \
        ["client_disconnected"]
    assert not [e for e in logs if e["event"] in ("request.failed", "request.proxied")]
    assert b'status_class="client_closed"} 1.0' in gw.metrics.render()


async def test_send_raising_oserror_is_an_abort(gw: Gateway) -> None:
    """ASGI servers may raise OSError from send() on a closed connection."""
    _upstream(gw).chunks = [b"a", b"b", b"c"]
    scope = {"type": "http", "method": "GET", "path": "/public/x", "raw_path": b"/public/x",
             "query_string": b"", "headers": [(b"host", b"app.test")],
             "client": ("127.0.0.1", 1)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m: Any) -> None:
        if m["type"] == "http.response.body":
            raise ConnectionResetError

    with capture_logs() as logs:
        await gw.public(scope, receive, send)
    assert [e["event"] for e in logs if e["event"].startswith("request.")] == ["request.aborted"]
