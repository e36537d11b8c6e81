"""Configuration: TOML + environment overrides, parsed once into frozen typed settings.

Sources, lowest to highest precedence: built-in defaults, the TOML file, environment
variables ``BFFGATE_<SECTION>__<KEY>`` (e.g. ``BFFGATE_OIDC__CLIENT_SECRET``). Routes come
from the file's ``[[routes]]`` array, or from ``BFFGATE_ROUTES`` holding a JSON array.
Any string value of a secret key may be ``env:NAME`` (read that variable) or ``file:/path``
(read that file, trailing newline stripped).

``load_settings`` collects *every* problem before failing and raises one ``ConfigError``
whose messages each name the key (``oidc.issuer: required``), so ``bffgate check-config``
can list them all at once. No ``assert`` is used for validation.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from bffgate.errors import ConfigError

DEFAULT_CONFIG_PATH = "config/bffgate.toml"
ENV_PREFIX = "BFFGATE_"

TokenMode = Literal["user", "user_optional", "client", "none"]
ClientAuth = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class Secret:
    """A string that never shows itself in repr/str (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class ServerSettings:
    public_url: str = ""
    listen: str = "127.0.0.1:8080"
    admin_listen: str = "127.0.0.1:9090"
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    trusted_proxies: tuple[str, ...] = ()
    max_body_size: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class OidcSettings:
    issuer: str = ""
    client_id: str = ""
    client_secret: Secret = field(default_factory=lambda: Secret(""))
    client_auth: ClientAuth = "client_secret_basic"
    private_key: Secret = field(default_factory=lambda: Secret(""))
    scopes: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
    redirect_path: str = "/bff/callback"
    post_logout_redirect: str = "/"
    use_par: bool = False
    extra_auth_params: Mapping[str, str] = field(default_factory=dict)
    id_token_algs: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    clock_skew: int = 60
    http_timeout: float = 10.0
    metadata_ttl: int = 3600


@dataclass(frozen=True)
class SessionSettings:
    store: Literal["redis", "memory"] = "redis"
    idle_timeout: int = 30 * 60
    absolute_timeout: int = 8 * 3600
    refresh_ahead: int = 60
    login_timeout: int = 600


@dataclass(frozen=True)
class CookieSettings:
    name: str = "__Host-bffgate"
    same_site: Literal["strict", "lax"] = "strict"
    secure: bool = True
    secret_keys: tuple[Secret, ...] = ()


@dataclass(frozen=True)
class RedisSettings:
    url: Secret = field(default_factory=lambda: Secret("redis://127.0.0.1:6379/0"))
    sentinel: Mapping[str, Any] = field(default_factory=dict)
    cluster: bool = False
    key_prefix: str = "bffgate:"
    wait_replicas: int = 0
    max_connections: int = 256
    timeout: float = 2.0


@dataclass(frozen=True)
class RouteSettings:
    prefix: str
    upstream: str
    token: TokenMode
    strip_prefix: bool = False
    timeout: float = 30.0
    websocket: bool = False


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: Literal["json", "console"] = "json"


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    oidc: OidcSettings
    session: SessionSettings
    cookie: CookieSettings
    redis: RedisSettings
    routes: tuple[RouteSettings, ...]
    log: LogSettings

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.server.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def redirect_uri(self) -> str:
        return self.public_origin + self.oidc.redirect_path

    @property
    def login_cookie_name(self) -> str:
        return self.cookie.name + "-login"


_SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "oidc": OidcSettings,
    "session": SessionSettings,
    "cookie": CookieSettings,
    "redis": RedisSettings,
    "log": LogSettings,
}
_ENUMS: dict[str, tuple[str, ...]] = {
    "oidc.client_auth": ("client_secret_basic", "client_secret_post", "private_key_jwt", "none"),
    "session.store": ("redis", "memory"),
    "cookie.same_site": ("strict", "lax"),
    "log.format": ("json", "console"),
    "log.level": ("debug", "info", "warning", "error"),
    "routes.token": ("user", "user_optional", "client", "none"),
}
_DURATION_KEYS = {
    "session.idle_timeout",
    "session.absolute_timeout",
    "session.refresh_ahead",
    "session.login_timeout",
    "oidc.clock_skew",
    "oidc.metadata_ttl",
}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30,
}


