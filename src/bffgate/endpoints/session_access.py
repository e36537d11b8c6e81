"""Shared edge steps for /bff endpoints: CSRF check and session loading."""

from __future__ import annotations

from starlette.requests import Request

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.endpoints.context import cookie_values, csrf_failure
from bffgate.endpoints.deps import Deps
from bffgate.errors import CsrfRejected, NotAuthenticated
from bffgate.session.service import LoadedSession


def require_csrf(request: Request, deps: Deps) -> None:
    reason = csrf_failure(request.method, request.headers.raw, deps.public_origin)
    if reason:
        deps.metrics.csrf_rejections.inc()
        audit.emit(AuditEvent.CSRF_REJECTED, level="warning", reason=reason, status=401)
        raise CsrfRejected(reason=reason)


async def find_session(request: Request, deps: Deps) -> LoadedSession | None:
    for value in cookie_values(request.headers.raw, deps.settings.cookie.name):
        handle = deps.sessions.decode_cookie(value)
        if handle is not None:
            session = await deps.sessions.load(handle)
            if session is not None:
                return session
    return None


async def load_session_or_401(request: Request, deps: Deps) -> LoadedSession:
    session = await find_session(request, deps)
    if session is None:
        raise NotAuthenticated(reason="no_session", login_url=deps.login_url("/"))
    return session
