"""Unit tests for configuration loading: sources, coercion, every validation message, and
the shipped config/*.toml files (each must load through the real loader)."""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from bffgate.config import (
    ConfigError,
    CookieSettings,
    LogSettings,
    OidcSettings,
    RedisSettings,
    RouteSettings,
    Secret,
    ServerSettings,
    SessionSettings,
    Settings,
    load_settings,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
KEY = "k" * 32
KEY2 = "n" * 40
BASE: dict[str, Any] = {
    "server": {"public_url": "https://app.example.com"},
    "oidc": {"issuer": "https://idp.example.com", "client_id": "bffgate",
             "client_secret": "s3cret-value"},
    "cookie": {"secret_keys": [KEY]},
    "routes": [{"prefix": "/api", "upstream": "http://api:8000", "token": "user"}],
}
SECTIONS = {
    "server": ServerSettings, "oidc": OidcSettings, "session": SessionSettings,
    "cookie": CookieSettings, "redis": RedisSettings, "log": LogSettings,
}


def _overrides(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """BASE with per-section changes applied (routes are replaced as a whole)."""
    merged = copy.deepcopy(BASE)
    for section, values in (changes or {}).items():
        if section == "routes":
            merged["routes"] = values
        else:
            merged.setdefault(section, {}).update(values)
    return merged


def _load(changes: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
          path: Path | None = None) -> Settings:
    return load_settings(path, environ=environ or {}, overrides=_overrides(changes))


def _problems(changes: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
              path: Path | None = None, *, base: bool = True) -> list[str]:
    try:
        if base:
            _load(changes, environ, path)
        else:
            load_settings(path, environ=environ or {}, overrides=changes)
    except ConfigError as exc:
        return exc.messages
    return []


def _route(**kw: Any) -> dict[str, Any]:
    return {"prefix": "/api", "upstream": "http://api:8000", "token": "user", **kw}


# --- the happy path -----------------------------------------------------------------------


def test_minimal_valid_config_loads_with_defaults() -> None:
    """Only the required keys given: everything else takes the documented default."""
    s = _load()
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


def test_derived_urls() -> None:
    """redirect_uri is the public origin plus redirect_path; the login cookie is derived."""
    s = _load({"server": {"public_url": "https://app.example.com:8443/"}})
    assert s.public_origin == "https://app.example.com:8443"
    assert s.redirect_uri == "https://app.example.com:8443/bff/callback"
    assert s.login_cookie_name == "__Host-bffgate-login"


def test_settings_are_frozen() -> None:
    """Settings are parsed once and cannot be changed afterwards."""
    s = _load()
    with pytest.raises(AttributeError):
        s.server.listen = "0.0.0.0:1"  # type: ignore[misc]


# --- required keys ------------------------------------------------------------------------


def test_missing_required_keys_are_listed_all_at_once() -> None:
    """An empty configuration reports every missing required key in one error."""
    assert _problems(None, base=False) == [
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


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bffgate.toml"
    path.write_text(text)
    return path


FILE_CONFIG = f"""
[server]
public_url = "https://app.example.com"
[oidc]
issuer = "https://idp.example.com"
client_id = "bffgate"
client_secret = "from-file"
[cookie]
secret_keys = ["{KEY}"]
[[routes]]
prefix = "/api"
upstream = "http://api:8000"
token = "user"
"""


def test_file_values_load(tmp_path: Path) -> None:
    """Values in the TOML file are read."""
    s = load_settings(_write(tmp_path, FILE_CONFIG), environ={})
    assert s.oidc.client_secret.get() == "from-file"
    assert s.routes[0].prefix == "/api"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """BFFGATE_OIDC__CLIENT_SECRET beats the file's value; names are case-insensitive."""
    env = {"BFFGATE_OIDC__CLIENT_SECRET": "from-env", "BFFGATE_server__LISTEN": "0.0.0.0:80"}
    s = load_settings(_write(tmp_path, FILE_CONFIG), environ=env)
    assert s.oidc.client_secret.get() == "from-env"
    assert s.server.listen == "0.0.0.0:80"


def test_routes_from_the_environment(tmp_path: Path) -> None:
    """BFFGATE_ROUTES (a JSON array) replaces the file's [[routes]]."""
    env = {"BFFGATE_ROUTES": '[{"prefix": "/v2", "upstream": "https://v2:1", "token": "none"}]'}
    s = load_settings(_write(tmp_path, FILE_CONFIG), environ=env)
    assert [r.prefix for r in s.routes] == ["/v2"]


def test_routes_from_the_environment_must_be_json() -> None:
    """A BFFGATE_ROUTES that is not JSON is reported."""
    assert _problems(environ={"BFFGATE_ROUTES": "/api=http://x"}) == [
        "BFFGATE_ROUTES: must be a JSON array of route tables",
    ]


def test_unrelated_environment_is_ignored() -> None:
    """BFFGATE_* variables without '__' (e.g. BFFGATE_CONFIG) are not config keys."""
    assert _problems(environ={"BFFGATE_CONFIG": "/etc/x.toml", "PATH": "/bin"}) == []


def test_env_secret_reference() -> None:
    """client_secret = 'env:NAME' reads the variable NAME."""
    s = _load({"oidc": {"client_secret": "env:IDP_SECRET"}}, environ={"IDP_SECRET": "abc"})
    assert s.oidc.client_secret.get() == "abc"


def test_env_secret_reference_through_an_env_override() -> None:
    """The environment override itself may point at another variable."""
    env = {"BFFGATE_OIDC__CLIENT_SECRET": "env:VAULT_SECRET", "VAULT_SECRET": "deep"}
    assert _load(environ=env).oidc.client_secret.get() == "deep"


def test_env_secret_reference_missing_variable() -> None:
    """A secret pointing at an unset variable names both key and variable (once: not also
    as a missing key)."""
    assert _problems({"oidc": {"client_secret": "env:NOPE"}}) == [
        "oidc.client_secret: environment variable NOPE (from env:NOPE) is not set",
    ]


def test_file_secret_reference(tmp_path: Path) -> None:
    """'file:/path' reads the file, stripping the trailing newline only."""
    secret = tmp_path / "client_secret"
    secret.write_text(" padded secret \n")
    s = _load({"oidc": {"client_secret": f"file:{secret}"}})
    assert s.oidc.client_secret.get() == " padded secret "


def test_file_secret_reference_missing_file(tmp_path: Path) -> None:
    """An unreadable secret file names the key and path."""
    missing = tmp_path / "absent"
    assert _problems({"oidc": {"client_secret": f"file:{missing}"}}) == [
        f"oidc.client_secret: cannot read secret file {missing}: No such file or directory",
    ]


def test_secret_must_be_a_string() -> None:
    """A number where a secret belongs is reported."""
    assert _problems({"oidc": {"client_secret": 1234}}) == [
        "oidc.client_secret: expected a string, got int",
    ]


def test_cookie_keys_each_from_env() -> None:
    """secret_keys items may each be env: references (oldest to newest)."""
    env = {"OLD": KEY, "NEW": KEY2}
    s = _load({"cookie": {"secret_keys": ["env:OLD", "env:NEW"]}}, environ=env)
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(f"{KEY}\n{KEY2}\n", id="one-per-line"),
        pytest.param(f"{KEY},{KEY2}", id="comma-separated"),
        pytest.param(f'["{KEY}", "{KEY2}"]', id="json-array"),
    ],
)
def test_cookie_key_list_from_one_file(content: str, tmp_path: Path) -> None:
    """secret_keys = 'file:/path' holding several keys yields several keys, not one long one."""
    path = tmp_path / "cookie_keys"
    path.write_text(content)
    s = _load({"cookie": {"secret_keys": f"file:{path}"}})
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


def test_cookie_key_list_from_one_env_variable() -> None:
    """An env override holding a comma-separated key list gives the list."""
    env = {"BFFGATE_COOKIE__SECRET_KEYS": "env:KEYS", "KEYS": f"{KEY},{KEY2}"}
    s = _load(environ=env)
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


def test_cookie_keys_plain_in_the_environment() -> None:
    """BFFGATE_COOKIE__SECRET_KEYS may hold the keys themselves, comma-separated."""
    s = _load(environ={"BFFGATE_COOKIE__SECRET_KEYS": f"{KEY}, {KEY2}"})
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


def test_sentinel_password_may_be_a_secret_reference() -> None:
    """The Sentinels' password also resolves env: (it is a secret like any other)."""
    sentinel = {"master": "mymaster", "hosts": ["s1:26379"], "password": "env:SENTINEL_PW"}
    s = _load({"redis": {"sentinel": sentinel}}, environ={"SENTINEL_PW": "pw"})
    assert s.redis.sentinel["password"] == "pw"
    assert s.redis.sentinel["hosts"] == ["s1:26379"]


# --- coercion: durations, sizes, booleans, lists --------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        pytest.param("30m", 1800, id="30m"),
        pytest.param("8h", 28800, id="8h"),
        pytest.param("45s", 45, id="45s"),
        pytest.param("1d", 86400, id="1d"),
        pytest.param(" 90 ", 90, id="bare-string"),
        pytest.param(1200, 1200, id="integer"),
    ],
)
def test_durations(raw: Any, seconds: int) -> None:
    """Duration keys take seconds or a number with a unit."""
    s = _load({"session": {"idle_timeout": raw, "absolute_timeout": "2d"}})
    assert s.session.idle_timeout == seconds
    assert s.session.absolute_timeout == 172800


