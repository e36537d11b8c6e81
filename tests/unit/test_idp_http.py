"""The IdP client's transport (bffgate.idp_http): httpx over the gateway's HTTP/1.1 client.
A real HTTP/1.1 server on 127.0.0.1 (asyncio): answers, keep-alive reuse, a connection the
IdP closed, bodies, content decoding, and every failure raised as the httpx error httpx's
own transport raises for it (the OIDC client catches ``httpx.HTTPError``)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from bffgate.config import ConfigError
from bffgate.idp_http import LIMITS, H1Transport, idp_client, idp_transport
from support.idp import free_port
from support.pki import write_pki


class Server:
    """Answers each request with 200 and JSON naming its connection, the body's length and
    the request's Host fields; ``/gzip`` gzip-encoded; ``/slow`` never; ``/cut`` half a body."""

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
                lines = head.split(b"\r\n")
                length = sum(int(line.split(b":", 1)[1]) for line in lines
                             if line.lower().startswith(b"content-length:"))
                hosts = sum(1 for line in lines if line.lower().startswith(b"host:"))
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                target = lines[0].split(b" ")[1]
                if target == b"/slow":
                    await asyncio.sleep(30)
                payload = b'{"conn": %d, "len": %d, "hosts": %d}' % (conn, len(body), hosts)
                extra = b"Set-Cookie: lb=node-%d; Path=/\r\n" % conn
                if target == b"/gzip":
                    payload, extra = gzip.compress(payload), b"Content-Encoding: gzip\r\n"
                declared = len(payload) * (2 if target == b"/cut" else 1)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s"
                             b"Content-Length: %d\r\n\r\n%s" % (extra, declared, payload))
                await writer.drain()
                if self.close_after_each or target == b"/cut":
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


def _client(timeout: float = 5) -> httpx.AsyncClient:
    return idp_client(idp_transport("httptools", LIMITS), timeout)


def test_the_setting_picks_the_transport() -> None:
    assert isinstance(idp_transport("auto", LIMITS), H1Transport)
    assert isinstance(idp_transport("httptools", LIMITS), H1Transport)
    assert type(idp_transport("aiohttp", LIMITS)) is httpx.AsyncHTTPTransport
    with pytest.raises(ConfigError, match=r"server\.upstream_client"):
        idp_transport("curl", LIMITS)


async def test_requests_answered_and_connection_reused(server: tuple[Server, str]) -> None:
    srv, url = server
    async with _client() as http:
        form = {"grant_type": "authorization_code", "code": "c" * 43}
        first = await http.post(url + "/token", data=form)
        second = await http.post(url + "/token", data=form)
        got = await http.get(url + "/jwks")
    assert first.status_code == second.status_code == got.status_code == 200
    assert first.json() == {"conn": 1, "hosts": 1,
                            "len": len("grant_type=authorization_code&code=" + "c" * 43)}
    assert second.json()["conn"] == got.json()["conn"] == 1  # keep-alive
    head = srv.requests[0].split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"post /token http/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in head
    assert b"\r\ncontent-type: application/x-www-form-urlencoded" in head
    assert srv.requests[0].endswith(b"code=" + b"c" * 43)


async def test_a_connection_the_server_closed_is_not_reused(server: tuple[Server, str]) -> None:
    srv, url = server
    srv.close_after_each = True
    async with _client() as http:
        assert (await http.get(url + "/a")).json()["conn"] == 1
        await asyncio.sleep(0.05)  # the server's FIN arrives
        assert (await http.get(url + "/b")).json()["conn"] == 2
        # Even without the pause, a GET finding its connection closed goes out once more.
        assert (await http.get(url + "/c")).json()["conn"] == 3


async def test_a_large_body_is_sent_whole_and_content_is_decoded(
        server: tuple[Server, str]) -> None:
    _srv, url = server
    async with _client() as http:
        assert (await http.post(url + "/big", content=b"x" * 200_000)).json()["len"] == 200_000
        resp = await http.get(url + "/gzip")
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.json()["conn"] == 1  # decoded by httpx, as with its own transport


async def test_failures_are_httpx_transport_errors(server: tuple[Server, str]) -> None:
    _srv, url = server
    async with _client(timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(url + "/slow")
        with pytest.raises(httpx.ReadError):
            await http.get(url + "/cut")
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{free_port()}/x")
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(url + "/x", headers={"x-bad": "a\x01b"})
        # The client is still usable after each.
        assert (await http.get(url + "/ok")).status_code == 200


async def test_no_cookie_is_kept_or_sent(server: tuple[Server, str]) -> None:
    """One client serves every user: a cookie set in one user's token response (an IdP's
    or its load balancer's) never goes out with the next request."""
    srv, url = server
    async with _client() as http:
        first = await http.post(url + "/token", data={"code": "a"})
        await http.post(url + "/token", data={"code": "b"})
        assert "lb=node-1" in first.headers["set-cookie"]
        assert not http.cookies
        # Nor whichever way one is handed to it (update() with another jar used to be kept).
        http.cookies.update(httpx.Cookies({"a": "1"}))
        http.cookies.update({"b": "2"})
        http.cookies["c"] = "3"
        http.cookies = {"d": "4"}
        assert not http.cookies
        await http.post(url + "/token", data={"code": "c"})
    assert all(b"\r\ncookie:" not in r.lower() for r in srv.requests)


async def test_an_https_idp_is_verified(tmp_path, monkeypatch) -> None:
    """TLS to the IdP is verified: a certificate from a CA the machine does not trust is a
    ConnectError, never used unverified; trusted through ``SSL_CERT_FILE`` (as OpenSSL
    reads it), the same call goes through."""
    ca, cert, key = write_pki(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    srv = Server()
    aserver = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=server_tls)
    url = f"https://127.0.0.1:{aserver.sockets[0].getsockname()[1]}/token"
    try:
        async with _client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.post(url, data={"code": "a"})
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        async with _client() as http:
            assert (await http.post(url, data={"code": "a"})).json()["len"] == 6
    finally:
        aserver.close()
