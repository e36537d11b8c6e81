"""The gateway's HTTP/1.1 upstream client (bffgate.proxy.h1client) against real sockets:
an asyncio server per test that answers as scripted, including the upstream behaviours a
proxy meets in production (a keep-alive connection closed under a request, a response
that never comes or stops halfway, garbage, a full pool)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bffgate.errors import BadRequest, ClientAborted, UpstreamTimeout, UpstreamUnavailable
from bffgate.proxy import h1pool
from bffgate.proxy.forward import AiohttpUpstream
from bffgate.proxy.h1client import H1Upstream
from bffgate.proxy.timeouts import Timeouts
from support.pki import write_pki

pytestmark = pytest.mark.e2e

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
Upstream = H1Upstream | AiohttpUpstream  # server.upstream_client's two choices
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Scripted:
    """A TCP server on 127.0.0.1; ``handler(reader, writer, connection number)``. Keeps the
    request heads it read, with their connection numbers."""

    def __init__(self, handler: Handler, client: Upstream | None = None) -> None:
        self.handler = handler
        self.heads: list[tuple[int, bytes]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.client = client or H1Upstream()  # the gateway's client, pointed at this server

    async def read_head(self, reader: asyncio.StreamReader, number: int) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append((number, head))
        return head

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.handler(reader, writer, self.connections)
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@contextlib.asynccontextmanager
async def scripted(handler: Callable[[Scripted, asyncio.StreamReader, asyncio.StreamWriter,
                                      int], Awaitable[None]],
                   client: Upstream | None = None) -> AsyncIterator[Scripted]:
    box: list[Scripted] = []
    up = Scripted(lambda r, w, n: handler(box[0], r, w, n), client)
    box.append(up)
    up.server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
    try:
        yield up
    finally:
        await up.client.close()
        up.server.close()


async def fetch(client: Upstream, method: str, url: str, *, body: Any = None,
                headers: list[tuple[bytes, bytes]] | None = None,
                timeout: Timeouts | float = 5) -> tuple[int, bytes]:
    resp = await client.send(method, url, headers or [], body, timeout)
    try:
        data = b"".join([chunk async for chunk in resp.body()])
    finally:
        await resp.close()
    return resp.status, data


async def answer_all(up: Scripted, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, n: int) -> None:
    while True:
        await up.read_head(reader, n)
        writer.write(OK)
        await writer.drain()


def answers_once(answer: bytes, *, then_wait: float = 0) -> Any:
    """A script: read one request, send ``answer``, wait ``then_wait`` s, close."""
    async def script(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(then_wait)

    return script


async def test_connections_are_kept_alive_and_reused() -> None:
    async with scripted(answer_all) as up:
        for _ in range(3):
            assert await fetch(up.client, "GET", up.url + "/a") == (200, b"ok")
        assert up.connections == 1
        assert [h.split(b"\r\n")[0] for _, h in up.heads] == [b"GET /a HTTP/1.1"] * 3
        assert b"\r\nhost: 127.0.0.1:" in up.heads[0][1]


async def test_a_pooled_connection_closed_under_an_idempotent_request_is_retried_once() -> None:
    """The keep-alive race: the upstream closes an idle connection just as the gateway
    sends on it. A GET without a body goes out once more on a new connection."""
    async def close_second(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        writer.write(OK)
        await writer.drain()
        if n == 1:
            await up.read_head(reader, n)  # and close without a word
            return
        while True:
            await up.read_head(reader, n)
            writer.write(OK)
            await writer.drain()

    async with scripted(close_second) as up:
        assert await fetch(up.client, "GET", up.url + "/one") == (200, b"ok")
        assert await fetch(up.client, "GET", up.url + "/two") == (200, b"ok")
        assert [(n, h.split(b" ")[1]) for n, h in up.heads] == [
            (1, b"/one"), (1, b"/two"), (2, b"/two")]


async def test_a_request_with_a_body_is_never_sent_twice() -> None:
    async def close_second(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        await reader.readexactly(2)
        writer.write(OK)
        await writer.drain()
        await up.read_head(reader, n)

    async def body() -> AsyncIterator[bytes]:
        yield b"hi"

    async with scripted(close_second) as up:
        headers = [(b"content-length", b"2")]
        assert await fetch(up.client, "POST", up.url + "/p", body=body(),
                           headers=headers) == (200, b"ok")
        with pytest.raises(UpstreamUnavailable):
            await fetch(up.client, "POST", up.url + "/p", body=body(), headers=headers)
        assert len(up.heads) == 2


@pytest.mark.parametrize("client_class", [H1Upstream, AiohttpUpstream], ids=["httptools", "aiohttp"])
async def test_a_body_that_breaks_before_its_first_byte_sends_nothing_upstream(
        client_class: type[Upstream]) -> None:
    """The head waits for the body's first bytes: a client that leaves (or whose body is
    refused) before sending any costs the upstream no half request. A body that breaks
    later leaves the upstream a cut request, never one that looks whole."""
    received: dict[int, bytes] = {}

    async def record(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        received[n] = await reader.read()  # until the gateway closes

    async def broken(after: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in after:
            yield chunk
        raise ClientAborted(reason="client_disconnected")

    async with scripted(record, client_class()) as up:
        for number, sent in [(1, []), (2, [b"hello"])]:
            with pytest.raises(ClientAborted):
                await up.client.send("POST", up.url + "/p", [], broken(sent), 5)
            for _ in range(100):
                if number in received:
                    break
                await asyncio.sleep(0.01)
        assert received[1] == b""
        assert received[2].startswith(b"POST /p HTTP/1.1\r\n")
        assert received[2].lower().endswith(b"\r\n\r\n5\r\nhello\r\n")  # no last chunk


async def test_no_response_head_in_time_is_upstream_timeout() -> None:
    async def silent(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        await asyncio.sleep(10)

    async with scripted(silent) as up:
        with pytest.raises(UpstreamTimeout) as info:
            await fetch(up.client, "GET", up.url + "/", timeout=0.2)
        assert info.value.reason == "upstream_timeout"


async def test_a_body_that_stalls_is_upstream_idle_timeout() -> None:
    async def stall(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await writer.drain()
        await asyncio.sleep(10)

    async with scripted(stall) as up:
        resp = await up.client.send("GET", up.url + "/", [], None,
                                    Timeouts(connect=1, response=1, idle=0.2))
        chunks: list[bytes] = []

        async def read() -> None:
            async for chunk in resp.body():
                chunks.append(chunk)

        with pytest.raises(UpstreamTimeout) as info:
            await read()
        await resp.close()
        assert chunks == [b"half"] and info.value.reason == "upstream_idle_timeout"


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhalf\r\n",
])
async def test_a_body_cut_short_is_a_read_error_never_a_short_body(answer) -> None:
    async with scripted(answers_once(answer)) as up:
        with pytest.raises(UpstreamUnavailable) as info:
            await fetch(up.client, "GET", up.url + "/")
        assert info.value.reason == "upstream_read_error"


@pytest.mark.parametrize("answer", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
])
async def test_an_unparsable_or_ambiguous_response_is_upstream_unavailable(answer) -> None:
    async with scripted(answers_once(answer, then_wait=1)) as up:
        with pytest.raises(UpstreamUnavailable):
            await fetch(up.client, "GET", up.url + "/")


async def test_connect_refused_is_upstream_connect_error() -> None:
    client = H1Upstream()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    try:
        with pytest.raises(UpstreamUnavailable) as info:
            await fetch(client, "GET", f"http://127.0.0.1:{port}/")
        assert info.value.reason == "upstream_connect_error"
    finally:
        await client.close()


async def test_a_full_pool_makes_the_next_request_wait_for_a_connection() -> None:
    release = asyncio.Event()

    async def slow_first(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        await release.wait()
        writer.write(OK)
        await writer.drain()
        await answer_all(up, reader, writer, n)

    async with scripted(slow_first) as up:
        client = up.client = H1Upstream(limit=1)
        first = asyncio.ensure_future(fetch(client, "GET", up.url + "/1"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(fetch(client, "GET", up.url + "/2"))
        await asyncio.sleep(0.05)
        assert not second.done() and len(up.heads) == 1
        release.set()
        assert await first == (200, b"ok") and await second == (200, b"ok")
        assert up.connections == 1
        await client.close()


async def test_the_wait_for_a_pooled_connection_counts_as_connect_time() -> None:
    async def never(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        await up.read_head(reader, n)
        await asyncio.sleep(10)

    async with scripted(never) as up:
        client = up.client = H1Upstream(limit=1)
        hold = asyncio.ensure_future(fetch(client, "GET", up.url + "/hold"))
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamTimeout) as info:
            await fetch(client, "GET", up.url + "/next", timeout=Timeouts(0.1, 1, 1))
        assert info.value.reason == "upstream_connect_timeout"
        hold.cancel()
        await client.close()


async def test_idle_connections_expire(monkeypatch) -> None:
    monkeypatch.setattr(h1pool, "KEEPALIVE_SECONDS", 0.05)
    async with scripted(answer_all) as up:
        await fetch(up.client, "GET", up.url + "/")
        await asyncio.sleep(0.1)
        await fetch(up.client, "GET", up.url + "/")
        assert up.connections == 2


@pytest.mark.parametrize("headers", [
    [(b"x-evil", b"a\r\nx-injected: 1")],
    [(b"x-evil", b"nul\x00")],
    [(b"bad name", b"v")],
    [(b"x:y", b"v")],
])
async def test_a_header_that_cannot_be_sent_as_is_is_refused(headers) -> None:
    async with scripted(answer_all) as up:
        with pytest.raises(BadRequest) as info:
            await fetch(up.client, "GET", up.url + "/", headers=headers)
        assert info.value.reason == "unsendable_request"
        assert up.heads == []


async def test_the_target_goes_out_byte_for_byte() -> None:
    async with scripted(answer_all) as up:
        await fetch(up.client, "GET", up.url + "/a/%41%2e%2E/b;c?q=%25&r=\u00e9")
        await fetch(up.client, "GET", up.url + "?only=query")
        with pytest.raises(BadRequest):
            await fetch(up.client, "GET", up.url + "/a b")
        assert [h.split(b" ")[1] for _, h in up.heads] == [
            b"/a/%41%2e%2E/b;c?q=%25&r=%E9", b"/?only=query"]


async def test_head_and_no_content_responses_end_with_their_head() -> None:
    async def answers(up: Scripted, reader: Any, writer: Any, n: int) -> None:
        while True:
            head = await up.read_head(reader, n)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async with scripted(answers) as up:
        assert await fetch(up.client, "HEAD", up.url + "/") == (200, b"")
        assert await fetch(up.client, "DELETE", up.url + "/") == (204, b"")
        assert await fetch(up.client, "HEAD", up.url + "/") == (200, b"")
        assert up.connections == 1


async def test_https_upstreams_are_verified(tmp_path) -> None:
    """An https upstream is reached over TLS with its certificate verified against the
    system's CAs: one from a CA the system does not trust is refused (502 reason
    upstream_connect_error), never used unverified. Trusting that CA, the same call goes
    through, to the certificate's IP address."""
    ca, cert, key = write_pki(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(OK)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    client = H1Upstream()
    try:
        with pytest.raises(UpstreamUnavailable) as info:
            await fetch(client, "GET", url)
        assert info.value.reason == "upstream_connect_error"
        client._tls = ssl.create_default_context(cafile=str(ca))
        client._pools.clear()
        assert await fetch(client, "GET", url) == (200, b"ok")
    finally:
        await client.close()
        server.close()


async def test_an_ipv6_upstream() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        host = [line for line in head.split(b"\r\n") if line.startswith(b"host: ")]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(host[0]), host[0]))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "::1", 0)
    port = server.sockets[0].getsockname()[1]
    client = H1Upstream()
    try:
        assert await fetch(client, "GET", f"http://[::1]:{port}/x") == (
            200, b"host: [::1]:%d" % port)
    finally:
        await client.close()
        server.close()