def test_durations_from_the_environment() -> None:
    """BFFGATE_SESSION__IDLE_TIMEOUT=15m works like the file value."""
    s = _load(environ={"BFFGATE_SESSION__IDLE_TIMEOUT": "15m", "BFFGATE_OIDC__CLOCK_SKEW": "30"})
    assert (s.session.idle_timeout, s.oidc.clock_skew) == (900, 30)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("soon", id="word"),
        pytest.param("30 minutes", id="long-unit"),
        pytest.param("1.5h", id="fraction"),
        pytest.param("-5m", id="negative-string"),
        pytest.param(True, id="bool"),
    ],
)
def test_bad_durations(raw: Any) -> None:
    """A malformed duration names the key and shows the value."""
    assert _problems({"session": {"idle_timeout": raw}}) == [
        f"session.idle_timeout: expected seconds or a duration like '30m', '8h'; got {raw!r}",
    ]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        pytest.param(5, 5.0, id="int"),
        pytest.param(2.5, 2.5, id="float"),
        pytest.param("30s", 30.0, id="30s"),
        pytest.param("2m", 120.0, id="2m"),
        pytest.param("500ms", 0.5, id="500ms"),
        pytest.param("7.5", 7.5, id="number-string"),
    ],
)
def test_timeouts_take_numbers_and_durations(raw: Any, seconds: float) -> None:
    """Timeouts (route, IdP, Redis) take seconds or a duration like the other time keys."""
    s = _load({"oidc": {"http_timeout": raw}, "redis": {"timeout": raw},
               "routes": [_route(timeout=raw)]})
    assert s.oidc.http_timeout == s.redis.timeout == s.routes[0].timeout == seconds


