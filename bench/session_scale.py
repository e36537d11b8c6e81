"""Session scale: does a proxied call get slower when Redis holds 1,000,000 sessions
instead of 1,000 (issue #12: target ratio >= 0.95)?

    python bench/session_scale.py [--large 1000000] [--small 1000] [--rounds 3]
                                  [--duration 5] [--log-level info] [--src DIR]
                                  [--timeout 900]

Everything on 127.0.0.1, started here and stopped by PID:

* two ``redis-server`` (no persistence): "small" filled with ``--small`` sessions, "large"
  with ``--large``;
* the filler (this file, ``--fill``, run with the gateway's source tree on its path):
  creates ONE template session through bffgate's own ``Gateway(settings).sessions.create``
  (the real SessionService and RedisStore; 1 KB access and ID tokens, a 64 B refresh token,
  a typical claim set, its own sub and IdP sid), reads back every key that wrote (record,
  sub and sid indexes, whatever else the store keeps) with its type and TTL, and clones it
  N - 1 times through ``redis-cli --pipe``: the record's value byte for byte under a new
  record hash, the index keys and members with the record hash, sub and sid substituted.
  So every clone has the record format, size, key shape and TTL the gateway writes, without
  paying N sealings (~1 ms each in Python);
* bench/_upstream.py (1 KB JSON at ``GET /api/data``);
* two gateways (bench/_gateway.py: one uvicorn worker, Redis store, one route, one hot
  session created through the service), one per Redis, log level ``info`` by default (the
  audit lines read from the pipe like a log shipper would).

Then interleaved rounds (small, large, large, small, ...): ``wrk -t2 -c50`` for
``--duration`` s after a 1 s warm-up, ``GET /api/data`` with the hot session's cookie and
``X-CSRF: 1``. Reports per Redis: median req/s, p99, gateway CPU per request, Redis CPU per
request, Redis ``used_memory`` (and per session) and key count; and the req/s ratio
large / small.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _stack import (
    HERE,
    ChildProcess,
    Stack,
    describe_source,
    free_port,
    log,
    machine,
    source_env,
)

from support.processes import port_open

TEMPLATE_SUB = "bench-u99999999"  # clones: bench-u00000000 ... (same length)
TEMPLATE_SID = "bench-s99999999"


# --------------------------------------------------------------------------- the filler


def _jwt(size: int) -> str:
    """A JWT-shaped token of about ``size`` bytes (typical RS256 access/ID token)."""
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"k1","typ":"at+jwt"}').decode()
    body = base64.urlsafe_b64encode(json.dumps(
        {"sub": secrets.token_hex(8), "pad": secrets.token_hex(max(1, (size - 400) // 2))}
    ).encode()).decode().rstrip("=")
    return f"{head}.{body}.{secrets.token_urlsafe(256)}"


async def _template(redis_port: int) -> None:
    """One session through the gateway's own service and store."""
    from bffgate.app import Gateway
    from bffgate.config import load_settings
    from bffgate.session.model import NewTokens

    settings = load_settings(None, environ={}, overrides={
        "server": {"public_url": "http://127.0.0.1:8080", "listen": "127.0.0.1:8080",
                   "admin_listen": ""},
        "oidc": {"issuer": "http://127.0.0.1:1", "client_id": "bench",
                 "client_secret": "bench-client-secret"},
        "session": {"store": "redis"},
        "redis": {"url": f"redis://127.0.0.1:{redis_port}/0"},
        "cookie": {"secret_keys": ["bench-cookie-key-0123456789abcdefghijklmnop"]},
        "routes": [{"prefix": "/api", "upstream": "http://127.0.0.1:9", "token": "user"}],
    })
    gw = Gateway(settings)
    await asyncio.wait_for(gw.start(warm_idp=False), 30)
    try:
        claims = {"sub": TEMPLATE_SUB, "name": "Some User", "email": "some.user@example.com",
                  "email_verified": True, "iss": "https://idp.example.com"}
        await asyncio.wait_for(gw.sessions.create(
            NewTokens(_jwt(1000), secrets.token_urlsafe(48), _jwt(1000), time.time() + 3600),
            sub=TEMPLATE_SUB, idp_sid=TEMPLATE_SID, claims=claims), 30)
    finally:
        try:
            await asyncio.wait_for(gw.stop(), 30)
        except TimeoutError:
            # seen once (working tree mid-edit): report it rather than hang the bench
            log("WARNING: Gateway.stop() did not return within 30 s")


