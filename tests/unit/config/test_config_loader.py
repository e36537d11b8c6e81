"""Unit tests for bffgate.config.loader: sources (file, environment, secret references),
required keys listed at once, unknown keys and sections named, the file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bffgate.config import ConfigError, RouteSettings, load_settings
from support.config_cases import FILE_CONFIG, KEY, KEY2, load, problems, route, write_config

# --- the happy path -----------------------------------------------------------------------


def test_minimal_valid_config_loads_with_defaults() -> None:
    """Only the required keys given: everything else takes the documented default."""
    s = load()
    assert s.server.listen == "127.0.0.1:8080"
    assert s.server.max_body_size == 10 * 1024 * 1024
    assert s.oidc.client_auth == "client_secret_basic"
    assert s.oidc.scopes == ("openid", "profile", "email", "offline_access")
    assert s.session.store == "redis"
    assert (s.session.idle_timeout, s.session.absolute_timeout) == (1800, 28800)
    assert s.cookie.name == "__Host-bffgate"
    assert s.cookie.same_site == "strict"
    assert s.cookie.secure is True
    assert s.redis.key_prefix == "bffgate:"
    assert s.routes == (RouteSettings("/api", "http://api:8000", "user"),)


# --- required keys ------------------------------------------------------------------------


def test_missing_required_keys_are_listed_all_at_once() -> None:
    """An empty configuration reports every missing required key in one error."""
    assert problems(None, base=False) == [
        "server.public_url: required (the origin the browser sees, e.g. "
        "https://app.example.com)",
        "oidc.issuer: required (the IdP's issuer URL)",
        "oidc.client_id: required",
        "oidc.client_secret: required for client_auth = client_secret_basic",
        "cookie.secret_keys: required: at least one key of >= 32 characters (oldest to newest)",
    ]


def test_config_error_text_lists_every_problem() -> None:
    """str(ConfigError) is the 'invalid configuration:' list, one problem per line."""
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={})
    text = str(info.value)
    assert text.startswith("invalid configuration:\n  - server.public_url: required")
    assert text.count("\n  - ") == len(info.value.messages)


def test_missing_config_file() -> None:
    """A config path that does not exist is named, with what to do."""
    with pytest.raises(ConfigError) as info:
        load_settings("/nonexistent/bffgate.toml", environ={})
    assert info.value.messages == [
        "no config file at /nonexistent/bffgate.toml (copy config/bffgate.example.toml)"]


def test_invalid_toml(tmp_path: Path) -> None:
    """A TOML syntax error names the file."""
    path = tmp_path / "bad.toml"
    path.write_text("[server\npublic_url = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.messages[0].startswith(f"config file {path}: invalid TOML: ")


# --- sources: file, environment, secrets --------------------------------------------------


def test_file_values_load(tmp_path: Path) -> None:
    """Values in the TOML file are read."""
    s = load_settings(write_config(tmp_path, FILE_CONFIG), environ={})
    assert s.oidc.client_secret.get() == "from-file"
    assert s.routes[0].prefix == "/api"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """BFFGATE_OIDC__CLIENT_SECRET beats the file's value; names are case-insensitive."""
    env = {"BFFGATE_OIDC__CLIENT_SECRET": "from-env", "BFFGATE_server__LISTEN": "0.0.0.0:80"}
    s = load_settings(write_config(tmp_path, FILE_CONFIG), environ=env)
    assert s.oidc.client_secret.get() == "from-env"
    assert s.server.listen == "0.0.0.0:80"


def test_routes_from_the_environment(tmp_path: Path) -> None:
    """BFFGATE_ROUTES (a JSON array) replaces the file's [[routes]]."""
    env = {"BFFGATE_ROUTES": '[{"prefix": "/v2", "upstream": "https://v2:1", "token": "none"}]'}
    s = load_settings(write_config(tmp_path, FILE_CONFIG), environ=env)
    assert [r.prefix for r in s.routes] == ["/v2"]


def test_routes_from_the_environment_must_be_json() -> None:
    """A BFFGATE_ROUTES that is not JSON is reported."""
    assert problems(environ={"BFFGATE_ROUTES": "/api=http://x"}) == [
        "BFFGATE_ROUTES: must be a JSON array of route tables",
    ]


def test_unrelated_environment_is_ignored() -> None:
    """BFFGATE_* variables without '__' (e.g. BFFGATE_CONFIG) are not config keys."""
    assert problems(environ={"BFFGATE_CONFIG": "/etc/x.toml", "PATH": "/bin"}) == []


def test_env_secret_reference() -> None:
    """client_secret = 'env:NAME' reads the variable NAME."""
    s = load({"oidc": {"client_secret": "env:IDP_SECRET"}}, environ={"IDP_SECRET": "abc"})
    assert s.oidc.client_secret.get() == "abc"


