"""The admin listener: /healthz, /readyz, /metrics (never exposed publicly). The bearer token
(``server.admin_token``) and the sessions API: endpoints/admin_api.py; its OpenAPI
document: endpoints/admin_openapi.py."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate.edge.dispatch import ByPrefix, Endpoints, Page
from bffgate.edge.request_context import ContextApp
from bffgate.endpoints.admin_api import AdminApi, AdminGate, AdminSessionsDeps
from bffgate.endpoints.admin_openapi import admin_document
from bffgate.errors import GatewayError
from bffgate.metrics import Metrics
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import OidcError
from bffgate.store.base import SessionStore

IDP_PROBE_TIMEOUT = 1.0  # seconds; below any sane readiness-probe timeout (the chart's: 3 s)


@dataclass(frozen=True)
class AdminDeps:
    store: SessionStore  # the backend: its health
    discovery: Discovery  # the IdP's metadata, probed live by /readyz
    metrics: Metrics


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request, deps: AdminDeps) -> Response:
    """Readiness = this replica can serve the sessions it is sent: Redis answers.

    The IdP is probed live (not the cached metadata) and reported, but does not decide:
    while it is down, every replica still serves existing sessions with their current
    access tokens, and an unready replica would only turn that into connection errors
    (README "Operations"). Both checks run at once, the IdP's bounded by IDP_PROBE_TIMEOUT
    so that a hanging IdP never makes the probe itself time out."""
    store, idp = await asyncio.gather(_store_status(deps), _idp_status(deps))
    ready = store == "ok"
    return JSONResponse({"status": "ok" if ready else "unavailable",
                         "checks": {"store": store, "idp_metadata": idp}},
                        status_code=200 if ready else 503,
                        headers={"Cache-Control": "no-store"})


async def _store_status(deps: AdminDeps) -> str:
    try:
        await deps.store.ping()
    except GatewayError:
        return "unavailable"
    return "ok"


async def _idp_status(deps: AdminDeps) -> str:
    try:
        await asyncio.wait_for(deps.discovery.probe(), IDP_PROBE_TIMEOUT)
    except TimeoutError:
        return "timeout"
    except OidcError as exc:
        return exc.reason  # idp_unavailable | idp_misconfigured
    return "ok"


async def metrics(request: Request, deps: AdminDeps) -> Response:
    """Behind the admin token (admin_api.AdminGate)."""
    return Response(deps.metrics.render(), media_type="text/plain; version=0.0.4")


ADMIN_PAGES = {"/healthz": ("GET",), "/readyz": ("GET",), "/metrics": ("GET",)}


def admin_endpoints(deps: AdminDeps, sessions: AdminSessionsDeps, admin_token: str
                    ) -> ContextApp:
    """The admin listener's dispatch: the token gate (for /metrics and /admin/*), then the
    probes and /metrics (``ADMIN_PAGES``) or, under /admin, the sessions API."""
    pages = Endpoints({
        "/healthz": Page(ADMIN_PAGES["/healthz"], healthz),
        "/readyz": Page(ADMIN_PAGES["/readyz"], functools.partial(readyz, deps=deps)),
        "/metrics": Page(ADMIN_PAGES["/metrics"], functools.partial(metrics, deps=deps)),
    })
    api = AdminApi(sessions, admin_document)
    return AdminGate(ByPrefix("/admin", api, pages), admin_token, ("/metrics", "/admin"))
