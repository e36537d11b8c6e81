"""Unit tests for bffgate.config.values: each kind of value (duration, seconds, size, flag,
list, table, enum, secret list) read from TOML and from the environment, and its messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bffgate.config import RouteSettings
from bffgate.config.errors import Collector
from bffgate.config.model import Kind, Spec
from bffgate.config.values import coerce
from support.config_cases import KEY, KEY2, load, problems, route

# --- secret lists: one source may hold several keys ---------------------------------------


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
    s = load({"cookie": {"secret_keys": f"file:{path}"}})
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


def test_cookie_key_list_from_one_env_variable() -> None:
    """An env override holding a comma-separated key list gives the list."""
    env = {"BFFGATE_COOKIE__SECRET_KEYS": "env:KEYS", "KEYS": f"{KEY},{KEY2}"}
    s = load(environ=env)
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


def test_cookie_keys_plain_in_the_environment() -> None:
    """BFFGATE_COOKIE__SECRET_KEYS may hold the keys themselves, comma-separated."""
    s = load(environ={"BFFGATE_COOKIE__SECRET_KEYS": f"{KEY}, {KEY2}"})
    assert [k.get() for k in s.cookie.secret_keys] == [KEY, KEY2]


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
    s = load({"session": {"idle_timeout": raw, "absolute_timeout": "2d"}})
    assert s.session.idle_timeout == seconds
    assert s.session.absolute_timeout == 172800


def test_durations_from_the_environment() -> None:
    """BFFGATE_SESSION__IDLE_TIMEOUT=15m works like the file value."""
    s = load(environ={"BFFGATE_SESSION__IDLE_TIMEOUT": "15m", "BFFGATE_OIDC__CLOCK_SKEW": "30"})
    assert (s.session.idle_timeout, s.oidc.clock_skew) == (900, 30)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("soon", id="word"),
        pytest.param("30 minutes", id="long-unit"),
        pytest.param("-5m", id="negative-string"),
        pytest.param(True, id="bool"),
    ],
)
def test_bad_durations(raw: Any) -> None:
    """A malformed duration names the key and shows the value."""
    assert problems({"session": {"idle_timeout": raw}}) == [
        f"session.idle_timeout: expected seconds or a duration like '30m', '8h'; got {raw!r}",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("500ms", id="500ms"),
        pytest.param("1500ms", id="1500ms"),
        pytest.param("0.5", id="half-a-second"),
        pytest.param("1.5s", id="1.5s"),
        pytest.param("1.5h", id="fraction-of-a-unit"),
        pytest.param(0.5, id="toml-float"),
        pytest.param(30.0, id="toml-float-whole"),
    ],
)
def test_whole_seconds_refuse_fractions(raw: Any) -> None:
    """A whole-seconds key refuses anything finer, naming the key: "500ms" used to become 0
    (then "must be positive") and "1500ms" silently 1."""
    shown = f'"{raw}"' if isinstance(raw, str) else repr(raw)
    assert problems({"session": {"idle_timeout": raw}}) == [
        f"session.idle_timeout: whole seconds required, got {shown}",
    ]


def test_whole_seconds_refuse_fractions_from_the_environment() -> None:
    """The same from BFFGATE_<SECTION>__<KEY>, for every whole-seconds key (not just those
    whose name ends in "timeout")."""
    env = {"BFFGATE_SESSION__REFRESH_AHEAD": "500ms", "BFFGATE_OIDC__CLOCK_SKEW": "2.5",
           "BFFGATE_OIDC__METADATA_TTL": "90500ms"}
    assert problems(environ=env) == [
        'oidc.clock_skew: whole seconds required, got "2.5"',
        'oidc.metadata_ttl: whole seconds required, got "90500ms"',
        'session.refresh_ahead: whole seconds required, got "500ms"',
    ]


def test_whole_seconds_take_whole_milliseconds() -> None:
    """"2000ms" is two whole seconds: still accepted, as before."""
    assert load({"session": {"login_timeout": "60000ms"}}).session.login_timeout == 60


def test_integer_from_the_environment_takes_ascii_digits_only() -> None:
    """"²" passes str.isdigit() but not int(): refused with the key, not a ValueError."""
    assert problems(environ={"BFFGATE_REDIS__MAX_CONNECTIONS": "²"}) == [
        "redis.max_connections: expected an integer, got '²'",
    ]
    assert load(environ={"BFFGATE_REDIS__MAX_CONNECTIONS": " 64 "}).redis.max_connections == 64


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
    s = load({"oidc": {"http_timeout": raw}, "redis": {"timeout": raw},
               "routes": [route(timeout=raw)]})
    assert s.oidc.http_timeout == s.redis.timeout == s.routes[0].timeout == seconds


def test_bad_timeout() -> None:
    """A timeout that is neither number nor duration is reported with the route index."""
    assert problems({"routes": [route(timeout="forever")]}) == [
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
    assert load({"server": {"max_body_size": raw}}).server.max_body_size == size


def test_size_from_the_environment() -> None:
    """BFFGATE_SERVER__MAX_BODY_SIZE=1MiB works like the file value."""
    s = load(environ={"BFFGATE_SERVER__MAX_BODY_SIZE": "1MiB"})
    assert s.server.max_body_size == 2**20


def test_bad_size() -> None:
    """A malformed size names the key."""
    assert problems({"server": {"max_body_size": "big"}}) == [
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
    s = load(environ={"BFFGATE_OIDC__USE_PAR": raw})
    assert s.oidc.use_par is value


def test_bad_boolean() -> None:
    """Anything else is reported with the value."""
    assert problems(environ={"BFFGATE_OIDC__USE_PAR": "maybe"}) == [
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
    s = load(environ={"BFFGATE_OIDC__SCOPES": raw})
    assert s.oidc.scopes == ("openid", "profile", "email")


def test_bad_json_list() -> None:
    """A broken JSON list is reported."""
    assert problems(environ={"BFFGATE_OIDC__SCOPES": '["openid"'}) == [
        "oidc.scopes: expected a JSON array or a comma-separated list",
    ]


def test_mapping_from_the_environment() -> None:
    """extra_auth_params takes a JSON object from the environment."""
    s = load(environ={"BFFGATE_OIDC__EXTRA_AUTH_PARAMS": '{"prompt": "login"}'})
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
    assert problems(changes, environ) == [expected]


def test_a_wrongly_typed_required_key_is_reported_once() -> None:
    """client_id = 42 is refused once, for its type (not also as a missing key)."""
    assert problems({"oidc": {"client_id": 42}}) == [
        "oidc.client_id: expected a string, got 42",
    ]


def test_routes_keep_their_options() -> None:
    """strip_prefix/timeout/token are carried into RouteSettings."""
    s = load({"routes": [route(strip_prefix=True, timeout=5, token="user_optional"),
                          route(prefix="/", upstream="https://spa", token="none")]})
    assert s.routes == (
        RouteSettings("/api", "http://api:8000", "user_optional", strip_prefix=True, timeout=5.0),
        RouteSettings("/", "https://spa", "none"),
    )


# --- the kind decides, not the key's name or its type's spelling ---------------------------


def _read(kind: Kind, raw: Any, key: str = "any.key") -> tuple[Any, list[str]]:
    errs = Collector()
    return coerce(key, Spec(key.rpartition(".")[2], kind), raw, errs, {}), errs.messages


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        pytest.param(Kind.DURATION, "5m", 300, id="duration-without-timeout-in-the-name"),
        pytest.param(Kind.SECONDS, "500ms", 0.5, id="seconds-without-timeout-in-the-name"),
        pytest.param(Kind.SIZE, "2KiB", 2048, id="size-of-any-key"),
        pytest.param(Kind.COUNT, "7", 7, id="count"),
        pytest.param(Kind.FLAG, "on", True, id="flag"),
        pytest.param(Kind.LIST, "a, b", ("a", "b"), id="list"),
        pytest.param(Kind.TABLE, '{"a": "1"}', {"a": "1"}, id="table"),
        pytest.param(Kind.TEXT, "5m", "5m", id="text-stays-as-written"),
    ],
)
def test_the_kind_decides_how_a_value_is_read(kind: Kind, raw: Any, value: Any) -> None:
    """Any key of a kind reads the same way: no list of key names, no "...timeout" pattern."""
    assert _read(kind, raw) == (value, [])


def test_a_name_ending_in_timeout_does_not_make_a_value_fractional() -> None:
    """A whole-seconds key keeps refusing "500ms" whatever it is called, and a fractional
    one takes it whatever it is called."""
    assert _read(Kind.DURATION, "500ms", "x.some_timeout") == (
        None, ['x.some_timeout: whole seconds required, got "500ms"'])
    assert _read(Kind.SECONDS, "500ms", "x.grace") == (0.5, [])


def test_enum_checks_the_spec_choices() -> None:
    """An enum accepts exactly the choices its spec carries (taken from the Literal)."""
    errs = Collector()
    spec = Spec("mode", Kind.ENUM, ("a", "b"))
    assert coerce("x.mode", spec, "b", errs, {}) == "b"
    assert coerce("x.mode", spec, "c", errs, {}) is None
    assert errs.messages == ["x.mode: must be one of a, b; got 'c'"]
