"""Refresh-storm benchmark: one session, N concurrent requests over R replicas, right when
the access token needs a refresh (issue 3 item 8; issue #12: bffgate next to Apache +
mod_auth_openidc).

    python bench/refresh_storm.py [--concurrency 300] [--replicas 3] [--windows 3]
                                  [--access-token-ttl 6] [--peers bffgate,apache]
                                  [--upstream-check active|exp|none] [--src DIR]
                                  [--timeout 240]

Question: with rotating refresh tokens (a reused one burns the whole grant), does a burst
of N calls spread over R replicas at the moment of refresh cost exactly one refresh grant
and no failed call - and what does a peer without a cross-replica refresh lock do?

Everything on 127.0.0.1, every process started here and stopped by PID:

* its own ``redis-server`` on a free port (no persistence), shared by all replicas;
* ONE identity provider for both peers: bffgate's development IdP (bench/_storm_idp.py:
  refresh tokens rotate on every use, presenting a spent one revokes the grant and its
  access tokens; it counts refresh grants and answers ``POST /bench/active``). Discovery,
  PKCE S256, client_secret_basic; one client whose redirect URIs are every gateway's
  ``/bff/callback`` and every Apache's ``/oidc/callback``;
* an aiohttp.web upstream (this file, ``--serve-upstream``) that checks the bearer like a
  resource server (``--upstream-check active``, default: not expired AND still active at
  the IdP, i.e. introspection; ``exp``: only its expiry; ``none``) and answers 200 with the
  sha256 of the Authorization header (distinct tokens are counted, none printed) or 401;
* per peer, R replicas sharing that Redis: ``bffgate serve`` (session.refresh_ahead 2), and
  Apache httpd with mod_auth_openidc (bench/peers/apache.py: server-cache sessions in Redis,
  ``OIDCRefreshAccessTokenBeforeExpiry 2``, bearer to the upstream, 401 on /api), skipped
  with a note when apache2 or the module is not installed.

Per peer it logs in once through replica 0 (scripted, through the IdP's form), then per
window: sleeps until the access token needs refresh (issued + T - 1.5 s), fires N concurrent
GETs round-robin over the replicas ("storm": each needs the refreshed token), then, 1 s
after the IdP answered the last successful grant, N more ("baseline"). After each window one
probe call checks the session still works; if it does not, the session is "lost" and the
bench logs in again before the next window (so every window is a fresh trial). Grants are
counted AT THE IdP: refresh grants, and failed ones (invalid_grant: a spent token).

Exit status 1 if bffgate had any window with grants != 1, any failed call or a lost session
(the peers' results are reported, not judged).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _stack import (
    COOKIE,
    Stack,
    describe_source,
    free_port,
    gateway_config,
    gateway_login,
    log,
    machine,
    new_secret,
    source_env,
)

from support.processes import http_ok, port_open

# --------------------------------------------------------------------------- upstream


def serve_upstream(port: int, check: str, idp_url: str) -> None:
    """The upstream: checks the bearer (see --upstream-check), answers 200 + JSON with
    sha256(Authorization), or 401."""
    import aiohttp
    from aiohttp import web

    state: dict[str, Any] = {}

    async def on_startup(_app: web.Application) -> None:
        state["http"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=10))

    async def on_cleanup(_app: web.Application) -> None:
        await state["http"].close()

    async def refuse(reason: str) -> web.Response:
        return web.json_response({"ok": False, "error": reason}, status=401)

    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if check != "none":
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or token.count(".") != 2:
                return await refuse("no_bearer")
            try:
                payload = token.split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                exp = float(claims["exp"])
            except (ValueError, KeyError, TypeError):
                return await refuse("malformed")
            if exp <= time.time():
                return await refuse("expired")
            if check == "active":
                async with state["http"].post(idp_url + "/bench/active",
                                              data=token.encode()) as r:
                    if not (await r.json())["active"]:
                        return await refuse("inactive")
        digest = hashlib.sha256(auth.encode()).hexdigest() if auth else ""
        return web.json_response({"ok": True, "path": request.path, "auth_sha256": digest})

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                backlog=4096)


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

    @property
    def grants_failed(self) -> int:
        return self.grants - self.grants_ok


@dataclass
class Peer:
    """One product under test: its replicas' ports, how to log in, the cookie header."""

    name: str
    ports: list[int]
    login: Callable[[], str]  # -> the Cookie header value of a fresh session
    headers: dict[str, str] = field(default_factory=dict)  # sent with every call
    cookie: str = ""
    windows: list[Window] = field(default_factory=list)
    warmup_failures: int = 0
    logins: int = 0

    def relogin(self) -> None:
        self.cookie = self.login()
        self.logins += 1


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest-rank
    return ordered[int(rank) - 1]


