"""Workers bench: req/s of ONE `bffgate serve` with 1 worker and with N (server.workers).

    python bench/workers_bench.py [--workers 2] [--duration 10] [--rounds 3]
                                  [--connections 50] [--log-level warning|info]
                                  [--upstream aiohttp|nginx]

Everything on 127.0.0.1, every process started here and stopped by PID: a redis-server,
the upstream (bench/_upstream.py, or nginx with --upstream nginx: 1 KB JSON at /api/data),
and `bffgate serve`
(the real CLI, `--workers 1` then `--workers N`, interleaved, each round a fresh process).
One session is created directly in Redis (the IdP, http://127.0.0.1:1, is never asked);
wrk sends its cookie and X-CSRF, so each request is a full proxied call. Prints req/s, p99
and the gateway's CPU per request (its whole process tree) per run, then the medians and
the ratio N/1. Figures and what they mean: bench/README.md ("Workers").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from _measure import WRK_LUA, busy_jiffies, cpu_seconds, tree_cpu_seconds, wrk  # noqa: E402

from support.gateway import child_env, write_toml  # noqa: E402
from support.idp import free_port  # noqa: E402
from support.processes import ProcessGroup, http_ok, port_open  # noqa: E402
from support.redis import RedisServer  # noqa: E402

COOKIE_KEY = "bench-cookie-key-0123456789abcdefghijklmnop"


def config(port: int, admin: int, redis_url: str, upstream: int, level: str) -> dict:
    return {
        "server": {"public_url": f"http://127.0.0.1:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": f"127.0.0.1:{admin}"},
        "oidc": {"issuer": "http://127.0.0.1:1", "client_id": "bench",
                 "client_secret": "bench-client-secret"},
        "session": {"store": "redis"},
        "redis": {"url": redis_url},
        "cookie": {"secret_keys": [COOKIE_KEY]},
        "log": {"level": level},
        "routes": [{"prefix": "/api", "upstream": f"http://127.0.0.1:{upstream}",
                    "token": "user"}],
    }


def make_session(cfg: dict) -> str:
    """A session created through the gateway's own session service; its cookie value."""
    from bffgate.app import Gateway
    from bffgate.config import load_settings
    from bffgate.session.model import NewTokens

    async def create() -> str:
        gw = Gateway(load_settings(None, environ={}, overrides=cfg))
        try:
            cookie, _ = await gw.sessions.create(
                NewTokens("bench-access-token", None, None, time.time() + 7200),
                sub="bench", idp_sid=None, claims={"sub": "bench"})
            return cookie
        finally:
            await gw.stop()

    return asyncio.run(create())


def load_side_cpu(pids: list[int]) -> float:
    """CPU seconds of the load side: wrk (this process's reaped children), the upstream and
    Redis (``pids``)."""
    wrk_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wrk_cpu.ru_utime + wrk_cpu.ru_stime + sum(cpu_seconds(p) for p in pids)


def one_run(procs: ProcessGroup, workdir: Path, cfg_path: Path, workers: int, port: int,
            admin: int, headers: dict[str, str], args: argparse.Namespace,
            script: Path, load_pids: list[int]) -> dict:
    gw = procs.start(f"gateway-w{workers}", [sys.executable, "-m", "bffgate", "serve",
                                             "--config", str(cfg_path),
                                             "--workers", str(workers)], env=child_env())
    try:
        gw.wait_ready(http_ok(f"http://127.0.0.1:{admin}/healthz"), timeout=30)
        wrk(port, headers, args.warmup, args.connections, args.wrk_threads, script)
        assert gw.pid is not None
        cpu0, busy0, load0 = tree_cpu_seconds(gw.pid), busy_jiffies(), load_side_cpu(load_pids)
        res = wrk(port, headers, args.duration, args.connections, args.wrk_threads, script)
        cpu1, busy1, load1 = tree_cpu_seconds(gw.pid), busy_jiffies(), load_side_cpu(load_pids)
        split = worker_split(admin) if workers > 1 else []
    finally:
        gw.stop()
        procs.children.remove(gw)
    errors = sum(res[k] for k in ("err_connect", "err_read", "err_write", "err_status",
                                  "err_timeout"))
    return {"workers": workers, "rps": res["rps"], "p99_ms": res["p99_us"] / 1000,
            "cpu_us": (cpu1 - cpu0) / max(1, res["requests"]) * 1e6, "errors": errors,
            # the load side (wrk, upstream, Redis), and everything else the machine ran
            # meanwhile (kernel, neighbours: on a busy box they fill the idle core)
            "load_us": (load1 - load0) / max(1, res["requests"]) * 1e6,
            "other_us": ((busy1 - busy0) / os.sysconf("SC_CLK_TCK") - (cpu1 - cpu0)
                         - (load1 - load0)) / max(1, res["requests"]) * 1e6,
            "split": split}


