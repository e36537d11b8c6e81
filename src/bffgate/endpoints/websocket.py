"""WebSockets on ``websocket = true`` routes: the handshake is checked (Origin, session,
route token), the upstream is dialled with the route's token (never the gateway cookie),
then frames are relayed both ways until either side closes or the session ends.

Back-pressure: each direction awaits the send of one message before it receives the next;
uvicorn stops reading the client while a message waits, and the upstream connection has a
bounded queue (``_MAX_QUEUE`` frames) and write buffer, so a slow reader on either side
slows the other instead of making the gateway buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.edge.fields import single_header
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.endpoints.socket_registry import OpenSocket, SocketRegistry
from bffgate.errors import (
    GatewayError,
    NotAuthenticated,
    PathRejected,
    RouteNotFound,
    UpstreamUnavailable,
)
from bffgate.metrics import Metrics
from bffgate.problems import problem_parts
from bffgate.proxy.routes import PathNotAllowed, Route, RouteTable
from bffgate.session.model import LoadedSession
from bffgate.tokens.credential import authorization_headers
from bffgate.tokens.modes import SessionUse, session_use
from bffgate.tokens.route_tokens import RouteTokens

MAX_MESSAGE = 16 * 1024 * 1024  # one message, either way (uvicorn's ws_max_size matches)
_MAX_QUEUE = 4  # upstream frames read ahead of the client
_WRITE_LIMIT = 64 * 1024  # upstream write buffer before send() waits
SESSION_CLOSE = 4401  # the code a socket is closed with when its session ends
_UNSENDABLE = {1005, 1006, 1015}  # close codes that never go on the wire (RFC 6455 7.4.1)


class OriginRejected(GatewayError):
    status, slug = 403, "websocket-origin-rejected"
    title = "The WebSocket handshake does not come from this site"


def origin_failure(headers: list[tuple[bytes, bytes]], public_origin: str) -> str | None:
    """Cross-site WebSocket hijacking: browsers send no X-CSRF on a WebSocket, so the
    handshake must carry ``Origin`` equal to ``server.public_url``'s origin. The reason it
    fails, or None; a duplicated Origin raises ``AmbiguousRequest``."""
    origin = single_header(headers, b"origin")
    if origin is None:
        return "websocket_origin_missing"
    return None if origin == public_origin else "websocket_origin_mismatch"


@dataclass(frozen=True)
class WebSocketDeps:
    routes: RouteTable
    websocket_prefixes: frozenset[str]  # the prefixes of routes with websocket = true
    session_cookie: SessionCookie
    tokens: RouteTokens
    registry: SocketRegistry
    metrics: Metrics
    public_origin: str
    clear_cookie: bytes = b""  # Set-Cookie that clears a dead session cookie (on a 401)
    open_timeout: float = 10.0

    def route(self, raw_path: str) -> Route:
        try:
            route = self.routes.resolve(raw_path)
        except PathNotAllowed as exc:
            raise PathRejected(reason=f"path:{exc.reason}") from None
        if route is None or route.prefix not in self.websocket_prefixes:
            raise RouteNotFound(reason="no_websocket_route")
        return route


class WebSocketGate:
    """The public app: WebSocket scopes to ``websocket``, the rest to the HTTP app. Its
    ``websocket_path`` is how the HTTP protocols (bffgate.http_protocol) know which
    handshakes may switch protocols at all."""

    def __init__(self, http_app: ASGIApp, deps: WebSocketDeps) -> None:
        self._http, self.deps = http_app, deps

    def websocket_path(self, path: str) -> bool:
        try:
            self.deps.route(path)
        except GatewayError:
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await websocket(scope, receive, send, self.deps)
        else:
            await self._http(scope, receive, send)


async def websocket(scope: Scope, receive: Receive, send: Send, deps: WebSocketDeps) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    route: Route | None = None
    try:
        route = deps.route(path)
        session = await _authorise(route, scope["headers"], deps)
        upstream = await _dial(route, path, scope, session, deps)
    except GatewayError as exc:
        await _refuse(send, exc, route, deps)
        return
    async with upstream:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        await _relay(receive, send, upstream, route, session, deps)


async def _authorise(route: Route, headers: list[tuple[bytes, bytes]],
                     deps: WebSocketDeps) -> LoadedSession | None:
    """Origin first (the upstream is never dialled for a foreign page), then the session
    the route's token mode needs."""
    reason = origin_failure(headers, deps.public_origin)
    if reason is not None:
        deps.metrics.csrf_rejections.inc()
        audit.emit(AuditEvent.CSRF_REJECTED, level="warning", reason=reason,
                   route=route.prefix, status=403)
        raise OriginRejected(f"the handshake's Origin must be {deps.public_origin}",
                             reason=reason, audited=True)
    match session_use(route.token):
        case SessionUse.REQUIRED:
            return await deps.session_cookie.require(headers)
        case SessionUse.OPTIONAL:
            found = await deps.session_cookie.find(headers)
            return found if isinstance(found, LoadedSession) else None
        case SessionUse.NONE:
            return None


