"""Unit tests for bffgate.config.rules: every cross-field rule's exact, key-naming message,
and the legitimate variants that must stay accepted."""

from __future__ import annotations

from typing import Any

import pytest

from support.config_cases import KEY, problems, route

# --- validation rules, exact messages -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # server
        pytest.param({"server": {"public_url": "app.example.com"}},
                     "server.public_url: must be an absolute http(s) URL; got 'app.example.com'",
                     id="public-url-relative"),
        pytest.param({"server": {"public_url": "ftp://app.example.com"}},
                     "server.public_url: must be an absolute http(s) URL; "
                     "got 'ftp://app.example.com'", id="public-url-scheme"),
        pytest.param({"server": {"public_url": "http://app.example.com"}},
                     "server.public_url: must use https unless the host is loopback "
                     "(localhost, 127.0.0.1)", id="public-url-http-non-loopback"),
        pytest.param({"server": {"public_url": "https://app.example.com/spa"}},
                     "server.public_url: must be an origin only (no path, query or fragment)",
                     id="public-url-path"),
        pytest.param({"server": {"public_url": "https://app.example.com/?x=1"}},
                     "server.public_url: must be an origin only (no path, query or fragment)",
                     id="public-url-query"),
        pytest.param({"server": {"listen": "8080"}},
                     "server.listen: expected host:port or unix:/path; got '8080'",
                     id="listen-no-host"),
        pytest.param({"server": {"listen": "0.0.0.0:http"}},
                     "server.listen: expected host:port or unix:/path; got '0.0.0.0:http'",
                     id="listen-port-name"),
        pytest.param({"server": {"admin_listen": "localhost:"}},
                     "server.admin_listen: expected host:port or unix:/path; got 'localhost:'",
                     id="admin-listen-malformed"),
        pytest.param({"server": {"admin_listen": "0.0.0.0:9090"}},
                     "server.admin_token: required (>= 16 characters) when admin_listen is not "
                     "loopback", id="admin-token-missing"),
        pytest.param({"server": {"admin_listen": "0.0.0.0:9090", "admin_token": "short"}},
                     "server.admin_token: required (>= 16 characters) when admin_listen is not "
                     "loopback", id="admin-token-short"),
        pytest.param({"server": {"trusted_proxies": ["10.0.0.0/8", "proxy.internal"]}},
                     "server.trusted_proxies: not an IP network: 'proxy.internal'",
                     id="trusted-proxies"),
        pytest.param({"server": {"max_body_size": 0}},
                     "server.max_body_size: must be positive", id="max-body-size"),
        # oidc
        pytest.param({"oidc": {"issuer": "idp.example.com"}},
                     "oidc.issuer: must be an absolute URL; got 'idp.example.com'",
                     id="issuer-relative"),
        pytest.param({"oidc": {"issuer": "http://idp.example.com"}},
                     "oidc.issuer: must use https unless the host is loopback",
                     id="issuer-http-non-loopback"),
        pytest.param({"oidc": {"issuer": "http://127.0.0.1.nip.io"}},
                     "oidc.issuer: must use https unless the host is loopback",
                     id="issuer-http-loopback-lookalike"),
        pytest.param({"oidc": {"client_auth": "client_secret_post", "client_secret": ""}},
                     "oidc.client_secret: required for client_auth = client_secret_post",
                     id="client-secret-post"),
        pytest.param({"oidc": {"client_auth": "private_key_jwt"}},
                     "oidc.private_key: required for client_auth = private_key_jwt (PEM or JWK)",
                     id="private-key"),
        pytest.param({"oidc": {"scopes": ["profile", "email"]}},
                     "oidc.scopes: must include 'openid'", id="scopes-openid"),
        pytest.param({"oidc": {"redirect_path": "bff/callback"}},
                     "oidc.redirect_path: must be a local path starting with a single '/'",
                     id="redirect-path-relative"),
        pytest.param({"oidc": {"redirect_path": "//evil.example/cb"}},
                     "oidc.redirect_path: must be a local path starting with a single '/'",
                     id="redirect-path-protocol-relative"),
        pytest.param({"oidc": {"post_logout_redirect": "http://app.example.com/"}},
                     "oidc.post_logout_redirect: must be a local path or an https URL",
                     id="post-logout-http"),
        pytest.param({"oidc": {"post_logout_redirect": "//evil.example"}},
                     "oidc.post_logout_redirect: must be a local path or an https URL",
                     id="post-logout-protocol-relative"),
        pytest.param({"oidc": {"id_token_algs": ["RS256", "HS256"]}},
                     "oidc.id_token_algs: must not contain 'none' or HMAC algorithms; "
                     "got ['HS256']", id="algs-hs256"),
        pytest.param({"oidc": {"id_token_algs": ["none", "RS256", "NONE"]}},
                     "oidc.id_token_algs: must not contain 'none' or HMAC algorithms; "
                     "got ['none', 'NONE']", id="algs-none"),
        pytest.param({"oidc": {"extra_auth_params": {"prompt": "login", "state": "x",
                                                     "code_challenge_method": "plain"}}},
                     "oidc.extra_auth_params: must not override protocol parameters: "
                     "['code_challenge_method', 'state']", id="extra-params-clash"),
        pytest.param({"oidc": {"clock_skew": "10m"}},
                     "oidc.clock_skew: must be between 0 and 300 seconds", id="clock-skew-high"),
        pytest.param({"oidc": {"clock_skew": -1}},
                     "oidc.clock_skew: must be between 0 and 300 seconds", id="clock-skew-neg"),
        # session
        pytest.param({"session": {"idle_timeout": 0, "absolute_timeout": 0}},
                     "session.idle_timeout: must be positive", id="idle-timeout"),
        pytest.param({"session": {"idle_timeout": "2h", "absolute_timeout": "1h"}},
                     "session.absolute_timeout: must be >= session.idle_timeout",
                     id="absolute-below-idle"),
        pytest.param({"session": {"refresh_ahead": -1}},
                     "session.refresh_ahead: must not be negative", id="refresh-ahead"),
        pytest.param({"session": {"login_timeout": "10s"}},
                     "session.login_timeout: must be between 30 seconds and 1 hour",
                     id="login-timeout-short"),
        pytest.param({"session": {"login_timeout": "2h"}},
                     "session.login_timeout: must be between 30 seconds and 1 hour",
                     id="login-timeout-long"),
        # cookie
        pytest.param({"cookie": {"secret_keys": []}},
                     "cookie.secret_keys: required: at least one key of >= 32 characters "
                     "(oldest to newest)", id="no-keys"),
        pytest.param({"cookie": {"secret_keys": [KEY, "k" * 31]}},
                     "cookie.secret_keys[1]: too short: use at least 32 random characters",
                     id="short-key"),
        pytest.param({"cookie": {"name": "bff gate"}},
                     "cookie.name: may contain only letters, digits, '-' and '_'",
                     id="cookie-name-space"),
        pytest.param({"cookie": {"name": "s;Domain=evil"}},
                     "cookie.name: may contain only letters, digits, '-' and '_'",
                     id="cookie-name-injection"),
        pytest.param({"server": {"public_url": "http://localhost:8080"},
                      "cookie": {"secure": False}},
                     "cookie.secure: must be true for a __Host- cookie name",
                     id="host-prefix-without-secure"),
        pytest.param({"cookie": {"name": "bffgate", "secure": False}},
                     "cookie.secure: may be false only when server.public_url is loopback",
                     id="insecure-non-loopback"),
        # redis
        pytest.param({"redis": {"url": "http://redis:6379"}},
                     "redis.url: must start with redis://, rediss:// or unix://",
                     id="redis-scheme"),
        pytest.param({"redis": {"cluster": True,
                                "sentinel": {"master": "m", "hosts": ["s:26379"]}}},
                     "redis.cluster: cannot be combined with redis.sentinel",
                     id="cluster-and-sentinel"),
        pytest.param({"redis": {"sentinel": {"hosts": ["s:26379"]}}},
                     "redis.sentinel: needs 'master' (name) and 'hosts' (list of host:port)",
                     id="sentinel-incomplete"),
        pytest.param({"redis": {"key_prefix": ""}},
                     "redis.key_prefix: must not be empty", id="key-prefix"),
    ],
)
def test_validation_rule(changes: dict[str, Any], expected: str) -> None:
    """Each cross-field rule refuses a weakening config with its exact, key-naming message."""
    assert problems(changes) == [expected]


