"""Login cost: how much of the gateway's CPU does one login take (issue #12)?

    python bench/login_cost.py [--logins 300] [--parallel 4] [--log-level info]
                               [--pyspy FILE] [--src DIR [--src DIR2]] [--rounds N]

One login = ``GET /bff/login`` (302 to the IdP, login record in Redis) + the IdP's round
(sign-in form and POST, 302 to the callback: the IdP's own work, excluded) +
``GET /bff/callback`` (login record taken, code exchanged at the IdP's token endpoint, ID
token verified, session written to Redis, cookie set). The figure is the **gateway
process tree's user + system CPU** (from /proc, all threads; IdP, Redis and the client are
other processes, so excluded) during N logins, divided by N. Target (issue #12): ≤ 2 ms.

Everything on 127.0.0.1, started here and stopped by PID: its own ``redis-server``,
bffgate's development IdP (bench/_storm_idp.py, ES256 ID tokens), one ``bffgate serve``
(log level ``info`` by default: each login writes its audit lines, as deployed). The client
(threads, one httpx client each, a keep-alive connection per client like a browser)
runs ``--parallel`` logins at a time. A warm-up of 20 logins (JWKS fetched, code paths
loaded) is not counted.

``--pyspy FILE`` then profiles the gateway (py-spy, ``pip install py-spy``) during a second
batch of the same size and prints where its time goes (self time by package and the top
functions, inclusive time of bffgate's functions); the raw collapsed stacks go to FILE.
``--src DIR`` runs the gateway from another source tree (a ``git archive`` of the commit to
measure), default this checkout's src/. Given twice (before, after), both gateways run side
by side on the same IdP and Redis and their batches alternate (``--rounds``, default 3): CPU
per login moves by up to 2x with the machine's other load, so compare within one run.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _stack import (
    Stack,
    cpu_split,
    describe_source,
    free_port,
    gateway_config,
    gateway_login,
    log,
    machine,
    new_secret,
    source_env,
)
from peers import apache as apache_peer

from support.processes import http_ok


def run_logins(url: str, n: int, parallel: int,
               login: Callable[[str, Any], object] = gateway_login,
               ) -> tuple[list[float], int]:
    """``n`` logins, ``parallel`` at a time; (latencies in s, failures). ``login(url,
    client)``: one login through the server at ``url`` (bffgate's by default)."""
    import httpx

    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def one(_i: int) -> float | None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=15, follow_redirects=False,
                                                 trust_env=False)
            with lock:
                clients.append(client)
        t = time.perf_counter()
        try:
            login(url, client)
        except Exception as exc:  # counted, first few shown
            log(f"login failed: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        return time.perf_counter() - t

    try:
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(one, range(n)))
    finally:
        for client in clients:
            client.close()
    ok = [r for r in results if r is not None]
    return ok, n - len(ok)


