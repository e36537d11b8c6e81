"""Ending the session whose cookie the browser presented: logout and re-login end it here.

The session layer's ``end_sessions`` deletes it, then its refresh token is revoked at the
IdP through the OIDC client (RFC 7009: best effort, a failure never keeps the session
alive), and ``session.ended`` says why and whether the IdP confirmed the revocation.
"""

from __future__ import annotations

from bffgate.endpoints.deps import SessionEnding
from bffgate.oidc.errors import OidcError
from bffgate.session.ending import end_sessions
from bffgate.session.model import LoadedSession


async def end_session(deps: SessionEnding, session: LoadedSession, *, reason: str,
                      revoke: bool = True) -> None:
    """Delete ``session``, revoke its refresh token unless ``revoke`` is False, audit."""

    async def revoke_refresh_token(token: str) -> bool:
        try:
            return await deps.oidc.revoke(token, "refresh_token")
        except OidcError:
            return False

    await end_sessions(deps.store, session, reason=reason,
                       revoke=revoke_refresh_token if revoke else None)
