"""The components an endpoint works with, assembled by app.py (endpoints never build them)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from bffgate.clock import Clock
from bffgate.config import Settings
from bffgate.endpoints.context import TrustedProxies
from bffgate.endpoints.cookies import CookieWriter
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient
from bffgate.proxy.forward import UpstreamClient
from bffgate.proxy.routes import RouteTable
from bffgate.session.refresh import RefreshCoordinator
from bffgate.session.service import SessionService


@dataclass
class Deps:
    settings: Settings
    clock: Clock
    sessions: SessionService
    refresher: RefreshCoordinator
    oidc: OidcClient
    routes: RouteTable
    upstreams: dict[str, UpstreamClient]
    cookies: CookieWriter
    proxies: TrustedProxies
    metrics: Metrics

    @property
    def public_origin(self) -> str:
        return self.settings.public_origin

    def login_url(self, return_url: str = "/") -> str:
        return "/bff/login?returnUrl=" + quote(return_url, safe="/")
