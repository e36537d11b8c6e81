"""bffgate.workers.supervise with stand-in workers (no gateway), for the supervisor's tests:

    python -m support.supervisor_harness MODE    (PYTHONPATH: src and tests)

MODE: ``fail`` (every worker reports a start-up failure line), ``crash`` (each worker
serves 0.3 s, then exits 3), ``term`` (workers wait for SIGTERM, then exit 0; worker 1
exits 2 with ``term-fail``). Prints ``STARTED <pids>`` once all serve; log lines (JSON)
on stdout; the supervisor's exit code is the process's."""

from __future__ import annotations

import signal
import sys
import time

from bffgate.logs import configure_logging
from bffgate.workers import WorkerContext, supervise


def worker(mode: str, ctx: WorkerContext) -> int:
    if mode == "fail":
        ctx.fail(f"bffgate: worker {ctx.slot} says no")
        return 1
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    ctx.ready()
    if mode == "crash":
        time.sleep(0.3)
        return 3
    while not stop:
        time.sleep(0.02)
    print(f"drained {ctx.slot}", flush=True)
    return 2 if mode == "term-fail" and ctx.slot == 1 else 0


def main() -> int:
    mode = sys.argv[1]
    configure_logging("info", "json")
    return supervise(2, [{}, {}], lambda ctx: worker(mode, ctx), graceful=2.0,
                     on_started=lambda pids: print("STARTED", *pids, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
