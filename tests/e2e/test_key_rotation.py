"""E2E: rotating the cookie key with `cookie.verify_keys` logs nobody out, mid-rollout included.

Two `bffgate serve` replicas share one redis-server and one oidc-provider (tests/idp). The
rotation of README "Operations" has four key sets (start, new key verify-only, new key
promoted, old key dropped); the replicas leapfrog through them so that at every moment one
is exactly a step ahead of the other, as in a rolling update. At each pair of steps a
session is minted through each replica and both replicas must accept both cookies (200 on
/bff/user and on the proxy, never 401); sessions minted at earlier steps must stay accepted
by both as long as their signing key is still configured (until step 3, which README says
to take once `session.absolute_timeout` has passed since step 2).
(Before: `cookie.verify_keys` did not exist, so the only rotation was promoting the key in
one rollout, and the replica still on the old key set answered 401 to the new one's cookies.)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_ID, CLIENT_SECRET, client_meta, login
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.secrets_scan import remember
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e

OLD_KEY, NEW_KEY = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
remember("cookie_key", OLD_KEY)
remember("cookie_key", NEW_KEY)
SESSION_COOKIE = "__Host-bffgate"
STEPS: list[dict[str, list[str]]] = [
    {"secret_keys": [OLD_KEY]},                              # 0: before the rotation
    {"secret_keys": [OLD_KEY], "verify_keys": [NEW_KEY]},    # 1: new key verify-only
    {"secret_keys": [OLD_KEY, NEW_KEY]},                     # 2: promoted (newest last)
    {"secret_keys": [NEW_KEY]},                              # 3: old key dropped
]


def signs_with(step: int) -> str:
    return STEPS[step]["secret_keys"][-1]


def knows(step: int, key: str) -> bool:
    return key in STEPS[step]["secret_keys"] + STEPS[step].get("verify_keys", [])


class Replica:
    """One gateway replica on fixed ports, restarted with another key set per step."""

    def __init__(self, port: int, admin_port: int, issuer: str, redis_url: str,
                 upstream: str) -> None:
        self.port, self.admin_port = port, admin_port
        self.issuer, self.redis_url, self.upstream = issuer, redis_url, upstream
        self.step = -1
        self.proc: GatewayProcess | None = None

    def roll_to(self, step: int) -> None:
        if self.proc is not None:
            self.proc.terminate()
        config = gateway_config(port=self.port, admin_port=self.admin_port, issuer=self.issuer,
                                client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                redis_url=self.redis_url, upstream=self.upstream,
                                cookie_key=OLD_KEY, cookie=STEPS[step])
        self.proc = GatewayProcess(config).start()
        self.step = step

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc = None


@pytest.fixture(scope="module")
def ports() -> tuple[tuple[int, int], tuple[int, int]]:
    return (free_port(), free_port()), (free_port(), free_port())


@pytest.fixture(scope="module")
def rotation_idp(ports: tuple[tuple[int, int], tuple[int, int]]) -> Iterator[OidcProviderProcess]:
    meta: dict[str, Any] = client_meta(ports[0][0])
    extra = client_meta(ports[1][0])
    meta["redirect_uris"] += extra["redirect_uris"]
    meta["post_logout_redirect_uris"] += extra["post_logout_redirect_uris"]
    meta.pop("backchannel_logout_uri")
    meta.pop("backchannel_logout_session_required")
    with OidcProviderProcess([meta]) as op:
        yield op


@pytest.fixture
def replicas(ports: tuple[tuple[int, int], tuple[int, int]], rotation_idp: OidcProviderProcess,
             redis_server: RedisServer, upstream: EchoUpstream) -> Iterator[list[Replica]]:
    pair = [Replica(p, a, rotation_idp.issuer, redis_server.url, upstream.url) for p, a in ports]
    yield pair
    for r in pair:
        r.stop()


async def mint(replica: Replica) -> str:
    """A new session through ``replica`` (its own browser and IdP jar). Returns the cookie."""
    browser = Browser(replica.url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_jar:
            resp = await login(browser, idp_jar)
        assert resp.status_code == 302, resp.text
        cookie = browser.cookie(SESSION_COOKIE)
        assert cookie
        return cookie
    finally:
        await browser.aclose()


async def statuses(replica: Replica, cookie: str) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=replica.url, trust_env=False, timeout=10) as http:
        headers = {"X-CSRF": "1", "Cookie": f"{SESSION_COOKIE}={cookie}"}
        user = await http.get("/bff/user", headers=headers)
        api = await http.get("/api/rotation", headers=headers)
        return user.status_code, api.status_code


async def test_rolling_key_rotation_never_logs_anyone_out(replicas: list[Replica]) -> None:
    a, b = replicas
    b.roll_to(0)
    a.roll_to(1)
    minted: list[tuple[str, str, str]] = []  # (cookie, signing key, where)
    # Leapfrog: (a=1, b=0) → (a=1, b=2) → (a=3, b=2): always exactly one step apart.
    for moving, target in ((None, None), (b, 2), (a, 3)):
        if moving is not None and target is not None:
            moving.roll_to(target)
        steps = f"a@{a.step} b@{b.step}"
        for replica in (a, b):
            minted.append((await mint(replica), signs_with(replica.step),
                           f"minted by {'a' if replica is a else 'b'} at {steps}"))
        for cookie, key, where in minted:
            if not (knows(a.step, key) and knows(b.step, key)):
                continue  # old-key cookies after step 3: README's wait has not passed here
            for replica in (a, b):
                got = await statuses(replica, cookie)
                assert got == (200, 200), f"{where}, checked at {steps} on " \
                    f"{'a' if replica is a else 'b'}: {got}"
        # The cookies minted at this pair are always among those checked above.
        assert all(knows(a.step, k) and knows(b.step, k) for _, k, _ in minted[-2:])
