"""The frames of an accepted WebSocket, relayed both ways until either side closes or the
socket's session ends (then the client gets 4401 and the upstream 1001); metrics and the
``websocket.opened``/``websocket.closed`` audit events.

Back-pressure: each direction awaits the send of one message before it receives the next;
uvicorn stops reading the client while a message waits, and the upstream connection has a
bounded queue and write buffer, so a slow reader on either side slows the other instead of
making the gateway buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.types import Receive, Send
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.endpoints.socket_registry import OpenSocket, SocketRegistry
from bffgate.metrics import Metrics
from bffgate.proxy.routes import Route
from bffgate.session.model import LoadedSession

SESSION_CLOSE = 4401  # the code a socket is closed with when its session ends
_UNSENDABLE = {1005, 1006, 1015}  # close codes that never go on the wire (RFC 6455 7.4.1)


async def relay(receive: Receive, send: Send, upstream: ClientConnection, route: Route,
                session: LoadedSession | None, metrics: Metrics,
                registry: SocketRegistry) -> None:
    m = metrics
    m.websocket_upgrades.labels("101").inc()
    m.websockets_open.inc()
    started = time.monotonic()
    ended = _SessionEnd()
    watched = None
    if session is not None:
        watched = OpenSocket(session.key, session.data.absolute_expires_at, ended.set)
        registry.add(watched)
    audit.emit(AuditEvent.WEBSOCKET_OPENED, route=route.prefix,
               session=session.handle.short if session else None)
    tasks = [asyncio.ensure_future(_client_to_upstream(receive, upstream, m)),
             asyncio.ensure_future(_upstream_to_client(upstream, send, m)),
             asyncio.ensure_future(ended.wait())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        why, code, text = done.pop().result()
    finally:
        for t in tasks:
            t.cancel()
        if watched is not None:
            registry.remove(watched)
        m.websockets_open.dec()
    if why != "client_closed":  # tell the client, with the upstream's code or 4401
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code, "reason": text})
    if why != "upstream_closed":
        await upstream.close(code if why == "client_closed" else 1001, text)
    audit.emit(AuditEvent.WEBSOCKET_CLOSED, route=route.prefix, reason=why,
               detail=f"code {code}", session=session.handle.short if session else None,
               duration_ms=round((time.monotonic() - started) * 1000, 2))


class _SessionEnd:
    """Set by the socket registry's watcher when the socket's session has ended."""

    def __init__(self) -> None:
        self._event, self._why = asyncio.Event(), ""

    def set(self, why: str) -> None:
        self._why = why
        self._event.set()

    async def wait(self) -> tuple[str, int, str]:
        await self._event.wait()
        return self._why, SESSION_CLOSE, self._why.replace("_", " ")


async def _client_to_upstream(receive: Receive, upstream: ClientConnection,
                              m: Metrics) -> tuple[str, int, str]:
    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] != "websocket.receive":  # websocket.disconnect
            code = int(message.get("code") or 1000)
            return "client_closed", (1000 if code in _UNSENDABLE else code), \
                str(message.get("reason") or "")
        data = message.get("text")
        data = message.get("bytes") if data is None else data
        if data is None:
            continue
        m.websocket_frames.labels("to_upstream").inc()
        m.websocket_bytes.labels("to_upstream").inc(len(data))
        try:
            await upstream.send(data)  # waits while the upstream's buffer is full
        except ConnectionClosed:
            return _upstream_closed(upstream)


async def _upstream_to_client(upstream: ClientConnection, send: Send,
                              m: Metrics) -> tuple[str, int, str]:
    while True:
        try:
            data = await upstream.recv()
        except ConnectionClosed:
            return _upstream_closed(upstream)
        m.websocket_frames.labels("to_client").inc()
        m.websocket_bytes.labels("to_client").inc(len(data))
        key = "text" if isinstance(data, str) else "bytes"
        try:
            await send({"type": "websocket.send", key: data})  # waits while the client is slow
        except OSError:  # uvicorn's ClientDisconnected: the client left mid-send
            return "client_closed", 1001, ""


def _upstream_closed(upstream: ClientConnection) -> tuple[str, int, str]:
    rcvd = upstream.protocol.close_rcvd
    if rcvd is None or rcvd.code in _UNSENDABLE:
        # No close frame, or one without a code: 1011 for an upstream that broke off.
        return "upstream_closed", (1000 if rcvd else 1011), ""
    return "upstream_closed", rcvd.code, rcvd.reason
