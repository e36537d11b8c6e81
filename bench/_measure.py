"""Measuring helpers shared by the benches (proxy_bench.py, compare.py): CPU time from
/proc (one process or a whole process tree), wrk runs parsed from a Lua ``done`` hook,
machine-wide busy time, a process's upstream connections, Redis INFO commandstats, and a
py-spy summary. Linux only."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


# --------------------------------------------------------------------------- gateways
def cookie_line(proc: Any, what: str, timeout: float = 30.0) -> str:
    """The session cookie a bench gateway (``_gateway.started_gateway``) prints as its first
    stdout line; RuntimeError naming ``what`` and the end of its log when none comes in
    ``timeout`` seconds."""
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    cookie = out[0].decode().strip() if out else ""
    if not cookie.startswith("v1."):
        raise RuntimeError(f"{what}: expected a session cookie on stdout within {timeout:g} s, "
                           f"got {cookie[:80]!r}; its log ends with:\n{proc.tail()}")
    return cookie


# --------------------------------------------------------------------------- CPU
def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """user + sys CPU of ``pid`` and all its descendants, from /proc: utime + stime of each
    live process plus cutime + cstime (its children that already exited and were reaped),
    so a worker that exits mid-run still counts. Compare two readings of the same tree."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            stats[int(entry)] = fields
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    ticks = 0
    for p in tree:
        f = stats.get(p)
        if f is not None:
            ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    if pid not in stats:
        return float("nan")
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry)] = int(
                    Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
    out = [pid]
    for p in out:
        out.extend(c for c, par in parents.items() if par == p and c not in out)
    return out


# --------------------------------------------------------------------------- wrk
WRK_LUA = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"
    .. "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f,"
    .. "\"err_connect\":%d,\"err_read\":%d,\"err_write\":%d,\"err_status\":%d,"
    .. "\"err_timeout\":%d}\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
"""


def wrk(port: int, headers: dict[str, str], duration: float, connections: int,
        threads: int, script: Path, path: str = "/api/data") -> dict[str, Any]:
    # wrk takes whole seconds only
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", "5s",
            "-s", str(script)]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30,
                         check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            res: dict[str, Any] = json.loads(line[8:])
            res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
            return res
    raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")


# --------------------------------------------------------------------------- accounting
def busy_jiffies() -> int:
    """Non-idle CPU time of the whole machine, in clock ticks (/proc/stat)."""
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    vals = [int(x) for x in f]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return sum(vals[:8]) - idle


def upstream_connections(pid: int, up_port: int) -> int:
    """ESTABLISHED TCP connections from process ``pid`` to the upstream's port (its pool),
    matched by socket inode between /proc/PID/fd and /proc/net/tcp."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    n = 0
    hexport = f":{up_port:04X}"
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), Path(name).open() as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                if (len(parts) > 9 and parts[3] == "01" and parts[2].endswith(hexport)
                        and parts[9] in inodes):
                    n += 1
    return n



# --------------------------------------------------------------------------- profile
def pyspy_profile(pid: int, seconds: float, load: Any, top: int = 25,
                  keep: str | None = None) -> str:
    """Sample the gateway with py-spy while `load()` runs; summarise self/total time."""
    exe = shutil.which("py-spy")
    if exe is None:
        return "py-spy not installed (pip install py-spy)"
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        path = f.name
    rec = subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200",
                            "-f", "raw", "-o", path, "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    load()
    _, err = rec.communicate(timeout=seconds + 30)
    if rec.returncode != 0:
        return f"py-spy failed: {err.decode(errors='replace')[-400:]}"
    total = 0
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    by_pkg: dict[str, int] = {}
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        total += count
        pkg = _package(stack.rsplit(";", 1)[-1])
        by_pkg[pkg] = by_pkg.get(pkg, 0) + count
        frames = [fr.split(" (")[0] + " (" + fr.split(" (")[1].rsplit("/", 1)[-1]
                  if " (" in fr else fr for fr in stack.split(";")]
        self_t[frames[-1]] = self_t.get(frames[-1], 0) + count
        for fr in set(frames):
            incl[fr] = incl.get(fr, 0) + count
    if keep:
        shutil.move(path, keep)
    else:
        os.unlink(path)
    if not total:
        return "py-spy: no samples"
    lines = [f"py-spy: {total} samples while busy (idle time not sampled)",
             "  self time by package: " + ", ".join(
                 f"{k} {100 * n / total:.0f}%"
                 for k, n in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:10]),
             "  self%  total%  function (file:line)"]
    for fr, n in sorted(self_t.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}  {100 * incl[fr] / total:6.1f}  {fr}")
    lines.append("  -- largest inclusive --")
    for fr, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * self_t.get(fr, 0) / total:5.1f}  {100 * n / total:6.1f}  {fr}")
    return "\n".join(lines)


def _package(frame: str) -> str:
    """'func (aiohttp/client.py:12)' -> 'aiohttp' (py-spy prints paths relative to sys.path)."""
    if " (" not in frame:
        return "?"
    path = frame.rsplit(" (", 1)[1].rsplit(":", 1)[0]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    elif path.startswith("/"):
        path = path.rsplit("/", 1)[-1]
    return path.split("/", 1)[0].removesuffix(".py")


# --------------------------------------------------------------------------- Redis
def redis_commandstats(port: int) -> dict[str, int]:
    """``{command: calls}`` from ``INFO commandstats`` of the redis-server on ``port`` (raw
    RESP over a socket: no client library, no connection setup commands of its own)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        size = int(buf[1:buf.index(b"\r\n")])
        start = buf.index(b"\r\n") + 2
        while len(buf) < start + size:
            buf += sock.recv(65536)
    out: dict[str, int] = {}
    for line in buf[start:start + size].decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[8:].partition(":")
            calls = dict(kv.split("=", 1) for kv in rest.split(","))
            out[name] = int(calls["calls"])
    return out


def commands_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two readings, without the INFO calls that took them."""
    out = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
    out.pop("info", None)
    return out