def worker_split(admin: int) -> list[float]:
    """Each worker's share of the public requests (bffgate_worker_http_requests, sampled
    by the workers each second: wait for a fresh sample)."""
    time.sleep(1.2)
    text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5, trust_env=False).text
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith('bffgate_worker_http_requests{listener="public"')]
    total = sum(counts) or 1.0
    return sorted(round(c / total, 2) for c in counts)


NGINX_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = /api/data {{ default_type application/json; alias {dir}/data.json; }}
  }}
}}
"""


def upstream_argv(kind: str, port: int, workdir: Path) -> list[str]:
    """aiohttp: bench/_upstream.py (Python, as in proxy_bench). nginx: a static 1 KB JSON
    file; it costs far less CPU per request, which matters here: on a 2-core machine the
    load generator and the upstream take cores the workers would otherwise use."""
    if kind == "aiohttp":
        return [sys.executable, str(HERE / "_upstream.py"), str(port)]
    (workdir / "data.json").write_text(json.dumps({"items": ["x" * 40] * 22})[:1024])
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    return ["nginx", "-c", str(conf), "-p", str(workdir)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--log-level", default="warning", choices=("warning", "info"))
    p.add_argument("--upstream", default="aiohttp", choices=("aiohttp", "nginx"))
    p.add_argument("--wrk-threads", type=int, default=2)
    args = p.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bffgate-workers-bench-"))
    script = workdir / "report.lua"
    script.write_text(WRK_LUA)
    procs = ProcessGroup(workdir)
    redis = RedisServer().start()
    try:
        up_port, port, admin = free_port(), free_port(), free_port()
        up = procs.start("upstream", upstream_argv(args.upstream, up_port, workdir))
        up.wait_ready(port_open(up_port))
        cfg = config(port, admin, redis.url, up_port, args.log_level)
        cfg_path = workdir / "bffgate.toml"
        write_toml(cfg_path, cfg)
        headers = {"Cookie": f"__Host-bffgate={make_session(cfg)}", "X-CSRF": "1"}
        runs: list[dict] = []
        for r in range(args.rounds):
            for n in (1, args.workers):
                res = one_run(procs, workdir, cfg_path, n, port, admin, headers, args, script,
                              [p for p in (up.pid, redis.proc.pid if redis.proc else None)
                               if p is not None])
                runs.append(res)
                print(f"round {r + 1} workers={n}: {res['rps']:8.0f} req/s  p99 "
                      f"{res['p99_ms']:6.1f} ms  {res['cpu_us']:5.0f} us CPU/req  "
                      f"(load side {res['load_us']:3.0f}, rest {res['other_us']:4.0f})  "
                      f"errors {res['errors']}"
                      + (f"  split {res['split']}" if res["split"] else ""), flush=True)
    finally:
        procs.stop_all()
        redis.close()
    med = {n: statistics.median(x["rps"] for x in runs if x["workers"] == n)
           for n in (1, args.workers)}
    p99 = {n: statistics.median(x["p99_ms"] for x in runs if x["workers"] == n)
           for n in (1, args.workers)}
    print(f"\nmedian req/s: 1 worker {med[1]:.0f} (p99 {p99[1]:.1f} ms), {args.workers} "
          f"workers {med[args.workers]:.0f} (p99 {p99[args.workers]:.1f} ms); "
          f"ratio {med[args.workers] / med[1]:.2f}x")
    gw_us = statistics.median(x["cpu_us"] for x in runs)
    load_us = statistics.median(x["load_us"] for x in runs)
    cores = os.cpu_count() or 1
    print(f"gateway CPU {gw_us:.0f} us/req, load side (wrk, upstream, Redis) {load_us:.0f} "
          f"us/req: on {cores} cores shared with the load side, {args.workers} workers can "
          f"give at most about {min(args.workers, cores) * gw_us / (gw_us + load_us):.2f}x "
          "one worker's req/s (kernel time on the loopback not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
