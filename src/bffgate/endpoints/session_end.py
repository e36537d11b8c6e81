"""Ending a session whose cookie the browser presented: logout and re-login end it here.

The record is deleted first (the cookie stops working at once), then its refresh token is
revoked at the IdP (RFC 7009: best effort, a failure never keeps the session alive), and
``session.ended`` says why and whether the IdP confirmed the revocation. Admin and
back-channel revocation end sessions without the cookie, so they cannot open the sealed
tokens and only delete (``revoke_sessions`` in the session service).
"""

from __future__ import annotations

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.endpoints.deps import Deps
from bffgate.oidc.errors import OidcError
from bffgate.session.service import LoadedSession


async def end_session(deps: Deps, session: LoadedSession, *, reason: str,
                      revoke: bool = True) -> None:
    """Delete ``session``, revoke its refresh token unless ``revoke`` is False, audit."""
    await deps.sessions.destroy(session)
    refresh_token = session.data.tokens.refresh_token
    detail: str | None = None
    if refresh_token and not revoke:
        detail = "refresh_token_revoked=False (kept: same IdP session as the new login)"
    elif refresh_token:
        try:
            revoked = await deps.oidc.revoke(refresh_token, "refresh_token")
        except OidcError:
            revoked = False
        detail = f"refresh_token_revoked={revoked}"
    audit.emit(AuditEvent.SESSION_ENDED, reason=reason, sub=session.data.sub,
               session=session.handle.short, detail=detail)
