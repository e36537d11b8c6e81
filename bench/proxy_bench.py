"""Proxy benchmark: what does a bffgate hop cost, per upstream client candidate?

    python bench/proxy_bench.py [--duration 5] [--warmup 1] [--connections 50]
                                [--rounds 2] [--only a,b,c] [--json FILE]
                                [--pyspy VARIANT [--pyspy-out FILE]]
    python bench/proxy_bench.py --checks-only   # smoke: the checks below, no wrk, ~10 s

One run, one machine, everything on 127.0.0.1, every process started here and stopped
by PID:

* its own ``redis-server`` on a free port (no persistence),
* an aiohttp.web upstream in its own process (bench/_upstream.py: 1 KB JSON at
  GET /api/data, body-hash echo, chunked streams),
* one gateway process per variant (bench/_gateway.py: ONE uvicorn worker, Redis session
  store, one session created directly, the upstream client under test).

Variants (each timed with wrk, c=50, after a warm-up; wrk sends the session cookie and
``X-CSRF: 1`` on every request, so each one is a full proxied call: route match, CSRF,
cookie verify, one Redis round trip, token unseal, forward, stream back):

  a          direct to the upstream (the baseline)
  b          bffgate, default upstream client (bffgate.proxy.h1client.H1Upstream)
  b-info     b with the log level at info: one request.proxied audit line per request
             (read from the gateway's stdout pipe, as a log shipper would)
  b-asyncio  b on the plain asyncio loop (bffgate serve uses uvloop when installed)
  b-aiohttp  bffgate + aiohttp's client (bffgate.proxy.forward.AiohttpUpstream)
  c          bffgate + HttpxUpstream of bench/httpx_upstream.py (httpx/httpcore pool)
  d          bffgate + HttpxUpstream(transport=httpx_aiohttp.AiohttpTransport(...)),
             only when the httpx-aiohttp package is importable

Before timing a variant its correctness is checked (results in the "checks" column):
1 KB GET body identical to the upstream's; 1 MB POST (Content-Length) and 1 MB chunked
POST arrive intact (sha256 echoed by the upstream); the chunked POST is forwarded as it
arrives (upstream sees its chunks spread over time, not all at once); a 1 MB chunked
upstream response arrives intact; a slow chunked response reaches the client chunk by
chunk; the upstream gets the bearer token and never the browser's cookie or X-CSRF; an
upstream ``Set-Cookie`` is neither passed to the browser nor replayed by the gateway's
client on later requests (the pool is shared by all users). Headers the client library
adds on its own (User-Agent, Accept-Encoding...) are reported as notes.

Besides req/s and wrk's p50/p99 the table gives the gateway's CPU time per request, its
peak number of upstream connections, and how much CPU other processes on the machine
used meanwhile (a noisy neighbour on 2 cores moves req/s by tens of percent). See
bench/README.md for the figures and what they mean.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the test suite's process helpers
from _measure import (  # noqa: E402  (shared with compare.py)
    WRK_LUA,
    busy_jiffies,
    cookie_line,
    cpu_seconds,
    pyspy_profile,
    upstream_connections,
    wrk,
)
from _upstream import DATA, stream_bytes  # noqa: E402

from support.idp import free_port  # noqa: E402
from support.processes import ChildProcess, ProcessGroup, port_open, redis_pong  # noqa: E402

COOKIE_NAME = "__Host-bffgate"
MB = 1 << 20


# --------------------------------------------------------------------------- processes
@dataclass
class Gateway:
    name: str
    port: int
    proc: ChildProcess
    cookie: str
    lines: list[int] = field(default_factory=lambda: [0])  # stdout lines after the cookie

    def drain(self) -> None:
        """Read the gateway's stdout (audit lines) like a log shipper; count lines."""
        fd = self.proc.stdout.fileno()
        while True:
            try:
                block = os.read(fd, 1 << 16)
            except OSError:
                return
            if not block:
                return
            self.lines[0] += block.count(b"\n")


