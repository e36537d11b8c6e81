"""E2E: the admin sessions API and `bffgate sessions` against the real gateway (`bffgate
serve`), redis-server and oidc-provider (issue 13 part 1).

Two logins of one user from two clients (two source addresses, two User-Agents) are listed
with their own client_ip and user_agent and nothing secret; last_seen_at moves after a
proxied call with no Redis write beyond the load path's sliding TTL; ending one session by
id or all by sub makes their cookies 401; with session.max_per_user = 1 a second login
evicts the first (audit session.evicted); the CLI lists, shows and revokes (table, --json,
the "no sessions" line, exit codes)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login, read_session_tokens
from support.gateway import ADMIN_TOKEN, GatewayProcess, child_env, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.times import ts
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
COOKIE = "__Host-bffgate"


def bffgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bffgate", *args], capture_output=True,
                          text=True, timeout=60, env=child_env())


async def sign_in(gw: GatewayProcess, redis_url: str, user: str, *, source: str = "127.0.0.1",
                  agent: str = "e2e-browser") -> tuple[Browser, str, dict[str, Any]]:
    """A browser of its own (its own source address and User-Agent, its own IdP session)."""
    browser = Browser(gw.url)
    await browser.http.aclose()
    browser.http = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=source), follow_redirects=False,
        timeout=30, trust_env=False, headers={"user-agent": agent})
    async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_client:
        r = await login(browser, idp_client, redis_url, user=user)
    assert r.status_code == 302, r.text
    cookie = browser.cookie(COOKIE)
    assert cookie
    return browser, cookie, read_session_tokens(redis_url, cookie)


async def listed(gw: GatewayProcess, sub: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(trust_env=False) as c:
        r = await c.get(gw.admin_url + "/admin/sessions", params={"sub": sub}, headers=AUTH)
    assert r.status_code == 200, r.text
    return list(r.json()["sessions"])


def commands(redis_url: str) -> dict[str, int]:
    r = redis.Redis.from_url(redis_url)
    try:
        return {k.removeprefix("cmdstat_"): int(v["calls"])
                for k, v in r.info("commandstats").items()}
    finally:
        r.close()


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


# Commands that change data; pexpire is the load path's slide (inside its EVALSHA).
WRITES = {"set", "setex", "psetex", "getdel", "del", "unlink", "expire", "pexpire", "sadd",
          "srem", "hset", "hdel", "incr", "publish", "rename", "getex", "persist"}


async def test_two_clients_listed_apart_and_nothing_secret(gateway, redis_server) -> None:
    user = "erin-" + secrets.token_hex(3)
    a, cookie_a, rec_a = await sign_in(gateway, redis_server.url, user, source="127.0.0.2",
                                       agent="Mozilla/5.0 (X11) Firefox/133.0")
    b, cookie_b, rec_b = await sign_in(gateway, redis_server.url, user, source="127.0.0.3",
                                       agent="Mozilla/5.0 (Mac) Chrome/131.0")
    try:
        async with httpx.AsyncClient(trust_env=False) as c:
            r = await c.get(gateway.admin_url + "/admin/sessions", params={"sub": user},
                            headers=AUTH)
        sessions = r.json()["sessions"]
        assert [(s["client_ip"], s["user_agent"]) for s in sessions] == [
            ("127.0.0.2", "Mozilla/5.0 (X11) Firefox/133.0"),
            ("127.0.0.3", "Mozilla/5.0 (Mac) Chrome/131.0")]
        assert len({s["id"] for s in sessions}) == 2
        assert all(s["sub"] == user and s["idp_sid"] and s["refresh_count"] == 0
                   for s in sessions)
        # the audit log's session label joins the listing to the audit log; the key never shows
        assert [s["audit_session"] for s in sessions] == [rec_a["key"][:16], rec_b["key"][:16]]
        secrets_seen = [cookie_a, cookie_b, rec_a["key"], rec_b["key"]]
        for rec in (rec_a, rec_b):
            secrets_seen += [v for v in rec["tokens"].values() if isinstance(v, str)]
            secrets_seen.append(rec["record"]["logout"])
        for value in secrets_seen:
            assert value not in r.text
        assert "Set-Cookie" not in r.headers and r.headers["cache-control"] == "no-store"
    finally:
        await a.aclose()
        await b.aclose()


async def test_last_seen_moves_with_no_extra_redis_write(gateway, redis_server) -> None:
    user = "fay-" + secrets.token_hex(3)
    browser, _, _ = await sign_in(gateway, redis_server.url, user)
    try:
        [first] = await listed(gateway, user)
        assert ts(first["last_seen_at"]) == pytest.approx(ts(first["created_at"]), abs=0.05)
        await asyncio.sleep(1.6)  # past the near-cache's second
        before = commands(redis_server.url)
        called = time.time()
        calls = 0
        while time.time() - called < 1.5:  # a busy SPA: a call every 50 ms for 1.5 s
            assert (await browser.api("GET", "/api/seen")).status_code == 200
            calls += 1
            await asyncio.sleep(0.05)
        moved = delta(before, commands(redis_server.url))
        [after] = await listed(gateway, user)
        listing = delta(before, commands(redis_server.url))
        seen = ts(after["last_seen_at"])
        # The slide happened at the first call (+ at most one more a second later).
        assert called - 0.3 <= seen <= time.time() + 0.3, (after, called)
        assert seen > ts(first["last_seen_at"]) + 1.5
        assert ts(after["idle_expires_at"]) == pytest.approx(seen + 1800, abs=1.0)
        writes = {k: n for k, n in moved.items() if k in WRITES}
        # Every write is the load script's own slide (a PEXPIRE inside its EVALSHA), at most
        # one load a second per session (the near-cache), not one per call.
        assert set(writes) <= {"pexpire"}, moved
        assert 1 <= writes.get("pexpire", 0) <= moved.get("evalsha", 0) <= 3, (moved, calls)
        assert calls >= 10
        # Listing is a read (GET + PTTL, SMEMBERS, EXISTS): no write at all.
        assert {k: n for k, n in delta(moved, listing).items() if k in WRITES} == {}, listing
    finally:
        await browser.aclose()


async def test_revoke_by_id_then_by_sub(gateway, redis_server) -> None:
    user = "gus-" + secrets.token_hex(3)
    a, _, _ = await sign_in(gateway, redis_server.url, user, agent="first")
    b, _, _ = await sign_in(gateway, redis_server.url, user, agent="second")
    c_, _, _ = await sign_in(gateway, redis_server.url, user, agent="third")
    try:
        sessions = await listed(gateway, user)
        first = next(s for s in sessions if s["user_agent"] == "first")
        async with httpx.AsyncClient(trust_env=False) as c:
            shown = await c.get(gateway.admin_url + f"/admin/sessions/{first['id']}",
                                headers=AUTH)
            assert shown.json()["user_agent"] == "first"
            r = await c.delete(gateway.admin_url + f"/admin/sessions/{first['id']}",
                               headers=AUTH)
            assert r.json() == {"revoked": 1}
            assert (await a.api("GET", "/api/after")).status_code == 401
            assert (await b.api("GET", "/api/after")).status_code == 200
            again = await c.delete(gateway.admin_url + f"/admin/sessions/{first['id']}",
                                   headers=AUTH)
            assert again.status_code == 404
            assert again.headers["content-type"] == "application/problem+json"
            r = await c.delete(gateway.admin_url + f"/admin/users/{user}/sessions",
                               headers=AUTH)
            assert r.json() == {"revoked": 2}
        for br in (b, c_):
            assert (await br.api("GET", "/api/after")).status_code == 401
        assert await listed(gateway, user) == []
        revoked = [e for e in gateway.audit("session.revoked") if e.get("sub") == user]
        assert len(revoked) == 3 and {e["reason"] for e in revoked} == {"admin"}
    finally:
        for br in (a, b, c_):
            await br.aclose()


async def test_admin_refusals_are_problems(gateway) -> None:
    async with httpx.AsyncClient(trust_env=False) as c:
        r = await c.get(gateway.admin_url + "/admin/sessions")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = await c.get(gateway.admin_url + "/admin/sessions", headers=AUTH)
        assert r.status_code == 400 and "sub" in r.json()["detail"]
        r = await c.post(gateway.admin_url + "/admin/sessions", headers=AUTH)
        assert r.status_code == 405 and r.headers["allow"] == "GET, DELETE, HEAD"
        r = await c.get(gateway.admin_url + "/admin/sessions/nope", headers=AUTH)
        assert r.status_code == 404
        for r in (await c.get(gateway.admin_url + "/admin/openapi.json", headers=AUTH),):
            assert r.status_code == 200 and r.json()["openapi"] == "3.1.0"
            assert "/admin/users/{sub}/sessions" in r.json()["paths"]


def test_cli_lists_shows_and_revokes(gateway, redis_server) -> None:
    user = "hal-" + secrets.token_hex(3)
    cfg = str(gateway.config_path)
    none = bffgate("sessions", "list", "--sub", user, "--config", cfg)
    assert none.returncode == 0 and none.stdout.strip() == f"no sessions for sub {user}"
    asyncio.run(_two_logins(gateway, redis_server.url, user))
    table = bffgate("--config", cfg, "sessions", "list", "--sub", user)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["ID", "CREATED"] and len(lines) == 3
    assert "cli-one" in lines[1] and "cli-two" in lines[2]
    as_json = bffgate("sessions", "--config", cfg, "list", "--sub", user, "--json")
    docs = json.loads(as_json.stdout)["sessions"]
    assert [d["user_agent"] for d in docs] == ["cli-one", "cli-two"]
    assert lines[1].split()[0] == docs[0]["id"]
    shown = bffgate("sessions", "show", docs[0]["id"], "--config", cfg)
    assert shown.returncode == 0 and "user_agent" in shown.stdout and "cli-one" in shown.stdout
    shown_json = bffgate("sessions", "show", docs[0]["id"], "--json", "--config", cfg)
    assert json.loads(shown_json.stdout) == {**docs[0],
                                             "last_seen_at": json.loads(shown_json.stdout)[
                                                 "last_seen_at"],
                                             "idle_expires_at": json.loads(shown_json.stdout)[
                                                 "idle_expires_at"]}
    one = bffgate("sessions", "revoke", docs[0]["id"], "--config", cfg)
    assert one.returncode == 0 and one.stdout.strip() == "revoked 1 session(s)"
    missing = bffgate("sessions", "show", docs[0]["id"], "--config", cfg)
    assert missing.returncode == 3 and "no live session" in missing.stderr
    rest = bffgate("sessions", "revoke", "--sub", user, "--json", "--config", cfg)
    assert rest.returncode == 0 and json.loads(rest.stdout) == {"revoked": 1}
    again = bffgate("sessions", "revoke", "--sub", user, "--config", cfg)
    assert again.stdout.strip() == f"no sessions for sub {user}: nothing revoked"
    cli_events = [e for e in gateway.audit("session.revoked") if e.get("sub") == user]
    assert cli_events == []  # the CLI audits on its own stderr, not in the gateway's log
    assert '"reason": "cli"' in one.stderr or '"reason":"cli"' in one.stderr.replace(" ", "")


async def _two_logins(gw: GatewayProcess, redis_url: str, user: str) -> None:
    for agent in ("cli-one", "cli-two"):
        browser, _, _ = await sign_in(gw, redis_url, user, agent=agent)
        await browser.aclose()


CLIENT = "bff-max-per-user"


@pytest.fixture(scope="module")
def limited(upstream: EchoUpstream) -> Iterator[dict[str, Any]]:
    """A gateway with session.max_per_user = 1, its own Redis and OP client."""
    port, admin = free_port(), free_port()
    op = OidcProviderProcess([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{port}/bff/callback"],
        "post_logout_redirect_uris": [f"http://localhost:{port}/"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    }]).start()
    store = RedisServer().start()
    gw: GatewayProcess | None = None
    try:
        gw = GatewayProcess(gateway_config(
            port=port, admin_port=admin, issuer=op.issuer, client_id=CLIENT,
            client_secret=CLIENT_SECRET, redis_url=store.url, upstream=upstream.url,
            cookie_key=COOKIE_KEY, session={"store": "redis", "max_per_user": 1})).start()
        yield {"gw": gw, "redis": store}
    finally:
        if gw is not None:
            gw.terminate()
        op.close()
        store.close()


async def test_max_per_user_evicts_the_oldest(limited: dict[str, Any]) -> None:
    gw, url = limited["gw"], limited["redis"].url
    first, _, rec_first = await sign_in(gw, url, "ivy", agent="old-laptop")
    other, _, _ = await sign_in(gw, url, "jon", agent="someone-else")
    second, _, _ = await sign_in(gw, url, "ivy", agent="new-phone")
    try:
        r = await first.api("GET", "/api/old")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert (await second.api("GET", "/api/new")).status_code == 200
        assert (await other.api("GET", "/api/other")).status_code == 200
        assert [s["user_agent"] for s in await listed(gw, "ivy")] == ["new-phone"]
        evicted = gw.audit("session.evicted")
        assert [(e["sub"], e["reason"], e["session"]) for e in evicted] == [
            ("ivy", "max_per_user", rec_first["key"][:16])]
    finally:
        for br in (first, second, other):
            await br.aclose()
