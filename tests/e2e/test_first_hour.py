"""E2E: the first hour as a new user meets it, through the real `bffgate` command: a busy
port is one line for every listener, `sessions` takes --config anywhere and says when there
is nothing, and the demo tells where its admin listener (/metrics) is."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support.e2e import COOKIE_KEY
from support.gateway import child_env, write_toml
from support.idp import free_port
from support.processes import ChildProcess, log_has
from support.redis import RedisServer

pytestmark = pytest.mark.e2e


def bffgate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bffgate", *args], capture_output=True,
                          text=True, timeout=timeout, env=child_env())


@contextmanager
def occupied(port: int) -> Iterator[None]:
    """Something else listening on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def free_block(offsets: tuple[int, ...]) -> int:
    """A base port P with P+offset free for every offset (below the ephemeral range)."""
    for _ in range(200):
        base = random.randrange(15000, 32000)
        try:
            for offset in offsets:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port block")


def serve_config(tmp_path: Path, port: int, admin_port: int, **redis: str) -> Path:
    path = tmp_path / "gw.toml"
    write_toml(path, {
        "server": {"public_url": f"http://localhost:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": f"127.0.0.1:{admin_port}"},
        "oidc": {"issuer": f"http://127.0.0.1:{free_port()}", "client_id": "c",
                 "client_secret": "s"},
        "session": {"store": "redis" if redis else "memory"},
        "cookie": {"secret_keys": [COOKIE_KEY]},
        **({"redis": redis} if redis else {}),
        "routes": [{"prefix": "/api", "upstream": "http://127.0.0.1:9", "token": "user"}],
    })
    return path


# --- a busy port: one line, exit 1, for every listener --------------------------------------


@pytest.mark.parametrize("busy", ["public", "admin"])
def test_serve_busy_port_is_one_line(tmp_path: Path, busy: str) -> None:
    port, admin = free_port(), free_port()
    config = serve_config(tmp_path, port, admin)
    taken, key = (port, "server.listen") if busy == "public" else (admin, "server.admin_listen")
    with occupied(taken):
        out = bffgate("serve", "--config", str(config))
    assert out.returncode == 1
    assert out.stdout == ""
    env_var = "BFFGATE_SERVER__" + key.split(".")[1].upper()
    assert out.stderr == (f"bffgate: port {taken} is in use ({key} 127.0.0.1:{taken}); "
                          f"pick another in {key} (or {env_var})\n")


@pytest.mark.parametrize(("offset", "what"), [(0, "gateway"), (1, "identity provider"),
                                              (2, "demo API"), (3, "demo page"),
                                              (10, "admin listener")])
def test_demo_busy_port_is_one_line(offset: int, what: str) -> None:
    base = free_block((0, 1, 2, 3, 10))
    with occupied(base + offset):
        out = bffgate("demo", "--port", str(base))
    assert out.returncode == 1
    ports = ", ".join(str(base + o) for o in (0, 1, 2, 3, 10))
    assert out.stderr == (
        f"bffgate: port {base + offset} is in use (the demo's {what} "
        f"127.0.0.1:{base + offset}); pick another with --port (the demo listens on {ports})\n")


def test_idp_only_busy_port_is_one_line() -> None:
    port = free_port()
    with occupied(port):
        out = bffgate("demo", "--idp-only", "--port", str(port))
    assert out.returncode == 1
    assert out.stdout == ""  # no config printed for an IdP that never started
    assert out.stderr == (
        f"bffgate: port {port} is in use (the dev identity provider 127.0.0.1:{port}); "
        "pick another with --port (the issuer in the printed config follows it)\n")


# --- sessions: --config anywhere, a clear empty result ----------------------------------------


@pytest.mark.parametrize("order", ["after", "middle", "before"])
def test_sessions_list_config_anywhere_and_empty(tmp_path: Path, redis_server: RedisServer,
                                                 order: str) -> None:
    config = str(serve_config(tmp_path, free_port(), free_port(), url=redis_server.url))
    argv = {"after": ["sessions", "list", "--sub", "nobody-here", "--config", config],
            "middle": ["sessions", "--config", config, "list", "--sub", "nobody-here"],
            "before": ["--config", config, "sessions", "list", "--sub", "nobody-here"]}[order]
    out = bffgate(*argv)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "no sessions for sub nobody-here\n"


def test_sessions_revoke_nothing_says_so(tmp_path: Path, redis_server: RedisServer) -> None:
    config = str(serve_config(tmp_path, free_port(), free_port(), url=redis_server.url))
    out = bffgate("sessions", "revoke", "--sub", "nobody-here", "--config", config)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "no sessions for sub nobody-here: nothing revoked\n"


def test_sessions_with_redis_down_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = str(serve_config(tmp_path, free_port(), free_port(),
                              url=f"redis://127.0.0.1:{port}/0", timeout="1s"))
    out = bffgate("sessions", "list", "--sub", "alice", "--config", config)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1] == (
        f"bffgate sessions: session store: Redis redis://127.0.0.1:{port}/0 (redis.url): "
        "connection refused (nothing listens there); is Redis running there? check redis.url "
        "(host, port, password, rediss:// for TLS) or BFFGATE_REDIS__URL")


# --- the demo says where its admin listener is -------------------------------------------------


def test_demo_prints_its_admin_url(tmp_path: Path) -> None:
    base = free_block((0, 1, 2, 3, 10))
    demo = ChildProcess("bffgate demo",
                        [sys.executable, "-m", "bffgate", "demo", "--port", str(base)],
                        tmp_path / "demo.log", env=child_env()).start()
    try:
        demo.wait_ready(log_has(demo, "Ctrl-C to stop"), timeout=30)
        admin = f"http://127.0.0.1:{base + 10}/metrics"
        assert f"admin: {admin}" in demo.log(), demo.log()
        metrics = httpx.get(admin, timeout=5)
        assert metrics.status_code == 200 and "bffgate_logins_started_total" in metrics.text
        page = httpx.get(f"http://localhost:{base}/", timeout=5)
        assert page.status_code == 200
    finally:
        demo.stop(15)


# --- a call without X-CSRF says which header to send --------------------------------------------


async def test_missing_csrf_header_names_the_header(browser) -> None:
    """The 401 for a forgotten X-CSRF says what to send, on /bff/user and on an API route,
    and its type is csrf-rejected (which the README's snippet does not answer with a login)."""
    for path in ("/bff/user", "/api/orders"):
        r = await browser.get(path)
        assert r.status_code == 401
        problem = r.json()
        assert problem["type"] == "https://bffgate.dev/problems/csrf-rejected"
        assert problem["detail"] == (
            "missing or invalid X-CSRF header: send `X-CSRF: 1` on every API call")


async def test_serve_all_checks_its_listeners_too() -> None:
    """A port taken after the CLI's check (e.g. while the gateway warmed up) still becomes
    ListenerUnavailable, not uvicorn's startup traceback."""
    from bffgate.listeners import ListenerUnavailable
    from bffgate.server import serve_all

    async def app(scope, receive, send) -> None:  # never called
        raise AssertionError

    port = free_port()
    with occupied(port), pytest.raises(ListenerUnavailable) as info:
        await serve_all([(app, f"127.0.0.1:{port}")])
    assert info.value.in_use and info.value.problem == f"port {port} is in use"
