"""Child processes for the tests and the benchmarks, one way: start with the output captured
to a log file, wait until a readiness probe passes (failing at once, with the log's tail, if
the child exits first), stop by PID (SIGTERM, then SIGKILL). Never by name."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

Probe = Callable[[], bool]
# Every file a child's output went to in this run (support.audit_check validates the
# audit lines in them).
CHILD_LOGS: list[Path] = []


class ChildProcess:
    """One child. stdout and stderr go to ``log_path`` (appended), unless ``stdout_pipe``
    (the caller reads stdout; stderr still goes to the log) or ``stderr_path`` (stderr to a
    file of its own). ``stdin_pipe`` keeps a pipe open to the child (some exit on its EOF)."""

    def __init__(self, name: str, argv: list[str], log_path: Path, *,
                 env: dict[str, str] | None = None, cwd: Path | str | None = None,
                 stdout_pipe: bool = False, stderr_path: Path | None = None,
                 stdin_pipe: bool = False) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self.env, self.cwd = env, cwd
        self.stdout_pipe, self.stderr_path, self.stdin_pipe = stdout_pipe, stderr_path, stdin_pipe
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        CHILD_LOGS.extend(p for p in (self.log_path, self.stderr_path)
                          if p is not None and p not in CHILD_LOGS)
        with contextlib.ExitStack() as files:
            log = files.enter_context(self.log_path.open("ab"))
            stderr: IO[bytes] | int = subprocess.STDOUT
            if self.stderr_path is not None:
                stderr = files.enter_context(self.stderr_path.open("ab"))
            elif self.stdout_pipe:
                stderr = log
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd,
                stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.stdout_pipe else log, stderr=stderr)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def stdout(self) -> IO[bytes]:
        """The stdout pipe (``stdout_pipe=True`` only)."""
        assert self.popen is not None and self.popen.stdout is not None
        return self.popen.stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stderr(self) -> str:
        """What went to ``stderr_path`` (the log itself when stderr has no file of its own)."""
        path = self.stderr_path or self.log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, lines: int = 30) -> str:
        text = self.log()
        if self.stderr_path is not None and self.stderr_path.exists():
            text += self.stderr_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Probe, *, timeout: float = 20.0, what: str = "ready") -> None:
        """Poll ``probe`` until it passes; raise with the log's tail if the child exits or
        the time runs out (the child is then stopped)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen is None or self.popen.poll() is not None:
                code = self.popen.returncode if self.popen else None
                self._close_stdin()
                raise RuntimeError(f"{self.name} exited with {code} before it was {what}:\n"
                                   f"{self.tail()}")
            with contextlib.suppress(OSError, httpx.HTTPError):
                if probe():
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not {what} within {timeout:.0f} s:\n"
                                   f"{self.tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """``sig`` (SIGTERM; SIGINT is Ctrl-C) by PID, SIGKILL after ``timeout``; the exit
        code (None if never started). Safe to call twice."""
        popen, self.popen = self.popen, None
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(sig)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)
        self._close_popen_stdin(popen)
        return popen.returncode

    def kill(self) -> None:
        """SIGKILL by PID (a crash, as tests mean it)."""
        popen, self.popen = self.popen, None
        if popen is not None and popen.poll() is None:
            popen.kill()
            popen.wait(5)
        if popen is not None:
            self._close_popen_stdin(popen)

    def _close_stdin(self) -> None:
        if self.popen is not None:
            self._close_popen_stdin(self.popen)

    @staticmethod
    def _close_popen_stdin(popen: subprocess.Popen[bytes]) -> None:
        if popen.stdin is not None:
            with contextlib.suppress(OSError):
                popen.stdin.close()


class ProcessGroup:
    """Every child a script starts, stopped together in reverse order (by PID)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[ChildProcess] = []

    def start(self, name: str, argv: list[str], **kw: Any) -> ChildProcess:
        child = ChildProcess(name, argv, self.workdir / f"{name}.log", **kw).start()
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()


# Readiness probes: each returns True once the child serves.

def port_open(port: int, host: str = "127.0.0.1") -> Probe:
    def probe() -> bool:
        with socket.create_connection((host, port), 0.2):
            return True
    return probe


def http_ok(url: str) -> Probe:
    def probe() -> bool:
        return httpx.get(url, timeout=0.5, trust_env=False).status_code == 200
    return probe


def redis_pong(port: int) -> Probe:
    def probe() -> bool:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    return probe


def log_line(child: ChildProcess, prefix: str) -> Probe:
    """The child printed a line starting with ``prefix`` (e.g. the test IdP's READY)."""
    def probe() -> bool:
        return any(line.startswith(prefix) for line in child.log().splitlines())
    return probe


def log_has(child: ChildProcess, text: str) -> Probe:
    """The child's log (stdout, or stderr where it has a file of its own) contains ``text``."""
    def probe() -> bool:
        return text in child.log() or text in child.stderr()
    return probe
