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

import functools
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from bffgate.config_rules import validate
from bffgate.config_values import ENUMS, Collector, Secret, coerce, resolve_secret
from bffgate.errors import ConfigError
from bffgate.proxy.routes import DEFAULT_METHODS

__all__ = ["DEFAULT_CONFIG_PATH", "ENUMS", "EXAMPLE_CONFIG_PATH", "ConfigError",
           "ConfigFileMissing", "CookieSettings", "LogSettings", "OidcSettings",
           "RedisSettings", "RouteSettings", "Secret", "ServerSettings", "SessionSettings",
           "Settings", "load_settings"]

DEFAULT_CONFIG_PATH = "config/bffgate.toml"
EXAMPLE_CONFIG_PATH = "config/bffgate.example.toml"
ENV_PREFIX = "BFFGATE_"

TokenMode = Literal["user", "user_optional", "client", "none"]
ClientAuth = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


@dataclass(frozen=True)
class ServerSettings:
    public_url: str = ""
    listen: str = "127.0.0.1:8080"
    admin_listen: str = "127.0.0.1:9090"
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    trusted_proxies: tuple[str, ...] = ()
    max_body_size: int = 10 * 1024 * 1024
    # auto: httptools when installed (the image, the speed extra), else h11. Either way the
    # same framing policy applies (bffgate.framing, bffgate.http_protocol).
    http_parser: Literal["auto", "h11", "httptools"] = "auto"


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
    verify_keys: tuple[Secret, ...] = ()  # accepted, never used to sign (key rotation)


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
    methods: tuple[str, ...] = DEFAULT_METHODS
    allow_matrix_params: bool = False


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

    @functools.cached_property  # read on every proxied request (CSRF, X-Forwarded-*)
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


class ConfigFileMissing(ConfigError):
    """No file at the configuration path: one line that says what to do, not a list of
    every key the missing file would have set."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__([f"no config file at {path} (copy {EXAMPLE_CONFIG_PATH})"])


def _build_section(
    name: str, cls: Any, data: Mapping[str, Any], errs: Collector, environ: Mapping[str, str],
    origins: Mapping[str, str],
) -> Any:
    hints = {f.name: str(f.type) for f in cls.__dataclass_fields__.values()}
    kwargs: dict[str, Any] = {}
    for k, raw in data.items():
        key = f"{name}.{k}"
        if k not in hints:
            known = ", ".join(sorted(hints))
            if k in origins:  # a typo in a variable name: name the variable to fix
                errs.add(origins[k], f"unknown key {key} (known: {known})")
            else:
                errs.add(key, f"unknown key (known: {known})")
            continue
        hint = hints[k]
        if hint.startswith("Literal"):
            hint = "str"
        value = coerce(key, hint, raw, errs, environ)
        if value is not None:
            kwargs[k] = value
    return cls(**kwargs)


def env_override_name(section: str, key: str) -> str:
    """The variable that overrides ``section.key``: BFFGATE_<SECTION>__<KEY>."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def _env_overrides(
    environ: Mapping[str, str],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Values by section and key, and the variable each came from (for error messages)."""
    out: dict[str, dict[str, str]] = {}
    origins: dict[str, dict[str, str]] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var[len(ENV_PREFIX) :]:
            continue
        section, _, key = var[len(ENV_PREFIX) :].partition("__")
        out.setdefault(section.lower(), {})[key.lower()] = value
        origins.setdefault(section.lower(), {})[key.lower()] = var
    return out, origins


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, merge, coerce and validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    errs = Collector()
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigFileMissing(path) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"config file {path}: invalid TOML: {exc}"]) from None
    for section, values in (overrides or {}).items():
        if section == "routes":
            data["routes"] = values
        else:
            data.setdefault(section, {}).update(values)
    env_values, env_origins = _env_overrides(environ)
    for section, values in env_values.items():
        if section not in _SECTIONS:
            known = ", ".join(_SECTIONS)
            for var in sorted(env_origins[section].values()):
                errs.add(var, f"unknown section {section!r} (known: {known})")
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
        sections[name] = _build_section(name, cls, raw, errs, environ,
                                        env_origins.get(name, {}))
    routes = _build_routes(data.get("routes", []), errs, environ)
    sections["redis"] = _resolve_sentinel_secrets(sections["redis"], errs, environ)
    settings = Settings(routes=routes, **sections)
    rules = Collector()
    validate(settings, rules)
    errs.merge_new(rules)  # a key whose value could not be read is reported once, not twice
    if errs.messages:
        raise ConfigError(errs.messages)
    return settings


def _resolve_sentinel_secrets(
    redis: RedisSettings, errs: Collector, environ: Mapping[str, str]
) -> RedisSettings:
    """The Sentinels' own credentials are secrets too: resolve env:/file: there as well."""
    sentinel = dict(redis.sentinel)
    for k in ("username", "password"):
        if k in sentinel:
            sentinel[k] = resolve_secret(f"redis.sentinel.{k}", sentinel[k], errs, environ)
    return replace(redis, sentinel=sentinel) if sentinel != redis.sentinel else redis


def _build_routes(raw: Any, errs: Collector, environ: Mapping[str, str]) -> tuple[RouteSettings, ...]:
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
            value = coerce(f"{key}.{k}", hint, v, errs, environ)
            if value is None:
                continue
            kwargs[k] = value
        if {"prefix", "upstream", "token"} <= kwargs.keys():
            routes.append(RouteSettings(**kwargs))
    return tuple(routes)


