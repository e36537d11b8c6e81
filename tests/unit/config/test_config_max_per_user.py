"""Unit tests for session.max_per_user (issue 13 part 1): unlimited by default, an integer
from TOML or the environment, a negative or non-integer value refused by its key."""

from __future__ import annotations

from typing import Any

import pytest

from bffgate.config import ConfigError
from support.config_cases import load


def _limit(environ: dict[str, str] | None = None, **session: Any) -> int:
    return load({"session": {"store": "memory", **session}}, environ).session.max_per_user


def test_unlimited_unless_set() -> None:
    assert _limit() == 0


def test_from_toml_and_environment() -> None:
    assert _limit(max_per_user=3) == 3
    assert _limit({"BFFGATE_SESSION__MAX_PER_USER": "2"}) == 2


@pytest.mark.parametrize("value", [-1, "many", 1.5])
def test_refused_values_name_the_key(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        _limit(max_per_user=value)
    assert any("session.max_per_user" in m for m in info.value.messages), info.value.messages
