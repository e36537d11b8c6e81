"""The IdP client's coalescing transport (oidc/transport.py): a request leaves in one
socket write, answers and keep-alive reuse are unchanged, a connection the IdP closed is
noticed. A real HTTP/1.1 server on 127.0.0.1 (asyncio), plus the stream's logic alone."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx
import pytest

from bffgate.oidc.transport import (
    CoalescingBackend,
    CoalescingStream,
    coalesce_writes,
)


class Server:
    """Answers every request with 200 and a JSON body naming the connection and the body's
    length; keeps each request's bytes. (How many writes a request took is not observable
    from here: the stream tests below count them.)"""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.close_after_each = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                payload = b'{"conn": %d, "len": %d}' % (conn, len(body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
                await writer.drain()
                if self.close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, str]]:
    srv = Server()
    aserver = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = aserver.sockets[0].getsockname()[1]
    try:
        yield srv, f"http://127.0.0.1:{port}"
    finally:
        aserver.close()
        await aserver.wait_closed()


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=5)


async def test_installed_once_on_the_default_transport_only() -> None:
    async with _client() as http:
        assert coalesce_writes(http) is True
        assert coalesce_writes(http) is False  # already there
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) \
            as mocked:
        assert coalesce_writes(mocked) is False


async def test_requests_answered_and_connection_reused(server: tuple[Server, str]) -> None:
    srv, url = server
    async with _client() as http:
        coalesce_writes(http)
        form = {"grant_type": "authorization_code", "code": "c" * 43}
        first = await http.post(url + "/token", data=form)
        second = await http.post(url + "/token", data=form)
        got = await http.get(url + "/jwks")
    assert first.status_code == second.status_code == got.status_code == 200
    assert first.json() == {"conn": 1, "len": len("grant_type=authorization_code&code=" + "c" * 43)}
    assert second.json()["conn"] == got.json()["conn"] == 1  # keep-alive as before
    assert srv.requests[0].startswith(b"POST /token HTTP/1.1\r\n")
    assert srv.requests[0].endswith(b"code=" + b"c" * 43)


async def test_a_connection_the_server_closed_is_not_reused(server: tuple[Server, str]) -> None:
    srv, url = server
    srv.close_after_each = True
    async with _client() as http:
        coalesce_writes(http)
        assert (await http.get(url + "/a")).json()["conn"] == 1
        await asyncio.sleep(0.05)  # the server's FIN arrives: the idle check sees it
        assert (await http.get(url + "/b")).json()["conn"] == 2


async def test_a_large_body_is_sent_whole(server: tuple[Server, str]) -> None:
    _srv, url = server
    async with _client() as http:
        coalesce_writes(http)
        resp = await http.post(url + "/big", content=b"x" * 200_000)
    assert resp.json()["len"] == 200_000


class FakeStream(httpcore.AsyncNetworkStream):
    def __init__(self, sock: Any = None) -> None:
        self.writes: list[bytes] = []
        self.sock = sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b"answer"

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes.append(buffer)

    async def aclose(self) -> None:
        pass

    async def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return FakeStream()

    def get_extra_info(self, info: str) -> Any:
        return self.sock if info == "socket" else f"inner:{info}"


async def test_writes_held_until_the_read_then_one_write() -> None:
    inner = FakeStream()
    stream = CoalescingStream(inner)
    await stream.write(b"POST / HTTP/1.1\r\n\r\n")
    await stream.write(b"body")
    assert inner.writes == []
    assert await stream.read(100) == b"answer"
    assert inner.writes == [b"POST / HTTP/1.1\r\n\r\nbody"]
    await stream.read(100)
    assert len(inner.writes) == 1  # nothing pending, nothing written


async def test_flushed_at_the_threshold_and_before_tls() -> None:
    inner = FakeStream()
    stream = CoalescingStream(inner)
    await stream.write(b"x" * 70_000)
    assert [len(w) for w in inner.writes] == [70_000]
    await stream.write(b"hello")
    tls = await stream.start_tls(None)  # type: ignore[arg-type]
    assert inner.writes[-1] == b"hello" and isinstance(tls, CoalescingStream)


async def test_idle_check_polls_the_socket() -> None:
    a, b = socket.socketpair()
    try:
        stream = CoalescingStream(FakeStream(a))
        assert stream.get_extra_info("is_readable") is False
        b.close()
        assert stream.get_extra_info("is_readable") is True
        assert stream.get_extra_info("server_addr") == "inner:server_addr"
        assert CoalescingStream(FakeStream()).get_extra_info("is_readable") == \
            "inner:is_readable"
    finally:
        a.close()


def test_backend_wraps_what_it_connects() -> None:
    assert isinstance(CoalescingBackend(httpcore.AsyncNetworkBackend()),
                      httpcore.AsyncNetworkBackend)


def _self_signed(tmp: Any) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def test_over_tls_requests_answered_and_connection_reused(tmp_path: Any) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    srv = Server()
    aserver = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=server_ctx)
    port = aserver.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=5,
                                     verify=ssl.create_default_context(cafile=cert)) as http:
            assert coalesce_writes(http)
            url = f"https://localhost:{port}/token"
            first = await http.post(url, content="a=1")
            second = await http.post(url, content="b=22")
        assert first.json() == {"conn": 1, "len": 3} and second.json() == {"conn": 1, "len": 4}
    finally:
        aserver.close()
        await aserver.wait_closed()