async def idp_stats(session: Any, idp_url: str) -> dict[str, Any]:
    async with session.get(idp_url + "/bench/stats") as r:
        return dict(await r.json())


async def fire(n: int, peer: Peer, idp_url: str, tag: str) -> Batch:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        before = await idp_stats(session, idp_url)
        headers = {"Cookie": peer.cookie, **peer.headers}
        statuses: list[int] = []
        latencies: list[float] = []
        tokens: set[str] = set()
        errors: dict[str, int] = {}

        async def one(i: int) -> None:
            port = peer.ports[i % len(peer.ports)]
            url = f"http://127.0.0.1:{port}/api/storm/{tag}/{i}"
            t = time.perf_counter()
            try:
                async with session.get(url, headers=headers, allow_redirects=False) as r:
                    body = await r.read()
                    status = r.status
                    if status == 200:
                        tokens.add(json.loads(body)["auth_sha256"])
                    else:
                        key = f"{status} from :{port} {body[:100]!r}"
                        errors[key] = errors.get(key, 0) + 1
            except Exception as exc:  # every client error is a failure
                status = 0
                key = f"client error (:{port}) {type(exc).__name__}: {exc}"[:160]
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
    grant_after: float  # seconds from storm start to the IdP's last successful grant
    lost: bool  # the probe after the window failed: the session is gone
    relogged: bool  # this window started on a fresh login (the previous one was lost)


def show_errors(batch: Batch) -> None:
    for err, count in sorted(batch.errors.items(), key=lambda kv: -kv[1])[:4]:
        log(f"    {count} x {err}")


async def run_windows(args: argparse.Namespace, peer: Peer, idp_url: str) -> None:
    ttl = args.access_token_ttl
    name = f"{peer.name}:"
    log(f"{name} warm-up: {args.concurrency} requests over {len(peer.ports)} replica(s)...")
    warm = await fire(args.concurrency, peer, idp_url, "warmup")
    log(f"{name} warm-up done in {warm.wall:.2f}s: grants={warm.grants} "
        f"failures={warm.failures}")
    show_errors(warm)
    peer.warmup_failures = warm.failures
    relogged = False
    for w in range(1, args.windows + 1):
        issued = await last_token_at(idp_url)
        delay = issued + ttl - 1.5 - time.time()
        log(f"{name} window {w}/{args.windows}: token issued {time.time() - issued:.1f}s "
            f"ago; sleeping {max(0.0, delay):.1f}s until it needs refresh")
        if delay > 0:
            await asyncio.sleep(delay)
        storm = await fire(args.concurrency, peer, idp_url, f"w{w}-storm")
        log(f"{name} window {w}: storm done in {storm.wall:.2f}s: grants={storm.grants} "
            f"(failed {storm.grants_failed}) failures={storm.failures} "
            f"tokens={len(storm.tokens)}")
        show_errors(storm)
        issued = await last_token_at(idp_url)
        grant_after = issued - storm.started_at
        wait = issued + 1.0 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        base = await fire(args.concurrency, peer, idp_url, f"w{w}-base")
        log(f"{name} window {w}: baseline done in {base.wall:.2f}s: grants={base.grants} "
            f"(failed {base.grants_failed}) failures={base.failures} "
            f"tokens={len(base.tokens)}")
        show_errors(base)
        probe = await fire(1, peer, idp_url, f"w{w}-probe")
        lost = probe.failures > 0
        windows_left = w < args.windows
        if lost:
            log(f"{name} window {w}: the session is LOST (probe failed)"
                + ("; logging in again for the next window" if windows_left else ""))
        peer.windows.append(Window(w, storm, base, grant_after, lost, relogged))
        relogged = False
        if lost and windows_left:
            await asyncio.to_thread(peer.relogin)
            relogged = True


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def report_peer(args: argparse.Namespace, peer: Peer) -> bool:
    """The per-window table of one peer; True if it met bffgate's bar."""
    ok = True
    print(f"\n{peer.name}: concurrency={args.concurrency} replicas={args.replicas} "
          f"windows={args.windows} access_token_ttl={args.access_token_ttl}s refresh ahead 2s "
          f"upstream check={args.upstream_check}")
    head = (f"{'window':>6} {'grants':>6} {'failed':>6} {'fail':>5} {'tokens':>6} "
            f"{'grant at':>8} {'wait p50':>9} {'wait p99':>9} {'base p50':>9} "
            f"{'base p99':>9} {'base fail':>9} {'lost':>5}  verdict")
    print(head)
    print("-" * len(head))
    for win in peer.windows:
        s, b = win.storm, win.base
        failures = s.failures + b.failures
        good = s.grants == 1 and failures == 0 and not win.lost
        notes = []
        if s.grants != 1:
            notes.append(f"grants={s.grants}")
        if s.grants_failed + b.grants_failed:
            notes.append(f"{s.grants_failed + b.grants_failed} failed grants")
        if failures:
            notes.append(f"failures={failures}")
        if win.lost:
            notes.append("session lost")
        if win.relogged:
            notes.append("fresh login")
        if b.grants and not b.grants_failed:
            notes.append("baseline saw a grant (timing)")
        ok = ok and good
        verdict = ("ok" if good else "FAIL") + (" (" + ", ".join(notes) + ")" if notes else "")
        grant_at = ms(win.grant_after) if s.grants_ok else "-"
        print(f"{win.index:>6} {s.grants:>6} {s.grants_failed:>6} {s.failures:>5} "
              f"{len(s.tokens):>6} {grant_at:>8} "
              f"{ms(pct(s.latencies, 50)):>9} {ms(pct(s.latencies, 99)):>9} "
              f"{ms(pct(b.latencies, 50)):>9} {ms(pct(b.latencies, 99)):>9} "
              f"{b.failures:>9} {'yes' if win.lost else 'no':>5}  {verdict}")
    if peer.warmup_failures:
        print(f"warm-up (token fresh, before window 1): {peer.warmup_failures} of "
              f"{args.concurrency} requests failed")
        ok = False
    return ok


