"""App assembly: builds every component from Settings and wires them (the only module that
knows all the others). ``Gateway.public`` and ``Gateway.admin`` are the two ASGI apps;
``start()``/``stop()`` own the Redis client, the IdP httpx client and the upstream pools.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import httpx
from starlette.types import ASGIApp

from bffgate import idp_http, logs
from bffgate.clock import Clock, SystemClock
from bffgate.config import ConfigError, Settings
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.edge.admission import Admission
from bffgate.edge.boundary import ProblemBoundary
from bffgate.edge.client_address import TrustedProxies
from bffgate.edge.csrf import CsrfGuard
from bffgate.edge.dispatch import ByPrefix, Endpoints, Page
from bffgate.edge.request_context import RequestContext
from bffgate.endpoints import admin as admin_ep
from bffgate.endpoints.admin import AdminDeps
from bffgate.endpoints.admin_api import AdminSessionsDeps
from bffgate.endpoints.api import ProxyDeps, proxy
from bffgate.endpoints.backchannel import backchannel
from bffgate.endpoints.callback import CallbackDeps, callback
from bffgate.endpoints.cookies import CookieWriter
from bffgate.endpoints.deps import BackchannelDeps, SessionEnding
from bffgate.endpoints.login import LoginDeps, login
from bffgate.endpoints.logout import LogoutDeps, logout, post_logout_url
from bffgate.endpoints.session_cookie import LOGIN_URL, SessionCookie
from bffgate.endpoints.socket_registry import SocketRegistry
from bffgate.endpoints.user import UserDeps, user
from bffgate.endpoints.websocket import WebSocketDeps, WebSocketGate
from bffgate.grants import OidcRefresher, RefreshReport
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import OidcError
from bffgate.proxy.clients import upstream_client_factory
from bffgate.proxy.forward import UpstreamClient
from bffgate.proxy.routes import Route, RouteTable
from bffgate.session.inventory import SessionInventory, SessionLimit
from bffgate.session.logins import LoginRecords
from bffgate.session.near_cache import NearCache
from bffgate.session.refresh import RefreshCoordinator
from bffgate.session.service import SessionService
from bffgate.store.base import SessionStore
from bffgate.store.memory import MemoryStore
from bffgate.store.redis import RedisStore, create_redis_client
from bffgate.telemetry.setup import Tracing, route_of
from bffgate.tokens.client import ClientTokens, OidcClientGrant, client_requests
from bffgate.tokens.client_cache import SharedTokenCache
from bffgate.tokens.exchange import ExchangeTokens, OidcExchanger, exchange_requests
from bffgate.tokens.provider_support import provider_problems
from bffgate.tokens.route_tokens import RouteTokens
from bffgate.tokens.user import UserTokens


def build_store(settings: Settings, metrics: Metrics | None = None,
                clock: Clock | None = None) -> SessionStore:
    """The single store factory (memory | redis, standalone/Sentinel/Cluster)."""
    if settings.session.store == "memory":
        return MemoryStore(clock)
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
                            methods=frozenset(r.methods),
                            allow_matrix_params=r.allow_matrix_params,
                            connect_timeout=r.connect_timeout,
                            response_timeout=r.response_timeout, idle_timeout=r.idle_timeout))
    return RouteTable(routes)


_FOLLOWER_STOP_SECONDS = 1.0


class Gateway:
    def __init__(self, settings: Settings, *, store: SessionStore | None = None,
                 clock: Clock | None = None, upstream_factory: Callable[[], UpstreamClient] | None = None,
                 idp_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self._count_redactions = self.metrics.redactions.inc
        logs.on_redaction(self._count_redactions)
        self.tracing = Tracing(settings)  # off: each wrap below returns its argument
        self.store = store or self.tracing.store(build_store(settings, self.metrics, self.clock))
        s = settings
        self.idp_http = idp_http.idp_client(self.tracing.idp_transport(
            idp_transport or idp_http.idp_transport(s.server.upstream_client)),
            s.oidc.http_timeout)
        self.discovery = Discovery(self.idp_http, s.oidc.issuer, self.clock, s.oidc.metadata_ttl)
        rp = RelyingParty(
            issuer=s.oidc.issuer, client_id=s.oidc.client_id,
            client_secret=s.oidc.client_secret.get(), client_auth=s.oidc.client_auth,
            private_key=s.oidc.private_key.get(), redirect_uri=s.redirect_uri,
            scopes=s.oidc.scopes, id_token_algs=s.oidc.id_token_algs,
            clock_skew=s.oidc.clock_skew, use_par=s.oidc.use_par,
            extra_auth_params=dict(s.oidc.extra_auth_params), dpop=s.oidc.dpop)
        self.oidc = OidcClient(rp, self.idp_http, self.discovery, self.clock)
        self.oidc.dpop.on_retry = self.metrics.dpop_nonce_retries.inc  # DPoP nonce retries
        self.sessions = SessionService(
            self.store, CookieCodec([k.get() for k in s.cookie.secret_keys],
                                    [k.get() for k in s.cookie.verify_keys]), self.clock,
            idle_timeout=s.session.idle_timeout, absolute_timeout=s.session.absolute_timeout,
            refresh_ahead=s.session.refresh_ahead,
            near_cache=NearCache() if s.session.near_cache else None)
        self._follow_changes: asyncio.Task[None] | None = None
        self.logins = LoginRecords(self.store, self.clock, login_timeout=s.session.login_timeout)
        self.inventory = SessionInventory(self.store, idle_timeout=s.session.idle_timeout)
        self.refresher = RefreshCoordinator(self.sessions, self.store, self.clock,
                                            OidcRefresher(self.oidc),
                                            observer=RefreshReport(self.metrics))
        self.routes = _routes(s)
        exchange = ExchangeTokens(exchange_requests(s.routes), OidcExchanger(self.oidc),
                                  self.sessions, self.store, self.clock, self.metrics,
                                  login_url=LOGIN_URL, renew_ahead=s.session.refresh_ahead)
        clients = client_requests(s.routes, s.oidc.issuer, s.oidc.client_id)
        client = ClientTokens(
            clients, OidcClientGrant(self.oidc),
            SharedTokenCache(self.store, [k.get() for k in s.cookie.secret_keys]),
            self.store, self.clock, self.metrics) if clients else None
        self.route_tokens = RouteTokens(UserTokens(self.refresher, login_url=LOGIN_URL), client,
                                        dpop=self.oidc.dpop if s.oidc.dpop else None,
                                        exchange=exchange)
        self._upstream_factory = self.tracing.upstreams(
            upstream_factory or upstream_client_factory(s.server.upstream_client))
        self.upstreams: dict[str, UpstreamClient] = {}
        self.sockets: SocketRegistry | None = None  # with websocket routes only
        cookies = CookieWriter(s.cookie.name, s.login_cookie_name, s.cookie.same_site,
                               s.cookie.secure, s.session.login_timeout)
        self.public: ASGIApp = self.tracing.edge(self._public_app(cookies), route_of(self.routes))
        self.admin: ASGIApp = self._admin_app(cookies)

    def _public_app(self, cookies: CookieWriter) -> ASGIApp:
        """request context → problem boundary → admission → /bff/* endpoints | proxy; each
        endpoint gets what it uses and nothing else."""
        s, m = self.settings, self.metrics
        csrf = CsrfGuard(s.public_origin, m.csrf_rejections.inc)
        session_cookie = SessionCookie(self.sessions, s.cookie.name)
        ending = SessionEnding(self.store, self.oidc)
        bff = Endpoints({
            "/bff/login": Page(("GET",), functools.partial(login, deps=LoginDeps(
                self.logins, self.oidc, cookies, self.clock, m))),
            "/bff/callback": Page(("GET",), functools.partial(callback, deps=CallbackDeps(
                self.logins, self.sessions, session_cookie, ending, self.oidc, s.oidc.issuer,
                cookies, self.clock, m, self._session_limit()))),
            "/bff/user": Page(("GET",), functools.partial(user, deps=UserDeps(
                csrf, session_cookie))),
            "/bff/logout": Page(("GET",), functools.partial(logout, deps=LogoutDeps(
                session_cookie, ending, self.oidc, cookies,
                post_logout_url(s.oidc.post_logout_redirect, s.public_origin)))),
            "/bff/backchannel": Page(("POST",), functools.partial(backchannel, deps=BackchannelDeps(
                self.oidc, self.store, s.oidc.issuer))),
        })
        proxies = TrustedProxies(s.server.trusted_proxies)
        proxy_deps = ProxyDeps(self.routes, self.upstreams, csrf, session_cookie,
                               self.route_tokens, m, s.server.max_body_size, s.public_origin,
                               proxies.trusts)
        dispatch = ByPrefix("/bff", bff, functools.partial(proxy, deps=proxy_deps))
        admission = Admission(dispatch, self.routes, (cookies.name, cookies.login_name))
        http = RequestContext(ProblemBoundary(admission, clear_cookie=cookies.clear_session()),
                              proxies)
        ws_prefixes = frozenset(r.prefix.rstrip("/") or "/" for r in s.routes if r.websocket)
        if not ws_prefixes:
            return http
        # WebSocket routes: the handshake scope goes to endpoints.websocket (bffgate.server
        # enables uvicorn's WebSocket protocol only for an app with ``websocket_path``).
        self.sockets = SocketRegistry(self.store, self.clock)
        return WebSocketGate(http, WebSocketDeps(
            self.routes, ws_prefixes, session_cookie, self.route_tokens, self.sockets, m,
            s.public_origin, clear_cookie=cookies.clear_session(),
            proxies=proxies))

    def _session_limit(self) -> SessionLimit | None:
        limit = self.settings.session.max_per_user
        return SessionLimit(self.inventory, limit) if limit > 0 else None

    def _admin_app(self, cookies: CookieWriter) -> ASGIApp:
        """request context → problem boundary → admin token gate → the admin endpoints and
        the sessions API (no proxy trusted)."""
        endpoints = admin_ep.admin_endpoints(
            AdminDeps(self.store, self.discovery, self.metrics),
            AdminSessionsDeps(self.store, self.inventory, self.clock),
            self.settings.server.admin_token.get())
        return RequestContext(ProblemBoundary(endpoints, clear_cookie=cookies.clear_session()),
                              TrustedProxies(()))

    async def start(self, *, warm_idp: bool = True) -> None:
        """Create the upstream pools (one per upstream origin) and warm the IdP metadata;
        ConfigError when a route's token mode needs a grant the IdP does not advertise."""
        for r in self.routes.routes:
            if r.upstream_origin not in self.upstreams:
                self.upstreams[r.upstream_origin] = self._upstream_factory()
        if warm_idp:
            await self._check_idp()
        if self.sessions.near_cache.enabled and self._follow_changes is None:
            # Other replicas' session writes and deletes reach the near-cache through this
            # (started once the checks that may refuse to start have passed).
            self._follow_changes = asyncio.create_task(self.store.follow_session_changes())

    async def _check_idp(self) -> None:
        try:
            meta = await self.discovery.metadata()
        except OidcError as exc:
            # Not fatal: /readyz reports it and logins retry; the IdP may come up later.
            logs.get_logger().warning("idp.metadata_unavailable", reason=exc.reason,
                                      detail=str(exc))
            return
        # What the static rules can't see: a route token mode the IdP has no grant for.
        problems = provider_problems(self.settings, meta)
        if problems:
            raise ConfigError(problems)

    async def stop(self) -> None:
        if self._follow_changes is not None:
            # Bounded: redis-py can leave a cancelled read waiting (seen while connecting);
            # closing the store below then ends it.
            self._follow_changes.cancel()
            await asyncio.wait({self._follow_changes}, timeout=_FOLLOWER_STOP_SECONDS)
            self._follow_changes = None
        if self.sockets is not None:
            await self.sockets.stop()
        for client in self.upstreams.values():
            await client.close()
        self.upstreams.clear()
        await self.idp_http.aclose()
        await self.store.close()
        await self.tracing.flush()  # a forked worker exits without atexit: send the last spans
        logs.remove_redaction_hook(self._count_redactions)
