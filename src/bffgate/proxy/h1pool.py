"""Keep-alive connections to one upstream origin (``Pool``) and what an origin URL names
(``Origin``), for bffgate.proxy.h1client."""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bffgate.errors import UpstreamTimeout, UpstreamUnavailable
from bffgate.proxy.h1conn import H1Connection

KEEPALIVE_SECONDS = 15.0  # an idle pooled connection older than this is closed, not used


@dataclass(frozen=True)
class Origin:
    host: str
    port: int
    host_header: bytes
    tls: bool


@functools.lru_cache(maxsize=256)
def origin_of(origin: str) -> Origin:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"not an http(s) origin: {origin!r}"
        raise ValueError(msg)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    netloc = parts.netloc.rpartition("@")[2]
    host_header = (netloc.encode("ascii") if netloc.isascii()
                   else parts.hostname.encode("idna") + (b":%d" % parts.port if parts.port else b""))
    return Origin(parts.hostname, port, host_header, tls)


class Pool:
    """Keep-alive connections to one origin: at most ``limit`` open, idle ones reused most
    recent first."""

    def __init__(self, origin: Origin, limit: int, tls: ssl.SSLContext | None) -> None:
        self.origin = origin
        self._limit = limit
        self._tls = tls
        self._open = 0
        self._idle: dict[H1Connection, float] = {}
        self._waiters: collections.deque[asyncio.Future[H1Connection | None]] = (
            collections.deque())

    async def acquire(self, connect_timeout: float) -> tuple[H1Connection, bool]:
        """A connection, and whether it was pooled (used before)."""
        now = time.monotonic()
        while self._idle:
            conn, since = self._idle.popitem()
            conn.on_lost = None
            if not conn.closed and now - since < KEEPALIVE_SECONDS:
                return conn, True
            self.discard(conn)
        if self._open >= self._limit:
            waiter: asyncio.Future[H1Connection | None] = (
                asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)
            try:
                handed = await asyncio.wait_for(waiter, connect_timeout)
            except (TimeoutError, asyncio.CancelledError) as exc:
                self._pass_on(waiter)
                if isinstance(exc, TimeoutError):
                    raise UpstreamTimeout(reason="upstream_connect_timeout") from None
                raise
            if handed is not None:
                return handed, True
        return await self.connect(connect_timeout), False

    async def connect(self, timeout: float) -> H1Connection:
        loop = asyncio.get_running_loop()
        o = self.origin
        self._open += 1
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                functools.partial(H1Connection, loop), o.host, o.port, ssl=self._tls,
                server_hostname=o.host if self._tls else None), timeout)
        except TimeoutError:
            self._closed_one()
            raise UpstreamTimeout(reason="upstream_connect_timeout") from None
        except (OSError, ssl.SSLError) as exc:
            self._closed_one()
            raise UpstreamUnavailable(reason="upstream_connect_error") from exc
        except BaseException:
            self._closed_one()
            raise
        return conn

    def release(self, conn: H1Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.on_lost = self._lost_idle
        self._idle[conn] = time.monotonic()

    def discard(self, conn: H1Connection) -> None:
        conn.close()
        if not conn.discarded:
            conn.discarded = True
            self._closed_one()

    def _pass_on(self, waiter: asyncio.Future[H1Connection | None]) -> None:
        """A waiter gave up: what it was handed as it did (a connection, or room for one)
        goes to the next, never lost to the pool's count."""
        if not waiter.done() or waiter.cancelled():
            return
        handed = waiter.result()
        if handed is not None:
            self.release(handed)
        else:
            self._open += 1
            self._closed_one()

    def _closed_one(self) -> None:
        self._open -= 1
        while self._waiters:  # room for one more connection: the next waiter opens it
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it counts itself in connect()
                return

    def _lost_idle(self, conn: H1Connection) -> None:
        if self._idle.pop(conn, None) is not None:
            self.discard(conn)

    def close(self) -> None:
        for conn in list(self._idle):
            conn.on_lost = None
            conn.close()
        self._idle.clear()