def summary_row(args: argparse.Namespace, peer: Peer) -> str:
    wins = peer.windows
    bursts = [b for w in wins for b in (w.storm, w.base)]
    failed_bursts = sum(1 for b in bursts if b.failures)
    calls = sum(len(b.statuses) for b in bursts)
    failed_calls = sum(b.failures for b in bursts)
    grants = [w.storm.grants for w in wins]
    failed_grants = sum(b.grants_failed for b in bursts)
    lost = sum(1 for w in wins if w.lost)
    wait = [x for w in wins for x in w.storm.latencies]
    return (f"| {peer.name} | {', '.join(map(str, grants))} | {failed_grants} | "
            f"{failed_bursts} of {len(bursts)} | {failed_calls:,} of {calls:,} | "
            f"{lost} of {len(wins)} | {ms(pct(wait, 50))} / {ms(pct(wait, 99))} |")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--access-token-ttl", type=int, default=6,
                        help="seconds (refresh ahead is 2 for both peers)")
    parser.add_argument("--peers", default="bffgate,apache",
                        help="comma-separated: bffgate, apache")
    parser.add_argument("--upstream-check", choices=("active", "exp", "none"),
                        default="active")
    parser.add_argument("--src", help="run bffgate from this source tree")
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="hard limit for the whole run, seconds")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--serve-upstream", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        port, check, idp = args.serve_upstream
        serve_upstream(int(port), check, idp)
        return 0
    if args.access_token_ttl < 4:
        parser.error("--access-token-ttl must be >= 4 (refresh ahead is 2)")
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = set(wanted) - {"bffgate", "apache"}
    if unknown:
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))}")
    from peers import apache as apache_peer

    notes: list[str] = []
    if "apache" in wanted and (apache_peer.apache_binary() is None
                               or apache_peer.mod_auth_openidc_version() is None):
        notes.append("apache skipped: apt-get install apache2 libapache2-mod-auth-openidc")
        wanted.remove("apache")
    env = source_env(args.src)
    print(f"machine: {machine()}; bffgate source: {describe_source(args.src)}")
    if "apache" in wanted:
        print(f"mod_auth_openidc {apache_peer.mod_auth_openidc_version()}")

    bff_ok = True
    peers: list[Peer] = []
    with Stack("bffgate-storm-", args.timeout) as stack:
        stack.keep = args.keep_logs
        redis, redis_port = stack.redis()
        log(f"redis-server pid {redis.pid} on 127.0.0.1:{redis_port}")
        gw_ports = [(free_port(), free_port()) for _ in range(args.replicas)]
        ap_ports = [free_port() for _ in range(args.replicas)]
        client_id, client_secret = "storm-bench", new_secret()
        redirects = [f"http://localhost:{p}/bff/callback" for p, _ in gw_ports]
        redirects += [f"http://127.0.0.1:{p}{apache_peer.REDIRECT_PATH}" for p in ap_ports]
        idp, idp_url = stack.storm_idp(client_id, client_secret, redirects,
                                       args.access_token_ttl)
        up_port = free_port()
        upstream = stack.procs.start("upstream", [
            sys.executable, str(Path(__file__).resolve()), "--serve-upstream", str(up_port),
            args.upstream_check, idp_url], env=env)
        upstream.wait_ready(port_open(up_port), what="listening")
        upstream_url = f"http://127.0.0.1:{up_port}"
        log(f"dev IdP pid {idp.pid} on {idp_url} (access tokens {args.access_token_ttl}s, "
            f"rotating refresh tokens); upstream pid {upstream.pid} on :{up_port} "
            f"(check: {args.upstream_check})")

        if "bffgate" in wanted:
            cookie_key = new_secret()
            gws = []
            for i, (port, admin_port) in enumerate(gw_ports):
                config = gateway_config(port, admin_port, idp_url, client_id, client_secret,
                                        redis_port, upstream_url, cookie_key,
                                        refresh_ahead=2)
                gws.append((stack.gateway(f"gateway{i}", config, env), admin_port))
            for gw, admin_port in gws:
                gw.wait_ready(http_ok(f"http://127.0.0.1:{admin_port}/healthz"), timeout=30)
            log(f"bffgate: {len(gws)} replica(s) healthy: pids {[g.pid for g, _ in gws]}")
            first = f"http://localhost:{gw_ports[0][0]}"
            peers.append(Peer("bffgate", [p for p, _ in gw_ports],
                              lambda: f"{COOKIE}={gateway_login(first)}", {"X-CSRF": "1"}))
        if "apache" in wanted:
            passphrase = new_secret()  # shared: every replica reads the others' sessions
            handles = []
            for i, port in enumerate(ap_ports):
                root = stack.workdir / f"apache{i}"
                handles.append(apache_peer.start_apache(root, port, upstream_url, oidc={
                    "issuer": idp_url, "client_id": client_id, "client_secret": client_secret,
                    "redis_port": redis_port, "refresh_before_expiry": 2,
                    "crypto_passphrase": passphrase}))
            stack.on_exit(lambda: [h.stop() for h in handles])
            log(f"apache + mod_auth_openidc: {len(handles)} replica(s): pids "
                f"{[h.pid for h in handles]}")
            first_ap = handles[0].url
            peers.append(Peer("apache", ap_ports,
                              lambda: apache_peer.apache_login(first_ap)))

        for peer in peers:
            peer.relogin()
            log(f"{peer.name}: logged in as alice through replica 0")
            asyncio.run(run_windows(args, peer, idp_url))
        stack.disarm()
        for peer in peers:
            good = report_peer(args, peer)
            if peer.name == "bffgate":
                bff_ok = good
        print(f"\nrefresh storm, both peers: N={args.concurrency} calls per burst over "
              f"R={args.replicas} replicas, {args.windows} windows (a storm burst and a "
              f"baseline burst each), rotating refresh tokens, upstream check "
              f"{args.upstream_check}; load average {os.getloadavg()[0]:.2f}")
        print("| peer | refresh grants per storm | failed refresh grants | bursts with "
              "failures | failed calls | sessions lost | storm p50 / p99 ms |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for peer in peers:
            print(summary_row(args, peer))
        for note in notes:
            print(f"note: {note}")
        print(f"result (bffgate): {'PASS' if bff_ok else 'FAIL'}")
        if not bff_ok:
            stack.keep = True
    return 0 if bff_ok else 1


if __name__ == "__main__":
    sys.exit(main())
