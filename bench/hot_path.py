"""What does the gateway's OWN code cost per proxied call, sockets excluded?

Drives ``Gateway.public`` (the real ASGI app: request context, problem boundary, admission,
CSRF, cookie signature, session lookup through the near-cache, token, path checks, header
policy, metrics, the ``request.proxied`` audit line at the chosen log level) in a loop, in
one process, with a stub upstream client that answers 1 KB of JSON and a session in a real
redis-server. uvicorn's parser and aiohttp's client are left out, so this isolates what
bffgate's code adds; bench/compare.py measures the whole process under wrk.

    python bench/hot_path.py                       # 20,000 calls at log level info
    python bench/hot_path.py --calls 50000 --log-level warning
    python bench/hot_path.py --cprofile out.prof   # then: python -m pstats out.prof

Figure: process CPU time (user+sys) per call, median of 5 batches. The audit lines go to
/dev/null through the real logging pipeline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

BODY = b'{"items": [' + b",".join(b'{"id": %d, "name": "item-%04d"}' % (i, i)
                                  for i in range(36)) + b"]}"


class StubResponse:
    status = 200
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(BODY)).encode())]

    async def body(self) -> AsyncIterator[bytes]:
        yield BODY

    async def close(self) -> None:
        return None


class StubUpstream:
    async def send(self, method: str, url: str, headers: Any, body: Any,
                   timeout: Any) -> StubResponse:
        return StubResponse()

    async def close(self) -> None:
        return None


async def run(args: argparse.Namespace) -> None:
    from _gateway import bench_overrides  # bench/, beside this script

    from bffgate.app import Gateway
    from bffgate.config import load_settings
    from bffgate.logs import configure_logging
    from bffgate.session.model import NewTokens
    from support.redis import RedisServer

    configure_logging(args.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    redis = RedisServer().start()
    try:
        settings = load_settings(None, environ={}, overrides=bench_overrides(
            8080, redis.url, "http://127.0.0.1:9", near_cache=not args.no_near_cache))
        gw = Gateway(settings, upstream_factory=StubUpstream)
        await gw.start(warm_idp=False)
        cookie, _ = await gw.sessions.create(
            NewTokens("bench-access-token", None, None, time.time() + 3600),
            sub="bench", idp_sid=None, claims={"sub": "bench"})
        headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk"),
                   (b"accept", b"*/*"), (b"x-csrf", b"1"),
                   (b"cookie", f"__Host-bffgate={cookie}".encode())]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        def scope() -> dict[str, Any]:
            return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                    "method": "GET", "scheme": "http", "path": "/api/data",
                    "raw_path": b"/api/data", "query_string": b"", "root_path": "",
                    "headers": headers, "client": ("127.0.0.1", 50000),
                    "server": ("127.0.0.1", 8080)}

        app = gw.public
        for _ in range(500):  # warm-up: caches, pools, the near-cache entry
            await app(scope(), receive, send)
        assert set(statuses) == {200}, set(statuses)
        profiler = None
        if args.cprofile:
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        per_batch = []
        batch = args.calls // 5
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(batch):
                await app(scope(), receive, send)
            per_batch.append((time.process_time() - t0) / batch * 1e6)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        assert set(statuses) == {200}
        print(f"log level {args.log_level}, near-cache {'off' if args.no_near_cache else 'on'}: "
              f"{statistics.median(per_batch):.1f} µs CPU per call "
              f"(batches: {', '.join(f'{x:.1f}' for x in per_batch)})")
        await gw.stop()
    finally:
        redis.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--no-near-cache", action="store_true")
    ap.add_argument("--cprofile")
    args = ap.parse_args()
    from bffgate.server import run as on_gateway_loop  # uvloop when installed, as `serve`

    on_gateway_loop(run(args))


if __name__ == "__main__":
    main()
