"""HTTP framing and request smuggling (issue 7, findings 5 and 9), end to end with raw sockets
against a real ``bffgate serve``, once per HTTP parser (``server.http_parser`` = h11 and
httptools): every framing error gets a problem+json answer and a closed connection, an
Upgrade is refused and never forwarded, pipelined requests are answered in order, and the
forwarder never sends a Content-Length it has not verified nor reuses a connection that
still owes bytes."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bffgate.errors import BadRequest
from bffgate.proxy.forward import AiohttpUpstream
from bffgate.proxy.h1client import H1Upstream
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.idp import free_port
from support.raw_upstream import RawUpstream
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e

PROMPT = 3.0  # seconds: an answer and a closed connection well before any keep-alive timeout


@pytest.fixture(scope="module")
def early() -> Iterator[RawUpstream]:
    up = RawUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    up = EchoUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module", params=["h11", "httptools"])
def gw(request: pytest.FixtureRequest, redis_server: RedisServer, echo: EchoUpstream,
       early: RawUpstream) -> Iterator[GatewayProcess]:
    port, admin_port = new_ports()
    config = gateway_config(
        port=port, admin_port=admin_port, issuer=f"http://127.0.0.1:{free_port()}",
        client_id="framing", client_secret="framing-secret-0123456789",
        redis_url=redis_server.url, upstream=echo.url,
        cookie_key="framing-cookie-key-0123456789abcdefghijkl",
        server={"http_parser": request.param},
        routes=[{"prefix": "/public", "upstream": echo.url, "token": "none"},
                {"prefix": "/early", "upstream": early.url, "token": "none"}])
    g = GatewayProcess(config).start()
    yield g
    g.terminate()


def exchange(port: int, data: bytes, *, timeout: float = PROMPT) -> tuple[bytes, bool, float]:
    """Send raw bytes, read until the server closes or ``timeout``: (bytes, closed, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        out, closed = b"", False
        s.settimeout(0.2)
        while time.monotonic() - started < timeout:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    return out, closed, time.monotonic() - started


class _Unclosable(io.BytesIO):
    def close(self) -> None:  # http.client closes its file after a "Connection: close" answer
        pass


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._file = _Unclosable(data)

    def makefile(self, *_: Any) -> io.BytesIO:
        return self._file


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every complete response in ``data``, parsed by the standard library."""
    src, out = _Bytes(data), []
    while src.makefile().tell() < len(data):
        resp = http.client.HTTPResponse(src)  # type: ignore[arg-type]
        try:
            resp.begin()
            body = resp.read()
        except (http.client.HTTPException, ValueError):
            break
        out.append((resp.status, {k.lower(): v for k, v in resp.getheaders()}, body))
    return out


def assert_problem(resp: tuple[int, dict[str, str], bytes], status: int, slug: str) -> dict[str, Any]:
    code, headers, body = resp
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    doc = json.loads(body)
    assert doc["type"].endswith("/" + slug), doc
    assert doc["status"] == status
    assert headers["x-request-id"] == doc["request_id"]
    return doc


def rejected(gw: GatewayProcess, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for e in gw.audit("request.rejected"):
            if e.get("request_id") == request_id:
                return e
        time.sleep(0.05)
    raise AssertionError(f"no request.rejected audit event for {request_id}")


HOST = b"Host: localhost\r\n"
FRAMING_CASES = [
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad-framing",
                 "framing:cl_and_te", id="cl-and-te"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
                 b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400, "bad-framing",
                 "framing:cl_and_te", id="te-and-cl"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
                 b"Content-Length: 5\r\n\r\nhello", 400, "bad-framing",
                 "framing:duplicate_content_length", id="duplicate-cl-equal"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
                 b"Content-Length: 6\r\n\r\nhello!", 400, "bad-framing",
                 "framing:duplicate_content_length", id="duplicate-cl-conflicting"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 5\r\n\r\nhello",
                 400, "bad-framing", "framing:duplicate_content_length", id="cl-list"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Content-Length: +5\r\n\r\nhello",
                 400, "bad-framing", "framing:bad_content_length", id="cl-signed"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                 b"zz\r\nhello\r\n0\r\n\r\n", 400, "bad-framing", "framing:bad_chunk",
                 id="bad-chunk-size"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, identity"
                 b"\r\n\r\n0\r\n\r\n", 501, "transfer-coding-not-implemented",
                 "framing:unsupported_transfer_coding", id="te-chunked-identity"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: identity\r\n\r\n"
                 b"hello", 501, "transfer-coding-not-implemented",
                 "framing:unsupported_transfer_coding", id="te-identity"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n"
                 b"\r\n0\r\n\r\n", 501, "transfer-coding-not-implemented",
                 "framing:unsupported_transfer_coding", id="te-gzip-chunked"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad-framing",
                 "framing:bad_transfer_encoding", id="te-chunked-twice"),
    pytest.param(b"POST /public/a HTTP/1.0\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", 400, "bad-framing", "framing:te_http10",
                 id="te-in-http10"),
    pytest.param(b"GET /public/a HTTP/1.1\r\n" + HOST + b"Bad Header: x\r\n\r\n", 400,
                 "bad-framing", "framing:malformed", id="malformed-header"),
]


@pytest.mark.parametrize(("raw", "status", "slug", "reason"), FRAMING_CASES)
def test_framing_error_answered_then_closed(gw, echo, raw, status, slug, reason) -> None:
    """RFC 9112 §6.1/§6.3: one problem+json answer, then the connection is closed; nothing
    reaches the upstream; one audit event names the rule (finding 5: h11 used to close
    without a word, and each parser used to take a different subset)."""
    before = len(echo.seen)
    data, closed, took = exchange(gw.port, raw + b"GET /public/after HTTP/1.1\r\n" + HOST + b"\r\n")
    got = responses(data)
    assert closed and took < PROMPT, (data, took)
    assert len(got) == 1, data  # nothing after the refusal is read as a request
    doc = assert_problem(got[0], status, slug)
    if reason == "framing:bad_chunk":
        # The head was good, so the proxy had started on it before the body broke: give a
        # request head it sent too early the time to reach the upstream (it used to).
        time.sleep(0.5)
    assert len(echo.seen) == before
    assert rejected(gw, doc["request_id"])["reason"] == reason


@pytest.mark.parametrize("raw", [
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Content-Length: 11\r\n\r\nhello world",
                 id="content-length"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", id="chunked"),
    pytest.param(b"POST /public/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: Chunked\r\n\r\n"
                 b"b\r\nhello world\r\n0\r\n\r\n", id="chunked-any-case"),
])
def test_well_framed_bodies_still_forwarded(gw, echo, raw) -> None:
    data, _, _ = exchange(gw.port, raw + b"GET /public/next HTTP/1.1\r\n" + HOST
                          + b"Connection: close\r\n\r\n")
    got = responses(data)
    assert [r[0] for r in got] == [200, 200], data
    first = json.loads(got[0][2])
    assert first["path"] == "/public/a" and first["body_len"] == 11
    assert json.loads(got[1][2])["path"] == "/public/next"


@pytest.mark.parametrize("raw", [
    pytest.param(b"POST /early/a HTTP/1.1\r\n" + HOST + b"Upgrade: foo\r\nContent-Length: 5\r\n\r\n"
                 b"hello", id="upgrade-with-body"),
    pytest.param(b"POST /early/a HTTP/1.1\r\n" + HOST + b"Connection: upgrade\r\nUpgrade: foo\r\n"
                 b"Content-Length: 5\r\n\r\nhello", id="connection-upgrade-with-body"),
    pytest.param(b"GET /early/a HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\n"
                 b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", id="websocket"),
])
def test_upgrade_refused_promptly_and_never_forwarded(gw, early, raw) -> None:
    """Finding 9 (c, d): no route speaks another protocol, so an Upgrade is a 400 and the
    connection closes at once; the request pipelined after it is not left hanging (it used
    to get nothing for 30 s, and Upgrade + body a 504 after 30 s)."""
    before = len(early.seen)
    data, closed, took = exchange(gw.port, raw + b"GET /early/next HTTP/1.1\r\n" + HOST + b"\r\n")
    got = responses(data)
    assert closed and took < PROMPT, (data, took)
    assert len(got) == 1, data
    doc = assert_problem(got[0], 400, "upgrade-refused")
    assert len(early.seen) == before
    assert rejected(gw, doc["request_id"])["reason"] == "framing:upgrade"


@pytest.mark.parametrize(("bad", "slug"), [
    pytest.param(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n", "bad-framing", id="garbage"),
    pytest.param(b"POST /public/b HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "bad-framing", id="cl-and-te"),
    pytest.param(b"GET /public/b HTTP/1.1\r\n" + HOST + b"Upgrade: foo\r\n\r\n", "upgrade-refused",
                 id="upgrade"),
])
def test_pipelined_get_then_bad_request_answered_in_order(gw, echo, bad, slug) -> None:
    """Finding 9 (d), RFC 9112 §9.3.2: the valid GET that came first (a slow one) is forwarded
    and its answer is sent first; then the refusal of what followed it, then the close
    (httptools used to send only a 400 while the GET still ran at the upstream)."""
    before = len(echo.seen)
    data, closed, took = exchange(gw.port, b"GET /public/slow?s=0.3 HTTP/1.1\r\n" + HOST
                                  + b"\r\n" + bad)
    got = responses(data)
    assert closed and took < PROMPT, (data, took)
    assert [r[0] for r in got] == [200, 400], data
    assert json.loads(got[0][2])["path"] == "/public/slow"
    assert_problem(got[1], 400, slug)
    assert [r["path"] for r in echo.seen[before:]] == ["/public/slow"]


def test_pipelined_requests_answered_in_order(gw, echo) -> None:
    reqs = b"".join(b"GET /public/p%d HTTP/1.1\r\n" % i + HOST + b"\r\n" for i in range(3))
    data, _, _ = exchange(gw.port, reqs + b"GET /public/p3 HTTP/1.1\r\n" + HOST
                          + b"Connection: close\r\n\r\n")
    got = responses(data)
    assert [json.loads(r[2])["path"] for r in got] == [f"/public/p{i}" for i in range(4)]


def test_smuggling_through_upgrade_and_early_answer(gw, early) -> None:
    """Finding 9, end to end. An upstream that answers before reading the body (any 401
    handler), ``Upgrade: foo`` with ``Content-Length: N``, and a second client whose header
    value holds a request line at offset N of what the gateway forwards. Before the fix
    (httptools) the gateway sent ``content-length: N`` and no body, put the connection back
    in the pool owing N bytes, and the second client's request reached the upstream as
    ``GET /internal/admin?smuggled=1``, with that answer sent back to the second client."""
    smuggled = b"GET /internal/admin?smuggled=1 HTTP/1.1"
    victim = (b"GET /early/victim HTTP/1.1\r\n" + HOST + b"X-Pad: " + smuggled + b"\r\n"
              b"Connection: close\r\n\r\n")
    # Where the pad's value lands in what the gateway forwards (the calibration request
    # is an ordinary one: it gets its own answer).
    data, _, _ = exchange(gw.port, victim)
    assert [json.loads(r[2])["target"] for r in responses(data)] == ["/early/victim"]
    offset = _forwarded_offset(early, smuggled)
    before = len(early.seen)

    body = smuggled + b"\r\nHost: localhost\r\n\r\n"
    body = body + b"x" * max(0, offset - len(body))
    attack = (b"POST /early/upgrade HTTP/1.1\r\n" + HOST + b"Connection: upgrade\r\n"
              b"Upgrade: foo\r\nContent-Length: %d\r\n\r\n" % offset) + body[:offset]
    data, closed, took = exchange(gw.port, attack)
    got = responses(data)
    assert closed and took < PROMPT, (data, took)
    assert len(got) == 1 and got[0][0] == 400, data  # refused, not forwarded
    # The next client, on whatever pooled connection, gets its own answer.
    for _ in range(2):
        data, _, _ = exchange(gw.port, victim)
        got = responses(data)
        assert [json.loads(r[2])["target"] for r in got] == ["/early/victim"], data
    assert all("/internal/admin" not in t for t in early.targets()), early.targets()
    assert early.targets()[before:] == ["/early/victim", "/early/victim"]


def _forwarded_offset(early: RawUpstream, value: bytes) -> int:
    """Offset of ``value`` in the head the gateway sent for the last request, rebuilt from
    the recorded fields in the order received."""
    last = early.seen[-1]
    head = f"{last.method} {last.target} HTTP/1.1\r\n".encode()
    for name, v in last.headers:
        if v.encode("latin-1") == value:
            return len(head) + len(name) + 2
        head += f"{name}: {v}\r\n".encode("latin-1")
    raise AssertionError("the pad header was not forwarded")


# Both upstream clients (server.upstream_client) keep the forwarding rules.
CLIENTS = pytest.mark.parametrize("client_class", [H1Upstream, AiohttpUpstream],
                                  ids=["httptools", "aiohttp"])


@CLIENTS
@pytest.mark.parametrize(("declared", "sent"), [
    pytest.param(11, b"hello", id="shorter"),
    pytest.param(5, b"hello world", id="longer"),
    pytest.param(5, b"", id="empty"),
])
async def test_forwarder_never_sends_an_unverified_length(early, declared, sent,
                                                          client_class) -> None:
    """Finding 9 (a, b), at the forwarder itself (the edge no longer lets such a request
    through): a body shorter or longer than its Content-Length aborts the upload, and the
    connection it used is closed, never handed to the next request. Before, the short
    bodies left the pooled connection owing bytes (the next request was parsed from the
    wrong offset) and the long one was cut silently to the declared length."""
    client = client_class()
    try:
        async def body() -> Any:
            if sent:
                yield sent

        before = len(early.seen)
        reason = None
        try:
            resp = await client.send("POST", early.url + "/early/bad-length",
                                     [(b"content-length", str(declared).encode())], body(), 5)
        except BadRequest as exc:
            reason = exc.reason
        else:  # the upstream answered first; the upload still failed behind it
            async for _ in resp.body():
                pass
            await resp.close()
        assert reason in (None, "framing:body_length_mismatch")
        await asyncio.sleep(0.1)
        resp = await client.send("GET", early.url + "/early/after", [], None, 5)
        async for _ in resp.body():
            pass
        await resp.close()
        seen = early.seen[before:]
        # The bad request may not have left at all (aborted before its head was flushed);
        # if it did, the next request came on another connection, and was read intact.
        assert [r.target for r in seen] in (["/early/bad-length", "/early/after"],
                                            ["/early/after"])
        assert len({r.connection for r in seen}) == len(seen)
    finally:
        await client.close()


@CLIENTS
async def test_early_answer_closes_the_connection(early, client_class) -> None:
    """Finding 9 (b): the upstream answered before the body was sent whole: the connection is
    closed, not returned to the pool still owing body bytes."""
    client = client_class()
    gate = asyncio.Event()
    try:
        async def slow_body() -> Any:
            yield b"hello"
            await gate.wait()
            yield b" world"

        resp = await client.send("POST", early.url + "/early/slow",
                                 [(b"content-length", b"11")], slow_body(), 5)
        assert resp.status == 401
        async for _ in resp.body():
            pass
        await resp.close()
        used = early.seen[-1].connection
        gate.set()
        resp = await client.send("GET", early.url + "/early/again", [], None, 5)
        async for _ in resp.body():
            pass
        await resp.close()
        assert early.seen[-1].target == "/early/again"
        assert early.seen[-1].connection != used
    finally:
        await client.close()