def _resp(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def fill(redis_port: int, n: int) -> None:
    """Template session, then n - 1 clones through redis-cli --pipe (see the docstring)."""
    import redis

    r = redis.Redis(port=redis_port)
    if r.dbsize():
        raise SystemExit(f"redis :{redis_port} is not empty")
    asyncio.run(_template(redis_port))
    keys = sorted(r.keys("*"))
    record_hash = None
    for key in keys:
        m = re.search(rb"s:\{([^}]+)\}$", key)
        if m and r.type(key) == b"string":
            record_hash = m.group(1)
    if record_hash is None:
        raise SystemExit(f"no session record among the template's keys {keys!r}")
    template: list[tuple[bytes, bytes, int, Any]] = []
    for key in keys:
        kind, ttl = r.type(key), int(r.pttl(key))
        value: Any
        if kind == b"string":
            value = r.get(key)
        elif kind == b"set":
            value = sorted(r.smembers(key))
        elif kind == b"zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            value = r.hgetall(key)
        else:
            raise SystemExit(f"template key {key!r} has type {kind!r}: not cloned by this bench")
        template.append((key, kind, ttl, value))
    sizes = ", ".join(f"{k.decode(errors='replace')} ({t.decode()}, ttl {ttl} ms)"
                      for k, t, ttl, _ in template)
    log(f"template session: {len(template)} keys: {sizes}")
    sub, sid = TEMPLATE_SUB.encode(), TEMPLATE_SID.encode()
    hex_hash = re.fullmatch(rb"[0-9a-f]+", record_hash) is not None

    def commands(h: bytes, sub_i: bytes, sid_i: bytes) -> bytes:
        subst = ((record_hash, h), (sub, sub_i), (sid, sid_i))

        def s(x: bytes) -> bytes:
            for old, new in subst:
                x = x.replace(old, new)
            return x

        out = []
        for key, kind, ttl, value in template:
            k = s(key)
            if kind == b"string":
                out.append(_resp(b"SET", k, value, b"PX", b"%d" % ttl) if ttl > 0
                           else _resp(b"SET", k, value))
                continue
            if kind == b"set":
                out.append(_resp(b"SADD", k, *[s(m) for m in value]))
            elif kind == b"zset":
                args = []
                for member, score in value:
                    args += [repr(score).encode(), s(member)]
                out.append(_resp(b"ZADD", k, *args))
            else:
                args = []
                for hk, hv in value.items():
                    args += [s(hk), hv]
                out.append(_resp(b"HSET", k, *args))
            if ttl > 0:
                out.append(_resp(b"PEXPIRE", k, b"%d" % ttl))
        return b"".join(out)

    # The substitutes have the lengths of the originals, so every RESP length prefix stays
    # right and a clone is the template's command blob with three byte strings replaced:
    # cut the blob once at every occurrence, then join the pieces with each clone's values.
    blob = commands(record_hash, sub, sid)
    marks = sorted((m.start(), m.group()) for m in re.finditer(
        b"|".join(re.escape(x) for x in (record_hash, sub, sid)), blob))
    pieces, kinds, at = [], [], 0
    for start, token in marks:
        pieces.append(blob[at:start])
        kinds.append(0 if token == record_hash else 1 if token == sub else 2)
        at = start + len(token)
    tail = blob[at:]

    def clone_commands(i: int) -> bytes:
        digest = hashlib.sha256(b"clone-%d" % i)
        h = (digest.hexdigest().encode() if hex_hash
             else base64.urlsafe_b64encode(digest.digest()).rstrip(b"="))[:len(record_hash)]
        values = (h, b"bench-u%08d" % i, b"bench-s%08d" % i)
        out = []
        for piece, kind in zip(pieces, kinds, strict=True):
            out.append(piece)
            out.append(values[kind])
        out.append(tail)
        return b"".join(out)

    cli = shutil.which("redis-cli")
    if cli is None:
        raise SystemExit("redis-cli not found on PATH")
    t0 = time.perf_counter()
    pipe = subprocess.Popen([cli, "-p", str(redis_port), "--pipe"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert pipe.stdin is not None
    batch: list[bytes] = []
    for i in range(n - 1):
        batch.append(clone_commands(i))
        if len(batch) >= 5000:
            pipe.stdin.write(b"".join(batch))
            batch = []
        if i and i % 200_000 == 0:
            log(f"  {i:,} clones written ({time.perf_counter() - t0:.0f} s)")
    pipe.stdin.write(b"".join(batch))
    pipe.stdin.close()
    out = pipe.stdout.read().decode(errors="replace") if pipe.stdout else ""
    pipe.wait(600)
    if pipe.returncode != 0 or "errors: 0" not in out:
        raise SystemExit(f"redis-cli --pipe: {out[-500:]}")
    log(f"filled {n:,} sessions ({r.dbsize():,} keys) in {time.perf_counter() - t0:.1f} s")


# --------------------------------------------------------------------------- load


@dataclass
class Gw:
    name: str
    port: int
    proc: ChildProcess
    cookie: str
    redis: ChildProcess
    redis_port: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=lambda: [0])

    def drain(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            try:
                block = os.read(fd, 1 << 16)
            except OSError:
                return
            if not block:
                return
            self.lines[0] += block.count(b"\n")


def start_gateway(stack: Stack, name: str, up_port: int, redis: ChildProcess,
                  redis_port: int, log_level: str, env: dict[str, str]) -> Gw:
    port = free_port()
    proc = stack.procs.start(f"gateway-{name}", [
        sys.executable, str(HERE / "_gateway.py"), "--port", str(port), "--upstream",
        f"http://127.0.0.1:{up_port}", "--redis-port", str(redis_port), "--log-level",
        log_level], stdout_pipe=True, env=env)
    from _measure import cookie_line

    gw = Gw(name, port, proc, cookie_line(proc, f"gateway {name}"), redis, redis_port)
    threading.Thread(target=gw.drain, daemon=True).start()
    proc.wait_ready(port_open(port), timeout=15, what="listening")
    return gw


def redis_info(port: int) -> dict[str, str]:
    import redis

    client = redis.Redis(port=port)
    info = {k: str(v) for k, v in client.info().items()}
    info["_keys"] = str(client.dbsize())
    return info


def timed(gw: Gw, duration: float, connections: int, script: Path,
          upstream_pid: int) -> dict[str, Any]:
    import resource

    from _measure import busy_jiffies, tree_cpu_seconds, wrk

    headers = {"Cookie": f"__Host-bffgate={gw.cookie}", "X-CSRF": "1"}
    assert gw.proc.pid is not None
    assert gw.redis.pid is not None
    pids = (gw.proc.pid, gw.redis.pid, upstream_pid, os.getpid())
    before = [tree_cpu_seconds(p) for p in pids]
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = busy_jiffies()
    res = wrk(gw.port, headers, duration, connections, 2, script)
    busy = (busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK")
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = [tree_cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
    wrk_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    n = max(1, res["requests"])
    wall = res["duration_us"] / 1e6
    res["gw_cpu_us"] = used[0] * 1e6 / n
    res["redis_cpu_us"] = used[1] * 1e6 / n
    # CPU the machine spent on other things (other users' tests...), % of one core
    res["other_pct"] = max(0.0, 100 * (busy - sum(used) - wrk_cpu) / wall)
    res["errors"] = sum(res[k] for k in ("err_connect", "err_read", "err_write",
                                          "err_status", "err_timeout"))
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--src", help="run the gateway (and the filler) from this source tree")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--fill", nargs=2, type=int, metavar=("REDIS_PORT", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(*args.fill)
        return 0
    if shutil.which("wrk") is None:
        parser.error("wrk not found on PATH")
    env = source_env(args.src)
    print(f"machine: {machine()}; gateway source: {describe_source(args.src)}")

    from _measure import WRK_LUA

    with Stack("bffgate-session-scale-", args.timeout) as stack:
        script = stack.workdir / "report.lua"
        script.write_text(WRK_LUA)
        up_port = free_port()
        upstream = stack.procs.start("upstream", [sys.executable, str(HERE / "_upstream.py"),
                                                  str(up_port)], env=env)
        upstream.wait_ready(port_open(up_port), what="listening")
        assert upstream.pid is not None
        upstream_pid = upstream.pid
        gateways: list[Gw] = []
        memory: dict[str, dict[str, str]] = {}
        counts = {"small": args.small, "large": args.large}
        for name, n in counts.items():
            redis, redis_port = stack.redis()
            redis.name = f"redis-{name}"
            before = int(redis_info(redis_port)["used_memory"])
            log(f"filling redis-{name} (:{redis_port}) with {n:,} sessions...")
            filler = stack.procs.start(f"fill-{name}", [
                sys.executable, str(Path(__file__).resolve()), "--fill", str(redis_port),
                str(n)], env=env)
            assert filler.popen is not None
            code = filler.popen.wait(args.timeout)
            print(filler.log().rstrip())
            if code != 0:
                raise RuntimeError(f"filler for {name} exited with {code}")
            info = redis_info(redis_port)
            info["_before"] = str(before)
            info["_sessions"] = str(n)
            memory[name] = info
            gateways.append(start_gateway(stack, name, up_port, redis, redis_port,
                                          args.log_level, env))
        for gw in gateways:
            log(f"gateway-{gw.name} pid {gw.proc.pid} on :{gw.port} "
                f"(redis :{gw.redis_port}); warm-up...")
            timed(gw, 1, args.connections, script, upstream_pid)
        for rnd in range(args.rounds):
            order = gateways if rnd % 2 == 0 else list(reversed(gateways))
            for gw in order:
                res = timed(gw, args.duration, args.connections, script, upstream_pid)
                gw.runs.append(res)
                log(f"round {rnd + 1} {gw.name}: {res['rps']:,.0f} req/s, p99 "
                    f"{res['p99_us'] / 1000:.1f} ms, gateway {res['gw_cpu_us']:.0f} µs/req, "
                    f"redis {res['redis_cpu_us']:.0f} µs/req, errors {res['errors']}, other load "
                    f"{res['other_pct']:.0f} % of a core")
        report(args, gateways, memory)
        failed = any(r["errors"] for gw in gateways for r in gw.runs)
        if failed:
            stack.keep = True
    return 1 if failed else 0


def report(args: argparse.Namespace, gateways: list[Gw],
           memory: dict[str, dict[str, str]]) -> None:
    print(f"\nsession scale: wrk -t2 -c{args.connections}, {args.rounds} interleaved rounds "
          f"of {args.duration:.0f} s, one hot session, log level {args.log_level}; medians")
    head = ("| sessions in Redis | keys | used_memory | per session | req/s (rounds) | p99 ms "
            "| gateway CPU µs/req | Redis CPU µs/req | other load |")
    print(head)
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    rps: dict[str, float] = {}
    for gw in gateways:
        info = memory[gw.name]
        n = int(info["_sessions"])
        used = int(info["used_memory"])
        per = (used - int(info["_before"])) / n
        keys = int(info["_keys"])
        rounds = [r["rps"] for r in gw.runs]
        rps[gw.name] = statistics.median(rounds)
        print(f"| {n:,} | {keys:,} | {used / 2**20:,.0f} MiB | {per:,.0f} B | "
              f"{rps[gw.name]:,.0f} ({', '.join(f'{x:,.0f}' for x in rounds)}) | "
              f"{statistics.median(r['p99_us'] for r in gw.runs) / 1000:.1f} | "
              f"{statistics.median(r['gw_cpu_us'] for r in gw.runs):.0f} | "
              f"{statistics.median(r['redis_cpu_us'] for r in gw.runs):.1f} | "
              f"{statistics.median(r['other_pct'] for r in gw.runs):.0f} % |")
    if "small" in rps and "large" in rps:
        small, large = (next(g for g in gateways if g.name == n) for n in ("small", "large"))
        ratio = rps["large"] / rps["small"]
        pairs = [b["rps"] / a["rps"] for a, b in zip(small.runs, large.runs, strict=True)]
        cpu = (statistics.median(r["gw_cpu_us"] for r in small.runs)
               / statistics.median(r["gw_cpu_us"] for r in large.runs))
        print(f"\nratio large / small req/s: {ratio:.3f} (target >= 0.95: "
              f"{'PASS' if ratio >= 0.95 else 'BELOW'}); per round "
              f"{', '.join(f'{x:.2f}' for x in pairs)} (median {statistics.median(pairs):.3f})")
        print(f"gateway CPU per request, small / large: {cpu:.3f} (the figure least moved by "
              f"other load; >= 0.95 means the large store costs the gateway <= 5 % more)")
        noisy = max(r["other_pct"] for g in gateways for r in g.runs)
        if noisy > 15:
            print(f"warning: other processes used up to {noisy:.0f} % of a core during the "
                  f"runs: req/s on 2 cores moves by tens of percent with that")


if __name__ == "__main__":
    sys.exit(main())