def test_bad_timeout() -> None:
    """A timeout that is neither number nor duration is reported with the route index."""
    assert _problems({"routes": [_route(timeout="forever")]}) == [
        "routes[0].timeout: expected a number, got 'forever'",
    ]


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        pytest.param("10MiB", 10 * 2**20, id="10MiB"),
        pytest.param("64KiB", 64 * 1024, id="64KiB"),
        pytest.param("1GB", 10**9, id="1GB"),
        pytest.param("5mb", 5 * 10**6, id="lower-case-unit"),
        pytest.param("2048", 2048, id="bare-string"),
        pytest.param(4096, 4096, id="integer"),
    ],
)
def test_sizes(raw: Any, size: int) -> None:
    """max_body_size takes bytes or a number with a unit."""
    assert _load({"server": {"max_body_size": raw}}).server.max_body_size == size


def test_size_from_the_environment() -> None:
    """BFFGATE_SERVER__MAX_BODY_SIZE=1MiB works like the file value."""
    s = _load(environ={"BFFGATE_SERVER__MAX_BODY_SIZE": "1MiB"})
    assert s.server.max_body_size == 2**20


def test_bad_size() -> None:
    """A malformed size names the key."""
    assert _problems({"server": {"max_body_size": "big"}}) == [
        "server.max_body_size: expected bytes or a size like '10MiB'; got 'big'",
    ]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("TRUE", True, id="TRUE"),
        pytest.param("1", True, id="1"),
        pytest.param("yes", True, id="yes"),
        pytest.param("on", True, id="on"),
        pytest.param("false", False, id="false"),
        pytest.param("0", False, id="0"),
        pytest.param("no", False, id="no"),
        pytest.param("Off", False, id="Off"),
    ],
)
def test_booleans_from_the_environment(raw: str, value: bool) -> None:
    """Boolean keys accept the usual spellings from the environment."""
    s = _load(environ={"BFFGATE_OIDC__USE_PAR": raw})
    assert s.oidc.use_par is value


