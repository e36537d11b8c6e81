"""GET /bff/user: the signed-in user's visible claims and session times (never tokens)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate.endpoints.deps import Deps
from bffgate.endpoints.session_access import load_session_or_401, require_csrf
from bffgate.problems import NO_STORE


async def user(request: Request) -> Response:
    deps: Deps = request.app.state.deps
    require_csrf(request, deps)
    session = await load_session_or_401(request, deps)
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
