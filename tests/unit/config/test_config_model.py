"""Unit tests for bffgate.config.model: derived URLs, frozen settings, secrets that never
show, and the field metadata that drives reading (every field has a kind)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from bffgate.config import (
    CookieSettings,
    LogSettings,
    OidcSettings,
    RedisSettings,
    RouteSettings,
    Secret,
    ServerSettings,
    SessionSettings,
)
from bffgate.config.model import ENUM, KIND, Kind, SessionStore, TokenMode, specs
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


# --- field metadata: the kind of each setting, enum values from the Literal only ----------


SETTINGS_CLASSES = [ServerSettings, OidcSettings, SessionSettings, CookieSettings,
                    RedisSettings, RouteSettings, LogSettings]


@pytest.mark.parametrize("cls", [pytest.param(c, id=c.__name__) for c in SETTINGS_CLASSES])
def test_every_setting_declares_its_kind(cls: type) -> None:
    """Each field carries a Kind in its metadata; an enum's values are its Literal's."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = specs(cls)[f.name]
        assert spec.kind is f.metadata[KIND]
        if spec.kind is Kind.ENUM:
            assert spec.choices == typing.get_args(hints[f.name])
        else:
            assert spec.choices == ()


def test_enum_values_are_written_once() -> None:
    """The allowed values of each enum come from its Literal type (no second table)."""
    assert specs(SessionSettings)["store"].choices == typing.get_args(SessionStore)
    assert specs(RouteSettings)["token"].choices == typing.get_args(TokenMode)
    assert specs(LogSettings)["level"].choices == ("debug", "info", "warning", "error")


def test_a_setting_without_a_kind_is_refused() -> None:
    """A field added without metadata fails loudly instead of being read by guesswork."""

    @dataclasses.dataclass(frozen=True)
    class Unmarked:
        retries: int = 3

    with pytest.raises(TypeError, match="'retries' has no kind"):
        specs(Unmarked)


def test_an_enum_setting_needs_a_literal() -> None:
    """ENUM on a plain str has no values to check against: a programming error."""

    @dataclasses.dataclass(frozen=True)
    class Loose:
        mode: str = dataclasses.field(default="a", metadata=ENUM)

    with pytest.raises(TypeError, match=r"Loose\.mode: an enum setting needs a Literal type"):
        specs(Loose)
