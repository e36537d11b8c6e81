"""bffgate vs its peers, side by side in one run (issue #12's main bench; by hand, never in CI).

    python bench/compare.py                       # every row, 3 interleaved rounds (~4-5 min)
    python bench/compare.py --only nginx,apache-oidc,bffgate-info --rounds 2 --duration 3
    python bench/compare.py --bffgate-src /tmp/bffgate-before/src --json before.json
    python bench/compare.py --list                # the rows and whether they can run here

Everything on 127.0.0.1, every process started here and stopped by PID: the upstream
(bench/_upstream.py: 1 KB JSON at GET /api/data, counting the calls it serves), a real
OpenID provider (tests/idp, npm ``oidc-provider``, started like the tests start it, with an
access-token lifetime of an hour so that no refresh happens in a timed run), one
``redis-server`` per gateway that keeps sessions (so each row's Redis commands are its
own), and the rows:

  direct        wrk straight at the upstream
  nginx         nginx proxy_pass, no auth (Debian nginx, worker_processes auto, keep-alive
                upstream pool)
  apache        Apache httpd mod_proxy, no auth (mpm_event)
  apache-oidc   Apache + mod_auth_openidc (Debian), server-cache sessions in Redis, the
                access token to the upstream as a bearer (bench/peers/apache.py)
  express       express + express-openid-connect + http-proxy-middleware, sessions in Redis
                via connect-redis (bench/peers/express)
  bffgate       ``bffgate serve``, log level warning
  bffgate-info  ``bffgate serve``, default log level info: one request.proxied audit line per
                call on stdout, read by the bench like a log shipper would
  bffgate-wN    ``bffgate serve --workers N`` (default N=2), log level info; skipped with a
                note when the bffgate under test has no ``--workers``
  lean          bench/lean_proxy.py: raw ASGI under uvicorn+httptools+uvloop, aiohttp
                client, ONE Redis GET per call, no other check

Every gateway row is logged in through the IdP (the scripted form login of
tests/support/idp.py; Apache through bench/peers/apache.py's login; the lean proxy by a
code flow run by the bench, its session written to its Redis) and wrk sends that
session's cookie (and ``X-CSRF: 1``) with every request. Before timing, each row must
answer GET /api/data with 200 and the upstream's exact bytes, and a session row must
answer 401 without the cookie.

Load: ``wrk -t2 -c50``, 1 s warm-up, then 5 s timed, per row, rows interleaved, 3 rounds;
the table shows medians. Columns:

* gateway CPU µs/req: user + system CPU of the gateway's whole process tree (nginx and
  Apache workers, bffgate workers) from /proc before and after the timed run, divided by
  the requests wrk completed;
* Redis commands/req: the row's redis-server ``INFO commandstats`` delta over the timed
  runs, per request, by command; Redis CPU µs/req its CPU the same way;
* non-2xx: wrk's non-2xx/3xx responses summed over the rounds (socket errors, if any, in
  parentheses);
* upstream: the GET /api/data calls the upstream counted during the timed run must be at
  least the 2xx responses wrk got (every 200 reached the upstream), and for session rows
  every one must carry a Bearer token;
* ratios: CPU / mod_auth_openidc's, req/s / nginx's, p99 / nginx's;
* other load: CPU the machine spent meanwhile on processes this bench did not start (from
  /proc/stat), in % of one CPU. Above ~15 % on 2 cores the figures are noisy: rerun.

Needs wrk, redis-server, node (tests/idp's node_modules: ``npm ci --prefix tests/idp``), and
for their rows nginx, apache2 + libapache2-mod-auth-openidc. Rows whose tools are missing
are skipped with a note. bench/README.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's process and IdP helpers
from _measure import (  # noqa: E402
    WRK_LUA,
    busy_jiffies,
    commands_delta,
    cpu_seconds,
    redis_commandstats,
    tree_cpu_seconds,
    wrk,
)
from _upstream import DATA  # noqa: E402
from peers import apache as apache_peer  # noqa: E402

from support.browser import Browser  # noqa: E402
from support.gateway import write_toml  # noqa: E402
from support.idp import OidcProviderProcess, complete_idp_login, free_port  # noqa: E402
from support.processes import (  # noqa: E402
    ChildProcess,
    ProcessGroup,
    http_ok,
    log_line,
    port_open,
    redis_pong,
)

EXPRESS_DIR = HERE / "peers" / "express"
BFFGATE_COOKIE = "__Host-bffgate"
START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


# --------------------------------------------------------------------------- rows
@dataclass
class Row:
    key: str
    label: str
    kind: str  # direct | nginx | apache | apache-oidc | express | bffgate | lean
    log_level: str = "warning"
    workers: int = 1
    port: int = 0
    skip: str | None = None
    pid: int | None = None  # root of the gateway's process tree
    redis_port: int | None = None
    redis_pid: int | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"X-CSRF": "1"})
    client_id: str = ""
    client_secret: str = ""
    lines: list[int] = field(default_factory=lambda: [0, 0])  # stdout lines, request.proxied
    stop: Callable[[], Any] | None = None
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def session(self) -> bool:
        return self.kind not in ("direct", "nginx", "apache")

    @property
    def redirect_path(self) -> str:
        return {"apache-oidc": apache_peer.REDIRECT_PATH, "express": "/callback",
                "bffgate": "/bff/callback", "lean": "/cb"}[self.kind]


def all_rows(workers: int) -> list[Row]:
    mod = apache_peer.mod_auth_openidc_version()
    mod = f" {mod.split('-')[0]} (Debian)" if mod else ""
    return [
        Row("direct", "direct (wrk straight at the upstream)", "direct"),
        Row("nginx", "nginx proxy_pass, no auth", "nginx"),
        Row("apache", "Apache mod_proxy, no auth", "apache"),
        Row("apache-oidc", f"Apache + mod_auth_openidc{mod}, Redis sessions", "apache-oidc"),
        Row("express", "express + express-openid-connect + http-proxy-middleware, Redis",
            "express"),
        Row("bffgate", "bffgate, log level warning", "bffgate"),
        Row("bffgate-info", "bffgate, default log level info", "bffgate", log_level="info"),
        Row(f"bffgate-w{workers}", f"bffgate, {workers} workers, log level info", "bffgate",
            log_level="info", workers=workers),
        Row("lean", "lean Python proxy (raw ASGI + aiohttp + one Redis GET, no checks)",
            "lean"),
    ]


def missing_tools(row: Row) -> str | None:
    need = {"nginx": ["nginx"], "apache": ["apache2"], "apache-oidc": ["apache2", "node"],
            "express": ["node", "npm"], "bffgate": ["node"], "lean": ["node"]}.get(row.kind, [])
    gone = [t for t in need if which(t) is None]
    if row.kind == "apache-oidc" and not (apache_peer.MODULES_DIR
                                          / "mod_auth_openidc.so").exists():
        gone.append("libapache2-mod-auth-openidc")
    return f"not installed: {', '.join(gone)}" if gone else None


# --------------------------------------------------------------------------- bffgate source
def bffgate_env(src: Path) -> dict[str, str]:
    """The environment of a bffgate child: ``src`` first on PYTHONPATH, no BFFGATE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFFGATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    return env


