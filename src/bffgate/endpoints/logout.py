"""GET /bff/logout?sid=...: end the session (and the IdP's), clear the cookie, redirect.

The ``sid`` is the per-session logout id that /bff/user returns, so a cross-site link or
image cannot log a user out (and without the cookie nothing is cleared either).
The refresh token is revoked at the IdP (RFC 7009) where it has a revocation endpoint;
failures there are audited but never keep the session alive.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.edge.responses import redirect
from bffgate.endpoints.cookies import CookieWriter
from bffgate.endpoints.deps import SessionEnding
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.endpoints.session_end import end_session
from bffgate.errors import AmbiguousRequest, Forbidden
from bffgate.oidc.client import OidcClient
from bffgate.oidc.errors import OidcError
from bffgate.session.model import LoadedSession, NoSession


@dataclass(frozen=True)
class LogoutDeps:
    session_cookie: SessionCookie
    ending: SessionEnding
    oidc: OidcClient
    cookies: CookieWriter
    post_logout_url: str  # oidc.post_logout_redirect, made absolute (post_logout_url())


def post_logout_url(post_logout_redirect: str, public_origin: str) -> str:
    """Where the browser lands after logout: the setting as is when absolute, else a path
    on the gateway's own origin."""
    if urlsplit(post_logout_redirect).scheme:
        return post_logout_redirect
    return public_origin + post_logout_redirect


async def logout(request: Request, deps: LogoutDeps) -> Response:
    post_logout = deps.post_logout_url
    found = await deps.session_cookie.find(request.headers.raw)
    session = found if isinstance(found, LoadedSession) else None
    location = post_logout
    clear_cookie = found is not NoSession.NO_COOKIE
    if session is not None:
        sids = request.query_params.getlist("sid")
        if len(sids) > 1:  # which one counts would be a guess (Starlette's get() takes the last)
            audit.emit(AuditEvent.REQUEST_REJECTED, level="warning",
                       reason="duplicate_parameter:sid", session=session.handle.short,
                       sub=session.data.sub, status=400)
            raise AmbiguousRequest("parameter sid must be sent once",
                                   reason="duplicate_parameter:sid", audited=True)
        sid = sids[0] if sids else ""
        if not hmac.compare_digest(sid.encode(), session.data.logout_id.encode()):
            audit.emit(AuditEvent.REQUEST_REJECTED, level="warning", reason="logout_sid_mismatch",
                       session=session.handle.short, sub=session.data.sub, status=403)
            raise Forbidden("logout requires the session's logout id (from /bff/user)",
                            reason="logout_sid_mismatch", audited=True)
        await end_session(deps.ending, session, reason="logout")
        try:
            url = await deps.oidc.end_session_url(id_token_hint=session.data.tokens.id_token,
                                                  post_logout_redirect_uri=post_logout)
        except OidcError:
            url = None
        location = url or post_logout
    # Clear the cookie only for the browser whose session just ended, or that holds a dead
    # one. A request without our cookie (e.g. a cross-site link: SameSite=Strict keeps it
    # back) must not log anybody out, not even in the browser.
    return redirect(location, *([deps.cookies.clear_session()] if clear_cookie else []))
