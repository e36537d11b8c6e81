"""One bffgate gateway for bench/stack_candidates.py, in its own process: the real public
app (``Gateway.public``) behind a chosen HTTP server, with a chosen upstream client.

    python bench/_candidate_gateway.py --port P --upstream http://127.0.0.1:U \
        --redis-port R --server uvicorn|granian --client aiohttp|pyreqwest

Built like bench/_gateway.py (Redis store, one ``/api`` user route, ONE session created
directly through the session service, its cookie value printed as the first stdout line),
all on uvloop (bffgate.server.run). ``uvicorn``: bffgate's own ``serve_all`` (uvicorn +
httptools through bffgate's protocol subclasses, framing refusals included). ``granian``:
granian's embedded server (experimental API) in the same loop, ASGI without lifespan, one
Rust runtime thread, HTTP/1 only, WITHOUT bffgate's framing refusals (those live in the
uvicorn protocol subclasses): the server's cost, not a shippable configuration.
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from typing import Any


def upstream_factory(name: str) -> Callable[[], Any]:
    if name == "pyreqwest":
        from pyreqwest_upstream import PyreqwestUpstream  # bench/, beside this script

        return PyreqwestUpstream
    from bffgate.proxy.forward import AiohttpUpstream

    return AiohttpUpstream


async def serve_granian(app: Any, port: int) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGINL,
                    runtime_threads=1, http=HTTPModes.http1, websockets=False,
                    log_enabled=False, backlog=1024)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    await server.serve()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    p.add_argument("--client", choices=("aiohttp", "pyreqwest"), default="aiohttp")
    args = p.parse_args()

    from _gateway import bench_overrides, started_gateway  # bench/, beside this script

    from bffgate.config import load_settings
    from bffgate.logs import configure_logging
    from bffgate.server import run, serve_all

    configure_logging("warning")
    listen = f"127.0.0.1:{args.port}"
    settings = load_settings(None, environ={}, overrides=bench_overrides(
        args.port, f"redis://127.0.0.1:{args.redis_port}/0", args.upstream))

    async def serve() -> None:
        gw = await started_gateway(settings, upstream_factory(args.client))
        try:
            if args.server == "granian":
                await serve_granian(gw.public, args.port)
            else:
                await serve_all([(gw.public, listen)], graceful=2.0)
        finally:
            await gw.stop()

    run(serve())


if __name__ == "__main__":
    main()
