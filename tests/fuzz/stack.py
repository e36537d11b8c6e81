"""The fuzz target: redis-server, the oidc-provider test IdP, a recording upstream and
``bffgate serve``, all on 127.0.0.1, built from the test suite's process helpers, with a
logged-in session whose tokens are the secrets no response may carry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from fuzz.rawgen import Context
from support.browser import Browser
from support.e2e import (
    CLIENT_ID,
    CLIENT_SECRET,
    COOKIE_KEY,
    client_meta,
    login,
    read_session_tokens,
)
from support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.redis import RedisServer
from support.upstream import EchoUpstream

ROUTE_TIMEOUT = 2.0  # every route's upstream timeout, and the IdP's http_timeout
UPSTREAM_BASES = ("/api", "/pub", "/opt")  # what each route may reach at the upstream
MARK = "x-fuzz-upstream"  # set by the recording upstream on every answer


class RecordingUpstream(EchoUpstream):
    """The e2e echo upstream, made fuzz-proof: every request is recorded and answered 200
    (it never errors, so any 5xx is the gateway's), and TRACE/TRACK are echoed back the way
    RFC 9110 9.3.8 says, headers and all: a bearer forwarded on them comes back."""

    aborted = 0

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                self.aborted += 1  # the gateway gave up mid-body: nothing was run
                return
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        self.seen.append({"method": scope["method"], "path": path, "headers": headers,
                          "at": time.monotonic(),
                          "body_sha256": hashlib.sha256(body).hexdigest(),
                          "body_len": len(body)})
        if "/big" in path:  # a large streamed answer, for clients that go away mid-way
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream"),
                                    (MARK.encode(), b"1")]})
            for _ in range(32):
                await send({"type": "http.response.body", "body": b"z" * 16384,
                            "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["method"] in ("TRACE", "TRACK"):
            echo = f"{scope['method']} {path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers)
            payload, ctype = echo.encode("latin-1"), b"message/http"
        else:
            payload = json.dumps({"path": path, "body_len": len(body)}).encode()
            ctype = b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype), (MARK.encode(), b"1")]})
        await send({"type": "http.response.body", "body": payload})


@dataclass(repr=False)
class Stack:
    """redis-server + oidc-provider + recording upstream + ``bffgate serve``, and a session."""

    redis: RedisServer
    idp: OidcProviderProcess
    upstream: RecordingUpstream
    gateway: GatewayProcess
    secrets: dict[str, str] = field(default_factory=dict)
    session_cookie: str = ""
    sub: str = ""  # the session's user, and its id in the admin API
    admin_id: str = ""

    @classmethod
    def start(cls, **server: Any) -> Stack:
        port, admin = new_ports()
        redis = RedisServer().start()
        idp = OidcProviderProcess([client_meta(port)], access_token_ttl=6 * 3600)
        upstream = RecordingUpstream()
        try:
            idp.start()
            upstream.start()
            config = gateway_config(
                port=port, admin_port=admin, issuer=idp.issuer, client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET, redis_url=redis.url, upstream=upstream.url,
                cookie_key=COOKIE_KEY, server={"max_body_size": "64KiB", **server},
                oidc={"http_timeout": ROUTE_TIMEOUT},
                session={"idle_timeout": "8h", "refresh_ahead": 60},
                routes=[
                    {"prefix": "/api", "upstream": upstream.url, "token": "user",
                     "timeout": ROUTE_TIMEOUT},
                    {"prefix": "/public", "upstream": upstream.url + "/pub", "token": "none",
                     "strip_prefix": True, "timeout": ROUTE_TIMEOUT},
                    {"prefix": "/opt", "upstream": upstream.url, "token": "user_optional",
                     "timeout": ROUTE_TIMEOUT},
                ])
            gateway = GatewayProcess(config).start()
        except BaseException:
            upstream.stop()
            idp.close()
            redis.close()
            raise
        stack = cls(redis, idp, upstream, gateway)
        stack.secrets = {CLIENT_SECRET: "client_secret", COOKIE_KEY: "cookie_key",
                         ADMIN_TOKEN: "admin_token"}
        asyncio.run(stack.login())
        return stack

    async def login(self) -> None:
        """The scripted IdP login (no browser); the session's tokens become secrets."""
        browser = Browser(self.gateway.url)
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_client:
                resp = await login(browser, idp_client)
            assert resp.status_code == 302, resp.text
            self.session_cookie = browser.cookie("__Host-bffgate") or ""
        finally:
            await browser.aclose()
        session = read_session_tokens(self.redis.url, self.session_cookie)
        tokens = session["tokens"]
        self.sub = str(session["record"]["sub"])
        async with httpx.AsyncClient(trust_env=False, timeout=10) as admin:
            listed = await admin.get(self.gateway.admin_url + "/admin/sessions",
                                     params={"sub": self.sub},
                                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        listed.raise_for_status()
        self.admin_id = listed.json()["sessions"][-1]["id"]
        for kind, key in (("access_token", "at"), ("refresh_token", "rt"), ("id_token", "it")):
            value = tokens.get(key)
            if value:
                self.secrets[value] = kind
                if value.count(".") == 2:
                    self.secrets[value.rsplit(".", 1)[1]] = kind + ".signature"

    def close(self) -> None:
        self.gateway.terminate()
        self.upstream.stop()
        self.idp.close()
        self.redis.close()

    @property
    def context(self) -> Context:
        return Context(host=f"localhost:{self.gateway.port}",
                       session_cookie=self.session_cookie,
                       admin_host=f"127.0.0.1:{self.gateway.admin_port}",
                       admin_token=ADMIN_TOKEN, sub=self.sub, admin_id=self.admin_id)


def logged_errors(stack: Stack) -> list[dict[str, Any]]:
    """The gateway's error-level log lines (an unexpected exception is one)."""
    return [e for e in stack.gateway.events() if e.get("level") in ("error", "critical")]
