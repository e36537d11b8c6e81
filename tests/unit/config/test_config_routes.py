"""Unit tests for the route keys of issue 7 (``methods``, ``allow_matrix_params``): defaults,
coercion from TOML and the environment, and every validation message naming its key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bffgate.config import ConfigError, load_settings

BASE: dict[str, Any] = {
    "server": {"public_url": "https://app.example.com"},
    "oidc": {"issuer": "https://idp.example.com", "client_id": "bffgate",
             "client_secret": "s3cret-value"},
    "cookie": {"secret_keys": ["k" * 32]},
}


def _route(**extra: Any) -> dict[str, Any]:
    return {"prefix": "/api", "upstream": "http://api:8000", "token": "user", **extra}


def _load(*routes: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    return load_settings(environ=environ or {}, overrides={**BASE, "routes": list(routes)})


def _errors(*routes: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(*routes)
    return info.value.messages


def test_defaults() -> None:
    r = _load(_route()).routes[0]
    assert r.methods == ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    assert r.allow_matrix_params is False


def test_methods_and_matrix_from_toml_values() -> None:
    r = _load(_route(methods=["GET", "HEAD", "PROPFIND"], allow_matrix_params=True)).routes[0]
    assert r.methods == ("GET", "HEAD", "PROPFIND")
    assert r.allow_matrix_params is True


def test_methods_from_environment_routes() -> None:
    env = {"BFFGATE_ROUTES": json.dumps([_route(methods=["GET"], allow_matrix_params=True)])}
    s = load_settings(environ=env, overrides=BASE)
    assert s.routes[0].methods == ("GET",)
    assert s.routes[0].allow_matrix_params is True


@pytest.mark.parametrize(("methods", "fragment"), [
    pytest.param(["GET", "TRACE"], "must not contain TRACE", id="trace"),
    pytest.param(["TRACK"], "must not contain TRACK", id="track"),
    pytest.param(["CONNECT", "GET"], "must not contain CONNECT", id="connect"),
    pytest.param(["trace"], "must not contain trace", id="trace-lower-case"),
    pytest.param(["get"], "unknown method(s) get", id="lower-case"),
    pytest.param(["GET", "BREW"], "unknown method(s) BREW", id="made-up"),
    pytest.param(["GET "], "unknown method(s) GET ", id="padded"),
    pytest.param([], "must list at least one method", id="empty"),
])
def test_bad_methods_name_the_key(methods: list[str], fragment: str) -> None:
    messages = _errors(_route(), _route(prefix="/ro", methods=methods))
    assert any(m.startswith("routes[1].methods: ") and fragment in m for m in messages), messages


def test_methods_must_be_a_list_of_strings_and_matrix_a_bool() -> None:
    messages = _errors(_route(methods=3, allow_matrix_params="yes please"))
    assert any(m.startswith("routes[0].methods:") for m in messages), messages
    assert any(m.startswith("routes[0].allow_matrix_params:") for m in messages), messages


def test_prefix_with_semicolon_refused() -> None:
    messages = _errors(_route(prefix="/api;v=1"))
    assert any(m.startswith("routes[0].prefix:") for m in messages), messages
