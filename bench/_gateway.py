"""One bffgate gateway worker for the benchmark, run in its own process.

    python bench/_gateway.py --port P --upstream http://127.0.0.1:U --redis-port R \
        --client aiohttp|httpx|httpx-aiohttp [--log-level warning|info] [--asyncio-loop]
        [--cprofile FILE]

Builds Settings the way a deployment would (Redis store, one ``/api`` user route), creates
ONE session directly through the session service (no IdP involved: the issuer
http://127.0.0.1:1 is never contacted) and prints its cookie value as the first line on
stdout, then serves the public app with bffgate's own server (uvicorn + httptools, on the
loop asyncio.run() gives, like `bffgate serve`) until SIGTERM. Audit lines (info level)
follow on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

CLIENTS = ("httptools", "aiohttp", "httpx", "httpx-aiohttp")


def upstream_factory(name: str) -> Callable[[], Any]:
    from httpx_upstream import HttpxUpstream  # bench/, beside this script

    from bffgate.proxy.forward import AiohttpUpstream
    from bffgate.proxy.h1client import H1Upstream

    if name == "httptools":
        return H1Upstream
    if name == "aiohttp":
        return AiohttpUpstream
    if name == "httpx":
        return HttpxUpstream
    if name == "httpx-aiohttp":
        import httpx
        from httpx_aiohttp import AiohttpTransport

        # httpx ignores AsyncClient(limits=...) when a transport is given, so the pool
        # size goes to the transport (same 512 as the other two candidates).
        def make() -> Any:
            limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
            return HttpxUpstream(transport=AiohttpTransport(limits=limits, trust_env=False))

        return make
    raise SystemExit(f"unknown client {name!r} (one of {', '.join(CLIENTS)})")


def bench_overrides(port: int, redis_url: str, upstream: str,
                    **session: Any) -> dict[str, Any]:
    """The config every in-process bench gateway runs: one /api route (token = "user") to
    ``upstream``, Redis sessions, a dummy issuer that is never contacted."""
    return {
        "server": {"public_url": f"http://127.0.0.1:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": ""},
        "oidc": {"issuer": "http://127.0.0.1:1", "client_id": "bench",
                 "client_secret": "bench-client-secret"},
        "session": {"store": "redis", **session},
        "redis": {"url": redis_url},
        "cookie": {"secret_keys": ["bench-cookie-key-0123456789abcdefghijklmnop"]},
        "routes": [{"prefix": "/api", "upstream": upstream, "token": "user"}],
    }


async def started_gateway(settings: Any, client: Callable[[], Any]) -> Any:
    """A started Gateway forwarding with ``client``, one hot session created through its
    session service, the session cookie printed on stdout (the bench parent reads that
    line), and the collector set as ``bffgate serve`` sets it once started."""
    from bffgate.app import Gateway
    from bffgate.server import tune_gc
    from bffgate.session.model import NewTokens

    gw = Gateway(settings, upstream_factory=client)
    await gw.start(warm_idp=False)
    cookie, _ = await gw.sessions.create(
        NewTokens("bench-access-token", None, None, time.time() + 3600),
        sub="bench", idp_sid=None, claims={"sub": "bench"})
    sys.stdout.write(cookie + "\n")
    sys.stdout.flush()
    tune_gc()
    return gw


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--client", choices=CLIENTS, default="httptools")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--asyncio-loop", action="store_true",
                   help="run on the plain asyncio loop instead of uvloop (as `bffgate serve` "
                        "does when uvloop is not installed)")
    p.add_argument("--cprofile", help="write cProfile stats here at shutdown")
    args = p.parse_args()

    from bffgate.config import load_settings
    from bffgate.logs import configure_logging
    from bffgate.server import serve_all

    configure_logging(args.log_level)
    listen = f"127.0.0.1:{args.port}"
    settings = load_settings(None, environ={}, overrides=bench_overrides(
        args.port, f"redis://127.0.0.1:{args.redis_port}/0", args.upstream))

    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()

    async def run() -> None:
        gw = await started_gateway(settings, upstream_factory(args.client))
        if profiler is not None:
            profiler.enable()
        try:
            await serve_all([(gw.public, listen)], graceful=2.0)
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.cprofile)
            await gw.stop()

    if args.asyncio_loop:
        asyncio.run(run())
    else:
        # exactly like `bffgate serve`: uvloop when installed (bffgate.server.run)
        from bffgate.server import run as run_like_serve

        run_like_serve(run())

if __name__ == "__main__":
    main()
