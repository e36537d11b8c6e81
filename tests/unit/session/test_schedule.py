"""Unit tests for the refresh schedule: the jitter is injected, bounded and seedable."""

from __future__ import annotations

from bffgate.session.model import NewTokens
from bffgate.session.schedule import MAX_JITTER, RefreshSchedule, random_jitter

NOW = 1_700_000_000.0


def _refresh_at(schedule: RefreshSchedule) -> float | None:
    return schedule.tokens(NewTokens("at", "rt", None, NOW + 3600), NOW).refresh_at


def test_an_injected_jitter_gives_an_exact_refresh_point() -> None:
    bounds: list[float] = []

    def jitter(bound: float) -> float:
        bounds.append(bound)
        return 2.0

    assert _refresh_at(RefreshSchedule(30, jitter)) == NOW + 3600 - 30 - 2.0
    assert bounds == [3.0]  # 10 % of refresh_ahead
    RefreshSchedule(600, jitter).tokens(NewTokens("at", None, None, None), NOW)
    assert bounds[-1] == MAX_JITTER


def test_a_seeded_jitter_repeats() -> None:
    a, b = RefreshSchedule(60, random_jitter(7)), RefreshSchedule(60, random_jitter(7))
    first = [_refresh_at(a) for _ in range(5)]
    assert first == [_refresh_at(b) for _ in range(5)]
    assert len(set(first)) > 1
    assert all(NOW + 3600 - 65 <= t <= NOW + 3600 - 60 for t in first if t is not None)