def test_bad_boolean() -> None:
    """Anything else is reported with the value."""
    assert _problems(environ={"BFFGATE_OIDC__USE_PAR": "maybe"}) == [
        "oidc.use_par: expected true or false, got 'maybe'",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("openid profile email", id="space-separated"),
        pytest.param("openid, profile, email", id="comma-separated"),
        pytest.param('["openid", "profile", "email"]', id="json-array"),
    ],
)
def test_lists_from_the_environment(raw: str) -> None:
    """List keys accept space-, comma-separated or JSON values from the environment."""
    s = _load(environ={"BFFGATE_OIDC__SCOPES": raw})
    assert s.oidc.scopes == ("openid", "profile", "email")


def test_bad_json_list() -> None:
    """A broken JSON list is reported."""
    assert _problems(environ={"BFFGATE_OIDC__SCOPES": '["openid"'}) == [
        "oidc.scopes: expected a JSON array or a comma-separated list",
    ]


def test_mapping_from_the_environment() -> None:
    """extra_auth_params takes a JSON object from the environment."""
    s = _load(environ={"BFFGATE_OIDC__EXTRA_AUTH_PARAMS": '{"prompt": "login"}'})
    assert s.oidc.extra_auth_params == {"prompt": "login"}


@pytest.mark.parametrize(
    ("changes", "environ", "expected"),
    [
        pytest.param({"server": {"max_body_size": "two"}}, {},
                     "server.max_body_size: expected bytes or a size like '10MiB'; got 'two'",
                     id="size"),
        pytest.param({"oidc": {"redirect_path": 42}}, {},
                     "oidc.redirect_path: expected a string, got 42", id="string"),
        pytest.param({"server": {"trusted_proxies": 3}}, {},
                     "server.trusted_proxies: expected a list, got 3", id="list"),
        pytest.param({"oidc": {"extra_auth_params": ["a"]}}, {},
                     "oidc.extra_auth_params: expected a table, got ['a']", id="table"),
        pytest.param({}, {"BFFGATE_OIDC__EXTRA_AUTH_PARAMS": "prompt=login"},
                     "oidc.extra_auth_params: expected a table (JSON object in the environment),"
                     " got 'prompt=login'", id="table-env"),
        pytest.param({"oidc": {"http_timeout": [1]}}, {},
                     "oidc.http_timeout: expected a number, got [1]", id="number"),
        pytest.param({"oidc": {"client_auth": "tls_client_auth"}}, {},
                     "oidc.client_auth: must be one of client_secret_basic, client_secret_post, "
                     "private_key_jwt, none; got 'tls_client_auth'", id="enum-client-auth"),
        pytest.param({"session": {"store": "postgres"}}, {},
                     "session.store: must be one of redis, memory; got 'postgres'",
                     id="enum-store"),
        pytest.param({"cookie": {"same_site": "none"}}, {},
                     "cookie.same_site: must be one of strict, lax; got 'none'",
                     id="enum-same-site"),
        pytest.param({"log": {"format": "xml"}}, {},
                     "log.format: must be one of json, console; got 'xml'", id="enum-log-format"),
        pytest.param({"log": {"level": "trace"}}, {},
                     "log.level: must be one of debug, info, warning, error; got 'trace'",
                     id="enum-log-level"),
    ],
)
def test_type_errors(changes: dict[str, Any], environ: dict[str, str], expected: str) -> None:
    """A value of the wrong type is reported with the key and the value."""
    assert _problems(changes, environ) == [expected]


