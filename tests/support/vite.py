"""A real Vite dev server (tests/vite, npm ``vite`` pinned by its lockfile) set up the way a
developer runs it behind bffgate: on 127.0.0.1, a free port, with the browser's hot-reload
(HMR) socket sent to the gateway's origin instead of to Vite.

The app (tests/vite/index.html, tests/vite/src/) is copied to a fresh directory that is the
server's root, so a test can edit its sources without touching the checkout. Usage::

    with ViteDevServer(gateway_port=gw_port) as vite:
        ...route "/" of the gateway to vite.url...
        vite.write("src/message.js", 'export const message = "changed";\\n')
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from support.idp import free_port
from support.processes import ChildProcess, http_ok

VITE_DIR = Path(__file__).resolve().parents[1] / "vite"
VITE_BIN = VITE_DIR / "node_modules" / "vite" / "bin" / "vite.js"
APP_FILES = ("index.html", "src")


def ensure_vite_installed() -> None:
    """``npm ci`` in tests/vite when its node_modules is missing (.ci/run does it already)."""
    if VITE_BIN.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: the Vite test needs Node.js and npm "
                           "(`apt-get install -y nodejs npm`; .ci/run does this)")
    subprocess.run([npm, "ci", "--prefix", str(VITE_DIR), "--no-audit", "--no-fund",
                    "--loglevel=error"], check=True, timeout=300)


def vite_config(*, port: int, gateway_port: int, cache_dir: Path) -> str:
    """The dev server's config for sitting behind a proxy. ``hmr.clientPort`` makes the page
    open its HMR socket on the origin it was loaded from (the gateway), and with it set Vite's
    client never falls back to a direct connection to Vite: a socket that does not get
    through the gateway fails visibly instead of quietly going around it."""
    config = {
        "clearScreen": False,
        "logLevel": "info",
        "cacheDir": str(cache_dir),
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "strictPort": True,
            "hmr": {"clientPort": gateway_port},
        },
    }
    return "// Written by tests/support/vite.py.\nexport default " + json.dumps(config) + ";\n"


class ViteDevServer:
    """``vite`` as a child process (context manager): started ready, stopped by PID."""

    def __init__(self, *, gateway_port: int, port: int | None = None) -> None:
        self.port = port or free_port()
        self.gateway_port = gateway_port
        self.dir = Path(tempfile.mkdtemp(prefix="bffgate-vite-"))
        self.root = self.dir / "app"
        self.config_path = self.dir / "vite.config.mjs"
        self.child = ChildProcess(
            "vite",
            ["node", str(VITE_BIN), str(self.root), "--config", str(self.config_path)],
            self.dir / "vite.log", cwd=VITE_DIR)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ViteDevServer:
        ensure_vite_installed()
        self.root.mkdir(parents=True)
        for name in APP_FILES:
            src = VITE_DIR / name
            if src.is_dir():
                shutil.copytree(src, self.root / name)
            else:
                shutil.copy2(src, self.root / name)
        self.config_path.write_text(vite_config(
            port=self.port, gateway_port=self.gateway_port, cache_dir=self.dir / "cache"))
        self.child.start().wait_ready(http_ok(self.url + "/"), timeout=timeout, what="serving")
        return self

    def write(self, relative: str, text: str) -> None:
        """Change a source file of the served app (Vite's watcher picks it up)."""
        (self.root / relative).write_text(text)

    def log(self) -> str:
        return self.child.log()

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> ViteDevServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
