"""Shared edge steps for /bff endpoints: CSRF check and session loading."""

from __future__ import annotations

from starlette.requests import Request

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.endpoints.context import csrf_failure, single_cookie
from bffgate.endpoints.deps import Deps
from bffgate.errors import CsrfRejected, NotAuthenticated
from bffgate.session.service import LoadedSession, NoSession


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
    ``session_unknown`` (expired, logged out or revoked). The cookie sent twice raises
    ``AmbiguousRequest``."""
    value = single_cookie(headers, deps.settings.cookie.name)  # two of them: 400, no guess
    found = await deps.sessions.from_cookie(value)
    if isinstance(found, NoSession):
        return None, found.value
    return found, None


async def load_session_or_401(request: Request, deps: Deps) -> LoadedSession:
    session, why = await lookup_session(request.headers.raw, deps)
    if session is None:
        raise NotAuthenticated(reason=why or "no_session", login_url=deps.login_url("/"))
    return session
