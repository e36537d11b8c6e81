"""The request's session, named by its one session cookie (SessionService.from_cookie)."""

from __future__ import annotations

from bffgate.edge.fields import Headers, single_cookie
from bffgate.errors import NotAuthenticated
from bffgate.session.model import LoadedSession, NoSession
from bffgate.session.service import SessionService

# Where a 401 sends the SPA to log in again (problem+json ``login_url``).
LOGIN_URL = "/bff/login?returnUrl=/"


class SessionCookie:
    def __init__(self, sessions: SessionService, cookie_name: str) -> None:
        self._sessions, self.name = sessions, cookie_name

    async def find(self, headers: Headers) -> LoadedSession | NoSession:
        """The session, or why there is none; the cookie sent twice raises
        ``AmbiguousRequest`` (400, never a guess)."""
        return await self._sessions.from_cookie(single_cookie(headers, self.name))

    async def require(self, headers: Headers) -> LoadedSession:
        """The session, or a 401 ``not-authenticated`` that clears a dead cookie."""
        found = await self.find(headers)
        if isinstance(found, NoSession):
            raise NotAuthenticated(reason=found.value, login_url=LOGIN_URL,
                                   dead_cookie=found is not NoSession.NO_COOKIE)
        return found
