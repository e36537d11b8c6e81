"""RouteTokens' client branches (token = client | user_or_client), which modes read the
session and require CSRF, and the startup check against the IdP's advertised grants."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from bffgate.oidc.discovery import ProviderMetadata
from bffgate.proxy.routes import Route
from bffgate.session.model import LoadedSession
from bffgate.tokens.credential import RouteCredential, authorization_headers
from bffgate.tokens.modes import SessionUse, needs_csrf, session_use
from bffgate.tokens.provider_support import provider_problems
from bffgate.tokens.route_tokens import RouteTokens
from bffgate.tokens.user import UserTokens
from support.config_cases import load, route


class FakeUser:
    async def access_token(self, session: Any) -> str:
        return "user-at"


class FakeClient:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def token(self, route: str) -> str:
        self.asked.append(route)
        return "client-at"


def _session() -> LoadedSession:
    tokens = SimpleNamespace(dpop_key=None, token_type="Bearer")
    return cast(LoadedSession, SimpleNamespace(data=SimpleNamespace(tokens=tokens)))


def _route(mode: str) -> Route:
    return Route("/orders", "http://orders.test", mode, False, 5.0)


@pytest.fixture
def tokens() -> tuple[RouteTokens, FakeClient]:
    client = FakeClient()
    return RouteTokens(cast(UserTokens, FakeUser()), client), client


async def test_a_client_route_sends_the_client_token_without_a_session(tokens) -> None:
    rt, client = tokens
    credential = await rt.for_route(_route("client"), None)
    assert credential == RouteCredential("Bearer", "client-at")
    assert client.asked == ["/orders"]
    assert authorization_headers(credential, "GET", "http://orders.test/x") == [
        (b"authorization", b"Bearer client-at")]


async def test_a_client_route_ignores_a_session(tokens) -> None:
    rt, _ = tokens
    assert (await rt.for_route(_route("client"), _session())).token == "client-at"


async def test_user_or_client_is_the_user_token_when_logged_in(tokens) -> None:
    rt, client = tokens
    assert (await rt.for_route(_route("user_or_client"), _session())).token == "user-at"
    assert client.asked == []
    assert (await rt.for_route(_route("user_or_client"), None)).token == "client-at"


def test_client_routes_read_no_session_and_user_or_client_an_optional_one() -> None:
    assert session_use("client") is SessionUse.NONE
    assert session_use("user_or_client") is SessionUse.OPTIONAL
    # A browser call through the gateway spends the gateway's own credential: X-CSRF too.
    assert needs_csrf("client") and needs_csrf("user_or_client") and not needs_csrf("none")


def _meta(grant_types: tuple[str, ...]) -> ProviderMetadata:
    return ProviderMetadata("https://idp.test", "https://idp.test/auth", "https://idp.test/token",
                            "https://idp.test/jwks", None, None, None, None, True, False,
                            ("client_secret_basic",), (), grant_types)


@pytest.mark.parametrize("mode", ["client", "user_or_client"])
def test_startup_refuses_a_client_route_the_idp_has_no_grant_for(mode: str) -> None:
    settings = load({"routes": [route(prefix="/api"), route(prefix="/orders", token=mode)]})
    assert provider_problems(settings, _meta(("authorization_code", "refresh_token"))) == [
        f"routes[1].token: '{mode}' needs the client_credentials grant, which the IdP "
        f"({settings.oidc.issuer}) does not list in grant_types_supported: enable the grant "
        "for this client at the IdP, or use another token mode"]
    assert provider_problems(settings, _meta(("authorization_code", "client_credentials"))) == []


def test_without_client_routes_nothing_is_asked_of_the_idp() -> None:
    settings = load({"routes": [route()]})
    assert provider_problems(settings, _meta(("authorization_code",))) == []
