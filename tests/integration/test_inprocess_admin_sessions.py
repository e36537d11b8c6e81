"""Integration: the admin sessions API on the whole gateway in-process (support/inprocess.py),
once on the memory store and once on a real redis-server: two logins of one user from two
clients are listed apart (client_ip, user_agent), a proxied call counts as a refresh-free
use, and ending one by id or all by sub makes the cookies 401."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from support.inprocess import PUBLIC, Harness

pytestmark = pytest.mark.integration


@asynccontextmanager
async def client(h: Harness, ip: str, agent: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=h.gw.public, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC,
                                 headers={"user-agent": agent}) as c:
        yield c


async def sign_in(h: Harness, c: httpx.AsyncClient, user: str) -> None:
    r = await c.get("/bff/login", params={"returnUrl": "/app"})
    assert r.status_code == 302, r.text
    done = await c.get(await h.sign_in_at_idp(r.headers["location"], user))
    assert done.status_code in (302, 303), done.text


async def admin(h: Harness, method: str, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.gw.admin),
                                 base_url="http://admin") as a:
        return await a.request(method, path, **kw)  # type: ignore[arg-type]


async def test_list_then_revoke_by_id_and_by_sub(h: Harness) -> None:
    async with client(h, "10.1.0.1", "Agent/One") as one, \
            client(h, "10.1.0.2", "Agent/Two") as two:
        await sign_in(h, one, "kim")
        h.clock.advance(5)
        await sign_in(h, two, "kim")
        listed = (await admin(h, "GET", "/admin/sessions", params={"sub": "kim"})).json()
        sessions = listed["sessions"]
        assert [(s["client_ip"], s["user_agent"]) for s in sessions] == [
            ("10.1.0.1", "Agent/One"), ("10.1.0.2", "Agent/Two")]
        cookies = [c.cookies.get("__Host-bffgate") for c in (one, two)]
        assert all(cookies) and not any(str(v) in str(listed) for v in cookies)
        for c in (one, two):
            assert (await c.get("/api/x", headers={"X-CSRF": "1"})).status_code == 200
        r = await admin(h, "DELETE", f"/admin/sessions/{sessions[0]['id']}")
        assert r.json() == {"revoked": 1}
        assert (await one.get("/api/x", headers={"X-CSRF": "1"})).status_code == 401
        assert (await two.get("/api/x", headers={"X-CSRF": "1"})).status_code == 200
        r = await admin(h, "DELETE", "/admin/users/kim/sessions")
        assert r.json() == {"revoked": 1}
        assert (await two.get("/api/x", headers={"X-CSRF": "1"})).status_code == 401
        assert (await admin(h, "GET", "/admin/sessions", params={"sub": "kim"})).json() == {
            "sessions": []}


async def test_a_refresh_is_listed(h: Harness) -> None:
    """A proxied call past the refresh point refreshes through the IdP (session/refresh.py):
    the listing dates and counts it."""
    from bffgate.session.inventory import rfc3339

    async with client(h, "10.2.0.1", "Agent/R") as c:
        await sign_in(h, c, "lee")
        [before] = (await admin(h, "GET", "/admin/sessions", params={"sub": "lee"})).json()[
            "sessions"]
        assert before["refresh_count"] == 0 and before["refreshed_at"] is None
        h.clock.advance(270)  # past the refresh point (AT_TTL 300 - refresh_ahead 60, jitter)
        assert (await c.get("/api/x", headers={"X-CSRF": "1"})).status_code == 200
        [after] = (await admin(h, "GET", "/admin/sessions", params={"sub": "lee"})).json()[
            "sessions"]
    assert after["refresh_count"] == 1
    assert after["refreshed_at"] == rfc3339(h.clock.now())
    assert after["id"] == before["id"] and after["client_ip"] == "10.2.0.1"
