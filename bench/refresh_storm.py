"""Refresh-storm benchmark: one session, N concurrent requests over R gateway replicas,
right when the access token needs refresh (issue 3, item 8).

    python bench/refresh_storm.py [--concurrency 300] [--replicas 3] [--windows 3]
                                  [--access-token-ttl 6] [--timeout 110]

Everything on 127.0.0.1, every process started here and stopped by PID:

* its own ``redis-server`` on a free port (no persistence),
* the development IdP (bench/_storm_idp.py: ``bffgate.demo.devidp`` with rotating
  refresh tokens, a reused one burns the grant; it counts refresh-token grants itself),
* a tiny aiohttp.web upstream (this file, ``--serve-upstream``) answering 200 + small JSON
  with the sha256 of the Authorization header it got (so distinct bearer tokens can be
  counted without ever printing one),
* R ``python -m bffgate serve`` processes sharing that Redis (session.refresh_ahead 2).

It logs in once (through replica 0), then for each window: sleeps until the access token
needs refresh (issued + T - 1.5 s; the gateway refreshes from max(issued + T/2,
expiry - refresh_ahead - jitter)), fires N concurrent GETs spread round-robin over the
replicas ("waiting": each of them needs the refreshed token), then, with the token fresh,
N more ("no refresh" baseline). A warm-up batch (token fresh, not reported) runs first;
every batch opens fresh connections, so both batches pay the same connect cost. Per window
it reports the refresh grants the IdP saw during the storm (must be 1), failed requests
(non-200; must be 0), distinct bearer tokens seen by the upstream during the storm (should
be 1), when the IdP answered the grant (ms after the storm started) and p50/p99 latency of
both batches.

Exit status 1 if any window had grants != 1 or any failed request.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
# The test suite's process helpers serve the benches too (one TOML writer, one port picker).
sys.path.insert(0, str(HERE.parent / "tests"))
from support.gateway import child_env, write_toml  # noqa: E402
from support.idp import free_port  # noqa: E402
from support.processes import ChildProcess, ProcessGroup, http_ok, redis_pong  # noqa: E402

COOKIE = "__Host-bffgate"
LOGIN_COOKIE = COOKIE + "-login"
START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- upstream


def serve_upstream(port: int) -> None:
    """The upstream: 200 + small JSON echoing sha256(Authorization)."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        digest = hashlib.sha256(auth.encode()).hexdigest() if auth else ""
        return web.json_response({"ok": True, "path": request.path, "auth_sha256": digest})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                backlog=4096)


# --------------------------------------------------------------------------- processes


# --------------------------------------------------------------------------- login


def _local(url: str) -> tuple[str, dict[str, str]]:
    """Connect to 127.0.0.1 while keeping the Host the URL names (gateway public_url uses
    ``localhost``)."""
    parts = urlsplit(url)
    host = parts.netloc
    netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": host}


def _set_cookie(response: Any, name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        cookie_name, _, rest = header.partition("=")
        if cookie_name.strip() == name:
            return str(rest.split(";", 1)[0])
    return None


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def login(gateway_url: str) -> str:
    """Log in as alice through one gateway; return the session cookie's value."""
    import httpx

    with httpx.Client(timeout=10, follow_redirects=False) as client:
        url, host = _local(gateway_url + "/bff/login?returnUrl=/")
        r = client.get(url, headers=host)
        if r.status_code != 302:
            raise RuntimeError(f"/bff/login: {r.status_code} {r.text[:300]}")
        binding = _set_cookie(r, LOGIN_COOKIE)
        authorize = r.headers["location"]
        r = client.get(authorize)
        if r.status_code != 200:
            raise RuntimeError(f"IdP /authorize: {r.status_code} {r.text[:300]}")
        fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(r.text)}
        fields["username"] = "alice"
        r = client.post(urljoin(authorize, "authorize"), data=fields)
        if r.status_code != 302:
            raise RuntimeError(f"IdP POST /authorize: {r.status_code} {r.text[:300]}")
        url, host = _local(r.headers["location"])
        headers = dict(host)
        if binding:
            headers["Cookie"] = f"{LOGIN_COOKIE}={binding}"
        r = client.get(url, headers=headers)
        if r.status_code != 302:
            raise RuntimeError(f"callback: {r.status_code} {r.text[:300]}")
        value = _set_cookie(r, COOKIE)
        if not value:
            raise RuntimeError("callback set no session cookie")
        return value