def measure(url: str, pid: int, n: int, parallel: int, label: str,
            login: Callable[[str, Any], object] = gateway_login) -> dict[str, float]:
    from _measure import busy_jiffies

    (u0, s0), t0, busy0 = cpu_split(pid), time.perf_counter(), busy_jiffies()
    latencies, failures = run_logins(url, n, parallel, login)
    wall, (u1, s1) = time.perf_counter() - t0, cpu_split(pid)
    busy = (busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK") / wall * 100
    cpu = (u1 - u0) + (s1 - s0)
    done = max(1, len(latencies))
    result = {"logins": len(latencies), "failures": failures, "wall": wall, "cpu": cpu,
              "cpu_ms_per_login": cpu * 1000 / done, "logins_per_s": len(latencies) / wall,
              "user_ms": (u1 - u0) * 1000 / done, "sys_ms": (s1 - s0) * 1000 / done,
              "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
              "gateway_cpu_pct": cpu / wall * 100, "machine_busy_pct": busy}
    log(f"{label}: {len(latencies)} logins ({failures} failed) in {wall:.1f}s = "
        f"{result['logins_per_s']:.0f}/s; gateway CPU {cpu:.2f}s = "
        f"{result['cpu_ms_per_login']:.2f} ms/login (user {result['user_ms']:.2f} + sys "
        f"{result['sys_ms']:.2f}; {result['gateway_cpu_pct']:.0f} % of "
        f"a core); login p50 {result['p50_ms']:.1f} ms (whole round, IdP included); machine "
        f"busy {busy:.0f} % of one core (all processes, {os.cpu_count()} cores)")
    return result


def _apache_login(url: str, client: Any) -> object:
    """A login through Apache + mod_auth_openidc: its /login (302 to the IdP), the IdP's
    form, its /oidc/callback (code exchanged, ID token verified, session written to Redis);
    the page the callback then redirects to is not fetched, as bffgate's returnUrl is not."""
    return apache_peer.apache_login(url, client=client, page_after=False)


# --------------------------------------------------------------------------- py-spy


def _package(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> a package-ish name for grouping."""
    path = frame.rsplit("(", 1)[-1].rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages", "src"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1:]
            return rest[0].removesuffix(".py") if rest else path
    if "lib" in parts and any(p.startswith("python3") for p in parts):
        return "stdlib:" + Path(path).stem
    return Path(path).stem


def summarize_pyspy(raw: Path, top: int = 25) -> None:
    self_fn: collections.Counter[str] = collections.Counter()
    self_pkg: collections.Counter[str] = collections.Counter()
    incl_bff: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        leaf = frames[-1]
        self_fn[leaf] += n
        self_pkg[_package(leaf)] += n
        for frame in set(frames):
            if "bffgate" in frame:
                incl_bff[frame] += n
    if not total:
        print("py-spy: no samples")
        return
    print(f"\npy-spy: {total} samples of the gateway (idle samples excluded)")
    print("self time by package:")
    for pkg, n in self_pkg.most_common(15):
        print(f"  {n / total * 100:5.1f} %  {pkg}")
    print(f"top {top} functions by self time:")
    for fn, n in self_fn.most_common(top):
        print(f"  {n / total * 100:5.1f} %  {fn}")
    print("bffgate functions by inclusive time:")
    for fn, n in incl_bff.most_common(top):
        print(f"  {n / total * 100:5.1f} %  {fn}")


def profile(url: str, pid: int, n: int, parallel: int, out: Path, native: bool) -> None:
    import shutil

    pyspy = shutil.which("py-spy")
    if pyspy is None:
        log("py-spy not found (pip install py-spy): no profile")
        return
    spy = subprocess.Popen([pyspy, "record", "-p", str(pid), "-r", "250", "--format", "raw",
                            "-o", str(out), *(["--native"] if native else ["--nonblocking"])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach
    try:
        measure(url, pid, n, parallel, "profiled batch")
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            spy.wait(20)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(5)
    if out.exists():
        summarize_pyspy(out)
    else:
        err = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
        log(f"py-spy wrote nothing: {err[-500:]}")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, help="measured batches per gateway (default 1; "
                        "3 with more than one --src)")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--pyspy", type=Path, help="profile a second batch; raw stacks here")
    parser.add_argument("--native", action="store_true",
                        help="py-spy --native: C frames too (uvloop, httptools, ...)")
    parser.add_argument("--src", action="append",
                        help="run the gateway from this source tree; give it twice (before, "
                             "after) to measure both in one run, batches interleaved")
    parser.add_argument("--apache", action="store_true",
                        help="also Apache + mod_auth_openidc (its server-side sessions in the "
                             "same Redis, the same IdP), batches interleaved with bffgate's")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    sources: list[str | None] = args.src or [None]
    rounds = args.rounds or (3 if len(sources) > 1 else 1)
    envs = [source_env(src) for src in sources]
    print(f"machine: {machine()}; gateway source(s): "
          f"{', '.join(describe_source(src) for src in sources)}")

    failures = 0
    with Stack("bffgate-login-cost-", args.timeout) as stack:
        _redis, redis_port = stack.redis()
        ports = [(free_port(), free_port()) for _ in sources]
        client_id, client_secret = "login-bench", new_secret()
        apache_port = free_port()
        redirects = [f"http://localhost:{port}/bff/callback" for port, _ in ports]
        if args.apache:
            redirects.append(f"http://127.0.0.1:{apache_port}{apache_peer.REDIRECT_PATH}")
        _idp, idp_url = stack.storm_idp(client_id, client_secret, redirects, 3600)
        gateways: list[tuple[int, str, str, Callable[[str, Any], object]]] = []
        children = []
        for i, ((port, admin_port), env) in enumerate(zip(ports, envs, strict=True)):
            config = gateway_config(port, admin_port, idp_url, client_id, client_secret,
                                    redis_port, "http://127.0.0.1:9", new_secret(),
                                    log_level=args.log_level)
            gw = stack.gateway(f"gateway{i}", config, env)
            gw.wait_ready(http_ok(f"http://127.0.0.1:{admin_port}/healthz"), timeout=30)
            assert gw.pid is not None
            children.append(gw)
            gateways.append((gw.pid, f"http://localhost:{port}", describe_source(sources[i]),
                             gateway_login))
            log(f"gateway{i} pid {gw.pid} on :{port} from {describe_source(sources[i])} "
                f"(log level {args.log_level}); redis :{redis_port}, dev IdP {idp_url}")
        if args.apache:
            apache = apache_peer.start_apache(
                stack.workdir / "apache", apache_port, "http://127.0.0.1:9", oidc={
                    "issuer": idp_url, "client_id": client_id, "client_secret": client_secret,
                    "redis_port": redis_port})
            stack.on_exit(apache.stop)
            label = f"apache + mod_auth_openidc {apache_peer.mod_auth_openidc_version()}"
            gateways.append((apache.pid, apache.url, label, _apache_login))
            log(f"{label} pid {apache.pid} on :{apache_port}")
        for pid, url, label, login in gateways:
            measure(url, pid, args.warmup, args.parallel, f"{label} warm-up", login)
        results: list[list[dict[str, float]]] = [[] for _ in gateways]
        for rnd in range(rounds):
            order = list(range(len(gateways)))
            if rnd % 2:
                order.reverse()
            for i in order:
                pid, url, label, login = gateways[i]
                results[i].append(measure(url, pid, args.logins, args.parallel,
                                          f"round {rnd + 1} {label}", login))
        if args.pyspy:
            pid, url, _, _ = gateways[0]
            profile(url, pid, args.logins, args.parallel, args.pyspy, args.native)
        print(f"\nlogin cost: {args.logins} logins per batch, {args.parallel} in parallel, "
              f"log level {args.log_level}, {rounds} round(s); gateway CPU per login "
              f"(target <= 2 ms), median of the rounds:")
        medians = []
        for i, runs in enumerate(results):
            cpu = statistics.median(r["cpu_ms_per_login"] for r in runs)
            medians.append(cpu)
            user = statistics.median(r["user_ms"] for r in runs)
            system = statistics.median(r["sys_ms"] for r in runs)
            rate = statistics.median(r["logins_per_s"] for r in runs)
            fails = sum(int(r["failures"]) for r in runs)
            failures += fails
            peer = i >= len(sources)  # mod_auth_openidc, after the gateways
            verdict = "" if peer else " PASS" if cpu <= 2.0 else " ABOVE TARGET"
            per_round = ", ".join(f"{r['cpu_ms_per_login']:.2f}" for r in runs)
            print(f"  {gateways[i][2]}: {cpu:.2f} ms per login (user {user:.2f} + "
                  f"sys {system:.2f}; rounds "
                  f"{per_round}){verdict}; "
                  f"{rate:.0f} logins/s with the IdP on the same cores; failures {fails}")
        if len(sources) > 1:
            print(f"  ratio {describe_source(sources[-1])} / {describe_source(sources[0])}: "
                  f"{medians[len(sources) - 1] / medians[0]:.2f}")
        if args.apache:
            print("  bffgate / mod_auth_openidc, per login: " + ", ".join(
                f"{describe_source(src)} {medians[i] / medians[-1]:.2f}x"
                for i, src in enumerate(sources)))
        if failures:
            stack.keep = True
            for child in children:
                print(child.tail(20))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
