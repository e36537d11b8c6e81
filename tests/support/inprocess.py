"""The whole gateway in-process for the integration tier: httpx ASGITransport, a frozen
clock, bffgate's development IdP in-process as the OpenID provider (which a test can take
down), a recording fake upstream, and the memory store or a real redis-server. Time moves
only when a test says so, so refresh, expiry and IdP outages are exercised exactly."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bffgate.app import Gateway
from bffgate.clock import FrozenClock
from bffgate.config import load_settings
from bffgate.demo.devidp import create_dev_idp
from support.redis import RedisServer

ISSUER = "https://idp.test"
PUBLIC = "https://app.test"
CLIENT, SECRET = "bff", secrets.token_urlsafe(24)
AT_TTL = 300


@dataclass
class FakeResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]

    async def body(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c

    async def close(self) -> None:
        return None


@dataclass
class FakeUpstream:
    """Records what the gateway forwards; answers with a small JSON body."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    fail: Exception | None = None

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None, timeout: float) -> FakeResponse:
        data = b""
        if body is not None:
            async for chunk in body:
                data += chunk
        self.seen.append({"method": method, "url": url, "body": data,
                          "headers": {k.decode(): v.decode() for k, v in headers}})
        if self.fail:
            raise self.fail
        return FakeResponse(200, [(b"content-type", b"application/json"),
                                  (b"set-cookie", b"up=1")], [b'{"ok":', b" true}"])

    async def close(self) -> None:
        return None


class IdpSwitch(httpx.AsyncBaseTransport):
    """The IdP's in-process transport, which a test can take down and bring back."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("IdP down", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Harness:
    gw: Gateway
    clock: FrozenClock
    idp_app: Any
    idp: IdpSwitch
    upstream: FakeUpstream
    browser: httpx.AsyncClient

    async def login(self, user: str = "alice", return_url: str = "/app") -> httpx.Response:
        r = await self.browser.get("/bff/login", params={"returnUrl": return_url})
        assert r.status_code == 302, r.text
        return await self.browser.get(await self.sign_in_at_idp(r.headers["location"], user))

    async def sign_in_at_idp(self, authorize_url: str, user: str) -> str:
        """Submit the dev IdP's sign-in form; the callback URL it redirects to."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.idp_app),
                                     base_url=ISSUER) as idp_browser:
            form = await idp_browser.get(authorize_url)
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                     form.text))
            done = await idp_browser.post("/authorize", data={**fields, "username": user})
        assert done.status_code in (302, 303), done.text
        return done.headers["location"]

    async def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF": "1", **kw.pop("headers", {})}
        return await self.browser.request(method, path, headers=headers, **kw)


@asynccontextmanager
async def running_gateway(store: str) -> AsyncIterator[Harness]:
    """A started gateway with ``store`` ("memory" or "redis": its own redis-server)."""
    clock = FrozenClock(1_800_000_000.0)
    idp_app = create_dev_idp(ISSUER, CLIENT, SECRET, redirect_uris=[PUBLIC + "/bff/callback"],
                             post_logout_redirect_uris=[PUBLIC + "/"], access_token_ttl=AT_TTL,
                             now=clock.now)
    redis: RedisServer | None = None
    store_cfg: dict[str, Any] = {"store": "memory", "refresh_ahead": 60}
    redis_cfg: dict[str, Any] = {}
    if store == "redis":
        redis = RedisServer().start()
        store_cfg["store"] = "redis"
        redis_cfg = {"url": redis.url}
    try:
        settings = load_settings(None, environ={}, overrides={
            "server": {"public_url": PUBLIC},
            "oidc": {"issuer": ISSUER, "client_id": CLIENT, "client_secret": SECRET,
                     "id_token_algs": ["ES256"]},
            "session": store_cfg, "redis": redis_cfg,
            "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
            "routes": [{"prefix": "/api", "upstream": "http://upstream.test", "token": "user"}],
        })
        idp = IdpSwitch(idp_app)
        upstream = FakeUpstream()
        gw = Gateway(settings, clock=clock, idp_transport=idp, upstream_factory=lambda: upstream)
        await gw.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.public),
                                         base_url=PUBLIC) as browser:
                yield Harness(gw, clock, idp_app, idp, upstream, browser)
        finally:
            await gw.stop()
    finally:
        if redis:
            redis.close()


def bearer(h: Harness) -> str:
    """The Authorization header the upstream saw last."""
    return str(h.upstream.seen[-1]["headers"]["authorization"])