# --------------------------------------------------------------------------- load


@dataclass
class Batch:
    statuses: list[int]
    latencies: list[float]  # seconds
    tokens: set[str]
    errors: dict[str, int]
    grants: int
    grants_ok: int
    wall: float
    started_at: float  # wall clock (time.time()) when the batch was fired

    @property
    def failures(self) -> int:
        return sum(1 for s in self.statuses if s != 200)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest-rank
    return ordered[int(rank) - 1]


async def idp_stats(session: Any, idp_url: str) -> dict[str, Any]:
    async with session.get(idp_url + "/bench/stats") as r:
        return dict(await r.json())


async def fire(n: int, ports: list[int], cookie: str, idp_url: str, tag: str) -> Batch:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        before = await idp_stats(session, idp_url)
        headers = {"Cookie": f"{COOKIE}={cookie}", "X-CSRF": "1"}
        statuses: list[int] = []
        latencies: list[float] = []
        tokens: set[str] = set()
        errors: dict[str, int] = {}

        async def one(i: int) -> None:
            port = ports[i % len(ports)]
            url = f"http://127.0.0.1:{port}/api/storm/{tag}/{i}"
            t = time.perf_counter()
            try:
                async with session.get(url, headers=headers) as r:
                    body = await r.read()
                    status = r.status
                    if status == 200:
                        tokens.add(json.loads(body)["auth_sha256"])
                    else:
                        key = f"{status} {body[:120]!r}"
                        errors[key] = errors.get(key, 0) + 1
            except Exception as exc:  # every client error is a failure
                status = 0
                key = f"client error {type(exc).__name__}: {exc}"[:160]
                errors[key] = errors.get(key, 0) + 1
            latencies.append(time.perf_counter() - t)
            statuses.append(status)

        started_at = time.time()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
        after = await idp_stats(session, idp_url)
    return Batch(statuses, latencies, tokens, errors,
                 after["refresh_grants"] - before["refresh_grants"],
                 after["refresh_ok"] - before["refresh_ok"], wall, started_at)


async def last_token_at(idp_url: str) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        stats = await idp_stats(session, idp_url)
    return float(stats["last_token_at"])


@dataclass
class Window:
    index: int
    storm: Batch
    base: Batch
    grant_after: float  # seconds from storm start to the IdP's refresh response


