"""``RouteTokens.for_route``: the credential a route's token mode puts on the request."""

from __future__ import annotations

from typing import Protocol

from bffgate.oidc.dpop import DpopProver
from bffgate.proxy.routes import Route
from bffgate.session.model import LoadedSession
from bffgate.tokens.credential import RouteCredential
from bffgate.tokens.dpop import user_credential
from bffgate.tokens.user import UserTokens


class ClientTokenSource(Protocol):
    async def token(self, route: str) -> str:
        """A client-credentials access token for the route of prefix ``route``."""
        ...


class ExchangeTokenSource(Protocol):
    async def token(self, route: str, session: LoadedSession) -> str:
        """The token exchanged (RFC 8693) for ``session``'s fresh access token, for the
        route of prefix ``route`` (tokens/exchange.py)."""
        ...


class RouteTokens:
    """One branch per token mode (config validation admits only these)."""

    def __init__(self, user: UserTokens, client: ClientTokenSource | None = None, *,
                 dpop: DpopProver | None = None,
                 exchange: ExchangeTokenSource | None = None) -> None:
        self._user, self._client, self._dpop = user, client, dpop
        self._exchange = exchange

    async def for_route(self, route: Route, session: LoadedSession | None) -> RouteCredential | None:
        """The credential for ``route`` (None: send no Authorization). ``session`` is the
        request's live session, loaded as ``modes.session_use`` says, or None."""
        mode = route.token
        if mode == "none":
            return None
        if mode in ("user", "user_optional"):
            return await self._user_credential(session) if session is not None else None
        if mode == "user_or_client" and session is not None:
            return await self._user_credential(session)
        if mode in ("client", "user_or_client"):
            return RouteCredential("Bearer", await self._client_source().token(route.prefix))
        if mode == "exchange" and session is not None and self._exchange is not None:
            fresh = await self._user.fresh(session)  # the subject token: the refreshed one
            return RouteCredential("Bearer", await self._exchange.token(route.prefix, fresh))
        msg = f"token mode {mode!r} has no credential source"
        raise NotImplementedError(msg)

    async def _user_credential(self, session: LoadedSession) -> RouteCredential:
        token = await self._user.access_token(session)  # DPoP: the key never changes
        return user_credential(token, session.data.tokens, self._dpop)

    def _client_source(self) -> ClientTokenSource:
        if self._client is None:
            msg = "a client-token route without a client token source"
            raise RuntimeError(msg)
        return self._client
