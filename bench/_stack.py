"""Shared parts of the hand-run benches refresh_storm.py, login_cost.py and session_scale.py.

* ``Stack``: a work dir, a ``ProcessGroup`` (every child stopped by PID, reverse order) and a
  hard time limit (SIGALRM); ``redis()``, ``storm_idp()`` (bench/_storm_idp.py: bffgate's
  development IdP counting refresh grants), ``gateway()`` (``python -m bffgate serve``).
* ``gateway_login()``: a scripted login through the gateway and the development IdP's form.
* ``cpu_seconds()``: user + system CPU of a process tree from /proc (reaped children too).
* ``source_env()``: the environment running the gateway from a chosen source tree
  (``--src``: e.g. a ``git archive`` of the commit to measure; default this checkout).
"""

from __future__ import annotations

import html
import os
import platform
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's process helpers
from support.gateway import write_toml  # noqa: E402
from support.idp import free_port  # noqa: E402
from support.processes import ChildProcess, ProcessGroup, http_ok, redis_pong  # noqa: E402

COOKIE = "__Host-bffgate"
LOGIN_COOKIE = COOKIE + "-login"
CLK_TCK = os.sysconf("SC_CLK_TCK")
START = time.monotonic()

__all__ = ["COOKIE", "ChildProcess", "Stack", "cpu_seconds", "free_port", "gateway_login",
           "log", "machine", "source_env"]


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


def source_env(src: str | None) -> dict[str, str]:
    """Environment for a gateway child: ``src`` (a directory holding the ``bffgate`` package,
    default this checkout's src/) first on PYTHONPATH, no BFFGATE_* from the shell."""
    path = Path(src).resolve() if src else ROOT / "src"
    if not (path / "bffgate" / "__init__.py").exists():
        raise SystemExit(f"--src {path}: no bffgate package there")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFFGATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    return env


def describe_source(src: str | None) -> str:
    path = Path(src).resolve() if src else ROOT / "src"
    return str(path)


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
            f"Python {platform.python_version()}")


# --------------------------------------------------------------------------- CPU


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` and its live descendants (all threads), plus
    the children each has reaped (cutime, cstime: an Apache worker that ends keeps counting),
    as ``_measure.tree_cpu_seconds`` counts them. Compare two readings of the same tree."""
    user = system = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) + int(fields[13])  # utime + cutime (fields 14, 16)
        system += int(fields[12]) + int(fields[14])  # stime + cstime (fields 15, 17)
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of ``pid`` and its live descendants (all threads)."""
    return sum(cpu_split(pid))


# --------------------------------------------------------------------------- processes


class Stack:
    """The processes of one bench run, stopped by PID on exit (also on the time limit)."""

    def __init__(self, prefix: str, timeout: float) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
        self.procs = ProcessGroup(self.workdir)
        self.timeout = timeout
        self.keep = False
        self._on_exit: list[Any] = []

    def on_exit(self, fn: Any) -> None:
        """Run ``fn()`` on exit, before the group's children are stopped (e.g. an Apache
        handle's stop())."""
        self._on_exit.append(fn)

    def disarm(self) -> None:
        """The measuring is over: no time limit for the report."""
        signal.alarm(0)

    def __enter__(self) -> Stack:
        def on_alarm(_sig: int, _frame: Any) -> None:
            raise TimeoutError(f"run exceeded --timeout {self.timeout:.0f}s")

        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(max(1, int(self.timeout)))
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        signal.alarm(0)
        for fn in reversed(self._on_exit):
            try:
                fn()
            except Exception as exc:  # keep stopping the others
                print(f"cleanup: {type(exc).__name__}: {exc}", file=sys.stderr)
        self.procs.stop_all()
        log("all processes stopped")
        if self.keep or exc_type is not None:
            print(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def redis(self, *extra: str) -> tuple[ChildProcess, int]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found on PATH")
        port = free_port()
        child = self.procs.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no", *extra])
        child.wait_ready(redis_pong(port), what="answering PING")
        return child, port

    def storm_idp(self, client_id: str, client_secret: str, redirect_uris: list[str],
                  access_token_ttl: int) -> tuple[ChildProcess, str]:
        port = free_port()
        argv = [sys.executable, str(HERE / "_storm_idp.py"), "--port", str(port),
                # "=": a random secret may start with "-", which argparse would take for
                # an option (new_secret() is token_urlsafe).
                f"--client-id={client_id}", f"--client-secret={client_secret}",
                "--access-token-ttl", str(access_token_ttl)]
        for uri in redirect_uris:
            argv += ["--redirect-uri", uri]
        child = self.procs.start("idp", argv, env=source_env(None))
        url = f"http://127.0.0.1:{port}"
        child.wait_ready(http_ok(url + "/.well-known/openid-configuration"))
        return child, url

    def gateway(self, name: str, config: dict[str, Any], env: dict[str, str]) -> ChildProcess:
        path = self.workdir / f"{name}.toml"
        write_toml(path, config)
        return self.procs.start(name, [sys.executable, "-m", "bffgate", "serve", "--config",
                                       str(path)], env=env)


def gateway_config(port: int, admin_port: int, idp_url: str, client_id: str,
                   client_secret: str, redis_port: int, upstream: str, cookie_key: str,
                   log_level: str = "warning", **session: Any) -> dict[str, Any]:
    return {
        "server": {"public_url": f"http://localhost:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": f"127.0.0.1:{admin_port}"},
        "oidc": {"issuer": idp_url, "client_id": client_id, "client_secret": client_secret},
        "session": {"store": "redis", **session},
        "cookie": {"secret_keys": [cookie_key]},
        "redis": {"url": f"redis://127.0.0.1:{redis_port}/0"},
        "log": {"level": log_level},
        "routes": [{"prefix": "/api", "upstream": upstream, "token": "user"}],
    }


def new_secret() -> str:
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------- login


def _local(url: str) -> tuple[str, dict[str, str]]:
    """Connect to 127.0.0.1 while keeping the Host the URL names (the gateway's public_url
    uses ``localhost``)."""
    parts = urlsplit(url)
    netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}


def _set_cookie(response: Any, name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        cookie_name, _, rest = header.partition("=")
        if cookie_name.strip() == name:
            return str(rest.split(";", 1)[0])
    return None


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def gateway_login(gateway_url: str, client: Any = None, username: str = "alice") -> str:
    """Log in through one gateway and the development IdP's form (httpx, no browser);
    return the session cookie's value. ``client``: an ``httpx.Client`` to reuse (its
    connections), else one for this login."""
    import httpx

    if client is None:
        with httpx.Client(timeout=10, follow_redirects=False, trust_env=False) as own:
            return gateway_login(gateway_url, own, username)
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
    fields["username"] = username
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
    client.cookies.clear()  # the IdP's sign-in cookie: every login signs in anew
    return value