def test_insecure_host_cookie_on_public_origin_reports_both_rules() -> None:
    """secure=false with __Host- on a public origin breaks two rules; both are reported."""
    assert problems({"cookie": {"secure": False}}) == [
        "cookie.secure: must be true for a __Host- cookie name",
        "cookie.secure: may be false only when server.public_url is loopback",
    ]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"server": {"public_url": "http://localhost:8080"}}, id="http-localhost"),
        pytest.param({"server": {"public_url": "http://127.0.0.1:8080"}}, id="http-127"),
        pytest.param({"server": {"public_url": "http://[::1]:8080"}}, id="http-ipv6-loopback"),
        pytest.param({"server": {"public_url": "http://app.localhost"}}, id="http-dot-localhost"),
        pytest.param({"oidc": {"issuer": "http://127.0.0.1:9400"}}, id="http-loopback-issuer"),
        pytest.param({"oidc": {"issuer": "http://localhost:9400/realms/dev"}},
                     id="http-loopback-issuer-path"),
        pytest.param({"server": {"public_url": "http://localhost:8080"},
                      "cookie": {"name": "dev", "secure": False}}, id="insecure-on-loopback"),
        pytest.param({"server": {"admin_listen": "[::1]:9090"}}, id="admin-ipv6-loopback"),
        pytest.param({"server": {"admin_listen": "unix:/run/bffgate-admin.sock"}},
                     id="admin-unix"),
        pytest.param({"server": {"admin_listen": ""}}, id="admin-disabled"),
        pytest.param({"server": {"admin_listen": "0.0.0.0:9090", "admin_token": "t" * 16}},
                     id="admin-public-with-token"),
        pytest.param({"oidc": {"client_auth": "none", "client_secret": ""}},
                     id="public-client"),
        pytest.param({"oidc": {"post_logout_redirect": "https://www.example.com/bye"}},
                     id="post-logout-https"),
        pytest.param({"session": {"store": "memory"}, "redis": {"url": "not-a-url"}},
                     id="memory-store-ignores-redis-url"),
        pytest.param({"redis": {"url": "unix:///run/redis.sock"}}, id="redis-unix"),
        pytest.param({"redis": {"url": "rediss://:pw@redis:6380/0"}}, id="redis-tls"),
        pytest.param({"routes": []}, id="no-routes"),
        pytest.param({"routes": [route(prefix="/bffx")]}, id="bff-lookalike-prefix"),
        pytest.param({"routes": [route(token="client", scope=["orders:read", "orders:write"],
                                       audience="orders-api",
                                       resource="https://orders.test/api")]},
                     id="client-route"),
        pytest.param({"routes": [route(token="user_or_client")]}, id="user-or-client-route"),
    ],
)
def test_sensible_configs_are_accepted(changes: dict[str, Any]) -> None:
    """Loopback development setups and the other legitimate variants validate cleanly."""
    assert problems(changes) == []


