"""Configuration values: secrets that hide themselves, and the coercion of TOML and
environment strings into typed values, collecting every problem with its key."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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


ENUMS: dict[str, tuple[str, ...]] = {
    "oidc.client_auth": ("client_secret_basic", "client_secret_post", "private_key_jwt", "none"),
    "session.store": ("redis", "memory"),
    "server.http_parser": ("auto", "h11", "httptools"),
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


class Collector:
    """Accumulates problems so every one is reported, not just the first."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.keys: list[str] = []

    def add(self, key: str, problem: str) -> None:
        self.keys.append(key)
        self.messages.append(f"{key}: {problem}")

    def merge_new(self, later: Collector) -> None:
        """Take ``later``'s problems except those about a key (or an item of one) that
        already has a problem here: one cause, one line (an unset ``env:`` variable is not
        also reported as a key that is "required" or "too short")."""
        reported = tuple(self.keys)
        for key, message in zip(later.keys, later.messages, strict=True):
            if any(key == r or key.startswith((r + "[", r + ".")) for r in reported):
                continue
            self.keys.append(key)
            self.messages.append(message)


def resolve_secret(key: str, raw: Any, errs: Collector, environ: Mapping[str, str]) -> str:
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


def coerce(
    key: str, hint: str, raw: Any, errs: Collector, environ: Mapping[str, str]
) -> Any:
    """Turn a TOML or environment value into the declared type of ``key``."""
    from_env = isinstance(raw, str) and hint not in ("str", "Secret")
    if hint == "Secret":
        return Secret(resolve_secret(key, raw, errs, environ))
    if hint.startswith("tuple[Secret"):
        if isinstance(raw, str) and raw.startswith(("env:", "file:")):
            # One source holding the whole list (a mounted file with one key per line, or a
            # variable with a JSON array / comma list): resolve it, then split it. Read as a
            # single key it would silently become one long key and break rotation.
            resolved = resolve_secret(key, raw, errs, environ)
            return tuple(Secret(str(i)) for i in _as_list(key, resolved, errs)) if resolved \
                else ()
        items = _as_list(key, raw, errs)
        return tuple(Secret(resolve_secret(f"{key}[{n}]", i, errs, environ))
                     for n, i in enumerate(items))
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
    enum = ENUMS.get(re.sub(r"\[\d+\]", "", key))  # routes[3].token -> routes.token
    if enum is not None and raw not in enum:
        errs.add(key, f"must be one of {', '.join(enum)}; got {raw!r}")
        return None
    return raw


def _bad(key: str, raw: Any, what: str, errs: Collector) -> None:
    errs.add(key, f"expected {what}, got {raw!r}")


def _as_list(key: str, raw: Any, errs: Collector) -> list[Any]:
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


def _duration(key: str, raw: Any, errs: Collector) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _DURATION_RE.match(str(raw)) if isinstance(raw, str) else None
    if not m:
        errs.add(key, f"expected seconds or a duration like '30m', '8h'; got {raw!r}")
        return None
    if m.group(2) == "ms":
        return int(m.group(1)) // 1000
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def _size(key: str, raw: Any, errs: Collector) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _SIZE_RE.match(str(raw)) if isinstance(raw, str) else None
    if not m:
        errs.add(key, f"expected bytes or a size like '10MiB'; got {raw!r}")
        return None
    unit = m.group(2).lower() if m.group(2) else None
    return int(m.group(1)) * _SIZE_UNITS[unit]