class _Collector:
    """Accumulates problems so every one is reported, not just the first."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, key: str, problem: str) -> None:
        self.messages.append(f"{key}: {problem}")


def _resolve_secret(key: str, raw: Any, errs: _Collector, environ: Mapping[str, str]) -> str:
    if not isinstance(raw, str):
        errs.add(key, f"expected a string, got {type(raw).__name__}")
        return ""
    if raw.startswith("env:"):
        name = raw[4:]
        if name not in environ:
            errs.add(key, f"environment variable {name} (from env:{name}) is not set")
            return ""
        return environ[name]
    if raw.startswith("file:"):
        path = Path(raw[5:])
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            errs.add(key, f"cannot read secret file {path}: {exc.strerror}")
            return ""
    return raw


def _coerce(
    key: str, hint: str, raw: Any, errs: _Collector, environ: Mapping[str, str]
) -> Any:
    """Turn a TOML or environment value into the declared type of ``key``."""
    from_env = isinstance(raw, str) and hint not in ("str", "Secret")
    if hint == "Secret":
        return Secret(_resolve_secret(key, raw, errs, environ))
    if hint.startswith("tuple[Secret"):
        if isinstance(raw, str) and raw.startswith(("env:", "file:")):
            # One source holding the whole list (a mounted file with one key per line, or a
            # variable with a JSON array / comma list): resolve it, then split it. Read as a
            # single key it would silently become one long key and break rotation.
            resolved = _resolve_secret(key, raw, errs, environ)
            return tuple(Secret(str(i)) for i in _as_list(key, resolved, errs)) if resolved \
                else ()
        items = _as_list(key, raw, errs)
        return tuple(Secret(_resolve_secret(key, i, errs, environ)) for i in items)
    if hint == "bool":
        if isinstance(raw, bool):
            return raw
        if from_env and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        errs.add(key, f"expected true or false, got {raw!r}")
        return None
    if hint == "int":
        if key in _DURATION_KEYS:
            return _duration(key, raw, errs)
        if key == "server.max_body_size":
            return _size(key, raw, errs)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if from_env and raw.strip().lstrip("-").isdigit():
            return int(raw)
        errs.add(key, f"expected an integer, got {raw!r}")
        return None
    if hint == "float":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        unit = _DURATION_RE.match(raw) if isinstance(raw, str) and key.endswith("timeout") \
            else None
        if unit and unit.group(2):  # timeouts also take durations: "30s", "500ms", "2m"
            amount = int(unit.group(1))
            return amount / 1000 if unit.group(2) == "ms" \
                else float(amount * _DURATION_UNITS[unit.group(2)])
        try:
            return float(raw) if from_env else _bad(key, raw, "a number", errs)
        except ValueError:
            return _bad(key, raw, "a number", errs)
    if hint.startswith("tuple[str"):
        return tuple(str(i) for i in _as_list(key, raw, errs))
    if hint.startswith("Mapping"):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return _bad(key, raw, "a table (JSON object in the environment)", errs)
        if not isinstance(raw, dict):
            return _bad(key, raw, "a table", errs)
        return dict(raw)
    # str and Literal[...] strings
    if not isinstance(raw, str):
        return _bad(key, raw, "a string", errs)
    enum = _ENUMS.get(re.sub(r"\[\d+\]", "", key))  # routes[3].token -> routes.token
    if enum is not None and raw not in enum:
        errs.add(key, f"must be one of {', '.join(enum)}; got {raw!r}")
        return None
    return raw


def _bad(key: str, raw: Any, what: str, errs: _Collector) -> None:
    errs.add(key, f"expected {what}, got {raw!r}")


def _as_list(key: str, raw: Any, errs: _Collector) -> list[Any]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                errs.add(key, "expected a JSON array or a comma-separated list")
                return []
            return value if isinstance(value, list) else []
        return [p.strip() for p in text.split(",") if p.strip()] if "," in text else (
            [p for p in text.split() if p]
        )
    errs.add(key, f"expected a list, got {raw!r}")
    return []


def _duration(key: str, raw: Any, errs: _Collector) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _DURATION_RE.match(str(raw)) if isinstance(raw, str) else None
    if not m:
        errs.add(key, f"expected seconds or a duration like '30m', '8h'; got {raw!r}")
        return None
    if m.group(2) == "ms":
        return int(m.group(1)) // 1000
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def _size(key: str, raw: Any, errs: _Collector) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _SIZE_RE.match(str(raw)) if isinstance(raw, str) else None
    if not m:
        errs.add(key, f"expected bytes or a size like '10MiB'; got {raw!r}")
        return None
    unit = m.group(2).lower() if m.group(2) else None
    return int(m.group(1)) * _SIZE_UNITS[unit]


def _build_section(
    name: str, cls: Any, data: Mapping[str, Any], errs: _Collector, environ: Mapping[str, str]
) -> Any:
    hints = {f.name: str(f.type) for f in cls.__dataclass_fields__.values()}
    kwargs: dict[str, Any] = {}
    for k, raw in data.items():
        key = f"{name}.{k}"
        if k not in hints:
            errs.add(key, f"unknown key (known: {', '.join(sorted(hints))})")
            continue
        hint = hints[k]
        if hint.startswith("Literal"):
            hint = "str"
        value = _coerce(key, hint, raw, errs, environ)
        if value is not None:
            kwargs[k] = value
    return cls(**kwargs)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var[len(ENV_PREFIX) :]:
            continue
        section, _, key = var[len(ENV_PREFIX) :].partition("__")
        out.setdefault(section.lower(), {})[key.lower()] = value
    return out


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, merge, coerce and validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    errs = _Collector()
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError([f"config file {path}: not found"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"config file {path}: invalid TOML: {exc}"]) from None
    for section, values in (overrides or {}).items():
        if section == "routes":
            data["routes"] = values
        else:
            data.setdefault(section, {}).update(values)
    for section, values in _env_overrides(environ).items():
        if section not in _SECTIONS:
            errs.add(f"{ENV_PREFIX}{section.upper()}__*", f"unknown section {section!r}")
            continue
        data.setdefault(section, {}).update(values)
    if "BFFGATE_ROUTES" in environ:
        try:
            data["routes"] = json.loads(environ["BFFGATE_ROUTES"])
        except ValueError:
            errs.add("BFFGATE_ROUTES", "must be a JSON array of route tables")

    for unknown in sorted(set(data) - set(_SECTIONS) - {"routes"}):
        errs.add(unknown, f"unknown section (known: {', '.join([*_SECTIONS, 'routes'])})")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            errs.add(name, "must be a table")
            raw = {}
        sections[name] = _build_section(name, cls, raw, errs, environ)
    routes = _build_routes(data.get("routes", []), errs, environ)
    sections["redis"] = _resolve_sentinel_secrets(sections["redis"], errs, environ)
    settings = Settings(routes=routes, **sections)
    validate(settings, errs)
    if errs.messages:
        raise ConfigError(errs.messages)
    return settings


def _resolve_sentinel_secrets(
    redis: RedisSettings, errs: _Collector, environ: Mapping[str, str]
) -> RedisSettings:
    """The Sentinels' own credentials are secrets too: resolve env:/file: there as well."""
    sentinel = dict(redis.sentinel)
    for k in ("username", "password"):
        if k in sentinel:
            sentinel[k] = _resolve_secret(f"redis.sentinel.{k}", sentinel[k], errs, environ)
    return replace(redis, sentinel=sentinel) if sentinel != redis.sentinel else redis


