"""Unit tests for ``cookie.verify_keys``: verify-only cookie keys, same rules as secret_keys."""

from __future__ import annotations

from typing import Any

import pytest

from bffgate.config import ConfigError, load_settings

KEY, NEW = "k" * 32, "n" * 40
BASE: dict[str, Any] = {
    "server": {"public_url": "https://app.example.com"},
    "oidc": {"issuer": "https://idp.example.com", "client_id": "bffgate",
             "client_secret": "s3cret-value"},
    "cookie": {"secret_keys": [KEY]},
    "routes": [{"prefix": "/api", "upstream": "http://api:8000", "token": "user"}],
}


def _load(cookie: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    return load_settings(None, environ=environ or {},
                         overrides={**BASE, "cookie": {**BASE["cookie"], **cookie}})


def test_verify_keys_default_to_none() -> None:
    assert _load({}).cookie.verify_keys == ()


def test_verify_keys_are_secrets_and_may_come_from_the_environment() -> None:
    s = _load({"verify_keys": ["env:NEW_COOKIE_KEY"]}, {"NEW_COOKIE_KEY": NEW})
    assert [k.get() for k in s.cookie.verify_keys] == [NEW]
    assert NEW not in repr(s.cookie)


@pytest.mark.parametrize(("keys", "message"), [
    pytest.param([NEW, "v" * 31],
                 "cookie.verify_keys[1]: too short: use at least 32 random characters",
                 id="short"),
    pytest.param([""], "cookie.verify_keys[0]: too short: use at least 32 random characters",
                 id="empty"),
])
def test_verify_keys_follow_the_secret_key_length_rule(keys: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load({"verify_keys": keys})
    assert message in info.value.messages


def test_verify_keys_from_one_environment_variable() -> None:
    """BFFGATE_COOKIE__VERIFY_KEYS (how the Helm chart's extraEnv passes them): a JSON array."""
    s = _load({}, {"BFFGATE_COOKIE__VERIFY_KEYS": f'["{NEW}"]'})
    assert [k.get() for k in s.cookie.verify_keys] == [NEW]
