"""log.flush_interval: 0.1 s by default, durations with fractions, refused beyond 1 s or
below 0 by its key (a longer hold is more audit lines a crash would lose)."""

from __future__ import annotations

from typing import Any

import pytest

from bffgate.config import ConfigError
from support.config_cases import load


def _interval(value: Any = None) -> float:
    return load({"log": {} if value is None else {"flush_interval": value}}).log.flush_interval


def test_default_and_accepted_values() -> None:
    assert _interval() == pytest.approx(0.1)
    assert _interval("250ms") == pytest.approx(0.25)
    assert _interval(0) == 0 and _interval("1s") == 1


@pytest.mark.parametrize("value", ["1500ms", 2, -1])
def test_out_of_range_is_refused_by_its_key(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        _interval(value)
    assert "log.flush_interval" in str(info.value)
