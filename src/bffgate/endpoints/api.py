"""The proxy hot path, as a plain ASGI callable (no Starlette routing or response objects).

Per request: check the path and match the route, check the route's methods, check CSRF
(every mode that sends a gateway-held token), load the session as the route's token mode
needs it (from the near-cache, else one store round trip), ask the route-token layer
(bffgate.tokens) for the route's credential (the user's token made fresh by the
single-flight refresh, a client token, ...), then stream the request to the upstream and
the response back. A client that leaves mid-body or mid-response is an abort
(``request.aborted``, status label ``client_closed``), not a failure.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.edge.csrf import CsrfGuard
from bffgate.edge.fields import header
from bffgate.edge.request_context import RequestInfo
from bffgate.endpoints.client_stream import ClientWatch, RequestBody
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.errors import (
    BadRequest,
    BodyTooLarge,
    ClientAborted,
    GatewayError,
    MethodNotAllowed,
    NotAuthenticated,
    PathRejected,
    RouteNotFound,
    UpstreamUnavailable,
)
from bffgate.metrics import Metrics
from bffgate.proxy.forward import UpstreamClient
from bffgate.proxy.headers import (
    downstream_response_headers,
    incoming_traceparent,
    upstream_request_headers,
)
from bffgate.proxy.routes import PathNotAllowed, Route, RouteTable
from bffgate.session.model import LoadedSession
from bffgate.telemetry.context import is_trusted
from bffgate.tokens.credential import authorization_headers
from bffgate.tokens.dpop import upstream_answered
from bffgate.tokens.modes import SessionUse, needs_csrf, session_use
from bffgate.tokens.route_tokens import RouteTokens

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
# The proxy_requests status label of a request the client abandoned (documented in README).
_CLIENT_CLOSED = "client_closed"


@dataclass(frozen=True)
class ProxyDeps:
    routes: RouteTable
    upstreams: Mapping[str, UpstreamClient]  # by upstream origin, filled by Gateway.start()
    csrf: CsrfGuard
    session_cookie: SessionCookie
    tokens: RouteTokens
    metrics: Metrics
    max_body_size: int  # server.max_body_size
    public_origin: str  # server.public_url's origin: X-Forwarded-Proto/-Host upstream
    trusts: Callable[[str], bool]  # server.trusted_proxies: may this peer set the trace?

    @functools.cached_property
    def _children(self) -> dict[tuple[Any, tuple[str, ...]], Any]:
        return {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: prometheus-client's labels()
        validates and takes a lock on every call, and the child is the same every time."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    @functools.cached_property
    def forwarded(self) -> tuple[str, str]:
        """(proto, host) of the public origin, as the upstream is told them."""
        proto, _, host = self.public_origin.partition("://")
        return proto, host


@dataclass
class _Outcome:
    """What proxy() reports after _proxy() returns or raises: the route once matched (so a
    refused or failed request is still counted under it) and the status sent."""

    route: Route | None = None
    status: int | None = None  # None until the response starts or the request fails


def _trace_context(scope: Scope, headers: list[tuple[bytes, bytes]],
                   deps: ProxyDeps) -> bytes | None:
    """The browser's trace continued upstream only from a trusted source (a trusted proxy,
    or the SPA itself: bffgate.telemetry.context), whether tracing is on or off; otherwise
    the upstream gets a new trace (upstream_request_headers)."""
    traceparent = incoming_traceparent(headers)
    if traceparent is None:
        return None
    client = scope.get("client") or ("", 0)
    trusted = is_trusted(headers, str(client[0]), trusts=deps.trusts,
                         public_origin=deps.public_origin)
    return traceparent if trusted else None


async def proxy(info: RequestInfo, scope: Scope, receive: Receive, send: Send,
                deps: ProxyDeps) -> None:
    """Proxy one request; failures propagate to the problem boundary, counted here under
    the matched route (and audited with it: ``request.rejected``, ``request.proxied`` for
    a 5xx, ``request.aborted``)."""
    started = time.perf_counter()
    outcome = _Outcome()
    try:
        await _proxy(scope, receive, send, deps, info, outcome)
    except ClientAborted as exc:
        # Counted under its own status label (nginx's 499 "client closed request").
        route = outcome.route
        audit.emit(AuditEvent.REQUEST_ABORTED, level="warning", reason=exc.reason,
                   route=route.prefix if route else None, status=outcome.status,
                   duration_ms=round((time.perf_counter() - started) * 1000, 2))
        exc.audited = True
        outcome.status = exc.status
        raise
    except GatewayError as exc:
        outcome.status = exc.status
        route = outcome.route
        if not exc.audited and not isinstance(exc, NotAuthenticated):
            audit.emit(AuditEvent.REQUEST_REJECTED if exc.status < 500
                       else AuditEvent.REQUEST_PROXIED,
                       level="warning", reason=exc.reason, status=exc.status,
                       route=route.prefix if route else None)
            exc.audited = True
        raise
    except Exception:
        outcome.status = 500
        raise
    finally:
        if outcome.route is not None:
            elapsed = time.perf_counter() - started
            status = outcome.status or 500
            label = _CLIENT_CLOSED if status == ClientAborted.status else f"{status // 100}xx"
            deps.child(deps.metrics.proxy_requests, outcome.route.prefix, label).inc()
            deps.child(deps.metrics.proxy_latency, outcome.route.prefix).observe(elapsed)


async def _proxy(scope: Scope, receive: Receive, send: Send, deps: ProxyDeps,
                 info: RequestInfo, outcome: _Outcome) -> None:
    started = time.perf_counter()
    raw_path = scope.get("raw_path") or scope["path"].encode()
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(raw_path)
    try:
        # Every path check first (an escaping path is refused whatever it targets), then
        # the route, then the route's own rule for ';' parameters.
        route = deps.routes.resolve(path)
    except PathNotAllowed as exc:
        raise PathRejected(reason=f"path:{exc.reason}") from None
    if route is None:
        raise RouteNotFound(reason="no_route")
    outcome.route = route
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    method: str = scope["method"]
    if method not in route.methods:  # before the session is loaded or anything forwarded
        raise MethodNotAllowed(f"{method} is not allowed on this route",
                               reason="method_not_allowed", allow=route.allow_header)

    if needs_csrf(route.token):
        deps.csrf.require(method, headers, route=route.prefix)
    session: LoadedSession | None = None
    match session_use(route.token):
        case SessionUse.REQUIRED:
            session = await deps.session_cookie.require(headers)
        case SessionUse.OPTIONAL:  # anonymous unless a live session comes with the request
            found = await deps.session_cookie.find(headers)
            session = found if isinstance(found, LoadedSession) else None
        case SessionUse.NONE:
            pass
    credential = await deps.tokens.for_route(route, session)

    content_length = header(headers, b"content-length")
    if content_length is not None:
        if not content_length.isdigit():
            raise BadRequest("invalid Content-Length", reason="bad_content_length")
        if int(content_length) > deps.max_body_size:
            raise BodyTooLarge(reason="body_too_large")
    has_body = (content_length not in (None, "0")) or (
        header(headers, b"transfer-encoding") is not None) or method not in _BODYLESS
    body = RequestBody(receive, deps.max_body_size) if has_body else None

    url = route.upstream_origin + RouteTable.upstream_path(route, path)
    qs = scope.get("query_string") or b""
    if qs:
        url += "?" + qs.decode("latin-1")
    upstream_headers = upstream_request_headers(
        headers, auth_headers=authorization_headers(credential, method, url),
        client_ip=info.client_ip, proto=deps.forwarded[0], host=deps.forwarded[1],
        request_id=info.request_id, traceparent=_trace_context(scope, headers, deps))
    client = deps.upstreams[route.upstream_origin]
    try:
        resp = await client.send(method, url, upstream_headers,
                                 body.chunks() if body else None, route.timeouts)
    except UpstreamUnavailable as exc:
        deps.metrics.upstream_errors.labels(route.prefix, exc.reason).inc()
        raise
    upstream_answered(credential, url, resp.headers)  # DPoP: keep the upstream's nonce
    watch: ClientWatch | None = None
    streaming = False
    try:
        outcome.status = resp.status
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": downstream_response_headers(resp.headers,
                                                           request_id=info.request_id)})
        try:
            async for chunk in resp.body():
                if watch is not None and watch.gone:
                    raise ClientAborted(reason="client_disconnected")
                if watch is None and streaming and (body is None or body.done):
                    # A streamed response (second chunk on): notice a client that left,
                    # as uvicorn drops writes to a closed connection without a word. Only
                    # once the request body is read whole: receive() has one reader.
                    watch = ClientWatch(receive)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    streaming = True
        except UpstreamUnavailable as exc:
            # Headers are out: all we can do is cut the response short (the server then
            # closes the connection, so the client sees a truncated body, not a full one).
            deps.metrics.upstream_errors.labels(route.prefix, exc.reason).inc()
            audit.emit(AuditEvent.REQUEST_PROXIED, level="warning", reason=exc.reason,
                       route=route.prefix, status=resp.status)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if watch is not None:
            watch.close()
        await resp.close()
    audit.emit(AuditEvent.REQUEST_PROXIED, route=route.prefix, status=resp.status,
               duration_ms=round((time.perf_counter() - started) * 1000, 2),
               session=session.handle.short if session else None,
               sub=session.data.sub if session else None)