def test_a_wrongly_typed_required_key_is_reported_once() -> None:
    """client_id = 42 is refused once, for its type (not also as a missing key)."""
    assert _problems({"oidc": {"client_id": 42}}) == [
        "oidc.client_id: expected a string, got 42",
    ]


# --- unknown keys and sections ------------------------------------------------------------


def test_unknown_key_is_named_with_the_known_ones() -> None:
    """A typo'd key names itself and lists the section's keys."""
    assert _problems({"server": {"public_ur": "x"}}) == [
        "server.public_ur: unknown key (known: admin_listen, admin_token, http_parser, "
        "listen, max_body_size, public_url, trusted_proxies)",
    ]


def test_unknown_sections_are_named(tmp_path: Path) -> None:
    """Unknown [sections] in the file are each named, in order."""
    path = _write(tmp_path, FILE_CONFIG + "\n[metrics]\nx = 1\n[audit]\ny = 2\n")
    known = "server, oidc, session, cookie, redis, log, routes"
    assert _problems(path=path, base=False) == [
        f"audit: unknown section (known: {known})",
        f"metrics: unknown section (known: {known})",
    ]


def test_unknown_environment_section_is_named() -> None:
    """BFFGATE_OIDCC__ISSUER (typo) is reported, not silently ignored."""
    assert _problems(environ={"BFFGATE_OIDCC__ISSUER": "x"}) == [
        "BFFGATE_OIDCC__ISSUER: unknown section 'oidcc' "
        "(known: server, oidc, session, cookie, redis, log)",
    ]


def test_unknown_environment_key_is_named() -> None:
    """BFFGATE_OIDC__ISSUR (typo) is reported as an unknown key, naming the variable."""
    assert _problems(environ={"BFFGATE_OIDC__ISSUR": "x"})[0].startswith(
        "BFFGATE_OIDC__ISSUR: unknown key oidc.issur (known: "
    )


def test_section_must_be_a_table(tmp_path: Path) -> None:
    """server = 1 is not a table."""
    path = _write(tmp_path, 'server = "x"\n')
    assert "server: must be a table" in _problems(path=path, base=False)


def test_unknown_route_key_is_named() -> None:
    """A typo in a route names the route index and lists the route keys."""
    assert _problems({"routes": [_route(strip=True)]}) == [
        "routes[0].strip: unknown key (known: allow_matrix_params, methods, prefix, strip_prefix, "
        "timeout, token, upstream, websocket)",
    ]


# --- validation rules, exact messages -------------------------------------------------------

LOOPBACK = {"server": {"public_url": "http://localhost:8080"}}


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
    assert _problems(changes) == [expected]


def test_insecure_host_cookie_on_public_origin_reports_both_rules() -> None:
    """secure=false with __Host- on a public origin breaks two rules; both are reported."""
    assert _problems({"cookie": {"secure": False}}) == [
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
        pytest.param({"routes": [_route(prefix="/bffx")]}, id="bff-lookalike-prefix"),
    ],
)
def test_sensible_configs_are_accepted(changes: dict[str, Any]) -> None:
    """Loopback development setups and the other legitimate variants validate cleanly."""
    assert _problems(changes) == []


