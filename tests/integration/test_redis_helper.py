"""The test suite's own redis-server helper leaves no process behind."""

from __future__ import annotations

import contextlib

import pytest

from support.redis import RedisServer

pytestmark = pytest.mark.integration


def test_a_started_server_entered_as_a_context_is_stopped_once_and_for_all() -> None:
    """``with RedisServer().start()`` (or ``ExitStack.enter_context`` of it) used to start a
    second redis-server on the busy port: it exited, the first answered the readiness PING,
    and the helper then held the dead one, so the first outlived the test run."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(RedisServer().start())
        first = server.child
        assert first is not None and first.running
        assert server.start() is server and server.child is first  # no second process
        popen = first.popen
    assert popen is not None and popen.poll() is not None  # stopped on exit
