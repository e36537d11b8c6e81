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


async def lookup_session(headers: list[tuple[bytes, bytes]],
                         deps: Deps) -> tuple[LoadedSession | None, str | None]:
    """The session the request's cookie names (one store round trip), or None and why:
    ``no_cookie``, ``cookie_invalid`` (bad signature/format: audited as tampering) or
    ``session_unknown`` (expired, logged out or revoked)."""
    values = cookie_values(headers, deps.settings.cookie.name)
    if not values:
        return None, "no_cookie"
    reason = "cookie_invalid"
    for value in values[:4]:
        handle = deps.sessions.decode_cookie(value)
        if handle is None:
            continue
        reason = "session_unknown"
        session = await deps.sessions.load(handle)
        if session is not None:
            return session, None
    if reason == "cookie_invalid":
        audit.emit(AuditEvent.REQUEST_REJECTED, level="warning", reason=reason, status=401)
    return None, reason


async def load_session_or_401(request: Request, deps: Deps) -> LoadedSession:
    session, why = await lookup_session(request.headers.raw, deps)
    if session is None:
        raise NotAuthenticated(reason=why or "no_session", login_url=deps.login_url("/"))
    return session
