"""The components an endpoint works with, assembled by app.py (endpoints never build them)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from bffgate.clock import Clock
from bffgate.config import Settings
from bffgate.edge.csrf import CsrfGuard
from bffgate.endpoints.cookies import CookieWriter
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient
from bffgate.proxy.forward import UpstreamClient
from bffgate.proxy.routes import RouteTable
from bffgate.session.logins import LoginRecords
from bffgate.session.refresh import RefreshCoordinator
from bffgate.session.service import SessionService
from bffgate.store.base import SessionStore


@dataclass
class Deps:
    settings: Settings
    clock: Clock
    store: SessionStore  # the backend: health, revocation by operators and the IdP, replay guard
    sessions: SessionService
    logins: LoginRecords
    refresher: RefreshCoordinator
    oidc: OidcClient
    routes: RouteTable
    upstreams: dict[str, UpstreamClient]
    cookies: CookieWriter
    csrf: CsrfGuard
    session_cookie: SessionCookie
    metrics: Metrics

    @property
    def public_origin(self) -> str:
        return self.settings.public_origin

    def login_url(self, return_url: str = "/") -> str:
        return "/bff/login?returnUrl=" + quote(return_url, safe="/")
