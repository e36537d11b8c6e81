"""Property tests: the config loader, given any TOML file and any BFFGATE_* environment,
returns valid Settings or raises one ConfigError whose every message names what to fix."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate import config
from bffgate.config import ConfigError, Settings, load_settings
from support.gateway import toml_value

pytestmark = pytest.mark.fuzz

SECRET_FILE = Path(tempfile.mkdtemp(prefix="bffgate-fuzz-cfg-")) / "secret"
SECRET_FILE.write_text("a-secret-read-from-a-file-0123456789\n")
SECTIONS = {"server": config.ServerSettings, "oidc": config.OidcSettings,
            "session": config.SessionSettings, "cookie": config.CookieSettings,
            "redis": config.RedisSettings, "log": config.LogSettings}
ROUTE_KEYS = [f.name for f in dataclasses.fields(config.RouteSettings)]
GOOD = {"server": {"public_url": "https://app.example"},
        "oidc": {"issuer": "https://idp.example", "client_id": "bff", "client_secret": "s" * 32},
        "cookie": {"secret_keys": ["k" * 43]}, "session": {"store": "memory"},
        "routes": [{"prefix": "/api", "upstream": "http://127.0.0.1:9", "token": "user"}]}

scalars = st.one_of(
    st.sampled_from(["", "/api", "/", "https://app.example", "http://127.0.0.1:9", "user",
                     "none", "client", "memory", "redis", "strict", "lax", "10s", "5m", "1MiB",
                     "-1", "0", "1e9", "true", "env:FUZZ_SET", "env:FUZZ_UNSET",
                     f"file:{SECRET_FILE}", "file:/nonexistent/x", "127.0.0.1:8080", "unix:/x",
                     "10.0.0.0/8", "not-a-cidr", "GET", "TRACE", "info", "json", "k" * 43]),
    st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False), st.booleans(),
    st.text(max_size=12))
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["a", "b", "prefix", "url"]), scalars,
                                   max_size=2))


def keys_of(cls: Any) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([f.name for f in dataclasses.fields(cls)]),
                     st.sampled_from(["unknown", "Issuer", "client-id"]))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {s: dict(v) for s, v in GOOD.items() if s != "routes"} \
        if draw(st.booleans()) else {}
    for name in draw(st.lists(st.sampled_from([*SECTIONS, "bogus"]), max_size=4)):
        cls = SECTIONS.get(name, config.LogSettings)
        doc.setdefault(name, {}).update(draw(st.dictionaries(keys_of(cls), values, max_size=3)))
    routes = draw(st.lists(st.dictionaries(st.sampled_from([*ROUTE_KEYS, "bogus"]), values,
                                           max_size=5), max_size=2))
    if draw(st.booleans()):
        routes.append(dict(GOOD["routes"][0]))
    if routes:
        doc["routes"] = routes
    return doc


@st.composite
def near_good(draw: st.DrawFn) -> dict[str, Any]:
    """A working file with one key changed (or added): most of these still load."""
    doc: dict[str, Any] = {s: (dict(v) if isinstance(v, dict) else [dict(r) for r in v])
                           for s, v in GOOD.items()}
    name = draw(st.sampled_from([*SECTIONS, "routes"]))
    if name == "routes":
        doc["routes"][0][draw(st.sampled_from(ROUTE_KEYS))] = draw(values)
    else:
        doc.setdefault(name, {})[draw(keys_of(SECTIONS[name]))] = draw(values)
    return doc


def _toml(doc: dict[str, Any]) -> str:
    lines = []
    for section, table in doc.items():
        if section == "routes":
            continue
        lines.append(f"[{section}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()]
    for route in doc.get("routes", []):
        lines.append("[[routes]]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in route.items()]
    return "\n".join(lines) + "\n"


environments = st.dictionaries(
    st.one_of(st.sampled_from(["BFFGATE_SERVER__LISTEN", "BFFGATE_OIDC__CLIENT_SECRET",
                               "BFFGATE_COOKIE__SECRET_KEYS", "BFFGATE_ROUTES",
                               "BFFGATE_SESSION__IDLE_TIMEOUT", "BFFGATE_BOGUS__X",
                               "BFFGATE_SERVER__BOGUS", "BFFGATE_SERVER__TRUSTED_PROXIES",
                               "BFFGATE_REDIS__SENTINEL", "BFFGATE_"]),
              st.from_regex(r"BFFGATE_[A-Z_]{1,12}__[A-Z_]{1,12}", fullmatch=True)),
    st.one_of(st.text(max_size=20), st.sampled_from(['[{"prefix": "/x"}]', "[]", "{}", "[1]",
                                                     '["a", "b"]', "60", "env:FUZZ_SET"])),
    max_size=3)


def _load(path: Path, environ: dict[str, str]) -> Settings | ConfigError:
    try:
        return load_settings(path, environ={**environ, "FUZZ_SET": "from-env-" + "x" * 32})
    except ConfigError as exc:
        return exc


@given(st.one_of(documents(), near_good()), environments, st.booleans())
def test_loader_returns_settings_or_one_config_error_naming_keys(
        doc: dict[str, Any], environ: dict[str, str], garble: bool) -> None:
    text = _toml(doc)
    if garble:  # also a file that is not TOML at all
        text = text.replace("=", "", 1) + "[["
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bffgate.toml"
        path.write_text(text)
        result = _load(path, environ)
        again = _load(path, environ)
    if isinstance(result, ConfigError):
        assert result.messages and all(isinstance(m, str) and m for m in result.messages)
        for message in result.messages:  # every line names a key, variable or the file
            head = message.split(":", 1)[0]
            assert message.startswith(("config file", "BFFGATE_")) or (
                head and " " not in head.strip()), message
        assert isinstance(again, ConfigError) and again.messages == result.messages
        return
    assert again == result  # deterministic: the same input loads to the same settings
    for route in result.routes:
        assert route.prefix.startswith("/")
        assert route.upstream.split("://", 1)[0] in ("http", "https")
    assert result.cookie.secret_keys
    assert result.public_origin.startswith(("https://", "http://"))
