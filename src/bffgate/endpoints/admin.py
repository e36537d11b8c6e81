"""The admin listener: /healthz, /readyz, /metrics, /admin/sessions (never exposed publicly)."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate.errors import BadRequest, Forbidden, GatewayError
from bffgate.metrics import Metrics
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import OidcError
from bffgate.session.ending import end_sessions, key_or_sub
from bffgate.store.base import SessionStore

IDP_PROBE_TIMEOUT = 1.0  # seconds; below any sane readiness-probe timeout (the chart's: 3 s)


@dataclass(frozen=True)
class AdminDeps:
    store: SessionStore  # the backend: its health, and revocation by operators
    discovery: Discovery  # the IdP's metadata, probed live by /readyz
    metrics: Metrics
    admin_token: str  # server.admin_token; empty: no token required


def _check_token(request: Request, deps: AdminDeps) -> None:
    expected = deps.admin_token
    if not expected:
        return
    got = request.headers.get("authorization", "")
    if not hmac.compare_digest(got.encode(), f"Bearer {expected}".encode()):
        raise Forbidden("admin bearer token required", reason="admin_token")


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
    _check_token(request, deps)
    return Response(deps.metrics.render(), media_type="text/plain; version=0.0.4")


async def sessions(request: Request, deps: AdminDeps) -> Response:
    """GET ?sub=S lists session keys; DELETE ?sub=S or ?key=K revokes."""
    _check_token(request, deps)
    store = deps.store
    sub, key = request.query_params.get("sub"), request.query_params.get("key")
    if request.method == "GET":
        if not sub:
            raise BadRequest("query parameter sub is required", reason="sub_missing")
        return JSONResponse({"sub": sub, "sessions": await store.keys_for_sub(sub)})
    which = key_or_sub(key, sub)
    return JSONResponse({"revoked": await end_sessions(store, which, reason="admin")
                         if which else 0})
