"""Unit tests for the shipped config/*.toml files: each loads through the real loader, and the
example documents every key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from bffgate.config import (
    CookieSettings,
    LogSettings,
    OidcSettings,
    RedisSettings,
    RouteSettings,
    ServerSettings,
    SessionSettings,
    load_settings,
)
from bffgate.config.model import TelemetrySettings

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
SECTIONS = {
    "server": ServerSettings, "oidc": OidcSettings, "session": SessionSettings,
    "cookie": CookieSettings, "redis": RedisSettings, "log": LogSettings,
    "telemetry": TelemetrySettings,
}


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