def start_gateway(procs: ProcessGroup, name: str, client: str, upstream_port: int,
                  redis_port: int, log_level: str, asyncio_loop: bool) -> Gateway:
    port = free_port()
    argv = [sys.executable, str(HERE / "_gateway.py"), "--port", str(port),
            "--upstream", f"http://127.0.0.1:{upstream_port}", "--redis-port", str(redis_port),
            "--client", client, "--log-level", log_level]
    if asyncio_loop:
        argv.append("--asyncio-loop")
    p = procs.start(f"gateway-{name}", argv, stdout_pipe=True)  # stderr: its log file
    gw = Gateway(name, port, p, cookie_line(p, f"gateway {name}", 20.0))
    threading.Thread(target=gw.drain, daemon=True).start()
    p.wait_ready(port_open(port), timeout=15, what="listening")
    return gw


# --------------------------------------------------------------------------- HTTP checks
def _request(port: int, method: str, path: str, headers: dict[str, str],
             body: Any = None, chunked: bool = False) -> tuple[http.client.HTTPResponse, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    elif body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    if chunked:
        for piece in body:
            conn.send(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    elif body is not None:
        conn.send(body)
    return conn.getresponse(), conn


def _slow_chunks(data: bytes, pieces: int, delay: float) -> Iterator[bytes]:
    step = len(data) // pieces
    for i in range(pieces):
        if i:
            time.sleep(delay)
        yield data[i * step:(i + 1) * step if i < pieces - 1 else len(data)]


def run_checks(port: int, headers: dict[str, str],
               via_gateway: bool) -> tuple[list[str], list[str]]:
    """Return (failures, notes)."""
    fails: list[str] = []
    notes: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            fails.append(what)

    # 1. the 1 KB GET
    r, c = _request(port, "GET", "/api/data", headers)
    body = r.read()
    c.close()
    check(r.status == 200 and body == DATA, f"GET /api/data: {r.status}, {len(body)} bytes")

    # 2. 1 MB POST with Content-Length, intact
    payload = os.urandom(MB)
    want = hashlib.sha256(payload).hexdigest()
    r, c = _request(port, "POST", "/api/echo", headers, payload)
    raw = r.read()
    c.close()
    doc = json.loads(raw) if r.status == 200 else {}
    check(doc.get("sha256") == want and doc.get("length") == MB,
          f"1MB POST: status {r.status}, length {doc.get('length')}")

    # 3. 1 MB chunked POST sent slowly: intact AND forwarded as it arrives
    r, c = _request(port, "POST", "/api/echo", headers, _slow_chunks(payload, 4, 0.25),
                    chunked=True)
    raw = r.read()
    c.close()
    doc = json.loads(raw) if r.status == 200 else {}
    check(doc.get("sha256") == want and doc.get("length") == MB,
          f"1MB chunked POST: status {r.status}, length {doc.get('length')}")
    spread = float(doc.get("first_to_last_s") or 0.0)
    check(spread >= 0.4, f"request body not streamed (upstream saw it within {spread:.2f}s)")

    # 4. 1 MB chunked upstream response, intact
    r, c = _request(port, "GET", f"/api/stream?size={MB}", headers)
    raw = r.read()
    c.close()
    check(r.status == 200 and hashlib.sha256(raw).digest() == hashlib.sha256(
        stream_bytes(MB)).digest(), f"1MB chunked response: status {r.status}, {len(raw)} bytes")

    # 5. a slow chunked response reaches the client chunk by chunk
    t0 = time.monotonic()
    r, c = _request(port, "GET", "/api/stream?size=4096&chunk=1024&delay=0.25", headers)
    first = r.read1(1 << 16) if r.status == 200 else b""
    t_first = time.monotonic() - t0
    rest = r.read()
    t_all = time.monotonic() - t0
    c.close()
    check(first + rest == stream_bytes(4096), "slow chunked response: body differs")
    check(t_first < 0.3 and t_all >= 0.7,
          f"response not streamed (first bytes after {t_first:.2f}s of {t_all:.2f}s)")

    if not via_gateway:
        return fails, notes

    # 6. header policy as the upstream saw it
    r, c = _request(port, "GET", "/api/headers", headers)
    seen = json.loads(r.read()) if r.status == 200 else []
    c.close()
    names = {k.lower(): v for k, v in seen}
    check(names.get("authorization") == "Bearer bench-access-token", "no bearer token upstream")
    check("cookie" not in names and "x-csrf" not in names,
          "browser cookie/X-CSRF reached the upstream")
    expected = {"host", "authorization", "x-forwarded-for", "x-forwarded-proto",
                "x-forwarded-host", "x-request-id", "traceparent", "connection",
                "content-length"}
    extra = sorted(f"{k}: {v}" for k, v in seen if k.lower() not in expected)
    if extra:
        notes.append("upstream also got " + "; ".join(extra))

    return fails, notes


def check_cookie_isolation(port: int, headers: dict[str, str]) -> list[str]:
    """An upstream Set-Cookie stays out of the browser AND out of the shared client pool.

    Run after timing: once a client has stored a cookie, every later request pays for
    its cookie jar, which would skew that variant's figures."""
    fails: list[str] = []
    r, c = _request(port, "GET", "/api/setcookie", headers)
    r.read()
    leaked = r.getheader("set-cookie")
    c.close()
    if leaked is not None:
        fails.append("upstream Set-Cookie passed to the browser")
    r, c = _request(port, "GET", "/api/headers", headers)
    seen = json.loads(r.read()) if r.status == 200 else []
    c.close()
    replay = [v for k, v in seen if k.lower() == "cookie"]
    if replay:
        fails.append(f"client replays an upstream's Set-Cookie on later requests "
                     f"(all users share the pool): Cookie: {'; '.join(replay)}")
    return fails


def timed_run(v: Any, port: int, headers: dict[str, str], args: argparse.Namespace,
              script: Path, upstream_pid: int, redis_pid: int, up_port: int) -> dict[str, Any]:
    """One timed wrk run with CPU accounting (gateway, upstream, Redis, wrk, and whatever
    else the machine was doing) and the peak number of upstream connections."""
    gpid = v.gw.proc.pid if v.gw else None
    lines0 = v.gw.lines[0] if v.gw else 0
    pids = [p for p in (gpid, upstream_pid, redis_pid) if p]
    before = {p: cpu_seconds(p) for p in pids}
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    busy0 = busy_jiffies()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while gpid and not stop.wait(0.5):
            peak[0] = max(peak[0], upstream_connections(gpid, up_port))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        res = wrk(port, headers, args.duration, args.connections, args.threads, script)
    finally:
        stop.set()
        sampler.join()
    wall = res["duration_us"] / 1e6
    tick = os.sysconf("SC_CLK_TCK")
    busy = (busy_jiffies() - busy0) / tick
    after = {p: cpu_seconds(p) for p in pids}
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    wrk_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    own = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    ours = sum(after[p] - before[p] for p in pids) + wrk_cpu + own
    res["up_cpu_pct"] = 100 * (after[upstream_pid] - before[upstream_pid]) / wall
    res["wrk_cpu_pct"] = 100 * wrk_cpu / wall
    # CPU the machine spent on things other than this bench (other users' tests...)
    res["other_cpu_pct"] = max(0.0, 100 * (busy - ours) / wall)
    res["upstream_conns_peak"] = peak[0] if gpid else None
    if gpid:
        g = after[gpid] - before[gpid]
        res["gw_cpu_pct"] = 100 * g / wall
        res["gw_cpu_us_per_req"] = 1e6 * g / max(res["requests"], 1)
        time.sleep(0.2)
        res["log_lines"] = v.gw.lines[0] - lines0
    return res


def describe(v: Any, res: dict[str, Any]) -> str:
    out = (f"{res['rps']:,.0f} req/s, p50 {res['p50_us'] / 1000:.2f} ms, "
           f"p99 {res['p99_us'] / 1000:.2f} ms; CPU: ")
    if "gw_cpu_pct" in res:
        out += (f"gateway {res['gw_cpu_pct']:.0f}% ({res['gw_cpu_us_per_req']:.0f} µs/req), ")
    out += (f"upstream {res['up_cpu_pct']:.0f}%, wrk {res['wrk_cpu_pct']:.0f}%, "
            f"other {res['other_cpu_pct']:.0f}%")
    if gpid := res.get("upstream_conns_peak"):
        out += f"; gateway->upstream conns (peak) {gpid}"
    if v.gw and v.log_level == "info":
        out += f"; {res['log_lines']} log lines"
    errs = sum(res[k] for k in ("err_connect", "err_read", "err_write", "err_status",
                                "err_timeout"))
    if errs:
        out += f"; {errs} ERRORS"
    return out


# --------------------------------------------------------------------------- main
@dataclass
class Variant:
    key: str
    label: str
    client: str | None = None  # None = direct to the upstream
    log_level: str = "warning"
    asyncio_loop: bool = False
    gw: Gateway | None = None
    fails: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for mod in ("uvicorn", "httptools", "aiohttp", "httpx", "httpcore", "httpx_aiohttp",
                "redis", "structlog"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod.replace('_', '-'))}")
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_us", "p90_us", "p99_us", "gw_cpu_us_per_req", "gw_cpu_pct",
            "up_cpu_pct", "other_cpu_pct", "upstream_conns_peak")
    out: dict[str, Any] = {}
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    out["errors"] = sum(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"]
                        + r["err_timeout"] for r in runs)
    out["all_rps"] = [round(r["rps"]) for r in runs]
    return out