def bffgate_source(src: Path) -> tuple[str, bool]:
    """(description of the bffgate under test, whether ``serve`` takes --workers)."""
    env = bffgate_env(src)
    out = subprocess.run([sys.executable, "-c", "import bffgate; print(bffgate.__file__, "
                          "getattr(bffgate, '__version__', '?'))"],
                         env=env, capture_output=True, text=True, check=False)
    where = out.stdout.strip() or out.stderr.strip()[-300:]
    commit = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True, check=False).stdout.strip()
    helptext = subprocess.run([sys.executable, "-m", "bffgate", "serve", "--help"], env=env,
                              capture_output=True, text=True, check=False).stdout
    desc = f"{where} (commit {commit[:72] or '?'}{', uncommitted changes' if dirty else ''})"
    return desc, "--workers" in helptext


# --------------------------------------------------------------------------- processes
class Run:
    """Everything one bench run starts; ``close()`` stops it all by PID."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bffgate-compare-"))
        self.procs = ProcessGroup(self.tmp)
        self.idp: OidcProviderProcess | None = None
        self.up_port = 0
        self.up_pid = 0
        self.stops: list[Callable[[], Any]] = []

    def close(self) -> None:
        for stop in reversed(self.stops):
            with contextlib.suppress(Exception):
                stop()
        self.procs.stop_all()
        if self.idp is not None:
            self.idp.close()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def redis(self, name: str) -> tuple[int, int]:
        port = free_port()
        child = self.procs.start(f"redis-{name}", [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no"])
        child.wait_ready(redis_pong(port), what="answering PING")
        assert child.pid is not None
        return port, child.pid

    def upstream(self) -> None:
        self.up_port = free_port()
        child = self.procs.start("upstream", [sys.executable, str(HERE / "_upstream.py"),
                                              str(self.up_port)])
        child.wait_ready(port_open(self.up_port), what="listening")
        assert child.pid is not None
        self.up_pid = child.pid

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.up_port}"

    def upstream_count(self) -> dict[str, int]:
        import httpx

        return dict(httpx.get(self.upstream_url + "/_count", timeout=5, trust_env=False).json())

    def start_idp(self, rows: list[Row]) -> None:
        clients = []
        for row in rows:
            if not row.session or row.skip:
                continue
            row.client_id = f"bench-{row.key}"
            row.client_secret = secrets.token_urlsafe(24)
            clients.append({
                "client_id": row.client_id, "client_secret": row.client_secret,
                "redirect_uris": [f"http://127.0.0.1:{row.port}{row.redirect_path}"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"]})
        ttl = self.args.token_ttl
        self.idp = OidcProviderProcess(clients, access_token_ttl=ttl, id_token_ttl=ttl)
        self.idp.start()


# --------------------------------------------------------------------------- logins
async def browser_login(base: str, start: str, callback_path: str, cookie: str) -> str:
    """Log in through a gateway: its login URL, the OP's forms (tests/support/idp.py), its
    callback and the redirects after it. Returns ``name=value`` of its session cookie."""
    import httpx

    b = Browser(base, check_cookies=False)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=15) as op:
            r = await b.get(start)
            if not r.is_redirect:
                raise RuntimeError(f"{base}{start}: {r.status_code}, not a redirect to the "
                                   f"IdP: {r.text[:300]}")
            authorize = urljoin(base + start, r.headers["location"])
            url = await complete_idp_login(op, authorize, base + callback_path)
            r = await b.get(url)
            for _ in range(4):
                if not r.is_redirect:
                    break
                url = urljoin(url, r.headers["location"])
                if not url.startswith(base):
                    break
                r = await b.get(url)
        value = b.cookie(cookie, host="127.0.0.1")
        if not value:
            raise RuntimeError(f"no {cookie} cookie after the login at {base} "
                               f"(last answer {r.status_code}: {r.text[:300]})")
        return f"{cookie}={value}"
    finally:
        await b.aclose()


async def code_flow_token(idp: OidcProviderProcess, row: Row) -> str:
    """A plain authorization-code + PKCE flow as ``row``'s client: its access token."""
    import httpx

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"http://127.0.0.1:{row.port}{row.redirect_path}"
    authorize = idp.endpoint("authorization") + "?" + urlencode({
        "client_id": row.client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": redirect, "state": secrets.token_urlsafe(16),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    async with httpx.AsyncClient(trust_env=False, timeout=15) as op:
        url = await complete_idp_login(op, authorize, redirect)
        code = parse_qs(urlsplit(url).query)["code"][0]
        r = await op.post(idp.endpoint("token"), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "code_verifier": verifier}, auth=(row.client_id, row.client_secret))
        r.raise_for_status()
        return str(r.json()["access_token"])


# --------------------------------------------------------------------------- row setup
def setup_nginx(run: Run, row: Row) -> None:
    root = run.tmp / "nginx"
    root.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(f"""\
daemon off;
{user}worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    upstream up {{
        server 127.0.0.1:{run.up_port};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{row.port};
        location /api/ {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")
    nginx = which("nginx")
    assert nginx is not None
    child = run.procs.start("nginx", [nginx, "-p", str(root), "-c", str(root / "nginx.conf"),
                                      "-e", str(root / "error.log")])
    child.wait_ready(port_open(row.port), what="listening")
    row.pid = child.pid


def setup_apache(run: Run, row: Row) -> None:
    oidc = None
    if row.kind == "apache-oidc":
        row.redis_port, row.redis_pid = run.redis(row.key)
        assert run.idp is not None
        oidc = {"issuer": run.idp.issuer, "client_id": row.client_id,
                "client_secret": row.client_secret, "redis_port": row.redis_port,
                "refresh_before_expiry": 60, "scope": "openid"}
    handle = apache_peer.start_apache(run.tmp / row.key, row.port, run.upstream_url, oidc=oidc)
    run.stops.append(handle.stop)
    row.pid = handle.pid
    if oidc:
        row.headers["Cookie"] = apache_peer.apache_login(handle.url)


def setup_express(run: Run, row: Row) -> None:
    if not (EXPRESS_DIR / "node_modules" / "express-openid-connect").is_dir():
        log("express: npm ci in bench/peers/express ...")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS_DIR, check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    row.redis_port, row.redis_pid = run.redis(row.key)
    assert run.idp is not None
    env = dict(os.environ, PORT=str(row.port), UPSTREAM=run.upstream_url,
               ISSUER=run.idp.issuer, CLIENT_ID=row.client_id,
               CLIENT_SECRET=row.client_secret,
               REDIS_URL=f"redis://127.0.0.1:{row.redis_port}", NODE_ENV="production")
    child = run.procs.start("express", ["node", "server.js"], cwd=EXPRESS_DIR, env=env)
    child.wait_ready(log_line(child, "READY"), what="READY")
    row.pid = child.pid
    row.headers["Cookie"] = asyncio.run(browser_login(
        f"http://127.0.0.1:{row.port}", "/login", "/callback", "appSession"))


def _drain(child: ChildProcess, counter: list[int]) -> None:
    """Read the gateway's stdout like a log shipper: count lines and request.proxied."""
    fd = child.stdout.fileno()
    while True:
        try:
            block = os.read(fd, 1 << 16)
        except OSError:
            return
        if not block:
            return
        counter[0] += block.count(b"\n")
        counter[1] += block.count(b"request.proxied")


def setup_bffgate(run: Run, row: Row) -> None:
    row.redis_port, row.redis_pid = run.redis(row.key)
    assert run.idp is not None
    admin = free_port()
    server: dict[str, Any] = {"public_url": f"http://127.0.0.1:{row.port}",
                              "listen": f"127.0.0.1:{row.port}",
                              "admin_listen": f"127.0.0.1:{admin}"}
    config = {
        "server": server,
        "oidc": {"issuer": run.idp.issuer, "client_id": row.client_id,
                 "client_secret": row.client_secret},
        "session": {"store": "redis"},
        "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
        "redis": {"url": f"redis://127.0.0.1:{row.redis_port}/0"},
        "log": {"level": row.log_level},
        "routes": [{"prefix": "/api", "upstream": run.upstream_url, "token": "user"}],
    }
    path = run.tmp / f"{row.key}.toml"
    write_toml(path, config)
    argv = [sys.executable, "-m", "bffgate", "serve", "--config", str(path)]
    if row.workers > 1:
        argv += ["--workers", str(row.workers)]
    child = run.procs.start(row.key, argv, env=bffgate_env(run.args.bffgate_src),
                            stdout_pipe=True)
    threading.Thread(target=_drain, args=(child, row.lines), daemon=True).start()
    child.wait_ready(http_ok(f"http://127.0.0.1:{admin}/healthz"), timeout=30, what="healthy")
    row.pid = child.pid
    row.headers["Cookie"] = asyncio.run(browser_login(
        f"http://127.0.0.1:{row.port}", "/bff/login?returnUrl=/", "/bff/callback",
        BFFGATE_COOKIE))


def setup_lean(run: Run, row: Row) -> None:
    import redis

    row.redis_port, row.redis_pid = run.redis(row.key)
    assert run.idp is not None
    token = asyncio.run(code_flow_token(run.idp, row))
    sid = secrets.token_urlsafe(32)
    r = redis.Redis(host="127.0.0.1", port=row.redis_port)
    try:
        r.set(f"lean:s:{sid}", token)
    finally:
        r.close()
    child = run.procs.start("lean", [sys.executable, str(HERE / "lean_proxy.py"),
                                     "--port", str(row.port), "--upstream", run.upstream_url,
                                     "--redis-port", str(row.redis_port)])
    child.wait_ready(port_open(row.port), what="listening")
    row.pid = child.pid
    row.headers["Cookie"] = f"lean={sid}"


SETUP: dict[str, Callable[[Run, Row], None]] = {
    "nginx": setup_nginx, "apache": setup_apache, "apache-oidc": setup_apache,
    "express": setup_express, "bffgate": setup_bffgate, "lean": setup_lean}


def check_row(run: Run, row: Row) -> str | None:
    """200 with the upstream's bytes (and a bearer upstream for session rows); 401 without
    the cookie. None when all is well, else what is wrong."""
    import httpx

    port = row.port if row.kind != "direct" else run.up_port
    url = f"http://127.0.0.1:{port}/api/data"
    before = run.upstream_count()
    r = httpx.get(url, headers=row.headers, timeout=10, trust_env=False)
    if r.status_code != 200 or r.content != DATA:
        return f"GET /api/data: {r.status_code}, {len(r.content)} bytes: {r.text[:200]!r}"
    after = run.upstream_count()
    if after["data"] - before["data"] != 1:
        return f"upstream counted {after['data'] - before['data']} calls for one request"
    if row.session:
        if after["bearer"] - before["bearer"] != 1:
            return "the upstream got no Bearer token"
        anon = {k: v for k, v in row.headers.items() if k != "Cookie"}
        r = httpx.get(url, headers=anon, timeout=10, trust_env=False)
        if r.status_code != 401:
            return f"without the session cookie: {r.status_code}, expected 401"
    return None


# --------------------------------------------------------------------------- timing
def timed_run(run: Run, row: Row, script: Path) -> dict[str, Any]:
    args = run.args
    port = row.port if row.kind != "direct" else run.up_port
    gw0 = tree_cpu_seconds(row.pid) if row.pid else 0.0
    up0 = cpu_seconds(run.up_pid)
    rd0 = cpu_seconds(row.redis_pid) if row.redis_pid else 0.0
    cmds0 = redis_commandstats(row.redis_port) if row.redis_port else {}
    count0 = run.upstream_count()
    lines0 = list(row.lines)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    busy0 = busy_jiffies()
    res = wrk(port, row.headers, args.duration, args.connections, args.threads, script)
    busy = (busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK")
    gw1 = tree_cpu_seconds(row.pid) if row.pid else 0.0
    up1 = cpu_seconds(run.up_pid)
    rd1 = cpu_seconds(row.redis_pid) if row.redis_pid else 0.0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cmds1 = redis_commandstats(row.redis_port) if row.redis_port else {}
    time.sleep(0.3)  # in-flight upstream calls and log lines land
    count1 = run.upstream_count()
    n = max(res["requests"], 1)
    wall = res["duration_us"] / 1e6
    wrk_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    own = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    ours = (gw1 - gw0) + (up1 - up0) + (rd1 - rd0) + wrk_cpu + own
    res["gw_cpu_us_per_req"] = 1e6 * (gw1 - gw0) / n if row.pid else None
    res["gw_cpu_pct"] = 100 * (gw1 - gw0) / wall if row.pid else None
    res["redis_cpu_us_per_req"] = 1e6 * (rd1 - rd0) / n if row.redis_pid else None
    res["redis_cmds"] = commands_delta(cmds0, cmds1) if row.redis_port else None
    res["up_cpu_pct"] = 100 * (up1 - up0) / wall
    res["other_cpu_pct"] = max(0.0, 100 * (busy - ours) / wall)
    res["non2xx"] = res["err_status"]
    res["sock_errors"] = res["err_connect"] + res["err_read"] + res["err_write"] + res[
        "err_timeout"]
    res["ok"] = res["requests"] - res["err_status"]
    res["upstream_calls"] = count1["data"] - count0["data"]
    res["upstream_bearer"] = count1["bearer"] - count0["bearer"]
    res["log_lines"] = row.lines[0] - lines0[0]
    res["proxied_lines"] = row.lines[1] - lines0[1]
    return res


def describe(row: Row, res: dict[str, Any]) -> str:
    out = f"{res['rps']:,.0f} req/s, p99 {res['p99_us'] / 1000:.1f} ms"
    if res["gw_cpu_us_per_req"] is not None:
        out += f", gateway {res['gw_cpu_us_per_req']:.0f} µs/req ({res['gw_cpu_pct']:.0f}%)"
    if res["redis_cmds"] is not None:
        out += f", Redis {redis_per_req(res['redis_cmds'], res['requests'])}"
    out += (f", upstream {res['upstream_calls']:,} calls for {res['ok']:,} 2xx, "
            f"other load {res['other_cpu_pct']:.0f}%")
    if row.log_level == "info" and row.kind == "bffgate":
        out += f", {res['proxied_lines']:,} request.proxied lines"
    if res["non2xx"] or res["sock_errors"]:
        out += f"; {res['non2xx']} non-2xx, {res['sock_errors']} socket errors"
    return out


def redis_per_req(cmds: dict[str, int], requests: int) -> str:
    """``{"get": 20000, "set": 10000}`` over 10,000 requests -> "2 GET + 1 SET"."""
    parts = []
    for name, calls in sorted(cmds.items(), key=lambda kv: -kv[1]):
        per = calls / max(requests, 1)
        if per < 0.001:
            continue
        if per >= 0.9 and abs(per - round(per)) < 0.03:
            amount = f"{round(per)}"
        else:
            amount = f"{per:.2f}" if per >= 0.1 else f"{per:.3f}"
        parts.append(f"{amount} {name.upper()}")
    return " + ".join(parts) or "0"


# --------------------------------------------------------------------------- report
def summary(row: Row) -> dict[str, Any]:
    runs = row.runs

    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    out: dict[str, Any] = {k: med(k) for k in (
        "rps", "p50_us", "p99_us", "gw_cpu_us_per_req", "gw_cpu_pct", "redis_cpu_us_per_req",
        "other_cpu_pct")}
    out["non2xx"] = sum(r["non2xx"] for r in runs)
    out["sock_errors"] = sum(r["sock_errors"] for r in runs)
    out["all_rps"] = [round(r["rps"]) for r in runs]
    requests = sum(r["requests"] for r in runs)
    if row.redis_port:
        total: dict[str, int] = {}
        for r in runs:
            for k, v in r["redis_cmds"].items():
                total[k] = total.get(k, 0) + v
        out["redis_cmds_per_req"] = {k: v / max(requests, 1) for k, v in total.items()}
        out["redis"] = redis_per_req(total, requests)
    problems = []
    if any(r["upstream_calls"] < r["ok"] for r in runs):
        problems.append("MISSING: " + ", ".join(f"{r['upstream_calls']:,} calls for "
                                               f"{r['ok']:,} 2xx" for r in runs))
    if row.session and any(r["upstream_bearer"] < r["upstream_calls"] for r in runs):
        problems.append("calls without a bearer")
    out["upstream"] = "; ".join(problems) or "all 2xx"
    if row.kind == "bffgate" and row.log_level == "info":
        out["proxied_lines_per_req"] = sum(r["proxied_lines"] for r in runs) / max(requests, 1)
    return out


def fmt(v: float | None, spec: str, suffix: str = "") -> str:
    return "—" if v is None else f"{v:{spec}}{suffix}"


def table(rows: list[Row]) -> str:
    done = {r.key: summary(r) for r in rows if r.runs}
    ref_cpu = done.get("apache-oidc", {}).get("gw_cpu_us_per_req")
    nginx = done.get("nginx", {})
    out = ["| setup | req/s | p99 ms | gateway CPU µs/req | Redis commands/req "
           "| Redis CPU µs/req | non-2xx | upstream | CPU / mod_auth_openidc's "
           "| req/s / nginx's | p99 / nginx's | other load |",
           "|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        if row.key not in done:
            out.append(f"| {row.label} | skipped: {row.skip} ||||||||||| ")
            continue
        m = done[row.key]
        cpu = m["gw_cpu_us_per_req"]
        ratio_cpu = cpu / ref_cpu if cpu and ref_cpu else None
        ratio_rps = m["rps"] / nginx["rps"] if nginx.get("rps") else None
        ratio_p99 = m["p99_us"] / nginx["p99_us"] if nginx.get("p99_us") else None
        sock = f" ({m['sock_errors']} socket errors)" if m["sock_errors"] else ""
        out.append(
            f"| {row.label} | {m['rps']:,.0f} | {m['p99_us'] / 1000:.1f} | {fmt(cpu, ',.0f')} "
            f"| {m.get('redis', '—')} | {fmt(m['redis_cpu_us_per_req'], '.0f')} "
            f"| {m['non2xx']:,}{sock} | {m['upstream']} | {fmt(ratio_cpu, '.2f', 'x')} "
            f"| {fmt(ratio_rps, '.3f', 'x')} | {fmt(ratio_p99, '.1f', 'x')} "
            f"| {fmt(m['other_cpu_pct'], '.0f', '%')} |")
    return "\n".join(out)


def versions(src_desc: str) -> str:
    def first_line(argv: list[str]) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                                 check=False)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        return "?"

    parts = []
    if which("nginx"):
        parts.append(first_line([str(which("nginx")), "-v"]).replace("nginx version: ", ""))
    if apache_peer.apache_binary():
        parts.append(first_line([str(apache_peer.apache_binary()), "-v"]).replace(
            "Server version: ", ""))
    if v := apache_peer.mod_auth_openidc_version():
        parts.append(f"mod_auth_openidc {v}")
    if which("node"):
        parts.append("node " + first_line(["node", "--version"]))
    pkgs = EXPRESS_DIR / "node_modules"
    for name in ("express", "express-openid-connect", "http-proxy-middleware",
                 "connect-redis"):
        with contextlib.suppress(OSError, ValueError):
            parts.append(f"{name} "
                         + json.loads((pkgs / name / "package.json").read_text())["version"])
    with contextlib.suppress(OSError, ValueError):
        parts.append("oidc-provider " + json.loads(
            (ROOT / "tests/idp/node_modules/oidc-provider/package.json").read_text())["version"])
    parts.append("redis-server " + first_line(["redis-server", "--version"]).split(" v=")[
        -1].split()[0])
    parts.append(first_line(["wrk", "--version"]).split(" [")[0])
    from importlib.metadata import version

    for mod in ("uvicorn", "httptools", "uvloop", "aiohttp", "redis", "structlog"):
        with contextlib.suppress(Exception):
            parts.append(f"{mod} {version(mod)}")
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"machine: {os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
            f"Python {platform.python_version()}\nversions: {', '.join(parts)}\n"
            f"bffgate: {src_desc}")


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5, help="seconds per timed run")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of warm-up per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--workers", type=int, default=2, help="N of the bffgate-wN row")
    ap.add_argument("--only", help="comma-separated row keys (see --list)")
    ap.add_argument("--skip", help="comma-separated row keys to leave out")
    ap.add_argument("--bffgate-src", type=Path, default=ROOT / "src",
                    help="directory holding the bffgate package to measure (default: this "
                         "checkout's src/), e.g. a worktree of an older commit")
    ap.add_argument("--token-ttl", type=int, default=3600,
                    help="the IdP's access/ID token lifetime (no refresh in a timed run)")
    ap.add_argument("--json", help="also write every run and the medians here")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the bench and every process it starts at this niceness (root "
                         "may give a negative one: priority over other work on a shared box)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    ap.add_argument("--list", action="store_true", help="list the rows and exit")
    args = ap.parse_args()
    args.bffgate_src = args.bffgate_src.resolve()

    rows = all_rows(args.workers)
    if args.only:
        keep = set(args.only.split(","))
        unknown = keep - {r.key for r in rows}
        if unknown:
            ap.error(f"--only: unknown rows {', '.join(sorted(unknown))} (see --list)")
        rows = [r for r in rows if r.key in keep]
    if args.skip:
        rows = [r for r in rows if r.key not in set(args.skip.split(","))]
    src_desc, has_workers = bffgate_source(args.bffgate_src)
    for row in rows:
        row.skip = missing_tools(row)
        if row.kind == "bffgate" and row.workers > 1 and not has_workers:
            row.skip = "this bffgate's `serve` has no --workers"
    if args.list:
        for row in all_rows(args.workers):
            print(f"{row.key:14} {row.label}" + (f"  [skipped: {missing_tools(row)}]"
                                                   if missing_tools(row) else ""))
        return 0
    for tool in ("wrk", "redis-server", "node"):
        if which(tool) is None:
            print(f"compare: {tool} not found on PATH", file=sys.stderr)
            return 2

    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
    print(versions(src_desc))
    print(f"load: wrk -t{args.threads} -c{args.connections}, {args.warmup:g} s warm-up + "
          f"{args.duration:g} s timed per row, {args.rounds} interleaved rounds, "
          f"GET /api/data (1 KB JSON)\n", flush=True)
    run = Run(args)
    script = run.tmp / "report.lua"
    script.write_text(WRK_LUA)
    try:
        run.upstream()
        for row in rows:
            if not row.skip and row.kind != "direct":
                row.port = free_port()
        run.start_idp(rows)
        for row in rows:
            if row.skip:
                log(f"{row.key}: skipped ({row.skip})")
                continue
            try:
                if row.kind != "direct":
                    SETUP[row.kind](run, row)
                problem = check_row(run, row)
            except Exception as exc:  # a peer that does not start is a row, not the run
                problem = f"{type(exc).__name__}: {str(exc)[:600]}"
            if problem:
                row.skip = f"setup failed: {problem}"
                log(f"{row.key}: {row.skip}")
            else:
                log(f"{row.key}: ready on port {row.port or run.up_port}, checks ok")
        live = [r for r in rows if not r.skip]
        for rnd in range(args.rounds):
            for row in live:
                port = row.port if row.kind != "direct" else run.up_port
                if args.warmup > 0:
                    wrk(port, row.headers, args.warmup, args.connections, args.threads, script)
                res = timed_run(run, row, script)
                row.runs.append(res)
                log(f"round {rnd + 1} {row.key}: {describe(row, res)}")

        print("\n" + table(rows))
        print("\n(medians of the rounds; req/s per round: "
              + ", ".join(f"{r.key} {summary(r)['all_rps']}" for r in live) + ")")
        for row in live:
            m = summary(row)
            if "proxied_lines_per_req" in m:
                print(f"{row.key}: {m['proxied_lines_per_req']:.2f} request.proxied lines "
                      f"per request read from its stdout")
        busy = max((summary(r)["other_cpu_pct"] or 0 for r in live), default=0)
        if busy > 15:
            print(f"warning: other processes used up to {busy:.0f}% of a CPU during the timed "
                  f"runs: figures are noisy; rerun on a quiet machine.")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "versions": versions(src_desc), "args": {k: str(v) for k, v in
                                                         vars(args).items()},
                "rows": [{"key": r.key, "label": r.label, "skip": r.skip, "runs": r.runs,
                          "median": summary(r) if r.runs else None} for r in rows]},
                indent=2))
        print(f"\ntotal bench time {time.monotonic() - START:.0f} s")
        bad = [r for r in live if summary(r)["upstream"] != "all 2xx"]
        return 1 if bad else 0
    finally:
        run.close()


if __name__ == "__main__":
    sys.exit(main())
