"""The workers' supervisor (bffgate.workers) with stand-in workers, as real processes
(support/supervisor_harness.py): start-up failure, crash-loop guard, SIGTERM forwarding and
exit codes. The gateway under workers: tests/e2e/test_workers.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bffgate.workers import CRASH_LIMIT
from support.gateway import child_env

TESTS = Path(__file__).resolve().parents[1]


def harness(mode: str) -> subprocess.Popen[str]:
    env = child_env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{TESTS}"
    return subprocess.Popen([sys.executable, "-m", "support.supervisor_harness", mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_start_up_failure_is_one_line_and_exit_1() -> None:
    proc = harness("fail")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if "says no" in line]
    assert len(lines) == 1 and lines[0].startswith("bffgate: worker "), err
    assert "STARTED" not in out


def test_a_crash_loop_stops_everything_with_exit_1() -> None:
    proc = harness("crash")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    died = [e for e in events(out) if e["event"] == "worker.died"]
    assert len(died) == CRASH_LIMIT + 1 and all(e["exit_code"] == 3 for e in died)
    assert [e["event"] for e in events(out)].count("workers.crash_loop") == 1
    assert [e for e in events(out) if e["event"] == "worker.started"]  # it did restart them


@pytest.mark.parametrize(("mode", "code"), [("term", 0), ("term-fail", 1)])
def test_sigterm_goes_to_every_worker(mode: str, code: int) -> None:
    proc = harness(mode)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("STARTED"), line
    pids = [int(p) for p in line.split()[1:]]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == code
    assert sorted(out.count(f"drained {slot}") for slot in (0, 1)) == [1, 1]
    failed = [e for e in events(out) if e["event"] == "worker.failed"]
    assert [(e["pid"], e["exit_code"]) for e in failed] == ([(pids[1], 2)] if code else [])
