"""E2E: one `bffgate serve` with server.workers = 2 (a supervisor and two worker processes
sharing the listeners), against the real oidc-provider, Redis and the echo upstream.

Which worker served what is read where an operator reads it: the admin listener's
/metrics (``bffgate_worker_http_requests{listener, pid}``, one series per live worker) and
the supervisor's log lines (gateway.started's worker_pids, worker.died, worker.started)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from support.browser import Browser
from support.dpop_upstream import DpopIdp
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta, login
from support.gateway import ADMIN_TOKEN, GatewayProcess, child_env, gateway_config, write_toml
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e
SERIES = re.compile(r'^bffgate_worker_http_(\w+)\{listener="(\w+)",pid="(\d+)"\} (\S+)$')


@pytest.fixture(scope="module")
def op_ports() -> Iterator[tuple[OidcProviderProcess, list[tuple[int, int]]]]:
    """One OP for the module, with a client registered for each gateway the tests start."""
    ports = [(free_port(), free_port()) for _ in range(4)]
    clients = [client_meta(p) for p, _ in ports]
    meta = {**clients[0], "redirect_uris": [c["redirect_uris"][0] for c in clients],
            "post_logout_redirect_uris": [c["post_logout_redirect_uris"][0] for c in clients]}
    meta.pop("backchannel_logout_uri")
    meta.pop("backchannel_logout_session_required")
    with OidcProviderProcess([meta], access_token_ttl=300) as op:
        yield op, ports


@pytest.fixture
def start_gateway(op_ports: Any, redis_server: RedisServer,
                  upstream: EchoUpstream) -> Iterator[Any]:
    op, ports = op_ports
    started: list[GatewayProcess] = []

    def start(slot: int, *, workers: int | str = 2, cli: list[str] | None = None,
              **server: Any) -> GatewayProcess:
        port, admin = ports[slot]
        gw = GatewayProcess(gateway_config(
            port=port, admin_port=admin, issuer=op.issuer, client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET, redis_url=redis_server.url, upstream=upstream.url,
            cookie_key=COOKIE_KEY, server={"workers": workers, **server}))
        gw.child.argv += cli or []
        started.append(gw)
        return gw.start(timeout=40)

    yield start
    for gw in started:
        gw.terminate()


def metrics(gw: GatewayProcess) -> str:
    r = httpx.get(gw.admin_url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                  timeout=5, trust_env=False)
    assert r.status_code == 200, r.text
    return r.text


def served(gw: GatewayProcess, what: str = "requests") -> dict[int, float]:
    """Per live worker pid, public requests answered so far or connections open now
    (``what`` = connections), as each worker samples them every second."""
    out = {}
    for line in metrics(gw).splitlines():
        m = SERIES.match(line)
        if m and m.group(1) == what and m.group(2) == "public":
            out[int(m.group(3))] = float(m.group(4))
    return out


def sample(gw: GatewayProcess, name: str, labels: str) -> float:
    for line in metrics(gw).splitlines():
        if line.startswith(f"{name}{{") and all(part in line for part in labels.split(",")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def started_pids(gw: GatewayProcess) -> list[int]:
    """The workers' pids, from the supervisor's gateway.started (logged once all serve;
    /healthz may answer from the first one before that)."""
    event = wait_for(lambda: next((e for e in gw.events()
                                   if e.get("event") == "gateway.started"), None), 20,
                     "gateway.started")
    return list(event["worker_pids"])


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_for(probe: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def _signed_in(gw: GatewayProcess) -> str:
    browser = Browser(gw.url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_client:
            assert (await login(browser, idp_client)).status_code == 302
        cookie = browser.cookie("__Host-bffgate")
    finally:
        await browser.aclose()
    assert cookie
    return cookie


async def _calls(gw: GatewayProcess, cookie: str, n: int, path: str = "/api/w") -> list[int]:
    """``n`` concurrent proxied calls, each on a connection of its own (force_close), so the
    kernel hands them to whichever worker accepts first."""
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"} if cookie else {}
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def one(i: int) -> int:
            async with s.get(f"{gw.url}{path}/{i}", headers=headers) as r:
                await r.read()
                return r.status
        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def test_both_workers_serve_and_the_admin_listener_counts_for_all(start_gateway) -> None:
    """server.workers = 2: the two pids in gateway.started are the supervisor's children;
    proxied calls with one session (logged in through either worker) are served by both;
    /metrics on the admin listener counts every call, whichever worker served it or answers
    the scrape; /healthz and /readyz answer."""
    gw = start_gateway(0, workers=2)
    pids = started_pids(gw)
    assert len(set(pids)) == 2 and all(parent_of(p) == gw.proc.pid for p in pids)
    cookie = await _signed_in(gw)
    sent = 0
    for _ in range(20):  # until both have served some (a batch nearly always does)
        statuses = await _calls(gw, cookie, 40)
        assert statuses == [200] * 40
        sent += 40
        per_worker = wait_for(lambda: served(gw) if len(served(gw)) == 2 else None, 5,
                              "two worker series")
        if all(count > 0 for count in per_worker.values()):
            break
        await asyncio.sleep(1.1)  # the next sample
    assert set(per_worker) == set(pids)
    assert all(count > 0 for count in per_worker.values()), per_worker
    assert sample(gw, "bffgate_proxy_requests_total",
                  'route="/api",status_class="2xx"') == sent
    for _ in range(6):  # any worker may answer the scrape: each gives the same total
        assert sample(gw, "bffgate_proxy_requests_total",
                      'route="/api",status_class="2xx"') == sent
    assert httpx.get(gw.admin_url + "/healthz", trust_env=False).status_code == 200
    ready = httpx.get(gw.admin_url + "/readyz", trust_env=False)
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"


async def test_sigterm_drains_in_flight_requests_of_both_workers(start_gateway) -> None:
    """SIGTERM to the supervisor while slow calls are in flight on both workers: every call
    completes with 200, each worker logs gateway.stopped, the supervisor exits 0 and removes
    its metrics directory."""
    gw = start_gateway(1, workers=2)
    pids = started_pids(gw)
    # the supervisor's private PROMETHEUS_MULTIPROC_DIR: where the workers' files are
    [mdir] = {p.parent for p in Path(tempfile.gettempdir()).glob(
        f"bffgate-metrics-*/counter_{pids[0]}.db")}
    assert mdir.is_dir()
    inflight = asyncio.create_task(_calls(gw, "", 24, "/public/slow?s=5&n="))

    def open_on_both() -> dict[int, float] | None:
        now = served(gw, "connections")
        return now if sum(now.values()) == 24 and all(now.get(p) for p in pids) else None

    await asyncio.to_thread(wait_for, open_on_both, 4, "24 slow calls open on both workers")
    proc = gw.proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    assert await inflight == [200] * 24
    assert await asyncio.to_thread(proc.wait, 30) == 0
    gw.proc = None
    log = gw.log()
    assert log.count('"gateway.stopped"') == 2, log[-3000:]
    assert not mdir.exists()


async def test_a_killed_worker_is_replaced(start_gateway) -> None:
    """`--workers 2` (over server.workers = 1): a worker killed with SIGKILL is logged
    (worker.died), replaced by a new process (worker.started), dropped from the per-worker
    series; calls keep being answered; SIGTERM then still exits 0."""
    gw = start_gateway(2, workers=1, cli=["--workers", "2"])
    pids = started_pids(gw)
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    event = wait_for(lambda: next((e for e in gw.events()
                                   if e.get("event") == "worker.started"), None), 15,
                     "worker.started")
    new = event["pid"]
    assert new not in pids and parent_of(new) == gw.proc.pid
    [died] = [e for e in gw.events() if e.get("event") == "worker.died"]
    assert died["pid"] == pids[0] and died["exit_code"] == -signal.SIGKILL
    def replaced() -> dict[int, float] | None:
        now = served(gw)
        return now if set(now) == {new, pids[1]} else None

    live = wait_for(replaced, 5, "the new worker's series, without the dead one's")
    assert pids[0] not in live
    assert await _calls(gw, "", 20, "/public/after") == [200] * 20
    assert gw.terminate() == 0


def test_a_worker_start_up_failure_fails_the_serve_with_its_line(redis_server, upstream,
                                                                   tmp_path: Path) -> None:
    """A failure only a worker sees (its gateway's start-up check against the IdP) ends
    the whole serve at once: exit 1, that worker's line once, no worker left behind."""
    port, admin = free_port(), free_port()
    with DpopIdp([client_meta(port)], enabled=False) as op:
        config = gateway_config(port=port, admin_port=admin, issuer=op.issuer,
                                client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                redis_url=redis_server.url, upstream=upstream.url,
                                cookie_key=COOKIE_KEY, oidc={"dpop": True},
                                server={"workers": 2})
        path = tmp_path / "bffgate.toml"
        write_toml(path, config)
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "bffgate", "serve", "--config", str(path)],
                              capture_output=True, text=True, timeout=60, env=child_env(),
                              stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert time.monotonic() - t0 < 30
    assert done.stderr.count("oidc.dpop: the IdP") == 1, done.stderr[-2000:]
    assert "gateway.started" not in done.stdout + done.stderr


def test_a_busy_port_is_one_line_with_workers(redis_server, upstream, tmp_path: Path) -> None:
    """The supervisor binds the listeners once: a busy admin port is the same one line as
    without workers, exit 1, before any worker starts."""
    port, admin = free_port(), free_port()
    config = gateway_config(port=port, admin_port=admin, issuer="http://127.0.0.1:1",
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=upstream.url,
                            cookie_key=COOKIE_KEY, server={"workers": 2})
    path = tmp_path / "bffgate.toml"
    write_toml(path, config)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", admin))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "bffgate", "serve", "--config", str(path)],
                              capture_output=True, text=True, timeout=30, env=child_env(),
                              stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"bffgate: port {admin} is in use (server.admin_listen 127.0.0.1:{admin}); pick "
        "another in server.admin_listen (or BFFGATE_SERVER__ADMIN_LISTEN)"), done.stderr
