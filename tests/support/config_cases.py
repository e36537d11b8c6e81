"""Shared cases for the config unit tests: a minimal valid configuration and helpers that
load it with changes, returning the settings or the exact problem messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from bffgate.config import ConfigError, Settings, load_settings

KEY = "k" * 32
KEY2 = "n" * 40
BASE: dict[str, Any] = {
    "server": {"public_url": "https://app.example.com"},
    "oidc": {"issuer": "https://idp.example.com", "client_id": "bffgate",
             "client_secret": "s3cret-value"},
    "cookie": {"secret_keys": [KEY]},
    "routes": [{"prefix": "/api", "upstream": "http://api:8000", "token": "user"}],
}


def overrides(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """BASE with per-section changes applied (routes are replaced as a whole)."""
    merged = copy.deepcopy(BASE)
    for section, values in (changes or {}).items():
        if section == "routes":
            merged["routes"] = values
        else:
            merged.setdefault(section, {}).update(values)
    return merged


def load(changes: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
         path: Path | None = None) -> Settings:
    return load_settings(path, environ=environ or {}, overrides=overrides(changes))


def problems(changes: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
             path: Path | None = None, *, base: bool = True) -> list[str]:
    """The problems loading BASE with ``changes`` reports (``base=False``: ``changes`` alone)."""
    try:
        if base:
            load(changes, environ, path)
        else:
            load_settings(path, environ=environ or {}, overrides=changes)
    except ConfigError as exc:
        return exc.messages
    return []


def route(**kw: Any) -> dict[str, Any]:
    return {"prefix": "/api", "upstream": "http://api:8000", "token": "user", **kw}


def write_config(tmp_path: Path, text: str) -> Path:
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