async def run_windows(args: argparse.Namespace, ports: list[int], cookie: str,
                      idp_url: str) -> list[Window]:
    ttl = args.access_token_ttl
    windows: list[Window] = []
    # Warm-up (token fresh, not reported): first-use costs (upstream pools, code paths).
    log(f"warm-up: {args.concurrency} requests over {len(ports)} replica(s)...")
    warm = await fire(args.concurrency, ports, cookie, idp_url, "warmup")
    log(f"warm-up done in {warm.wall:.2f}s: grants={warm.grants} failures={warm.failures}")
    for err, count in sorted(warm.errors.items(), key=lambda kv: -kv[1])[:5]:
        log(f"    {count} x {err}")
    args.warmup_failures = warm.failures
    for w in range(1, args.windows + 1):
        issued = await last_token_at(idp_url)
        target = issued + ttl - 1.5
        delay = target - time.time()
        log(f"window {w}/{args.windows}: token issued {time.time() - issued:.1f}s ago; "
            f"sleeping {max(0.0, delay):.1f}s until it needs refresh")
        if delay > 0:
            await asyncio.sleep(delay)
        log(f"window {w}/{args.windows}: storm of {args.concurrency} over "
            f"{len(ports)} replica(s)...")
        storm = await fire(args.concurrency, ports, cookie, idp_url, f"w{w}-storm")
        log(f"window {w}/{args.windows}: storm done in {storm.wall:.2f}s: "
            f"grants={storm.grants} failures={storm.failures} tokens={len(storm.tokens)}")
        for err, count in sorted(storm.errors.items(), key=lambda kv: -kv[1])[:5]:
            log(f"    {count} x {err}")
        # Baseline mid-window: token fresh (refreshed during the storm).
        issued = await last_token_at(idp_url)
        grant_after = issued - storm.started_at
        log(f"window {w}/{args.windows}: the IdP answered the refresh grant "
            f"{grant_after * 1000:.0f} ms after the storm started")
        wait = issued + 1.0 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.time() - issued > ttl / 2 - 0.5:
            log(f"window {w}/{args.windows}: WARNING baseline starts late "
                f"({time.time() - issued:.1f}s after issue); it may overlap a refresh")
        log(f"window {w}/{args.windows}: baseline of {args.concurrency} (token fresh)...")
        base = await fire(args.concurrency, ports, cookie, idp_url, f"w{w}-base")
        log(f"window {w}/{args.windows}: baseline done in {base.wall:.2f}s: "
            f"grants={base.grants} failures={base.failures} tokens={len(base.tokens)}")
        for err, count in sorted(base.errors.items(), key=lambda kv: -kv[1])[:5]:
            log(f"    {count} x {err}")
        windows.append(Window(w, storm, base, grant_after))
    return windows


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def report(args: argparse.Namespace, windows: list[Window]) -> bool:
    ok = True
    print()
    print(f"refresh storm: concurrency={args.concurrency} replicas={args.replicas} "
          f"windows={args.windows} access_token_ttl={args.access_token_ttl}s "
          f"refresh_ahead=2s")
    print(f"load average before the report: {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs); each batch opens fresh connections; latency in ms")
    head = (f"{'window':>6} {'grants':>6} {'fail':>5} {'tokens':>6} {'grant at':>8} "
            f"{'wait p50':>9} {'wait p99':>9} {'wait max':>9} "
            f"{'base p50':>9} {'base p99':>9} {'base grants':>11} {'base fail':>9}  verdict")
    print(head)
    print("-" * len(head))
    for win in windows:
        s, b = win.storm, win.base
        failures = s.failures + b.failures
        good = s.grants == 1 and failures == 0
        notes = []
        if s.grants != 1:
            notes.append(f"grants={s.grants}")
        if failures:
            notes.append(f"failures={failures}")
        if len(s.tokens) != 1:
            notes.append(f"{len(s.tokens)} distinct tokens")
        if b.grants:
            notes.append("baseline saw a grant (timing)")
        verdict = "ok" if good else "FAIL"
        if notes:
            verdict += " (" + ", ".join(notes) + ")"
        ok = ok and good
        print(f"{win.index:>6} {s.grants:>6} {s.failures:>5} {len(s.tokens):>6} "
              f"{ms(win.grant_after):>8} "
              f"{ms(pct(s.latencies, 50)):>9} {ms(pct(s.latencies, 99)):>9} "
              f"{ms(max(s.latencies)):>9} "
              f"{ms(pct(b.latencies, 50)):>9} {ms(pct(b.latencies, 99)):>9} "
              f"{b.grants:>11} {b.failures:>9}  {verdict}")
    all_wait = [x for w in windows for x in w.storm.latencies]
    all_base = [x for w in windows for x in w.base.latencies]
    total_fail = sum(w.storm.failures + w.base.failures for w in windows)
    print("-" * len(head))
    print(f"summary: grants per window {[w.storm.grants for w in windows]} (must be 1), "
          f"failed requests {total_fail} of {2 * args.concurrency * len(windows)} (must be 0), "
          f"distinct tokens per storm {[len(w.storm.tokens) for w in windows]}")
    print(f"         latency (ms) waited-for-refresh p50 {ms(pct(all_wait, 50))} "
          f"p99 {ms(pct(all_wait, 99))} | no refresh p50 {ms(pct(all_base, 50))} "
          f"p99 {ms(pct(all_base, 99))}")
    if args.warmup_failures:
        print(f"         warm-up (token fresh, before window 1): {args.warmup_failures} "
              f"of {args.concurrency} requests failed")
        ok = False
    print(f"result: {'PASS' if ok else 'FAIL'}")
    return ok


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--access-token-ttl", type=int, default=6,
                        help="seconds (the gateway's refresh_ahead is 2)")
    parser.add_argument("--timeout", type=float, default=110.0,
                        help="hard limit for the whole run, seconds")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    if args.access_token_ttl < 4:
        parser.error("--access-token-ttl must be >= 4 (refresh_ahead is 2)")
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        parser.error("redis-server not found on PATH")

    workdir = Path(tempfile.mkdtemp(prefix="bffgate-storm-"))
    procs = ProcessGroup(workdir)
    failed = True

    def on_alarm(_sig: int, _frame: Any) -> None:
        raise TimeoutError(f"run exceeded --timeout {args.timeout}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(args.timeout)))
    try:
        redis_port = free_port()
        redis = procs.start("redis", [redis_server, "--port", str(redis_port),
                                      "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"])
        redis.wait_ready(redis_pong(redis_port), what="answering PING")
        log(f"redis-server pid {redis.pid} on 127.0.0.1:{redis_port}")

        ports = [(free_port(), free_port()) for _ in range(args.replicas)]
        idp_port, up_port = free_port(), free_port()
        idp_url = f"http://127.0.0.1:{idp_port}"
        client_id, client_secret = "storm-bench", secrets.token_urlsafe(24)
        idp_argv = [sys.executable, str(HERE / "_storm_idp.py"), "--port", str(idp_port),
                    "--client-id", client_id, "--client-secret", client_secret,
                    "--access-token-ttl", str(args.access_token_ttl)]
        for port, _ in ports:
            idp_argv += ["--redirect-uri", f"http://localhost:{port}/bff/callback",
                         "--post-logout-redirect-uri", f"http://localhost:{port}/"]
        idp = procs.start("idp", idp_argv)
        upstream = procs.start("upstream", [sys.executable, str(Path(__file__).resolve()),
                                            "--serve-upstream", str(up_port)])
        idp.wait_ready(http_ok(idp_url + "/.well-known/openid-configuration"))
        upstream.wait_ready(http_ok(f"http://127.0.0.1:{up_port}/healthz"))
        log(f"dev IdP pid {idp.pid} on {idp_url} (access_token_ttl "
            f"{args.access_token_ttl}s, rotating refresh tokens); upstream pid "
            f"{upstream.pid} on :{up_port}")

        cookie_key = secrets.token_urlsafe(32)
        env = child_env()  # this checkout's src, no BFFGATE_* from the shell
        gateways: list[tuple[ChildProcess, int, int]] = []
        for i, (port, admin_port) in enumerate(ports):
            config = {
                "server": {"public_url": f"http://localhost:{port}",
                           "listen": f"127.0.0.1:{port}",
                           "admin_listen": f"127.0.0.1:{admin_port}"},
                "oidc": {"issuer": idp_url, "client_id": client_id,
                         "client_secret": client_secret},
                "session": {"store": "redis", "refresh_ahead": 2},
                "cookie": {"secret_keys": [cookie_key]},
                "redis": {"url": f"redis://127.0.0.1:{redis_port}/0"},
                "log": {"level": "warning"},
                "routes": [{"prefix": "/api", "upstream": f"http://127.0.0.1:{up_port}",
                            "token": "user"}],
            }
            path = workdir / f"gateway{i}.toml"
            write_toml(path, config)
            gw = procs.start(f"gateway{i}", [sys.executable, "-m", "bffgate", "serve",
                                             "--config", str(path)], env=env)
            gateways.append((gw, port, admin_port))
        for gw, _port, admin_port in gateways:
            gw.wait_ready(http_ok(f"http://127.0.0.1:{admin_port}/healthz"), timeout=30)
        log(f"{len(gateways)} gateway replica(s) healthy: pids "
            f"{[g.pid for g, _, _ in gateways]} ports {[p for _, p, _ in gateways]}")

        cookie = login(f"http://localhost:{gateways[0][1]}")
        log("logged in as alice through replica 0 (session cookie obtained)")

        windows = asyncio.run(run_windows(args, [p for _, p, _ in gateways], cookie, idp_url))
        signal.alarm(0)
        failed = not report(args, windows)
        if failed:
            for gw, _, _ in gateways:
                tail = gw.tail(15)
                if tail:
                    print(f"--- {gw.name} log tail ---\n{tail}")
    except Exception as exc:  # report, clean up, exit 1
        signal.alarm(0)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        failed = True
    finally:
        signal.alarm(0)
        procs.stop_all()
        log("all processes stopped")
        if args.keep_logs or failed:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