def _build_routes(raw: Any, errs: _Collector, environ: Mapping[str, str]) -> tuple[RouteSettings, ...]:
    if not isinstance(raw, list):
        errs.add("routes", "must be an array of tables ([[routes]])")
        return ()
    routes = []
    for i, item in enumerate(raw):
        key = f"routes[{i}]"
        if not isinstance(item, dict):
            errs.add(key, "must be a table")
            continue
        missing = [k for k in ("prefix", "upstream", "token") if k not in item]
        for k in missing:
            errs.add(f"{key}.{k}", "required (token: one of user, user_optional, client, none)"
                     if k == "token" else "required")
        if missing:
            continue
        fields = {f.name: str(f.type) for f in RouteSettings.__dataclass_fields__.values()}
        kwargs: dict[str, Any] = {}
        for k, v in item.items():
            if k not in fields:
                errs.add(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(fields))})")
                continue
            hint = "str" if fields[k].startswith("Literal") else fields[k]
            value = _coerce(f"{key}.{k}", hint, v, errs, environ)
            if value is None:
                continue
            kwargs[k] = value
        if {"prefix", "upstream", "token"} <= kwargs.keys():
            routes.append(RouteSettings(**kwargs))
    return tuple(routes)


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_listen(key: str, value: str, errs: _Collector) -> None:
    if value.startswith("unix:"):
        return
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        errs.add(key, f"expected host:port or unix:/path; got {value!r}")


