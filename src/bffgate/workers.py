"""``server.workers`` > 1: a supervisor process and N forked workers serving its sockets.

The supervisor binds every listener at start (``bind_listeners``: one SO_REUSEPORT socket
per worker; a busy port is the same one line as without workers), creates a private
PROMETHEUS_MULTIPROC_DIR, then forks the workers. Each worker builds its own gateway
(event loop, upstream and IdP pools, Redis pool) and serves its inherited sockets; the
kernel spreads new connections over them. A dead worker's sockets stay open here for its
successor. The supervisor serves nothing and never imports prometheus_client's values before
setting that directory, so every worker keeps its metrics in files there.

- A worker reports on a pipe: ``R`` once it serves, or ``E`` + one line (its start-up
  failure: config, IdP) before it exits. During start-up, the first failure stops the
  others and ``supervise`` returns 1 with that line on stderr.
- SIGTERM/SIGINT: sent on to every worker (each drains its in-flight requests, up to the
  graceful timeout); ``supervise`` returns once all have exited: 0, or 1 if one failed.
- A worker that dies otherwise is logged (``worker.died``), its live gauges dropped
  (``mark_process_dead``) and a new one forked; more than ``CRASH_LIMIT`` deaths within
  ``CRASH_WINDOW`` seconds is a crash loop: everything stops, exit 1.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bffgate.logs import get_logger

CRASH_LIMIT = 5      # unexpected worker deaths...
CRASH_WINDOW = 60.0  # ...within this many seconds: a crash loop
KILL_AFTER = 10.0    # seconds past the graceful timeout before a draining worker is killed
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_count(value: int | str) -> int:
    """``server.workers`` / ``--workers`` as a number: "auto" is the cores this process may
    run on (os.cpu_count() unless an affinity mask or cpuset narrows it)."""
    if value != "auto":
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class WorkerContext:
    """What a worker process gets: its slot (0..N-1), the bound sockets per listen address,
    and how to report that it serves (``ready``) or why it could not start (``fail``)."""

    slot: int
    sockets: dict[str, list[socket.socket]]
    supervisor_pid: int
    _fd: int

    def ready(self) -> None:
        self._send(b"R")

    def fail(self, line: str) -> None:
        self._send(b"E" + line.encode("utf-8", "replace")[:4000])

    def supervisor_alive(self) -> bool:
        return os.getppid() == self.supervisor_pid

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._fd, data)


WorkerMain = Callable[[WorkerContext], int]  # runs in the worker; its exit code


@dataclass
class _Worker:
    slot: int
    pid: int
    fd: int  # read end of its report pipe
    ready: bool = False
    failure: str = ""


@dataclass
class _State:
    stopping: bool = False
    started: bool = False
    failed: bool = False
    signals: list[int] = field(default_factory=list)
    deaths: deque[float] = field(default_factory=deque)


def supervise(n: int, sockets: list[dict[str, list[socket.socket]]], main: WorkerMain, *,
              graceful: float, on_started: Callable[[list[int]], None],
              preload: Callable[[], object] | None = None) -> int:
    """Run ``n`` workers until a signal stops them; the exit code. Worker ``i`` serves
    ``sockets[i]`` (bffgate.listeners.bind_listeners), kept open here across restarts.
    ``preload`` runs here once the metrics directory is set, before the first fork (the
    imports every worker needs: done once, shared, and restarts start faster)."""
    if "prometheus_client.values" in sys.modules and MULTIPROC_ENV not in os.environ:
        # Its value class is chosen at import: the workers would keep private values.
        raise RuntimeError("prometheus_client was imported before the workers' metrics "
                           "directory was set")
    metrics_dir = tempfile.mkdtemp(prefix="bffgate-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        if preload is not None:
            preload()
        return _Supervisor(n, sockets, main, graceful, on_started, metrics_dir).run()
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Supervisor:
    def __init__(self, n: int, sockets: list[dict[str, list[socket.socket]]], main: WorkerMain,
                 graceful: float, on_started: Callable[[list[int]], None],
                 metrics_dir: str) -> None:
        self.n, self.sockets, self.main, self.graceful = n, sockets, main, graceful
        self.on_started, self.metrics_dir = on_started, metrics_dir
        self.workers: dict[int, _Worker] = {}  # by pid
        self.state = _State()
        self.log = get_logger()
        self.deadline = float("inf")

    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self.wake = (wake_r, wake_w)
        old_fd = signal.set_wakeup_fd(wake_w)
        old = {sig: signal.signal(sig, self._on_signal)
               for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        try:
            for slot in range(self.n):
                self._spawn(slot)
            while self.workers:
                self._step(wake_r)
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            for w in self.workers.values():  # only left after an error of our own
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGKILL)
            os.close(wake_r)
            os.close(wake_w)
        return 1 if self.state.failed else 0

    def _on_signal(self, sig: int, frame: Any) -> None:
        self.state.signals.append(sig)

    def _step(self, wake_r: int) -> None:
        fds = [wake_r, *(w.fd for w in self.workers.values() if w.fd >= 0)]
        timeout = None if self.deadline == float("inf") else 0.5
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(fds, [], [], timeout)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            for w in list(self.workers.values()):
                if w.fd in readable:
                    self._read_report(w)
        while self.state.signals:
            sig = self.state.signals.pop(0)
            if sig != signal.SIGCHLD:
                self._stop(f"signal {signal.Signals(sig).name}", sig)
        self._reap()
        if not (self.state.started or self.state.stopping) and self.workers and all(
                w.ready for w in self.workers.values()):
            self.state.started = True
            self.on_started(sorted(self.workers))
        if time.monotonic() > self.deadline:
            for w in self.workers.values():
                self.log.error("worker.killed", pid=w.pid, reason="drain timeout")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGKILL)
            self.state.failed = True
            self.deadline = float("inf")

    def _read_report(self, w: _Worker) -> None:
        try:
            data = os.read(w.fd, 4096)
        except OSError:
            data = b""
        if not data:  # the worker exited (or closed its end): stop watching the pipe
            os.close(w.fd)
            w.fd = -1
            return
        if data.startswith(b"R") and not w.ready:
            w.ready = True
            if self.state.started:
                self.log.info("worker.started", worker=w.slot, pid=w.pid)
        elif data.startswith(b"E"):
            w.failure += data[1:].decode("utf-8", "replace")

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = self.workers.pop(pid, None)
            if w is not None:
                self._exited(w, os.waitstatus_to_exitcode(status))

    def _exited(self, w: _Worker, code: int) -> None:
        if w.fd >= 0:
            self._read_report(w)
            if w.fd >= 0:
                os.close(w.fd)
        from prometheus_client import multiprocess  # after MULTIPROC_ENV is set

        multiprocess.mark_process_dead(w.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        if self.state.stopping:
            # A worker the forwarded signal ended before its loop took the signal over
            # (still starting) stopped as asked; start-up failures were reported already.
            if code not in (0, -signal.SIGTERM, -signal.SIGINT) and self.state.started:
                self.state.failed = True
                self.log.error("worker.failed", worker=w.slot, pid=w.pid, exit_code=code)
            return
        if not self.state.started:  # start-up: one worker's failure is the serve's
            print(w.failure or f"bffgate: worker {w.slot} exited with {code} while starting",
                  file=sys.stderr, flush=True)
            self.state.failed = True
            self._stop("a worker failed to start", signal.SIGTERM)
            return
        self.log.error("worker.died", worker=w.slot, pid=w.pid, exit_code=code,
                       ready=w.ready, **({"detail": w.failure} if w.failure else {}))
        now = time.monotonic()
        deaths = self.state.deaths
        deaths.append(now)
        while deaths and deaths[0] < now - CRASH_WINDOW:
            deaths.popleft()
        if len(deaths) > CRASH_LIMIT:
            self.log.error("workers.crash_loop", deaths=len(deaths), window_s=CRASH_WINDOW)
            self.state.failed = True
            self._stop("crash loop", signal.SIGTERM)
            return
        self._spawn(w.slot)

    def _stop(self, reason: str, sig: int) -> None:
        if not self.state.stopping:
            self.state.stopping = True
            self.deadline = time.monotonic() + self.graceful + KILL_AFTER
            self.log.info("workers.stopping", reason=reason, workers=len(self.workers))
        for w in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, sig)

    def _spawn(self, slot: int) -> None:
        r, wr = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(r)
            self._child(slot, wr)
        os.close(wr)
        self.workers[pid] = _Worker(slot, pid, r)

    def _child(self, slot: int, report_fd: int) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            for fd in (*self.wake, *(w.fd for w in self.workers.values() if w.fd >= 0)):
                os.close(fd)
            mine = {id(sock) for socks in self.sockets[slot].values() for sock in socks}
            for other in self.sockets:  # the other workers' sockets (a unix: one is shared)
                for sock in (s for socks in other.values() for s in socks):
                    if id(sock) not in mine:
                        sock.close()
            code = self.main(WorkerContext(slot, self.sockets[slot], os.getppid(), report_fd))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # the worker's last word, then it exits
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
