"""Config rules of token = "exchange" routes (bffgate.config.rules): a target is required,
the request settings are read as they are written, what app.py builds from them, and the
startup check against the IdP's discovery (the grant must be listed)."""

from __future__ import annotations

import pytest

from bffgate.oidc.discovery import ProviderMetadata
from bffgate.oidc.token_exchange import GRANT_TYPE
from bffgate.tokens.credential import TokenRequest
from bffgate.tokens.exchange import exchange_requests
from bffgate.tokens.provider_support import provider_problems
from support.config_cases import load, problems, route


@pytest.mark.parametrize("target", [{"audience": "https://orders.test"},
                                    {"resource": "https://orders.test/"},
                                    {"audience": "orders", "resource": "https://orders.test/"}])
def test_an_exchange_route_with_a_target_is_accepted(target: dict[str, str]) -> None:
    assert problems({"routes": [route(token="exchange", scope=["orders:read"], **target)]}) == []


def test_an_exchange_route_without_audience_or_resource_is_refused() -> None:
    assert problems({"routes": [route(token="exchange", scope=["orders:read"])]}) == [
        "routes[0].audience: token = exchange needs audience or resource (what the user's "
        "token is exchanged for)"]


def test_an_exchange_route_names_its_index() -> None:
    assert problems({"routes": [route(), route(prefix="/orders", token="exchange")]}) == [
        "routes[1].audience: token = exchange needs audience or resource (what the user's "
        "token is exchanged for)"]


def test_exchange_requests_are_keyed_by_the_normalised_prefix() -> None:
    settings = load({"routes": [
        route(),
        route(prefix="/orders/", token="exchange", audience="https://orders.test",
              scope=["orders:read", "orders:write"]),
        route(prefix="/billing", token="exchange", resource="https://billing.test/"),
    ]})
    assert exchange_requests(settings.routes) == {
        "/orders": TokenRequest(("orders:read", "orders:write"), "https://orders.test", ""),
        "/billing": TokenRequest((), "", "https://billing.test/"),
    }


def _metadata(grant_types: list[str]) -> ProviderMetadata:
    return ProviderMetadata.parse({
        "issuer": "https://idp.example.com", "authorization_endpoint": "https://idp/a",
        "token_endpoint": "https://idp/t", "jwks_uri": "https://idp/j",
        "code_challenge_methods_supported": ["S256"], "grant_types_supported": grant_types,
    }, "https://idp.example.com")


def test_an_exchange_route_on_an_idp_without_the_grant_is_a_startup_error() -> None:
    """Checked where startup reads discovery (Gateway.start, tokens/provider_support.py):
    the error names the route's key and what to do."""
    settings = load({"routes": [
        route(), route(prefix="/orders", token="exchange", audience="https://orders.test")]})
    assert provider_problems(settings, _metadata(["authorization_code", "refresh_token"])) == [
        "routes[1].token: 'exchange' needs the token-exchange grant (RFC 8693, "
        "urn:ietf:params:oauth:grant-type:token-exchange), which the IdP "
        "(https://idp.example.com) does not list in grant_types_supported: enable it for "
        "this client at the IdP, or use another token mode"]
    assert provider_problems(settings, _metadata(
        ["authorization_code", "refresh_token", GRANT_TYPE])) == []