def table(variants: list[Variant], base: dict[str, Any]) -> str:
    head = ("| variant | req/s | vs (a) | p50 ms | p99 ms | p50 vs (a) | p99 vs (a) "
            "| gateway CPU µs/req | upstream conns | other load | checks |")
    rows = [head, "|" + "---|" * 11]
    for v in variants:
        m = median_run(v.runs)
        rps = m["rps"]
        checks = "ok" if not v.fails else "FAIL: " + "; ".join(v.fails)
        if m["errors"]:
            checks += f" ({m['errors']} wrk errors)"
        gcpu = f"{m['gw_cpu_us_per_req']:.0f}" if m["gw_cpu_us_per_req"] else "-"
        conns = f"{m['upstream_conns_peak']:.0f}" if m["upstream_conns_peak"] else "-"
        rows.append(
            f"| ({v.key}) {v.label} | {rps:,.0f} | {rps / base['rps']:.3f}x "
            f"| {m['p50_us'] / 1000:.2f} | {m['p99_us'] / 1000:.2f} "
            f"| {m['p50_us'] / base['p50_us']:.1f}x | {m['p99_us'] / base['p99_us']:.1f}x "
            f"| {gcpu} | {conns} | {m['other_cpu_pct']:.0f}% | {checks} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per timed run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run (0: none)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--rounds", type=int, default=2,
                    help="timed runs per variant, interleaved; the table shows medians")
    ap.add_argument("--only", help="comma-separated variant keys (a is always run)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--pyspy", help="after timing, profile this variant's gateway with "
                                    "py-spy under the same load and print the hot spots")
    ap.add_argument("--pyspy-out", help="keep py-spy's collapsed stacks here (flamegraph input)")
    ap.add_argument("--checks-only", action="store_true",
                    help="smoke mode: start everything, run the checks, no timing (no wrk)")
    args = ap.parse_args()

    for tool in ("redis-server",) if args.checks_only else ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"proxy_bench: {tool} not found on PATH", file=sys.stderr)
            return 2

    variants = [
        Variant("a", "direct to upstream"),
        Variant("b", "bffgate + H1Upstream (default, httptools)", "httptools"),
        Variant("b-info", "b, audit log at info", "httptools", log_level="info"),
        Variant("b-asyncio", "b on the plain asyncio loop", "httptools", asyncio_loop=True),
        Variant("b-aiohttp", "bffgate + AiohttpUpstream (server.upstream_client = aiohttp)",
                "aiohttp"),
        Variant("c", "bffgate + HttpxUpstream", "httpx"),
    ]
    try:
        import httpx_aiohttp  # noqa: F401

        variants.append(Variant("d", "bffgate + HttpxUpstream(httpx_aiohttp transport)",
                                "httpx-aiohttp"))
    except ImportError:
        print("note: httpx-aiohttp not importable: variant (d) skipped", file=sys.stderr)
    if args.only:
        keep = {"a", *args.only.split(",")}
        variants = [v for v in variants if v.key in keep]

    t_start = time.monotonic()
    print(f"machine: {machine()}")
    print(f"load: wrk -t{args.threads} -c{args.connections}, {args.warmup:g}s warm-up + "
          f"{args.duration:g}s timed, x{args.rounds} rounds, GET /api/data (1 KB JSON)\n",
          flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bffgate-bench-"))
    procs = ProcessGroup(tmp)
    script = tmp / "report.lua"
    script.write_text(WRK_LUA)
    try:
        redis_port = free_port()
        redis = procs.start("redis", ["redis-server", "--port", str(redis_port),
                                      "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--daemonize", "no"])
        redis.wait_ready(redis_pong(redis_port), what="answering PING")
        up_port = free_port()
        upstream = procs.start("upstream",
                               [sys.executable, str(HERE / "_upstream.py"), str(up_port)])
        upstream.wait_ready(port_open(up_port), what="listening")

        for v in variants:
            if v.client is not None:
                v.gw = start_gateway(procs, v.key, v.client, up_port, redis_port, v.log_level,
                                     v.asyncio_loop)

        def hdrs(v: Variant) -> dict[str, str]:
            h = {"X-CSRF": "1"}
            if v.gw is not None:
                h["Cookie"] = f"{COOKIE_NAME}={v.gw.cookie}"
            return h

        def port(v: Variant) -> int:
            return v.gw.port if v.gw is not None else up_port

        for v in variants:
            v.fails, v.notes = run_checks(port(v), hdrs(v), via_gateway=v.gw is not None)
            status = "ok" if not v.fails else "FAIL: " + "; ".join(v.fails)
            print(f"checks ({v.key}): {status}", flush=True)
            for n in v.notes:
                print(f"   note: {n}", flush=True)
        if args.checks_only:
            return 1 if any(v.fails for v in variants) else 0

        for rnd in range(args.rounds):
            for v in variants:
                if args.warmup > 0:
                    wrk(port(v), hdrs(v), args.warmup, args.connections, args.threads, script)
                res = timed_run(v, port(v), hdrs(v), args, script, upstream.pid, redis.pid,
                                up_port)
                v.runs.append(res)
                print(f"round {rnd + 1} ({v.key}): {describe(v, res)}", flush=True)

        if args.pyspy:
            target = next((v for v in variants if v.key == args.pyspy and v.gw), None)
            if target is None:
                print(f"--pyspy {args.pyspy}: no such gateway variant")
            else:
                gw = target.gw
                assert gw is not None
                print(f"\nprofile of ({target.key}) under the same load:")
                print(pyspy_profile(
                    gw.proc.pid, args.duration,
                    lambda: wrk(gw.port, hdrs(target), args.duration, args.connections,
                                args.threads, script),
                    keep=args.pyspy_out))

        for v in variants:
            if v.gw is not None:
                v.fails += check_cookie_isolation(v.gw.port, hdrs(v))

        base = median_run(variants[0].runs)
        print("\n" + table(variants, base))
        print("\n(medians of the rounds; req/s per round: "
              + ", ".join(f"{v.key} {median_run(v.runs)['all_rps']}" for v in variants) + ")")
        busy = max(median_run(v.runs)["other_cpu_pct"] or 0 for v in variants)
        if busy > 15:
            print(f"warning: other processes used up to {busy:.0f}% of a CPU during the timed "
                  f"runs (column 'other load'): figures are noisy; rerun on a quiet machine.")
        candidates = [v for v in variants if v.key in ("b", "b-aiohttp", "c", "d") and not v.fails]
        if candidates:
            best = max(candidates, key=lambda v: median_run(v.runs)["rps"])
            print(f"\nfastest candidate that passes every check: ({best.key}) {best.label}")
        failed = [v for v in variants if v.fails]
        for v in failed:
            print(f"({v.key}) failed checks: " + "; ".join(v.fails))

        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": machine(), "args": vars(args),
                "variants": [{"key": v.key, "label": v.label, "fails": v.fails,
                              "notes": v.notes, "runs": v.runs, "median": median_run(v.runs)}
                             for v in variants]}, indent=2))
        print(f"\ntotal bench time {time.monotonic() - t_start:.0f}s")
        return 1 if any(v.key == "a" and v.fails for v in variants) else 0
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
