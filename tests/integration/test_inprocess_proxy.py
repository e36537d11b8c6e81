"""Integration: the proxied call (endpoints/api.py, proxy/), after a login, with the whole
gateway in-process (support/inprocess.py)."""

from __future__ import annotations

import pytest

from bffgate.errors import UpstreamUnavailable
from support.inprocess import PUBLIC, Harness

pytestmark = pytest.mark.integration


async def test_login_user_and_proxy(h: Harness) -> None:
    r = await h.login(return_url="/app?x=1")
    assert r.status_code == 302 and r.headers["location"] == "/app?x=1"
    user = await h.api("GET", "/bff/user")
    assert user.status_code == 200 and user.json()["sub"] == "alice"
    r = await h.api("POST", "/api/items?q=1", content=b"payload",
                    headers={"origin": PUBLIC})
    assert r.status_code == 200 and r.json() == {"ok": True}
    seen = h.upstream.seen[-1]
    assert seen["url"] == "http://upstream.test/api/items?q=1"
    assert seen["body"] == b"payload"
    assert seen["headers"]["authorization"].startswith("Bearer ey")
    assert "cookie" not in seen["headers"] and "x-csrf" not in seen["headers"]
    assert "set-cookie" not in r.headers

async def test_upstream_failure_is_502_problem(h: Harness) -> None:
    await h.login()
    h.upstream.fail = UpstreamUnavailable(reason="upstream_connect_error")
    r = await h.api("GET", "/api/x")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
