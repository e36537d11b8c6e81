"""The development IdP for bench/refresh_storm.py, counting refresh-token grants.

    python bench/_storm_idp.py --port P --client-id ID --client-secret S
        --redirect-uri URI [--redirect-uri URI ...] [--post-logout-redirect-uri URI ...]
        [--access-token-ttl 6]

Runs ``bffgate.demo.devidp.create_dev_idp`` (refresh tokens rotate on every use; a reused
one burns the grant) under uvicorn on 127.0.0.1, wrapped in a small ASGI middleware that
counts ``POST /token`` requests whose urlencoded body has ``grant_type=refresh_token``
(the body is passed to the app unchanged) and serves ``GET /bench/stats``:

    {"refresh_grants": n, "refresh_ok": n, "last_token_at": unix_time_or_null}

and ``POST /bench/active`` (body: an access token) answering ``{"active": true|false}``: the
IdP's own view (signature, expiry, and not revoked: a reused refresh token revokes its whole
grant, access tokens included). The bench's upstream asks it for every call, like a resource
server that introspects, so a burned grant shows as failed calls at once.

``refresh_ok`` counts refresh grants answered 200; ``last_token_at`` is the wall-clock time
of the last successful token response (code or refresh grant), so the bench can time its
storms from when the current access token was really issued. Counting happens here, at the
IdP, never in the gateway. Issuer: ``http://127.0.0.1:P``. Not for anything but benching.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from bffgate.demo.devidp import create_dev_idp

Scope = dict[str, Any]
Message = dict[str, Any]


class GrantCounter:
    """Pure ASGI middleware: counts refresh grants, serves /bench/stats."""

    def __init__(self, app: Any, is_active: Any = None) -> None:
        self.app = app
        self.is_active = is_active  # access token -> bool (the IdP's own check)
        self.refresh_grants = 0
        self.refresh_ok = 0
        self.last_token_at: float | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/bench/stats" and method == "GET":
            await self._stats(send)
            return
        if path == "/bench/active" and method == "POST" and self.is_active is not None:
            await self._active(receive, send)
            return
        if path != "/token" or method != "POST":
            await self.app(scope, receive, send)
            return
        # Buffer the whole request body, then replay it to the app unchanged.
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        is_refresh = form.get("grant_type") == "refresh_token"
        if is_refresh:
            self.refresh_grants += 1

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            message: Message = await receive()
            return message

        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                if message["status"] == 200:
                    self.last_token_at = time.time()
                    if is_refresh:
                        self.refresh_ok += 1
            await send(message)

        await self.app(scope, replay, watch)

    async def _active(self, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        active = bool(self.is_active(body.decode("ascii", "replace").strip()))
        await self._json(send, {"active": active})

    async def _stats(self, send: Any) -> None:
        await self._json(send, {"refresh_grants": self.refresh_grants,
                                "refresh_ok": self.refresh_ok,
                                "last_token_at": self.last_token_at})

    async def _json(self, send: Any, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"cache-control", b"no-store"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", action="append", required=True)
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[])
    parser.add_argument("--access-token-ttl", type=int, default=6)
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    app = create_dev_idp(issuer, args.client_id, args.client_secret,
                         redirect_uris=args.redirect_uri,
                         post_logout_redirect_uris=args.post_logout_redirect_uri,
                         access_token_ttl=args.access_token_ttl)
    # the token service behind POST /token: its _active_access is the IdP's own check
    tokens = next(r.endpoint.__self__ for r in app.routes  # type: ignore[attr-defined]
                  if getattr(r, "path", None) == "/token")
    uvicorn.run(GrantCounter(app, lambda t: tokens._active_access(t) is not None),
                host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