# --- routes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        pytest.param([{"prefix": "/api", "upstream": "http://api:8000"}],
                     ["routes[0].token: required (token: one of user, user_optional, client, "
                      "none)"], id="token-missing"),
        pytest.param([{"token": "user"}],
                     ["routes[0].prefix: required", "routes[0].upstream: required"],
                     id="prefix-and-upstream-missing"),
        pytest.param([_route(), _route(prefix="/x", token="admin")],
                     ["routes[1].token: must be one of user, user_optional, client, none; "
                      "got 'admin'"], id="token-unknown-names-index"),
        pytest.param([_route(), _route(prefix="/api/")],
                     ["routes[1].prefix: duplicate prefix '/api/'"], id="duplicate-prefix"),
        pytest.param([_route(prefix="/bff")],
                     ["routes[0].prefix: must not shadow the gateway's own /bff/ endpoints"],
                     id="shadows-bff"),
        pytest.param([_route(prefix="/bff/")],
                     ["routes[0].prefix: must not shadow the gateway's own /bff/ endpoints"],
                     id="shadows-bff-slash"),
        pytest.param([_route(prefix="/bff/login")],
                     ["routes[0].prefix: must not shadow the gateway's own /bff/ endpoints"],
                     id="shadows-bff-login"),
        pytest.param([_route(prefix="api")],
                     ["routes[0].prefix: must be a clean absolute path; got 'api'"],
                     id="prefix-relative"),
        pytest.param([_route(prefix="/api//v1")],
                     ["routes[0].prefix: must be a clean absolute path; got '/api//v1'"],
                     id="prefix-double-slash"),
        pytest.param([_route(prefix="/api/../bff")],
                     ["routes[0].prefix: must be a clean absolute path; got '/api/../bff'"],
                     id="prefix-dot-dot"),
        pytest.param([_route(upstream="api:8000")],
                     ["routes[0].upstream: must be an http(s) URL without query; got 'api:8000'"],
                     id="upstream-no-scheme"),
        pytest.param([_route(upstream="http://api:8000/?x=1")],
                     ["routes[0].upstream: must be an http(s) URL without query; "
                      "got 'http://api:8000/?x=1'"], id="upstream-query"),
        pytest.param([_route(timeout=0)],
                     ["routes[0].timeout: must be positive"], id="timeout-zero"),
        pytest.param([_route(token="client")],
                     ["routes[0].token: 'client' (client-credentials tokens) is not supported "
                      "yet"], id="token-client"),
        pytest.param([_route(websocket=True)],
                     ["routes[0].websocket: websocket proxying is not supported yet"],
                     id="websocket"),
        pytest.param("api", ["routes: must be an array of tables ([[routes]])"], id="not-array"),
        pytest.param(["api"], ["routes[0]: must be a table"], id="item-not-table"),
    ],
)
def test_route_rules(routes: Any, expected: list[str]) -> None:
    """Route problems name the route by index."""
    assert _problems({"routes": routes}) == expected


def test_routes_keep_their_options() -> None:
    """strip_prefix/timeout/token are carried into RouteSettings."""
    s = _load({"routes": [_route(strip_prefix=True, timeout=5, token="user_optional"),
                          _route(prefix="/", upstream="https://spa", token="none")]})
    assert s.routes == (
        RouteSettings("/api", "http://api:8000", "user_optional", strip_prefix=True, timeout=5.0),
        RouteSettings("/", "https://spa", "none"),
    )


# --- secrets never show -------------------------------------------------------------------


def test_secret_repr_is_masked() -> None:
    """Secret shows asterisks in repr and str; get() returns the value."""
    secret = Secret("hunter2-very-secret")
    assert repr(secret) == str(secret) == "Secret('**********')"
    assert f"{secret}" == "Secret('**********')"
    assert secret.get() == "hunter2-very-secret"