def validate(s: Settings, errs: _Collector) -> None:
    """Cross-field rules; refuses configurations that silently weaken security."""
    # server
    pu = urlsplit(s.server.public_url)
    loopback_public = _is_loopback_host(pu.hostname)
    if not s.server.public_url:
        errs.add("server.public_url", "required (the origin the browser sees, e.g. https://app.example.com)")
    elif pu.scheme not in ("https", "http") or not pu.netloc:
        errs.add("server.public_url", f"must be an absolute http(s) URL; got {s.server.public_url!r}")
    elif pu.scheme == "http" and not loopback_public:
        errs.add("server.public_url", "must use https unless the host is loopback (localhost, 127.0.0.1)")
    elif pu.path not in ("", "/") or pu.query or pu.fragment:
        errs.add("server.public_url", "must be an origin only (no path, query or fragment)")
    _check_listen("server.listen", s.server.listen, errs)
    if s.server.admin_listen:
        _check_listen("server.admin_listen", s.server.admin_listen, errs)
        admin_host = s.server.admin_listen.rpartition(":")[0]
        if (not _is_loopback_host(admin_host) and not s.server.admin_listen.startswith("unix:")
                and len(s.server.admin_token.get()) < 16):
            errs.add("server.admin_token", "required (>= 16 characters) when admin_listen is not loopback")
    for cidr in s.server.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errs.add("server.trusted_proxies", f"not an IP network: {cidr!r}")
    if s.server.max_body_size <= 0:
        errs.add("server.max_body_size", "must be positive")

    # oidc
    iu = urlsplit(s.oidc.issuer)
    if not s.oidc.issuer:
        errs.add("oidc.issuer", "required (the IdP's issuer URL)")
    elif iu.scheme not in ("https", "http") or not iu.netloc:
        errs.add("oidc.issuer", f"must be an absolute URL; got {s.oidc.issuer!r}")
    elif iu.scheme == "http" and not _is_loopback_host(iu.hostname):
        errs.add("oidc.issuer", "must use https unless the host is loopback")
    if not s.oidc.client_id:
        errs.add("oidc.client_id", "required")
    if s.oidc.client_auth in ("client_secret_basic", "client_secret_post"):
        if not s.oidc.client_secret:
            errs.add("oidc.client_secret", f"required for client_auth = {s.oidc.client_auth}")
    elif s.oidc.client_auth == "private_key_jwt" and not s.oidc.private_key:
        errs.add("oidc.private_key", "required for client_auth = private_key_jwt (PEM or JWK)")
    if "openid" not in s.oidc.scopes:
        errs.add("oidc.scopes", "must include 'openid'")
    if not s.oidc.redirect_path.startswith("/") or s.oidc.redirect_path.startswith("//"):
        errs.add("oidc.redirect_path", "must be a local path starting with a single '/'")
    plr = s.oidc.post_logout_redirect
    if not (plr.startswith("/") and not plr.startswith("//")) and urlsplit(plr).scheme != "https":
        errs.add("oidc.post_logout_redirect", "must be a local path or an https URL")
    bad_algs = [a for a in s.oidc.id_token_algs if a.lower() == "none" or a.startswith("HS")]
    if bad_algs:
        errs.add("oidc.id_token_algs", f"must not contain 'none' or HMAC algorithms; got {bad_algs}")
    reserved = {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                "code_challenge", "code_challenge_method", "request_uri"}
    clash = sorted(reserved & set(s.oidc.extra_auth_params))
    if clash:
        errs.add("oidc.extra_auth_params", f"must not override protocol parameters: {clash}")
    if s.oidc.clock_skew < 0 or s.oidc.clock_skew > 300:
        errs.add("oidc.clock_skew", "must be between 0 and 300 seconds")

    # session
    if s.session.idle_timeout <= 0:
        errs.add("session.idle_timeout", "must be positive")
    if s.session.absolute_timeout < s.session.idle_timeout:
        errs.add("session.absolute_timeout", "must be >= session.idle_timeout")
    if s.session.refresh_ahead < 0:
        errs.add("session.refresh_ahead", "must not be negative")
    if not 30 <= s.session.login_timeout <= 3600:
        errs.add("session.login_timeout", "must be between 30 seconds and 1 hour")

    # cookie
    if not s.cookie.secret_keys:
        errs.add("cookie.secret_keys", "required: at least one key of >= 32 characters (oldest to newest)")
    for i, k in enumerate(s.cookie.secret_keys):
        if len(k.get()) < 32:
            errs.add(f"cookie.secret_keys[{i}]", "too short: use at least 32 random characters")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", s.cookie.name):
        errs.add("cookie.name", "may contain only letters, digits, '-' and '_'")
    if s.cookie.name.startswith("__Host-") and not s.cookie.secure:
        errs.add("cookie.secure", "must be true for a __Host- cookie name")
    if not s.cookie.secure and not loopback_public:
        errs.add("cookie.secure", "may be false only when server.public_url is loopback")

    # redis
    if s.session.store == "redis":
        url = s.redis.url.get()
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            errs.add("redis.url", "must start with redis://, rediss:// or unix://")
        if s.redis.cluster and s.redis.sentinel:
            errs.add("redis.cluster", "cannot be combined with redis.sentinel")
        if s.redis.sentinel and ("master" not in s.redis.sentinel
                                 or "hosts" not in s.redis.sentinel):
            errs.add("redis.sentinel", "needs 'master' (name) and 'hosts' (list of host:port)")
    if not s.redis.key_prefix:
        errs.add("redis.key_prefix", "must not be empty")
    if not 1 <= s.redis.max_connections <= 10_000:
        errs.add("redis.max_connections", "must be between 1 and 10000")
    if s.redis.wait_replicas < 0:
        errs.add("redis.wait_replicas", "must not be negative")
    if s.redis.wait_replicas and s.redis.cluster:
        errs.add("redis.wait_replicas", "is not supported with redis.cluster")

    # routes
    seen: set[str] = set()
    for i, r in enumerate(s.routes):
        key = f"routes[{i}]"
        if not r.prefix.startswith("/") or "//" in r.prefix or ".." in r.prefix:
            errs.add(f"{key}.prefix", f"must be a clean absolute path; got {r.prefix!r}")
        if r.prefix.rstrip("/") == "/bff" or r.prefix.startswith("/bff/"):
            errs.add(f"{key}.prefix", "must not shadow the gateway's own /bff/ endpoints")
        norm = r.prefix.rstrip("/") or "/"
        if norm in seen:
            errs.add(f"{key}.prefix", f"duplicate prefix {r.prefix!r}")
        seen.add(norm)
        uu = urlsplit(r.upstream)
        if uu.scheme not in ("http", "https") or not uu.netloc or uu.query or uu.fragment:
            errs.add(f"{key}.upstream", f"must be an http(s) URL without query; got {r.upstream!r}")
        if r.timeout <= 0:
            errs.add(f"{key}.timeout", "must be positive")
        if r.token == "client":
            errs.add(f"{key}.token", "'client' (client-credentials tokens) is not supported yet")
        if r.websocket:
            errs.add(f"{key}.websocket", "websocket proxying is not supported yet")
