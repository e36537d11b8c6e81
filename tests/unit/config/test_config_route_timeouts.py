"""Unit tests for a route's timeouts (issue 11 item 4): ``timeout`` as the shorthand for
``response_timeout`` and ``idle_timeout``, ``connect_timeout``'s default, ``idle_timeout =
0`` for no idle limit, and every refused value named by its key."""

from __future__ import annotations

from typing import Any

import pytest

from bffgate.app import _routes
from bffgate.config import ConfigError, load_settings
from bffgate.proxy.timeouts import Timeouts

BASE: dict[str, Any] = {
    "server": {"public_url": "https://app.example.com"},
    "oidc": {"issuer": "https://idp.example.com", "client_id": "bffgate",
             "client_secret": "s3cret-value"},
    "cookie": {"secret_keys": ["k" * 32]},
}


def _route(**extra: Any) -> dict[str, Any]:
    return {"prefix": "/api", "upstream": "http://api:8000", "token": "user", **extra}


def _timeouts(environ: dict[str, str] | None = None, **extra: Any) -> Timeouts:
    settings = load_settings(environ=environ or {},
                             overrides={**BASE, "routes": [_route(**extra)]})
    return _routes(settings).routes[0].timeouts


def _errors(**extra: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, overrides={**BASE, "routes": [_route(**extra)]})
    return info.value.messages


def test_defaults_are_todays() -> None:
    """Nothing set: 5 s to connect, 30 s to the headers and between body bytes, as before."""
    assert _timeouts() == Timeouts(connect=5.0, response=30.0, idle=30.0)


def test_timeout_is_the_shorthand() -> None:
    assert _timeouts(timeout=3) == Timeouts(connect=3.0, response=3.0, idle=3.0)
    assert _timeouts(timeout=60) == Timeouts(connect=5.0, response=60.0, idle=60.0)


def test_each_key_overrides_the_shorthand() -> None:
    assert _timeouts(timeout=10, connect_timeout=0.5, response_timeout="2s",
                     idle_timeout="5m") == Timeouts(connect=0.5, response=2.0, idle=300.0)
    # Only the one given changes: idle_timeout alone leaves the response timeout at 30 s.
    assert _timeouts(idle_timeout=120) == Timeouts(connect=5.0, response=30.0, idle=120.0)


def test_idle_timeout_0_is_no_idle_limit() -> None:
    assert _timeouts(timeout=2, idle_timeout=0) == Timeouts(connect=2.0, response=2.0,
                                                            idle=None)


def test_from_the_environment() -> None:
    routes = '[{"prefix": "/api", "upstream": "http://api:8000", "token": "user", ' \
             '"response_timeout": "500ms", "idle_timeout": "0"}]'
    settings = load_settings(environ={"BFFGATE_ROUTES": routes}, overrides=BASE)
    assert _routes(settings).routes[0].timeouts == Timeouts(5.0, 0.5, None)


@pytest.mark.parametrize(("extra", "message"), [
    ({"timeout": 0}, "routes[0].timeout: must be positive"),
    ({"timeout": -1}, "routes[0].timeout: must be positive"),
    ({"connect_timeout": 0}, "routes[0].connect_timeout: must be positive"),
    ({"connect_timeout": -2.5}, "routes[0].connect_timeout: must be positive"),
    ({"response_timeout": 0}, "routes[0].response_timeout: must be positive"),
    ({"idle_timeout": -1},
     "routes[0].idle_timeout: must not be negative (seconds; 0 for no idle limit)"),
    ({"idle_timeout": float("inf")},
     "routes[0].idle_timeout: must be a finite number of seconds (0 for no idle limit)"),
    ({"response_timeout": float("nan")},
     "routes[0].response_timeout: must be a finite number of seconds"),
    ({"idle_timeout": "soon"}, "routes[0].idle_timeout: expected a number"),
], ids=["timeout-0", "timeout-negative", "connect-0", "connect-negative", "response-0",
        "idle-negative", "idle-inf", "response-nan", "idle-not-a-number"])
def test_refused_values_name_the_key(extra: dict[str, Any], message: str) -> None:
    errors = _errors(**extra)
    assert any(e.startswith(message) for e in errors), errors
