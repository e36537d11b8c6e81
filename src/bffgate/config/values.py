"""Reading one setting: a TOML or environment value turned into its field's kind, each
problem collected with its key (the kind comes from the model's field metadata)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bffgate.config.errors import Collector
from bffgate.config.model import Kind, Secret, Spec

# Digits are ASCII only: str.isdigit() and \d also take other scripts' digits ("²" passes
# isdigit, then int() refuses it).
_NUMBER_RE = re.compile(r"^\s*(-?[0-9]+)\s*$")
_DURATION_RE = re.compile(r"^\s*([0-9]+)(?:\.([0-9]+))?\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"^\s*([0-9]+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30,
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

Reader = Callable[[str, Spec, Any, Collector, Mapping[str, str]], Any]


def coerce(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    """``raw`` (from TOML, or a string from the environment) as a value of ``spec``'s kind;
    None, with the problem collected under ``key``, when it is not one."""
    return _READERS[spec.kind](key, spec, raw, errs, environ)


def resolve_secret(key: str, raw: Any, errs: Collector, environ: Mapping[str, str]) -> str:
    """A secret's value: as written, from ``env:NAME`` or from ``file:/path``."""
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


def _secret(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    return Secret(resolve_secret(key, raw, errs, environ))


def _secret_list(key: str, spec: Spec, raw: Any, errs: Collector,
                 environ: Mapping[str, str]) -> Any:
    if isinstance(raw, str) and raw.startswith(("env:", "file:")):
        # One source holding the whole list (a mounted file with one key per line, or a
        # variable with a JSON array / comma list): resolve it, then split it. Read as a
        # single key it would silently become one long key and break rotation.
        resolved = resolve_secret(key, raw, errs, environ)
        return tuple(Secret(str(i)) for i in _as_list(key, resolved, errs)) if resolved else ()
    items = _as_list(key, raw, errs)
    return tuple(Secret(resolve_secret(f"{key}[{n}]", i, errs, environ))
                 for n, i in enumerate(items))


def _flag(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in (*_TRUE, *_FALSE):
        return raw.lower() in _TRUE
    errs.add(key, f"expected true or false, got {raw!r}")
    return None


def _count(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _NUMBER_RE.match(raw) if isinstance(raw, str) else None
    if m:
        return int(m.group(1))
    errs.add(key, f"expected an integer, got {raw!r}")
    return None


def _count_or_auto(key: str, spec: Spec, raw: Any, errs: Collector,
                   environ: Mapping[str, str]) -> Any:
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return "auto"
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _NUMBER_RE.match(raw) if isinstance(raw, str) else None
    if m:
        return int(m.group(1))
    errs.add(key, f'expected an integer or "auto", got {raw!r}')
    return None


def _size(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _SIZE_RE.match(raw) if isinstance(raw, str) else None
    if not m:
        errs.add(key, f"expected bytes or a size like '10MiB'; got {raw!r}")
        return None
    unit = m.group(2).lower() if m.group(2) else None
    return int(m.group(1)) * _SIZE_UNITS[unit]


def _duration(key: str, spec: Spec, raw: Any, errs: Collector,
              environ: Mapping[str, str]) -> Any:
    """Whole seconds: an integer, or a whole number with a unit. Anything finer (0.5, "1.5s",
    "500ms") is refused with the key named, never rounded: "500ms" used to become 0."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _DURATION_RE.match(raw) if isinstance(raw, str) else None
    amount, fraction, unit = (int(m.group(1)), m.group(2), m.group(3)) if m else (0, None, None)
    if isinstance(raw, float) or fraction is not None or (unit == "ms" and amount % 1000):
        shown = json.dumps(raw) if isinstance(raw, str) else repr(raw)  # as written in TOML
        errs.add(key, f"whole seconds required, got {shown}")
        return None
    if not m:
        errs.add(key, f"expected seconds or a duration like '30m', '8h'; got {raw!r}")
        return None
    return amount // 1000 if unit == "ms" else amount * _DURATION_UNITS[unit]


def _seconds(key: str, spec: Spec, raw: Any, errs: Collector,
             environ: Mapping[str, str]) -> Any:
    """Seconds with fractions allowed: a number, or a whole number with a unit."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, str):
        return _bad(key, raw, "a number", errs)
    m = _DURATION_RE.match(raw)
    if m and m.group(3) and m.group(2) is None:  # "30s", "500ms", "2m"
        amount = int(m.group(1))
        return amount / 1000 if m.group(3) == "ms" else float(amount * _DURATION_UNITS[m.group(3)])
    try:
        return float(raw)
    except ValueError:
        return _bad(key, raw, "a number", errs)


def _list(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    return tuple(str(i) for i in _as_list(key, raw, errs))


def _table(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return _bad(key, raw, "a table (JSON object in the environment)", errs)
    if not isinstance(raw, dict):
        return _bad(key, raw, "a table", errs)
    return dict(raw)


def _text(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    if not isinstance(raw, str):
        return _bad(key, raw, "a string", errs)
    return raw


def _enum(key: str, spec: Spec, raw: Any, errs: Collector, environ: Mapping[str, str]) -> Any:
    if not isinstance(raw, str):
        return _bad(key, raw, "a string", errs)
    if raw not in spec.choices:
        errs.add(key, f"must be one of {', '.join(spec.choices)}; got {raw!r}")
        return None
    return raw


_READERS: dict[Kind, Reader] = {
    Kind.TEXT: _text, Kind.ENUM: _enum, Kind.FLAG: _flag, Kind.COUNT: _count,
    Kind.SIZE: _size, Kind.DURATION: _duration, Kind.SECONDS: _seconds, Kind.LIST: _list,
    Kind.TABLE: _table, Kind.SECRET: _secret, Kind.SECRET_LIST: _secret_list,
    Kind.COUNT_OR_AUTO: _count_or_auto,
}


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