def test_secret_equality_and_truth() -> None:
    """Secrets compare by value and are falsy only when empty."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert not Secret("")
    assert Secret("x")


def test_settings_repr_shows_no_secret() -> None:
    """repr(Settings) (e.g. in a traceback) contains none of the secret values."""
    env = {"BFFGATE_SERVER__ADMIN_TOKEN": "admin-token-value-123",
           "BFFGATE_REDIS__URL": "redis://:redis-pass-value@r:6379/0"}
    text = repr(_load(environ=env))
    for secret in ("s3cret-value", KEY, "admin-token-value-123", "redis-pass-value"):
        assert secret not in text


# --- the shipped config files -------------------------------------------------------------

CONFIG_FILES = sorted(CONFIG_DIR.glob("*.toml"))


def _env_for(path: Path) -> dict[str, str]:
    """A value for every env:NAME the file mentions (48 characters: long enough for keys)."""
    names = re.findall(r"env:([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8"))
    return {name: f"{name.lower()}-" + "x" * 48 for name in names}


def test_config_dir_has_the_documented_files() -> None:
    """The example and the development config are shipped."""
    names = {p.name for p in CONFIG_FILES}
    assert {"bffgate.example.toml", "dev.toml"} <= names


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CONFIG_FILES])
def test_every_shipped_config_loads(path: Path) -> None:
    """Each config/*.toml passes the real loader, with only the env: variables it names."""
    settings = load_settings(path, environ=_env_for(path))
    assert settings.routes
    assert settings.cookie.secret_keys


def _commented_keys(text: str) -> dict[str, set[str]]:
    """Keys shown as '# key = ...' examples, per [section] (routes for [[routes]])."""
    found: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\s*\[\[?([a-z_]+)\]\]?\s*", line)
        if header:
            section = header.group(1)
            continue
        example = re.match(r"\s*#\s*([a-z_]+)\s*=", line)
        if example:
            found.setdefault(section, set()).add(example.group(1))
    return found


def test_example_documents_every_key_of_every_section() -> None:
    """bffgate.example.toml shows each key of each section (set, or as a '# key =' example)."""
    path = CONFIG_DIR / "bffgate.example.toml"
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    examples = _commented_keys(text)
    for name, cls in SECTIONS.items():
        shown = set(data.get(name, {})) | examples.get(name, set())
        missing = {f.name for f in fields(cls)} - shown
        assert not missing, f"[{name}] does not document {sorted(missing)}"
    route_keys = set().union(*(set(r) for r in data["routes"])) | examples.get("routes", set())
    assert not {f.name for f in fields(RouteSettings)} - route_keys


def test_example_comments_every_key() -> None:
    """Every key line is preceded by its comment (the 2nd and later routes are plain examples)."""
    lines = (CONFIG_DIR / "bffgate.example.toml").read_text(encoding="utf-8").splitlines()
    route_starts = [i for i, line in enumerate(lines) if line.startswith("[[routes]]")]
    documented = lines[: route_starts[1]] if len(route_starts) > 1 else lines
    for i, line in enumerate(documented):
        if re.match(r"[a-z_]+\s*=", line):
            assert documented[i - 1].lstrip().startswith("#"), f"no comment above: {line}"


def test_example_gives_secrets_as_references() -> None:
    """No secret is written literally in the example: each is env: (or a file: example)."""
    data = tomllib.loads((CONFIG_DIR / "bffgate.example.toml").read_text(encoding="utf-8"))
    assert data["server"]["admin_token"].startswith("env:")
    assert data["oidc"]["client_secret"].startswith("env:")
    assert all(k.startswith("env:") for k in data["cookie"]["secret_keys"])


def test_dev_config_is_loopback_against_the_local_idp() -> None:
    """config/dev.toml: loopback gateway, IdP at 127.0.0.1:9400, Redis on localhost."""
    path = CONFIG_DIR / "dev.toml"
    s = load_settings(path, environ=_env_for(path))
    assert s.oidc.issuer == "http://127.0.0.1:9400"
    assert s.session.store == "redis"
    assert s.redis.url.get() == "redis://127.0.0.1:6379/0"
    assert s.public_origin.startswith(("http://localhost", "http://127.0.0.1"))
