"""Unit tier: a request's log context bound by a test outside a request task (a sync test
calling the edge's bind_log_context, an ASGI call awaited in the test's own task) must not
reach the next test's log lines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bffgate.log_context import clear_request


@pytest.fixture(autouse=True)
def _no_request_log_context() -> Iterator[None]:
    clear_request()
    yield
    clear_request()
