"""oidc.dpop and routes[i].dpop: off by default, and a route can't opt out of DPoP while the
IdP binds every user token (a DPoP-bound token is no bearer)."""

from __future__ import annotations

from support.config_cases import load, problems, route


def test_dpop_is_off_by_default_and_routes_take_it() -> None:
    s = load()
    assert s.oidc.dpop is False
    assert s.routes[0].dpop is True


def test_dpop_on_is_valid() -> None:
    assert problems({"oidc": {"dpop": True}}) == []


def test_route_opt_out_is_fine_while_dpop_is_off() -> None:
    assert problems({"routes": [route(dpop=False)]}) == []


def test_route_opt_out_with_dpop_on_names_the_route_key() -> None:
    assert problems({"oidc": {"dpop": True},
                     "routes": [route(), route(prefix="/legacy", dpop=False)]}) == [
        "routes[1].dpop: false is not possible with oidc.dpop = true: the IdP binds the "
        "tokens (a bound token is no bearer)",
    ]


def test_route_without_token_may_say_dpop_false() -> None:
    assert problems({"oidc": {"dpop": True},
                     "routes": [route(), route(prefix="/static", token="none", dpop=False)]}) == []