def test_env_secret_reference_through_an_env_override() -> None:
    """The environment override itself may point at another variable."""
    env = {"BFFGATE_OIDC__CLIENT_SECRET": "env:VAULT_SECRET", "VAULT_SECRET": "deep"}
    assert load(environ=env).oidc.client_secret.get() == "deep"


def test_env_secret_reference_missing_variable() -> None:
    """A secret pointing at an unset variable names both key and variable (once: not also
    as a missing key)."""
    assert problems({"oidc": {"client_secret": "env:NOPE"}}) == [
        "oidc.client_secret: environment variable NOPE (from env:NOPE) is not set",
    ]


def test_file_secret_reference(tmp_path: Path) -> None:
    """'file:/path' reads the file, stripping the trailing newline only."""
    secret = tmp_path / "client_secret"
    secret.write_text(" padded secret \n")
    s = load({"oidc": {"client_secret": f"file:{secret}"}})
    assert s.oidc.client_secret.get() == " padded secret "


def test_file_secret_reference_missing_file(tmp_path: Path) -> None:
    """An unreadable secret file names the key and path."""
    missing = tmp_path / "absent"
    assert problems({"oidc": {"client_secret": f"file:{missing}"}}) == [
        f"oidc.client_secret: cannot read secret file {missing}: No such file or directory",
    ]


def test_secret_must_be_a_string() -> None:
    """A number where a secret belongs is reported."""
    assert problems({"oidc": {"client_secret": 1234}}) == [
        "oidc.client_secret: expected a string, got int",
    ]


def test_cookie_keys_each_from_env() -> None:
    """secret_keys items may each be env: references (oldest to newest)."""
    env = {"OLD": KEY, "NEW": KEY2}
    s = load({"cookie": {"secret_keys": ["env:OLD", "env:NEW"]}}, environ=env)
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


def test_sentinel_password_may_be_a_secret_reference() -> None:
    """The Sentinels' password also resolves env: (it is a secret like any other)."""
    sentinel = {"master": "mymaster", "hosts": ["s1:26379"], "password": "env:SENTINEL_PW"}
    s = load({"redis": {"sentinel": sentinel}}, environ={"SENTINEL_PW": "pw"})
    assert s.redis.sentinel["password"] == "pw"
    assert s.redis.sentinel["hosts"] == ["s1:26379"]


# --- unknown keys and sections ------------------------------------------------------------


def test_unknown_key_is_named_with_the_known_ones() -> None:
    """A typo'd key names itself and lists the section's keys."""
    assert problems({"server": {"public_ur": "x"}}) == [
        "server.public_ur: unknown key (known: admin_listen, admin_token, http_parser, "
        "listen, max_body_size, public_url, trusted_proxies, upstream_client, workers)",
    ]


def test_unknown_sections_are_named(tmp_path: Path) -> None:
    """Unknown [sections] in the file are each named, in order."""
    path = write_config(tmp_path, FILE_CONFIG + "\n[metrics]\nx = 1\n[audit]\ny = 2\n")
    known = "server, oidc, session, cookie, redis, log, telemetry, routes"
    assert problems(path=path, base=False) == [
        f"audit: unknown section (known: {known})",
        f"metrics: unknown section (known: {known})",
    ]


def test_unknown_environment_section_is_named() -> None:
    """BFFGATE_OIDCC__ISSUER (typo) is reported, not silently ignored."""
    assert problems(environ={"BFFGATE_OIDCC__ISSUER": "x"}) == [
        "BFFGATE_OIDCC__ISSUER: unknown section 'oidcc' "
        "(known: server, oidc, session, cookie, redis, log, telemetry)",
    ]


def test_unknown_environment_key_is_named() -> None:
    """BFFGATE_OIDC__ISSUR (typo) is reported as an unknown key, naming the variable."""
    assert problems(environ={"BFFGATE_OIDC__ISSUR": "x"})[0].startswith(
        "BFFGATE_OIDC__ISSUR: unknown key oidc.issur (known: "
    )


def test_section_must_be_a_table(tmp_path: Path) -> None:
    """server = 1 is not a table."""
    path = write_config(tmp_path, 'server = "x"\n')
    assert "server: must be a table" in problems(path=path, base=False)


def test_unknown_route_key_is_named() -> None:
    """A typo in a route names the route index and lists the route keys."""
    assert problems({"routes": [route(strip=True)]}) == [
        "routes[0].strip: unknown key (known: allow_matrix_params, audience, connect_timeout, "
        "dpop, idle_timeout, methods, prefix, resource, response_timeout, scope, strip_prefix, "
        "timeout, token, upstream, websocket)",
    ]
