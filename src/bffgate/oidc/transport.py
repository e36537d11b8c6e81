"""Tuning of the IdP client's httpx transport: one socket write per request.

httpcore writes an HTTP/1.1 request as two socket writes (the head, then the body), each a
system call that on loopback or a LAN wakes the IdP's side too, plus, on an idle pooled
connection, anyio's full ``extra_attributes`` (a ``getpeername``) just to ask whether the
IdP closed it. ``coalesce_writes`` wraps the pool's network backend so that a stream's
writes are buffered until the next read (the response's): a form POST leaves in one write
(one TLS record over TLS), and the idle check polls the socket directly. Requests, TLS,
timeouts and errors are httpcore's own; only when the bytes reach the socket changes.
Measured: login_cost.py (bench/README.md) and the unit test of this module.
"""

from __future__ import annotations

import ssl
import typing

import httpcore
import httpx
from httpcore._utils import is_socket_readable

_FLUSH_AT = 64 * 1024  # a larger request body is written as it comes, not held


class CoalescingStream(httpcore.AsyncNetworkStream):
    """Writes are held until a read (HTTP/1.1: the request is complete when the client
    starts reading the response) or until ``_FLUSH_AT`` bytes are pending."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._pending = b""
        self._sock = inner.get_extra_info("socket")

    async def _flush(self, timeout: float | None) -> None:
        if self._pending:
            data, self._pending = self._pending, b""
            await self._inner.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._pending += buffer
        if len(self._pending) >= _FLUSH_AT:
            await self._flush(timeout)

    async def aclose(self) -> None:
        self._pending = b""
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        await self._flush(timeout)
        return CoalescingStream(
            await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable" and self._sock is not None:
            return is_socket_readable(self._sock)  # what anyio's answer ends in
        return self._inner.get_extra_info(info)


class CoalescingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        return CoalescingStream(await self._inner.connect_tcp(
            host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        return CoalescingStream(
            await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def coalesce_writes(http: httpx.AsyncClient) -> bool:
    """Install the coalescing backend in ``http``'s own HTTP/1.1 connection pool; False
    (nothing changed) for any other transport (a test's, a traced one, HTTP/2, a proxy)."""
    transport = getattr(http, "_transport", None)
    if type(transport) is not httpx.AsyncHTTPTransport:
        return False
    pool = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or getattr(pool, "_http2", True) \
            or isinstance(getattr(pool, "_network_backend", None), CoalescingBackend):
        return False
    pool._network_backend = CoalescingBackend(pool._network_backend)
    return True
