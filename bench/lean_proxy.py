"""The lean Python baseline of bench/compare.py: how cheap can a Python session proxy be?

    python bench/lean_proxy.py --port P --upstream http://127.0.0.1:U --redis-port R

A raw ASGI app (no framework) under uvicorn with httptools and uvloop, one aiohttp
client session (keep-alive pool) to the upstream, and ONE Redis GET per call: the value
of the ``lean`` cookie names the key ``lean:s:<value>`` whose value is the access token,
sent upstream as ``Authorization: Bearer``. No other check of any kind: no cookie
signature, no expiry, no CSRF, no path or header policy, no metrics, no log line. It is a
floor for "Python + one Redis round trip + one upstream hop", not a gateway.

A call without a session is answered 401. Prints ``READY`` on stdout once listening;
stops on SIGTERM.
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import uvicorn

COOKIE = b"lean="
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer",
              b"upgrade", b"proxy-authorization", b"proxy-authenticate", b"cookie", b"host"}


def make_app(upstream: str, redis_port: int) -> Any:
    state: dict[str, Any] = {}

    async def lifespan(receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                state["http"] = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=512),
                    cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                    skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))
                state["redis"] = aioredis.Redis(host="127.0.0.1", port=redis_port)
                await send({"type": "lifespan.startup.complete"})
                print("READY", flush=True)
            elif msg["type"] == "lifespan.shutdown":
                await state["http"].close()
                await state["redis"].aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def reply(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        sid = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                for part in value.split(b";"):
                    part = part.strip()
                    if part.startswith(COOKIE):
                        sid = part[len(COOKIE):]
        token = await state["redis"].get(b"lean:s:" + sid) if sid else None
        if token is None:
            await reply(send, 401, b"no session\n")
            return
        body = b""
        more = True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k not in HOP_BY_HOP}
        headers["Authorization"] = "Bearer " + token.decode()
        url = upstream + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        async with state["http"].request(scope["method"], url, headers=headers,
                                         data=body or None) as resp:
            data = await resp.read()
            out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
                   if k.lower().encode() not in HOP_BY_HOP and k.lower() != "content-length"]
            out.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": resp.status, "headers": out})
            await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    args = p.parse_args()
    uvicorn.run(make_app(args.upstream.rstrip("/"), args.redis_port), host="127.0.0.1",
                port=args.port, http="httptools", loop="uvloop", lifespan="on",
                log_level="warning", access_log=False, server_header=False, date_header=False)


if __name__ == "__main__":
    main()