# --- routes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        pytest.param([{"prefix": "/api", "upstream": "http://api:8000"}],
                     ["routes[0].token: required (token: one of user, user_optional, client, "
                      "user_or_client, exchange, none)"], id="token-missing"),
        pytest.param([{"token": "user"}],
                     ["routes[0].prefix: required", "routes[0].upstream: required"],
                     id="prefix-and-upstream-missing"),
        pytest.param([route(), route(prefix="/x", token="admin")],
                     ["routes[1].token: must be one of user, user_optional, client, "
                      "user_or_client, exchange, none; got 'admin'"], id="token-unknown-names-index"),
        pytest.param([route(), route(prefix="/api/")],
                     ["routes[1].prefix: duplicate prefix '/api/'"], id="duplicate-prefix"),
        pytest.param([route(prefix="/bff")],
                     ["routes[0].prefix: must not shadow the gateway's own /bff/ endpoints"],
                     id="shadows-bff"),
        pytest.param([route(prefix="/bff/")],
                     ["routes[0].prefix: must not shadow the gateway's own /bff/ endpoints"],
                     id="shadows-bff-slash"),
        pytest.param([route(prefix="/bff/login")],
                     ["routes[0].prefix: must not shadow the gateway's own /bff/ endpoints"],
                     id="shadows-bff-login"),
        pytest.param([route(prefix="api")],
                     ["routes[0].prefix: must be a clean absolute path; got 'api'"],
                     id="prefix-relative"),
        pytest.param([route(prefix="/api//v1")],
                     ["routes[0].prefix: must be a clean absolute path; got '/api//v1'"],
                     id="prefix-double-slash"),
        pytest.param([route(prefix="/api/../bff")],
                     ["routes[0].prefix: must be a clean absolute path; got '/api/../bff'"],
                     id="prefix-dot-dot"),
        pytest.param([route(upstream="api:8000")],
                     ["routes[0].upstream: must be an http(s) URL without query; got 'api:8000'"],
                     id="upstream-no-scheme"),
        pytest.param([route(upstream="http://api:8000/?x=1")],
                     ["routes[0].upstream: must be an http(s) URL without query; "
                      "got 'http://api:8000/?x=1'"], id="upstream-query"),
        pytest.param([route(timeout=0)],
                     ["routes[0].timeout: must be positive"], id="timeout-zero"),
        pytest.param([route(scope=["orders:read"])],
                     ["routes[0].scope: only used with token = client, user_or_client or "
                      "exchange (this route has token = user)"], id="scope-on-user-route"),
        pytest.param([route(token="client", resource="orders")],
                     ["routes[0].resource: must be an absolute URI without a fragment "
                      "(RFC 8707); got 'orders'"], id="resource-not-absolute"),
        pytest.param([route(token="client", resource="https://orders.test/#x")],
                     ["routes[0].resource: must be an absolute URI without a fragment "
                      "(RFC 8707); got 'https://orders.test/#x'"], id="resource-fragment"),
        pytest.param([route(token="client", scope=["a b"])],
                     ["routes[0].scope: not a scope token (RFC 6749 3.3): 'a b'"],
                     id="scope-not-a-token"),
        pytest.param([route(token="user_or_client", scope=['a"b'])],
                     ["routes[0].scope: not a scope token (RFC 6749 3.3): 'a\"b'"],
                     id="scope-quote"),
        pytest.param([route(token="none", audience="https://orders.test")],
                     ["routes[0].audience: only used with token = client, user_or_client or "
                      "exchange (this route has token = none)"], id="audience-on-none-route"),
        pytest.param([route(websocket=True)], [], id="websocket"),  # issue 11: accepted
        pytest.param("api", ["routes: must be an array of tables ([[routes]])"], id="not-array"),
        pytest.param(["api"], ["routes[0]: must be a table"], id="item-not-table"),
    ],
)
def test_route_rules(routes: Any, expected: list[str]) -> None:
    """Route problems name the route by index."""
    assert problems({"routes": routes}) == expected


@pytest.mark.parametrize("mode", ["client", "user_or_client"])
def test_a_client_token_route_needs_a_confidential_client(mode: str) -> None:
    """Client credentials are the client's own: a public client (client_auth = none) has
    none to present, so the route could never get a token."""
    assert problems({"oidc": {"client_auth": "none", "client_secret": ""},
                     "routes": [route(token=mode)]}) == [
        f"routes[0].token: '{mode}' needs a confidential client (client credentials are the "
        "client's own): oidc.client_auth = none has none"]
