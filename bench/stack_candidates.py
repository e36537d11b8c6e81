"""HTTP server and upstream client candidates for bffgate, measured (issue #12; by hand,
never in CI).

    python bench/stack_candidates.py                  # 3 interleaved rounds, ~1.5 min
    python bench/stack_candidates.py --rounds 5 --duration 4 --only a,b

Variants, each the real ``Gateway.public`` app (bench/_candidate_gateway.py: Redis store on
its own redis-server, ONE session created directly, route /api token=user to
bench/_upstream.py), one process, uvloop:

  a  uvicorn + httptools (bffgate's serve_all, its framing refusals included) + aiohttp
  b  granian (embedded, ASGI, 1 Rust runtime thread) + aiohttp; WITHOUT bffgate's framing
     refusals (they live in its uvicorn protocol subclasses): the server's cost only
  c  as a, with the upstream client swapped for bench/pyreqwest_upstream.py (skipped with
     the reason when pyreqwest does not import)

Before timing, each variant must answer GET /api/data (session cookie + ``X-CSRF: 1``) with
200 and the upstream's exact bytes. Load: ``wrk -t2 -c50``, 1 s warm-up, then the timed run,
variants interleaved (order rotated each round); the table shows medians. Gateway CPU
µs/req is user + system CPU of the gateway's process tree (all threads, so granian's and
reqwest's Rust threads count) from /proc around the timed run, per request wrk completed.
The upstream's GET /api/data count over the timed runs must cover the 2xx responses.
bench/README.md "stack_candidates.py" has the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from _measure import WRK_LUA, busy_jiffies, cookie_line, tree_cpu_seconds, wrk
from _stack import HERE, ChildProcess, Stack, free_port, log, machine, source_env

from support.processes import port_open

COOKIE = "__Host-bffgate"
VARIANTS = {
    "a": ("uvicorn+httptools, aiohttp (today)", "uvicorn", "aiohttp"),
    "b": ("granian, aiohttp", "granian", "aiohttp"),
    "c": ("uvicorn+httptools, pyreqwest", "uvicorn", "pyreqwest"),
}


@dataclass
class Variant:
    key: str
    label: str
    port: int
    proc: ChildProcess
    cookie: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.cookie}", "X-CSRF": "1"}


def unavailable(key: str) -> str | None:
    server, client = VARIANTS[key][1:]
    for mod in {"granian": "granian", "pyreqwest": "pyreqwest"}.keys() & {server, client}:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} not installed (pip install {mod})"
    return None


def start(stack: Stack, key: str, up_port: int) -> Variant:
    _, redis_port = stack.redis()
    port = free_port()
    label, server, client = VARIANTS[key]
    env = source_env(None)
    env["PYTHONPATH"] = f"{HERE}:{env['PYTHONPATH']}"
    proc = stack.procs.start(f"gw-{key}", [
        sys.executable, str(HERE / "_candidate_gateway.py"), "--port", str(port),
        "--upstream", f"http://127.0.0.1:{up_port}", "--redis-port", str(redis_port),
        "--server", server, "--client", client], env=env, stdout_pipe=True)
    cookie = cookie_line(proc, key)
    proc.wait_ready(port_open(port), timeout=15, what="listening")
    return Variant(key, label, port, proc, cookie)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def upstream_count(up_port: int) -> dict[str, int]:
    return json.loads(get(up_port, "/_count")[1])  # type: ignore[no-any-return]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="timed seconds per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--only", default="a,b,c", help="comma-separated variant keys")
    args = p.parse_args()
    keys = [k for k in args.only.split(",") if k]
    if unknown := set(keys) - VARIANTS.keys():
        raise SystemExit(f"--only: unknown variant(s) {', '.join(sorted(unknown))}")
    skipped = {k: why for k in keys if (why := unavailable(k))}

    with Stack("bffgate-stack-candidates-", timeout=300) as stack:
        script = stack.workdir / "report.lua"
        script.write_text(WRK_LUA)
        up_port = free_port()
        up = stack.procs.start("upstream", [sys.executable, str(HERE / "_upstream.py"),
                                            str(up_port)], env=source_env(None))
        up.wait_ready(port_open(up_port))
        expected = get(up_port, "/api/data")[1]
        variants: list[Variant] = []
        for key in keys:
            if key in skipped:
                continue
            try:
                v = start(stack, key, up_port)
                status, body = get(v.port, "/api/data", v.headers)
                if status != 200 or body != expected:
                    raise RuntimeError(f"answered {status} with {len(body)} bytes "
                                       f"(expected 200 and the upstream's {len(expected)})")
            except Exception as exc:  # a candidate that does not work is a finding
                skipped[key] = f"{type(exc).__name__}: {str(exc)[:300]}"
                log(f"{key}: skipped: {skipped[key]}")
                continue
            log(f"{key} ({v.label}): GET /api/data -> 200, upstream's bytes; pid {v.proc.pid}")
            variants.append(v)

        for rnd in range(args.rounds):
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            for v in order:
                wrk(v.port, v.headers, args.warmup, 50, 2, script)
                before_up = upstream_count(up_port)
                cpu0, busy0 = tree_cpu_seconds(v.proc.pid or 0), busy_jiffies()
                res = wrk(v.port, v.headers, args.duration, 50, 2, script)
                cpu1, busy1 = tree_cpu_seconds(v.proc.pid or 0), busy_jiffies()
                served = upstream_count(up_port)["data"] - before_up["data"]
                ok = res["requests"] - res["err_status"]
                res["cpu_us"] = (cpu1 - cpu0) / res["requests"] * 1e6
                res["upstream_ok"] = served >= ok
                res["busy_cpus"] = (busy1 - busy0) / (res["duration_us"] / 1e6) / 100
                v.runs.append(res)
                log(f"round {rnd + 1} {v.key}: {res['cpu_us']:.0f} µs/req, "
                    f"{res['rps']:.0f} req/s, p99 {res['p99_us'] / 1000:.1f} ms, "
                    f"non-2xx {res['err_status']}, upstream served {served} >= {ok}: "
                    f"{res['upstream_ok']}")
        stack.disarm()

    print(f"\n{machine()}; wrk -t2 -c50, {args.warmup:.0f} s warm-up + "
          f"{args.duration:.0f} s timed, {args.rounds} interleaved rounds, medians\n")
    base = next((v for v in variants if v.key == "a"), None)
    base_cpu = statistics.median(r["cpu_us"] for r in base.runs) if base else None
    print("| variant | gateway CPU µs/req | vs a | req/s | p99 ms | non-2xx | "
          "CPU µs/req per round |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for v in variants:
        cpu = statistics.median(r["cpu_us"] for r in v.runs)
        delta = f"{cpu - base_cpu:+.0f}" if base_cpu is not None else "-"
        errs = sum(r["err_status"] for r in v.runs)
        sock = sum(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
                   for r in v.runs)
        bad_up = "" if all(r["upstream_ok"] for r in v.runs) else " (upstream count short!)"
        print(f"| {v.key}: {v.label} | {cpu:.0f} | {delta} | "
              f"{statistics.median(r['rps'] for r in v.runs):.0f} | "
              f"{statistics.median(r['p99_us'] for r in v.runs) / 1000:.1f} | "
              f"{errs}{f' ({sock})' if sock else ''}{bad_up} | "
              f"{', '.join(format(r['cpu_us'], '.0f') for r in v.runs)} |")
    for key, why in skipped.items():
        print(f"| {key}: {VARIANTS[key][0]} | skipped: {why} | | | | | |")
    busy = [r["busy_cpus"] for v in variants for r in v.runs]
    if busy:
        print(f"\nmachine busy during timed runs (all processes, wrk included): median "
              f"{statistics.median(busy):.2f} of {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
