"""Loading: the TOML file, then ``BFFGATE_<SECTION>__<KEY>`` overrides, each value read by its
field's kind, secrets resolved, the rules applied; every problem reported in one ConfigError."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

from bffgate.config.errors import Collector, ConfigError
from bffgate.config.model import SECTIONS, RedisSettings, RouteSettings, Settings, specs
from bffgate.config.rules import check
from bffgate.config.values import coerce, resolve_secret

DEFAULT_CONFIG_PATH = "config/bffgate.toml"
EXAMPLE_CONFIG_PATH = "config/bffgate.example.toml"
ENV_PREFIX = "BFFGATE_"
# The route keys without a default (prefix, upstream, token), read off the model.
_ROUTE_REQUIRED = tuple(f.name for f in fields(RouteSettings)
                        if f.default is MISSING and f.default_factory is MISSING)


class ConfigFileMissing(ConfigError):
    """No file at the configuration path: one line that says what to do, not a list of
    every key the missing file would have set."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__([f"no config file at {path} (copy {EXAMPLE_CONFIG_PATH})"])


def env_override_name(section: str, key: str) -> str:
    """The variable that overrides ``section.key``: BFFGATE_<SECTION>__<KEY>."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, merge, coerce and validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    errs = Collector()
    data = _read_file(path) if path is not None else {}
    for section, values in (overrides or {}).items():
        if section == "routes":
            data["routes"] = values
        else:
            data.setdefault(section, {}).update(values)
    env_values, env_origins = _env_overrides(environ)
    for section, values in env_values.items():
        if section not in SECTIONS:
            known = ", ".join(SECTIONS)
            for var in sorted(env_origins[section].values()):
                errs.add(var, f"unknown section {section!r} (known: {known})")
            continue
        data.setdefault(section, {}).update(values)
    if "BFFGATE_ROUTES" in environ:
        try:
            data["routes"] = json.loads(environ["BFFGATE_ROUTES"])
        except ValueError:
            errs.add("BFFGATE_ROUTES", "must be a JSON array of route tables")

    for unknown in sorted(set(data) - set(SECTIONS) - {"routes"}):
        errs.add(unknown, f"unknown section (known: {', '.join([*SECTIONS, 'routes'])})")
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
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
    for key, problem in check(settings):
        rules.add(key, problem)
    errs.merge_new(rules)  # a key whose value could not be read is reported once, not twice
    if errs.messages:
        raise ConfigError(errs.messages)
    return settings


def _read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigFileMissing(path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path}: invalid TOML: {exc}"]) from None


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


def _build_section(
    name: str, cls: type, data: Mapping[str, Any], errs: Collector, environ: Mapping[str, str],
    origins: Mapping[str, str],
) -> Any:
    kinds = specs(cls)
    kwargs: dict[str, Any] = {}
    for k, raw in data.items():
        key = f"{name}.{k}"
        if k not in kinds:
            known = ", ".join(sorted(kinds))
            if k in origins:  # a typo in a variable name: name the variable to fix
                errs.add(origins[k], f"unknown key {key} (known: {known})")
            else:
                errs.add(key, f"unknown key (known: {known})")
            continue
        value = coerce(key, kinds[k], raw, errs, environ)
        if value is not None:
            kwargs[k] = value
    return cls(**kwargs)


def _build_routes(raw: Any, errs: Collector, environ: Mapping[str, str]) -> tuple[RouteSettings, ...]:
    if not isinstance(raw, list):
        errs.add("routes", "must be an array of tables ([[routes]])")
        return ()
    kinds = specs(RouteSettings)
    tokens = ", ".join(kinds["token"].choices)
    routes = []
    for i, item in enumerate(raw):
        key = f"routes[{i}]"
        if not isinstance(item, dict):
            errs.add(key, "must be a table")
            continue
        missing = [k for k in _ROUTE_REQUIRED if k not in item]
        for k in missing:
            errs.add(f"{key}.{k}", f"required (token: one of {tokens})" if k == "token"
                     else "required")
        if missing:
            continue
        kwargs: dict[str, Any] = {}
        for k, v in item.items():
            if k not in kinds:
                errs.add(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(kinds))})")
                continue
            value = coerce(f"{key}.{k}", kinds[k], v, errs, environ)
            if value is not None:
                kwargs[k] = value
        if set(_ROUTE_REQUIRED) <= kwargs.keys():
            routes.append(RouteSettings(**kwargs))
    return tuple(routes)


def _resolve_sentinel_secrets(
    redis: RedisSettings, errs: Collector, environ: Mapping[str, str]
) -> RedisSettings:
    """The Sentinels' own credentials are secrets too: resolve env:/file: there as well."""
    sentinel = dict(redis.sentinel)
    for k in ("username", "password"):
        if k in sentinel:
            sentinel[k] = resolve_secret(f"redis.sentinel.{k}", sentinel[k], errs, environ)
    return replace(redis, sentinel=sentinel) if sentinel != redis.sentinel else redis
