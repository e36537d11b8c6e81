"""Login cost in instructions: the gateway's user-space instructions per login, counted by
valgrind's callgrind (issue #12, logins).

    python bench/login_instructions.py [--logins 100] [--parallel 4] [--log-level info]
                                       [--src DIR [--src DIR2 ...]] [--keep DIR]

Same login as bench/login_cost.py (``GET /bff/login``, the dev IdP's form, ``GET
/bff/callback``), same stack (its own ``redis-server``, bffgate's development IdP with ES256
ID tokens, one ``bffgate serve`` per ``--src``), but the gateway runs under ``valgrind
--tool=callgrind`` with instrumentation off until the warm-up (20 logins) is done, on for
the measured logins only (``callgrind_control -i on/off``). The figure, instructions per
login, is repeatable to ~0.1 % whatever else the machine does, where CPU time moves by up
to 2x with the load of this shared 2-core box: use it to tell whether a change pays, and
login_cost.py for the time it takes. It counts user space only (the kernel's share of a
login, its socket calls, is ~10 % of its CPU time). ~40 s per source tree: the gateway
runs ~50x slower under valgrind. Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _stack import (
    Stack,
    describe_source,
    free_port,
    gateway_config,
    log,
    machine,
    new_secret,
    source_env,
    write_toml,
)
from login_cost import run_logins

from support.processes import http_ok


def instructions(out: Path) -> int:
    """The total of a callgrind dump (the ``totals:`` line; ``summary:`` is 0 in a dump)."""
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
    return total


def one(src: str | None, args: argparse.Namespace, workdir: Path) -> float:
    """Millions of instructions per login of the gateway from ``src``."""
    out = workdir / f"callgrind.{len(list(workdir.iterdir()))}.out"
    with Stack("bffgate-login-instructions-", args.timeout) as stack:
        _redis, redis_port = stack.redis()
        port, admin_port = free_port(), free_port()
        client_id, client_secret = "login-bench", new_secret()
        _idp, idp_url = stack.storm_idp(client_id, client_secret,
                                        [f"http://localhost:{port}/bff/callback"], 3600)
        path = stack.workdir / "gateway.toml"
        write_toml(path, gateway_config(port, admin_port, idp_url, client_id, client_secret,
                                        redis_port, "http://127.0.0.1:9", new_secret(),
                                        log_level=args.log_level))
        gw = stack.procs.start("gateway", [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out}", sys.executable, "-m", "bffgate", "serve",
            "--config", str(path)], env=source_env(src))
        gw.wait_ready(http_ok(f"http://127.0.0.1:{admin_port}/healthz"), timeout=300)
        url = f"http://localhost:{port}"
        run_logins(url, 20, args.parallel)  # warm-up, not counted
        control = ["callgrind_control"]
        subprocess.run([*control, "-i", "on", str(gw.pid)], check=True, capture_output=True)
        _, failed = run_logins(url, args.logins, args.parallel)
        subprocess.run([*control, "-i", "off", str(gw.pid)], check=True, capture_output=True)
        subprocess.run([*control, "-d", str(gw.pid)], check=True, capture_output=True)
    if failed:
        raise SystemExit(f"{failed} of {args.logins} logins failed")
    return instructions(out) / args.logins / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--src", action="append", help="the gateway from this source tree "
                        "(a `git worktree` of the commit to measure); give several to compare")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--keep", type=Path, help="write the callgrind dumps into this "
                        "directory and keep them (for callgrind_annotate)")
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    sources: list[str | None] = args.src or [None]
    print(f"machine: {machine()}")
    got = []
    with tempfile.TemporaryDirectory(prefix="bffgate-callgrind-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for src in sources:
            got.append(one(src, args, workdir))
            log(f"{describe_source(src)}: {got[-1]:.3f} M instructions per login")
    print(f"\nlogin instructions: {args.logins} logins, {args.parallel} in parallel, log level "
          f"{args.log_level}; the gateway's user-space instructions per login (callgrind):")
    for src, value in zip(sources, got, strict=True):
        print(f"  {describe_source(src)}: {value:.3f} M"
              + (f"  ({value / got[0]:.3f}x the first)" if len(got) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
