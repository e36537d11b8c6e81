"""The user's token for a route: the session's access token, made fresh first by the
session layer's single-flight refresh (whose outcome decides the answer)."""

from __future__ import annotations

from typing import assert_never

from bffgate.errors import IdentityProviderUnavailable, SessionEnded
from bffgate.session.model import LoadedSession
from bffgate.session.outcomes import Ended, Fresh, Refreshed, Unavailable
from bffgate.session.refresh import RefreshCoordinator


class UserTokens:
    def __init__(self, refresher: RefreshCoordinator, *, login_url: str) -> None:
        self._refresher, self._login_url = refresher, login_url

    async def access_token(self, session: LoadedSession) -> str:
        """The session's access token (refreshed when due), or the refusal its refresh
        outcome calls for. The refresh coordinator decides (expiry included) and reports;
        this only answers."""
        return (await self.fresh(session)).data.tokens.access_token

    async def fresh(self, session: LoadedSession) -> LoadedSession:
        """The session as refreshed when due (its access token usable), or the refusal its
        refresh outcome calls for (the exchange routes exchange that session's token)."""
        outcome = await self._refresher.ensure_fresh(session)
        match outcome:
            case Fresh(session=s) | Refreshed(session=s):
                return s
            case Unavailable(session=s, usable=usable):
                if usable:  # the IdP is away but the access token still valid: carry on
                    return s
                raise IdentityProviderUnavailable(reason="refresh_unavailable")
            case Ended(reason=reason):
                raise SessionEnded(reason=reason, login_url=self._login_url)
            case _:
                assert_never(outcome)
