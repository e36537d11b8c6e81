"""``bffgate serve`` as a real OS process (one per replica), with its log captured to a file."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from support.idp import free_port
from support.processes import ChildProcess, http_ok

ALL_LOGS: list[Path] = []
SRC = Path(__file__).resolve().parents[2] / "src"
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(16)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a bffgate child process: this checkout's src first on the path,
    no BFFGATE_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFFGATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env  # every gateway log file of the run, for the secret scan


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def write_toml(path: Path, config: dict[str, Any]) -> None:
    lines = []
    for section, values in config.items():
        if section == "routes":
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    for route in config.get("routes", []):
        lines.append("[[routes]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in route.items())
        lines.append("")
    path.write_text("\n".join(lines))


def gateway_config(*, port: int, admin_port: int, issuer: str, client_id: str,
                   client_secret: str, redis_url: str, upstream: str,
                   cookie_key: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "server": {"public_url": f"http://localhost:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": f"127.0.0.1:{admin_port}", "max_body_size": "4MiB",
                   "admin_token": ADMIN_TOKEN},
        "oidc": {"issuer": issuer, "client_id": client_id, "client_secret": client_secret},
        "session": {"store": "redis", "refresh_ahead": 2},
        "cookie": {"secret_keys": [cookie_key]},
        "redis": {"url": redis_url},
        "log": {"level": "info", "flush_interval": 0},  # tests read each line at once
        "routes": [
            {"prefix": "/api", "upstream": upstream, "token": "user", "timeout": 3},
            {"prefix": "/public", "upstream": upstream, "token": "none"},
            {"prefix": "/dead", "upstream": f"http://127.0.0.1:{free_port()}", "token": "none"},
            {"prefix": "/opt", "upstream": upstream, "token": "user_optional"},
        ],
    }
    for section, values in overrides.items():
        if section == "routes":
            config["routes"] = values
        else:
            config.setdefault(section, {}).update(values)
    return config


class GatewayProcess:
    def __init__(self, config: dict[str, Any], *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.port = int(config["server"]["listen"].rsplit(":", 1)[1])
        self.admin_port = int(config["server"]["admin_listen"].rsplit(":", 1)[1])
        self.dir = Path(tempfile.mkdtemp(prefix="bffgate-gw-"))
        self.config_path = self.dir / "bffgate.toml"
        self.log_path = self.dir / "gateway.log"
        ALL_LOGS.append(self.log_path)
        self.env = env or {}
        self.child = ChildProcess(
            "bffgate serve",
            [sys.executable, "-m", "bffgate", "serve", "--config", str(self.config_path)],
            self.log_path)

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.popen

    @proc.setter
    def proc(self, popen: subprocess.Popen[bytes] | None) -> None:
        self.child.popen = popen  # a test that stopped the process itself says so

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 20) -> GatewayProcess:
        write_toml(self.config_path, self.config)
        self.child.env = child_env(self.env)
        self.child.start().wait_ready(http_ok(self.admin_url + "/healthz"), timeout=timeout,
                                      what="healthy")
        return self

    def log(self) -> str:
        return self.child.log()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def audit(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event and e.get("audit")]

    def terminate(self, timeout: float = 25) -> int:
        """SIGTERM (graceful shutdown), SIGKILL after ``timeout``; the exit code."""
        rc = self.child.stop(timeout)
        return 0 if rc is None else rc

    def kill(self) -> None:
        self.child.kill()


def new_ports() -> tuple[int, int]:
    return free_port(), free_port()
