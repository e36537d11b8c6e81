"""``Tracing``: whether this process traces, and the wrappers app.py installs when it does.

On when ``telemetry.tracing = true`` (or ``BFFGATE_TELEMETRY__TRACING=true``) and
``OTEL_SDK_DISABLED`` is not ``true`` (the standard switch wins, so an operator can turn
tracing off without a config change). Off, every method returns what it was given: the
request path runs no tracing code at all and ``opentelemetry`` is never imported. On
without the ``otel`` extra installed: ``ConfigError`` naming ``telemetry.tracing`` (the
config rules say the same to ``check-config``); a bad OTEL_* value: ``ConfigError``
naming the variable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import httpx

from bffgate import logs, telemetry
from bffgate.config import ConfigError, Settings
from bffgate.config.rules import OTEL_MISSING, otel_installed

T = TypeVar("T")


def sdk_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


class Tracing:
    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._settings = settings
        self._tracer: Any = None
        if not settings.telemetry.tracing:
            return
        if sdk_disabled(environ):
            logs.get_logger().info("tracing.off", reason="OTEL_SDK_DISABLED=true")
            return
        if not otel_installed():
            raise ConfigError([f"telemetry.tracing: {OTEL_MISSING}"])
        from bffgate.telemetry import sdk
        from bffgate.telemetry.hooks import SpanHooks

        try:
            self._tracer = sdk.tracer(environ)
        except sdk.TracingSetupError as exc:
            raise ConfigError([str(exc)]) from None
        telemetry.install(SpanHooks())

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    async def flush(self) -> None:
        """Export what is still batched (at most 2 s); the interpreter's exit does it too,
        but a forked worker (server.workers) leaves with os._exit."""
        if self._tracer is None:
            return
        from bffgate.telemetry import sdk

        await asyncio.to_thread(sdk.flush, 2000)

    def edge(self, app: T, route_of: Callable[[str], str | None]) -> T:
        """The public app inside a SERVER span per request."""
        if self._tracer is None:
            return app
        from bffgate.edge.client_address import TrustedProxies
        from bffgate.telemetry.server import ServerSpans

        s = self._settings
        return cast(T, ServerSpans(cast(Any, app), self._tracer,
                                   trusts=TrustedProxies(s.server.trusted_proxies).trusts,
                                   public_origin=s.public_origin, route_of=route_of))

    def store(self, store: T) -> T:
        """A Redis store's operations in spans (the memory store is left alone)."""
        if self._tracer is None or self._settings.session.store != "redis":
            return store
        from bffgate.telemetry.clients import TracedStore, server_attributes

        url = self._settings.redis.url.get()
        attributes: dict[str, Any] = {"db.system.name": "redis"}
        if not url.startswith("unix:"):
            attributes.update(server_attributes(url))
        return cast(T, TracedStore(store, self._tracer, attributes))

    def upstreams(self, factory: Callable[[], T]) -> Callable[[], T]:
        if self._tracer is None:
            return factory
        from bffgate.telemetry.clients import traced_upstreams

        return traced_upstreams(factory, self._tracer)

    def idp_transport(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """The IdP client's transport, traced when tracing is on."""
        if self._tracer is None:
            return transport
        from bffgate.telemetry.clients import TracedTransport

        return TracedTransport(transport, self._tracer)


BFF_PATHS = frozenset({"/bff/login", "/bff/callback", "/bff/user", "/bff/logout",
                       "/bff/backchannel"})


def route_of(routes: Any) -> Callable[[str], str | None]:
    """``http.route`` of a path: a /bff endpoint's path, or the matched route's prefix."""

    def find(path: str) -> str | None:
        if path in BFF_PATHS:
            return path
        try:
            route = routes.resolve(path)
        except Exception:  # a refused path (PathNotAllowed) has no route
            return None
        return str(route.prefix) if route is not None else None

    return find
