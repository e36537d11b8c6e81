"""WebSocket handshakes on ``websocket = true`` routes: checked (Origin, session, route
token), then the upstream is dialled with the route's token (never the gateway cookie) and
the client's subprotocols and compression offer; the frames go to websocket_relay.

Compression is per hop (frames are relayed as messages): uvicorn accepts permessage-deflate
from a client that offers it, and only such a client's offer is passed upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.edge.client_address import TrustedProxies
from bffgate.edge.fields import list_header, single_header
from bffgate.edge.request_context import bind_log_context, read_request
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.endpoints.socket_registry import SocketRegistry
from bffgate.endpoints.websocket_relay import relay
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
    # Whose X-Forwarded-For and X-Request-Id count (server.trusted_proxies, as for HTTP).
    proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(()))

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
            # WebSockets bypass RequestContext: bind the same log context here, so the
            # websocket.* and csrf.rejected audit events carry request_id and client_ip.
            info = read_request(scope, self.deps.proxies)
            bind_log_context(info)
            await websocket(scope, receive, send, self.deps, info.request_id)
        else:
            await self._http(scope, receive, send)


async def websocket(scope: Scope, receive: Receive, send: Send, deps: WebSocketDeps,
                    request_id: str) -> None:
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
        await _refuse(send, exc, route, deps, request_id)
        return
    async with upstream:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        await relay(receive, send, upstream, route, session, deps.metrics, deps.registry)


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
            compression="deflate" if _offers_deflate(scope) else None,
            open_timeout=deps.open_timeout, max_size=MAX_MESSAGE, max_queue=_MAX_QUEUE,
            write_limit=_WRITE_LIMIT, ping_interval=20, ping_timeout=20, close_timeout=2, proxy=None)
    except InvalidStatus as exc:  # the upstream answered the handshake with a refusal
        raise UpstreamUnavailable(
            reason=f"websocket_upstream:status_{exc.response.status_code}") from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise UpstreamUnavailable(reason=f"websocket_upstream:{type(exc).__name__}") from None


def _offers_deflate(scope: Scope) -> bool:
    """Whether the client offered permessage-deflate: only then is it offered upstream."""
    offers = list_header(scope["headers"], b"sec-websocket-extensions") or ""
    return any(o.split(";", 1)[0].strip().lower() == "permessage-deflate"
               for o in offers.split(","))


async def _refuse(send: Send, exc: GatewayError, route: Route | None,
                  deps: WebSocketDeps, request_id: str) -> None:
    """Answer the handshake with the problem+json (uvicorn's websocket.http.response)."""
    deps.metrics.websocket_upgrades.labels(str(exc.status)).inc()
    if not exc.audited and exc.status != 401:
        audit.emit(AuditEvent.REQUEST_REJECTED if exc.status < 500 else
                   AuditEvent.REQUEST_PROXIED, level="warning", reason=exc.reason,
                   status=exc.status, route=route.prefix if route else None)
    dead = isinstance(exc, NotAuthenticated) and exc.dead_cookie and deps.clear_cookie
    status, headers, body = problem_parts(
        exc, request_id=request_id,
        extra_headers=[(b"set-cookie", deps.clear_cookie)] if dead else None)
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})
