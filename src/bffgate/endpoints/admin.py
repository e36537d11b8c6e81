"""The admin listener: /healthz, /readyz, /metrics, /admin/sessions (never exposed publicly)."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate.endpoints.deps import Deps
from bffgate.errors import Forbidden, GatewayError
from bffgate.oidc.errors import OidcError
from bffgate.session.service import revoke_sessions


def _check_token(request: Request, deps: Deps) -> None:
    expected = deps.settings.server.admin_token.get()
    if not expected:
        return
    got = request.headers.get("authorization", "")
    if not hmac.compare_digest(got.encode(), f"Bearer {expected}".encode()):
        raise Forbidden("admin bearer token required", reason="admin_token")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    deps: Deps = request.app.state.deps
    checks: dict[str, str] = {}
    try:
        await deps.sessions.store.ping()
        checks["store"] = "ok"
    except GatewayError:
        checks["store"] = "unavailable"
    try:
        await deps.oidc.metadata()
        checks["idp_metadata"] = "ok"
    except OidcError as exc:
        checks["idp_metadata"] = exc.reason
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    deps: Deps = request.app.state.deps
    _check_token(request, deps)
    return Response(deps.metrics.render(), media_type="text/plain; version=0.0.4")


async def sessions(request: Request) -> Response:
    """GET ?sub=S lists session keys; DELETE ?sub=S or ?key=K revokes."""
    deps: Deps = request.app.state.deps
    _check_token(request, deps)
    store = deps.sessions.store
    sub, key = request.query_params.get("sub"), request.query_params.get("key")
    if request.method == "GET":
        if not sub:
            return JSONResponse({"error": "sub required"}, status_code=400)
        return JSONResponse({"sub": sub, "sessions": await store.keys_for_sub(sub)})
    return JSONResponse({"revoked": await revoke_sessions(store, key=key, sub=sub,
                                                          reason="admin")})
