"""What does one audit line cost? (issue #12: the `request.proxied` line <= 15 µs.)

By hand, never in CI. Configures the real log pipeline (``bffgate.logs.configure_logging``)
into a real sink, binds a realistic request context the way the edge does
(``bind_log_context``), and emits N ``request.proxied`` events with ``audit.emit`` exactly
as ``endpoints/api.py`` does after a proxied call. Reports µs per line: wall time and this
process's CPU time (the sink's reader, ``cat`` in its own process, is not counted).

    python bench/audit_cost.py                  # 20,000 lines to a pipe read by `cat >/dev/null`
    python bench/audit_cost.py --flush-interval 0   # each line its own write (default: 0.1 s)
    python bench/audit_cost.py --sink file      # to a temporary file instead
    python bench/audit_cost.py -n 50000 --rounds 5
    python bench/audit_cost.py --kinds proxied,secret,plain   # which lines to time
    py-spy record -o audit.svg -- python bench/audit_cost.py -n 200000 --rounds 1

Kinds: ``proxied`` (the hot line, clean values), ``secret`` (the same line with a JWT in
the user agent and a ``?code=`` in the path: redaction must run and count), ``plain`` (a
non-audit log line with a free-form message), ``ocsf`` (``login.succeeded`` with
``log.audit_format = "ocsf"`` when the code has it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import structlog

from bffgate import audit, logs
from bffgate.audit import AuditEvent
from bffgate.edge.request_context import RequestInfo, bind_log_context

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")
JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAzMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmUtYnl0ZXM")


@contextlib.contextmanager
def sink(kind: str) -> Iterator[TextIO]:
    """A real sink: the write end of a pipe drained by ``cat`` (another process), or a file."""
    if kind == "pipe":
        reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert reader.stdin is not None
        stream = io.TextIOWrapper(reader.stdin, encoding="utf-8", write_through=False)
        try:
            yield stream
        finally:
            stream.close()
            reader.wait(10)
    else:
        fd, name = tempfile.mkstemp(prefix="audit-cost-", suffix=".log")
        os.close(fd)
        try:
            with open(name, "w", encoding="utf-8") as stream:
                yield stream
            print(f"  file: {Path(name).stat().st_size / 1e6:.1f} MB written", file=sys.stderr)
        finally:
            os.unlink(name)


def bind(path: str, ua: str) -> None:
    bind_log_context(RequestInfo(request_id="5d3c0b1e9a7f42c18e6b2a40", client_ip="203.0.113.7",
                                 user_agent=ua, method="GET", path=path))


def line_proxied() -> None:
    audit.emit(AuditEvent.REQUEST_PROXIED, route="/api", status=200, duration_ms=1.37,
               session="3f2a9c0d1e7b4a56", sub="248289761001")


def line_plain(log: Any) -> Callable[[], None]:
    return lambda: log.info("upstream pool resized", size=100, note="after config reload")


def line_ocsf() -> None:
    audit.emit(AuditEvent.LOGIN_SUCCEEDED, sub="248289761001", session="3f2a9c0d1e7b4a56")


def time_lines(emit: Callable[[], None], n: int) -> tuple[float, float]:
    """(wall µs/line, CPU µs/line) for n calls."""
    for _ in range(min(n, 2000)):
        emit()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        emit()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall / n * 1e6, cpu / n * 1e6


def configure(stream: TextIO, audit_format: str, flush_interval: float) -> None:
    try:
        logs.configure_logging("info", "json", stream=stream, audit_format=audit_format,  # type: ignore[call-arg]
                               flush_interval=flush_interval)
    except TypeError:  # before log.audit_format / log.flush_interval existed
        logs.configure_logging("info", "json", stream=stream)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20_000, help="lines per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sink", choices=["pipe", "file"], default="pipe")
    ap.add_argument("--kinds", default="proxied,secret,plain,ocsf")
    ap.add_argument("--flush-interval", type=float, default=0.1,
                    help="log.flush_interval: 0.1 s is the default a gateway runs with (lines "
                         "leave 64 KiB at a time); 0 writes each line at once")
    args = ap.parse_args()
    if args.flush_interval > 0:  # lines are held only when written on an event loop
        async def on_loop() -> None:
            run(args)

        asyncio.run(on_loop())
    else:
        run(args)


def run(args: argparse.Namespace) -> None:
    kinds = args.kinds.split(",")
    redactions: list[int] = []
    logs.on_redaction(redactions.append)
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with sink(args.sink) as stream:
        log = logs.get_logger("bench")
        for _ in range(args.rounds):
            for kind in kinds:  # interleaved
                configure(stream, "ocsf" if kind == "ocsf" else "json", args.flush_interval)
                log = logs.get_logger("bench")
                if kind == "secret":
                    bind(f"/api/orders/42?code=SplxlOBeZQQYbYS6WxSbIA&t={JWT}", f"{UA} {JWT}")
                else:
                    bind("/api/orders/42", UA)
                emit = {"proxied": line_proxied, "secret": line_proxied, "plain": line_plain(log),
                        "ocsf": line_ocsf}[kind]
                before = len(redactions)
                results[kind].append(time_lines(emit, args.n))
                if kind == "secret" and len(redactions) == before:
                    sys.exit("the secret line was not redacted: the bench is measuring the wrong thing")
                stream.flush()
        structlog.contextvars.clear_contextvars()
        logs.flush()  # the lines still held, while the sink is open
    print(f"audit_cost.py: {args.n:,} lines x {args.rounds} rounds to a {args.sink}, "
          f"log.flush_interval {args.flush_interval:g} s, "
          f"Python {sys.version.split()[0]}, structlog {structlog.__version__}")
    print(f"{'line':<10} {'wall µs/line (median)':>22} {'CPU µs/line (median)':>22}  rounds (wall)")
    for kind, rows in results.items():
        walls = [w for w, _ in rows]
        cpus = [c for _, c in rows]
        print(f"{kind:<10} {statistics.median(walls):>22.2f} {statistics.median(cpus):>22.2f}  "
              + " ".join(f"{w:.2f}" for w in walls))


if __name__ == "__main__":
    main()