async def _dial(route: Route, path: str, scope: Scope, session: LoadedSession | None,
                deps: WebSocketDeps) -> ClientConnection:
    """The upstream socket, opened with the route's token and the client's subprotocols."""
    credential = await deps.tokens.for_route(route, session)
    http_url = route.upstream_origin + RouteTable.upstream_path(route, path)
    query = scope.get("query_string") or b""
    if query:
        http_url += "?" + query.decode("latin-1")
    url = "ws" + http_url.removeprefix("http")  # http→ws, https→wss
    headers = [(k.decode("latin-1"), v.decode("latin-1"))
               for k, v in authorization_headers(credential, "GET", http_url)]
    try:
        return await connect(
            url, additional_headers=headers, origin=None, user_agent_header=None,
            subprotocols=[Subprotocol(p) for p in scope.get("subprotocols", [])] or None,
            compression=None, open_timeout=deps.open_timeout, max_size=MAX_MESSAGE,
            max_queue=_MAX_QUEUE, write_limit=_WRITE_LIMIT, ping_interval=20,
            ping_timeout=20, close_timeout=2, proxy=None)
    except InvalidStatus as exc:  # the upstream answered the handshake with a refusal
        raise UpstreamUnavailable(
            reason=f"websocket_upstream:status_{exc.response.status_code}") from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise UpstreamUnavailable(reason=f"websocket_upstream:{type(exc).__name__}") from None


async def _refuse(send: Send, exc: GatewayError, route: Route | None,
                  deps: WebSocketDeps) -> None:
    """Answer the handshake with the problem+json (uvicorn's websocket.http.response)."""
    deps.metrics.websocket_upgrades.labels(str(exc.status)).inc()
    if not exc.audited and exc.status != 401:
        audit.emit(AuditEvent.REQUEST_REJECTED if exc.status < 500 else
                   AuditEvent.REQUEST_PROXIED, level="warning", reason=exc.reason,
                   status=exc.status, route=route.prefix if route else None)
    dead = isinstance(exc, NotAuthenticated) and exc.dead_cookie and deps.clear_cookie
    status, headers, body = problem_parts(
        exc, request_id=secrets.token_hex(12),
        extra_headers=[(b"set-cookie", deps.clear_cookie)] if dead else None)
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def _relay(receive: Receive, send: Send, upstream: ClientConnection, route: Route,
                 session: LoadedSession | None, deps: WebSocketDeps) -> None:
    m = deps.metrics
    m.websocket_upgrades.labels("101").inc()
    m.websockets_open.inc()
    started = time.monotonic()
    ended = _SessionEnd()
    watched = None
    if session is not None:
        watched = OpenSocket(session.key, session.data.absolute_expires_at, ended.set)
        deps.registry.add(watched)
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
            deps.registry.remove(watched)
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
