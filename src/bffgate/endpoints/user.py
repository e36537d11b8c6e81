"""GET /bff/user: the signed-in user's visible claims and session times (never tokens)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate.edge.csrf import CsrfGuard
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.problems import NO_STORE


@dataclass(frozen=True)
class UserDeps:
    csrf: CsrfGuard
    session_cookie: SessionCookie


async def user(request: Request, deps: UserDeps) -> Response:
    deps.csrf.require(request.method, request.headers.raw)
    session = await deps.session_cookie.require(request.headers.raw)
    d = session.data
    body = {
        "sub": d.sub,
        "claims": d.claims,
        "session": {"expires_at": int(d.absolute_expires_at),
                    "idle_expires_at": int(session.idle_expires_at)},
        "logout_url": f"/bff/logout?sid={d.logout_id}",
    }
    response = JSONResponse(body)
    response.raw_headers.extend(NO_STORE)
    response.raw_headers.append((b"vary", b"Cookie"))
    return response
