"""What does OpenTelemetry tracing cost per proxied call, off and on?

Drives ``Gateway.public`` in-process (as bench/hot_path.py does: the real ASGI app, a stub
upstream client, a session in a real redis-server, the near-cache off so every call loads
the session from Redis) with ``telemetry.tracing`` off, then on (exporter ``none``: the
spans are made and ended, not sent; ``--ratio`` sets a parentbased_traceidratio sampler).

    python bench/tracing_cost.py                    # off and on, 20,000 calls each
    python bench/tracing_cost.py --ratio 0.01       # on, 1 % sampled
    python bench/tracing_cost.py --src /other/tree/src   # the same against another checkout

Figures: process CPU time per call (median of 5 batches; noisy on a busy machine) and the
number of Python function calls per proxied call (cProfile; exact, machine-independent:
the honest way to say "tracing off runs the same code"). Off, it also checks that nothing
was wrapped (no server span middleware, no traced store or upstream client).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


class StubResponse:
    status = 200
    headers = [(b"content-type", b"application/json"), (b"content-length", b"12")]

    async def body(self) -> Any:
        yield b'{"ok": true}'

    async def close(self) -> None:
        return None


class StubUpstream:
    async def send(self, method: str, url: str, headers: Any, body: Any,
                   timeout: Any) -> StubResponse:
        return StubResponse()

    async def close(self) -> None:
        return None


async def measure(tracing: bool, calls: int, token: str) -> dict[str, Any]:
    from bffgate.app import Gateway
    from bffgate.config import load_settings
    from bffgate.logs import configure_logging
    from bffgate.session.model import NewTokens
    from support.redis import RedisServer

    configure_logging("warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    redis = RedisServer().start()
    try:
        overrides: dict[str, Any] = {
            "server": {"public_url": "http://127.0.0.1:8080", "admin_listen": ""},
            "oidc": {"issuer": "http://127.0.0.1:1", "client_id": "bench",
                     "client_secret": "bench-client-secret"},
            "session": {"store": "redis" if token == "user" else "memory", "near_cache": False},
            "redis": {"url": redis.url},
            "cookie": {"secret_keys": ["bench-cookie-key-0123456789abcdefghijklmnop"]},
            "routes": [{"prefix": "/api", "upstream": "http://127.0.0.1:9", "token": token}],
        }
        if tracing:
            overrides["telemetry"] = {"tracing": True}
        gw = Gateway(load_settings(None, environ={}, overrides=overrides),
                     upstream_factory=StubUpstream)
        await gw.start(warm_idp=False)
        if not tracing:  # off wraps nothing
            assert type(gw.public).__name__ != "ServerSpans"
            assert type(gw.store).__name__ in ("RedisStore", "MemoryStore")
            assert not any("bffgate.telemetry.server" in m for m in sys.modules)
        cookie, _ = await gw.sessions.create(
            NewTokens("bench-access-token", None, None, time.time() + 3600),
            sub="bench", idp_sid=None, claims={"sub": "bench"})
        headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"bench"), (b"x-csrf", b"1"),
                   (b"cookie", f"__Host-bffgate={cookie}".encode()),
                   (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        def scope() -> dict[str, Any]:
            return {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
                    "path": "/api/data", "raw_path": b"/api/data", "query_string": b"",
                    "headers": headers, "client": ("127.0.0.1", 50000),
                    "server": ("127.0.0.1", 8080)}

        app = gw.public
        for _ in range(500):
            await app(scope(), receive, send)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(500):
            await app(scope(), receive, send)
        profiler.disable()
        per_call = pstats.Stats(profiler).total_calls / 500  # type: ignore[attr-defined]
        batches = []
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(calls // 5):
                await app(scope(), receive, send)
            batches.append((time.process_time() - t0) / (calls // 5) * 1e6)
        assert set(statuses) == {200}, set(statuses)
        await gw.stop()
        return {"cpu_us": statistics.median(batches), "batches": batches,
                "python_calls": per_call}
    finally:
        redis.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--mode", choices=("both", "off", "on"), default="both")
    ap.add_argument("--token", choices=("user", "none"), default="user",
                    help="user: a session loaded from Redis per call; none: no session, no "
                         "I/O but the stub (its Python call count is exact)")
    ap.add_argument("--ratio", type=float, help="parentbased_traceidratio sampling, e.g. 0.01")
    ap.add_argument("--src", default=str(HERE.parent / "src"),
                    help="the bffgate src/ directory to measure (default: this checkout's)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.child:  # each mode in a fresh interpreter
        env = dict(os.environ, OTEL_TRACES_EXPORTER="none")
        if args.ratio is not None:
            env.update(OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                       OTEL_TRACES_SAMPLER_ARG=str(args.ratio))
        modes = ("off", "on") if args.mode == "both" else (args.mode,)
        for mode in modes:
            subprocess.run([sys.executable, __file__, "--child", "--mode", mode,
                            "--calls", str(args.calls), "--src", args.src, "--token", args.token],
                           env=env, check=True)
        return
    sys.path.insert(0, args.src)
    r = asyncio.run(measure(args.mode == "on", args.calls, args.token))
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    print(f"token = {args.token}, tracing {args.mode:3} ({sampler if args.mode == 'on' else '-'}): "
          f"{r['python_calls']:.0f} Python calls and {r['cpu_us']:.1f} µs CPU per proxied call "
          f"(batches: {', '.join(f'{x:.1f}' for x in r['batches'])})")


if __name__ == "__main__":
    main()
