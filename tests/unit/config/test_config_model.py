"""Unit tests for bffgate.config.model: derived URLs, frozen settings, secrets that never
show, and the field metadata that drives reading (every field has a kind)."""

from __future__ import annotations

import pytest

from bffgate.config import Secret
from support.config_cases import KEY, load

# --- derived values, immutability -----------------------------------------------------------


def test_derived_urls() -> None:
    """redirect_uri is the public origin plus redirect_path; the login cookie is derived."""
    s = load({"server": {"public_url": "https://app.example.com:8443/"}})
    assert s.public_origin == "https://app.example.com:8443"
    assert s.redirect_uri == "https://app.example.com:8443/bff/callback"
    assert s.login_cookie_name == "__Host-bffgate-login"


def test_settings_are_frozen() -> None:
    """Settings are parsed once and cannot be changed afterwards."""
    s = load()
    with pytest.raises(AttributeError):
        s.server.listen = "0.0.0.0:1"  # type: ignore[misc]


# --- secrets never show -------------------------------------------------------------------


def test_secret_repr_is_masked() -> None:
    """Secret shows asterisks in repr and str; get() returns the value."""
    secret = Secret("hunter2-very-secret")
    assert repr(secret) == str(secret) == "Secret('**********')"
    assert f"{secret}" == "Secret('**********')"
    assert secret.get() == "hunter2-very-secret"


def test_secret_equality_and_truth() -> None:
    """Secrets compare by value and are falsy only when empty."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert not Secret("")
    assert Secret("x")


def test_settings_repr_shows_no_secret() -> None:
    """repr(Settings) (e.g. in a traceback) contains none of the secret values."""
    env = {"BFFGATE_SERVER__ADMIN_TOKEN": "admin-token-value-123",
           "BFFGATE_REDIS__URL": "redis://:redis-pass-value@r:6379/0"}
    text = repr(load(environ=env))
    for secret in ("s3cret-value", KEY, "admin-token-value-123", "redis-pass-value"):
        assert secret not in text
