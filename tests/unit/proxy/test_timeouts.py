"""Unit tests for a route's upstream timeouts: the ``timeout`` shorthand and its defaults."""

from __future__ import annotations

from bffgate.proxy.routes import Route
from bffgate.proxy.timeouts import Timeouts


def test_timeout_alone_behaves_as_before_the_split() -> None:
    assert Timeouts.of(30.0) == Timeouts(connect=5.0, response=30.0, idle=30.0)
    assert Timeouts.of(2.0) == Timeouts(connect=2.0, response=2.0, idle=2.0)


def test_given_values_win_over_the_shorthand() -> None:
    assert Timeouts.of(30.0, connect=1.0, response=4.0, idle=90.0) == Timeouts(1.0, 4.0, 90.0)
    assert Timeouts.of(30.0, response=4.0) == Timeouts(5.0, 4.0, 30.0)
    assert Timeouts.of(30.0, idle=90.0) == Timeouts(5.0, 30.0, 90.0)


def test_idle_0_is_no_idle_limit() -> None:
    assert Timeouts.of(3.0, idle=0.0).idle is None


def test_route_resolves_its_timeouts() -> None:
    r = Route("/events", "http://up:8000", "user", False, 10.0, idle_timeout=0.0,
              connect_timeout=0.5)
    assert r.timeouts == Timeouts(connect=0.5, response=10.0, idle=None)
    assert Route("/api", "http://up:8000", "user", False, 10.0).timeouts == Timeouts(5.0, 10.0,
                                                                                      10.0)
