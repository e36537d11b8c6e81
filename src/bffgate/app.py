"""App assembly: builds every component from Settings and wires them (the only module that
knows all the others). ``Gateway.public`` and ``Gateway.admin`` are the two ASGI apps;
``start()``/``stop()`` own the Redis client, the IdP httpx client and the upstream pools.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from bffgate import audit, logs
from bffgate.audit import AuditEvent
from bffgate.clock import Clock, SystemClock
from bffgate.config import Settings
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.endpoints import admin as admin_ep
from bffgate.endpoints.api import proxy
from bffgate.endpoints.backchannel import backchannel
from bffgate.endpoints.callback import callback
from bffgate.endpoints.context import TrustedProxies
from bffgate.endpoints.cookies import CookieWriter
from bffgate.endpoints.deps import Deps
from bffgate.endpoints.edge import admit
from bffgate.endpoints.login import login
from bffgate.endpoints.logout import logout
from bffgate.endpoints.user import user
from bffgate.errors import GatewayError, MethodNotAllowed, RouteNotFound
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import IdTokenInvalid, OidcError, TokenRejected
from bffgate.problems import problem_parts
from bffgate.proxy.forward import AiohttpUpstream, UpstreamClient
from bffgate.proxy.routes import Route, RouteTable
from bffgate.session.refresh import (
    RefreshCoordinator,
    RefreshRejectedError,
    RefreshUnavailableError,
)
from bffgate.session.service import LoadedSession, NewTokens, SessionService
from bffgate.store.base import SessionStore
from bffgate.store.memory import MemoryStore
from bffgate.store.redis import RedisStore, create_redis_client


def build_store(settings: Settings, metrics: Metrics | None = None) -> SessionStore:
    """The single store factory (memory | redis, standalone/Sentinel/Cluster)."""
    if settings.session.store == "memory":
        return MemoryStore()
    client = create_redis_client(settings.redis.url.get(), sentinel=dict(settings.redis.sentinel),
                                 cluster=settings.redis.cluster, timeout=settings.redis.timeout,
                                 max_connections=settings.redis.max_connections)
    on_error = metrics.redis_errors.inc if metrics else None
    return RedisStore(client, settings.redis.key_prefix, on_error=on_error,
                      wait_replicas=settings.redis.wait_replicas,
                      wait_timeout_ms=int(settings.redis.timeout * 1000),
                      max_concurrency=settings.redis.max_connections)


def _routes(settings: Settings) -> RouteTable:
    routes = []
    for r in settings.routes:
        prefix = r.prefix.rstrip("/") or "/"
        routes.append(Route(prefix, r.upstream.rstrip("/"), r.token, r.strip_prefix, r.timeout,
                            name=prefix, methods=frozenset(r.methods),
                            allow_matrix_params=r.allow_matrix_params))
    return RouteTable(routes)


class Gateway:
    def __init__(self, settings: Settings, *, store: SessionStore | None = None,
                 clock: Clock | None = None, upstream_factory: Any = None,
                 idp_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self._count_redactions = self.metrics.redactions.inc
        logs.on_redaction(self._count_redactions)
        self.store = store or build_store(settings, self.metrics)
        s = settings
        self.idp_http = httpx.AsyncClient(
            timeout=httpx.Timeout(s.oidc.http_timeout, connect=min(5.0, s.oidc.http_timeout)),
            follow_redirects=False, transport=idp_transport, trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self.discovery = Discovery(self.idp_http, s.oidc.issuer, self.clock, s.oidc.metadata_ttl)
        rp = RelyingParty(
            issuer=s.oidc.issuer, client_id=s.oidc.client_id,
            client_secret=s.oidc.client_secret.get(), client_auth=s.oidc.client_auth,
            private_key=s.oidc.private_key.get(), redirect_uri=s.redirect_uri,
            scopes=s.oidc.scopes, id_token_algs=s.oidc.id_token_algs,
            clock_skew=s.oidc.clock_skew, use_par=s.oidc.use_par,
            extra_auth_params=dict(s.oidc.extra_auth_params))
        self.oidc = OidcClient(rp, self.idp_http, self.discovery, self.clock)
        self.sessions = SessionService(
            self.store, CookieCodec([k.get() for k in s.cookie.secret_keys],
                                    [k.get() for k in s.cookie.verify_keys]), self.clock,
            idle_timeout=s.session.idle_timeout, absolute_timeout=s.session.absolute_timeout,
            refresh_ahead=s.session.refresh_ahead, login_timeout=s.session.login_timeout)
        self.refresher = RefreshCoordinator(self.sessions, self._refresh_grant,
                                            on_refreshed=self._refreshed)
        self.routes = _routes(s)
        self._upstream_factory = upstream_factory or AiohttpUpstream
        self.upstreams: dict[str, UpstreamClient] = {}
        self.deps = Deps(
            settings=s, clock=self.clock, sessions=self.sessions, refresher=self.refresher,
            oidc=self.oidc, routes=self.routes, upstreams=self.upstreams,
            cookies=CookieWriter(s.cookie.name, s.login_cookie_name, s.cookie.same_site,
                                 s.cookie.secure, s.session.login_timeout),
            proxies=TrustedProxies(s.server.trusted_proxies), metrics=self.metrics)
        self.bff = self._bff_app()
        self.admin = self._admin_app()

    async def _refresh_grant(self, refresh_token: str, sub: str) -> NewTokens:
        """The TokenRefresher injected into the session layer: OIDC errors → session errors.

        The OIDC client validates a refreshed ID token (OIDC Core 12.2) and revokes what it
        was just given when a check fails; for the session that grant is refused for good."""
        try:
            t = await self.oidc.refresh(refresh_token, sub=sub)
        except TokenRejected as exc:
            # A definitive OAuth answer (RFC 6749 5.2: invalid_grant, invalid_scope, ... or
            # a 200 that is no usable token response); retrying can't help, and treating it
            # as an outage would leave the user with 503s until the session times out.
            raise RefreshRejectedError(exc.error) from exc
        except IdTokenInvalid as exc:
            raise RefreshRejectedError(f"id_token_invalid:{exc.check}") from exc
        except OidcError as exc:  # unreachable, 5xx, other OAuth errors: transient
            raise RefreshUnavailableError(str(exc)) from exc
        return NewTokens(t.access_token, t.refresh_token, t.id_token, t.expires_at, t.sub)

    def _refreshed(self, session: LoadedSession) -> None:
        self.metrics.refresh.labels("refreshed").inc()
        audit.emit(AuditEvent.SESSION_REFRESHED, session=session.handle.short,
                   sub=session.data.sub)

    def _bff_app(self) -> Starlette:
        app = Starlette(routes=[
            StarletteRoute("/bff/login", login, methods=["GET"]),
            StarletteRoute("/bff/callback", callback, methods=["GET"]),
            StarletteRoute("/bff/user", user, methods=["GET"]),
            StarletteRoute("/bff/logout", logout, methods=["GET"]),
            StarletteRoute("/bff/backchannel", backchannel, methods=["POST"]),
        ], exception_handlers={GatewayError: _problem_handler, 404: _not_found,
                               405: _method_not_allowed, Exception: _internal_error})
        app.state.deps = self.deps
        return app

    def _admin_app(self) -> Starlette:
        app = Starlette(routes=[
            StarletteRoute("/healthz", admin_ep.healthz, methods=["GET"]),
            StarletteRoute("/readyz", admin_ep.readyz, methods=["GET"]),
            StarletteRoute("/metrics", admin_ep.metrics, methods=["GET"]),
            StarletteRoute("/admin/sessions", admin_ep.sessions, methods=["GET", "DELETE"]),
        ], exception_handlers={GatewayError: _problem_handler, 404: _not_found,
                               405: _method_not_allowed})
        app.state.deps = self.deps
        return app

    async def public(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The public ASGI app: /bff/* through Starlette, everything else the raw proxy."""
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        info = await admit(scope, send, self.deps)  # forbidden methods, duplicated headers
        if info is None:
            return
        path: str = scope["path"]
        if path == "/bff" or path.startswith("/bff/"):
            await self.bff(scope, receive, send)
            return
        await proxy(scope, receive, send, self.deps, info)

    async def start(self, *, warm_idp: bool = True) -> None:
        """Create the upstream pools (one per upstream origin) and warm the IdP metadata."""
        for r in self.routes.routes:
            if r.upstream_origin not in self.upstreams:
                self.upstreams[r.upstream_origin] = self._upstream_factory()
        if not warm_idp:
            return
        try:
            await self.discovery.metadata()
        except OidcError as exc:
            # Not fatal: /readyz reports it and logins retry; the IdP may come up later.
            logs.get_logger().warning("idp.metadata_unavailable", reason=exc.reason,
                                      detail=str(exc))

    async def stop(self) -> None:
        for client in self.upstreams.values():
            await client.close()
        self.upstreams.clear()
        await self.idp_http.aclose()
        await self.store.close()
        logs.remove_redaction_hook(self._count_redactions)


async def _lifespan_noop(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _problem_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # pragma: no cover - registered for GatewayError
        raise exc
    from structlog.contextvars import get_contextvars

    rid = get_contextvars().get("request_id")
    status, headers, body = problem_parts(exc, request_id=rid)
    response = Response(body, status_code=status)
    response.raw_headers[:] = headers
    return response


async def _internal_error(request: Request, exc: Exception) -> Response:
    logs.get_logger().error("request.failed", error=type(exc).__name__)
    return await _problem_handler(request, GatewayError(reason="internal_error"))


async def _not_found(request: Request, exc: Exception) -> Response:
    return await _problem_handler(request, RouteNotFound(reason="no_route"))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return await _problem_handler(request, MethodNotAllowed(reason="method_not_allowed"))

