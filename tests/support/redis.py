"""Real ``redis-server`` processes on free ports, started and stopped by the tests (by PID)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from support.idp import free_port
from support.processes import ChildProcess, redis_pong


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server (.ci/run does)")
    return path


class RedisServer:
    """One redis-server; ``restart()`` keeps the port (and, with appendonly, the data)."""

    def __init__(self, port: int | None = None, *, appendonly: bool = False,
                 extra_args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = extra_args or []
        self.dir = Path(tempfile.mkdtemp(prefix="bffgate-redis-"))
        self.child: ChildProcess | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.popen if self.child else None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.running

    def start(self) -> RedisServer:
        """Start it; a no-op while it runs (as the IdP helper's). A second redis-server on
        the busy port would exit, but the old one answers the readiness PING, so the second
        child would be taken for started and the first, running one lost: it outlived the
        test run (``with RedisServer().start()`` started twice)."""
        if self.running:
            return self
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--dir", str(self.dir), *self.extra_args]
        # No --logfile: redis logs to stdout, captured with anything it prints before
        # (a bad argument); a failure to start ends with that log's tail.
        self.child = ChildProcess(f"redis-server on port {self.port}", args,
                                  self.dir / "redis.log")
        self.child.start().wait_ready(redis_pong(self.port), timeout=10,
                                      what="answering PING")
        return self

    def stop(self) -> None:
        if self.child:
            self.child.stop(5)

    def kill(self) -> None:
        if self.child:
            self.child.kill()

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _port_with_bus() -> int:
    """A port P such that P and its cluster-bus port P+10000 are both free (ephemeral ports
    from the kernel can be above 55535, where P+10000 does not exist)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 30000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterSet:
    """A real 3-master Redis Cluster (no replicas), created with ``redis-cli --cluster create``."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [RedisServer(port=_port_with_bus(), extra_args=["--cluster-enabled", "yes",
                                              "--cluster-config-file", "nodes.conf",
                                              "--cluster-node-timeout", "2000"])
                      for _ in range(masters)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisClusterSet:
        try:
            return self._start()
        except BaseException:
            self.close()  # never leave half a cluster running
            raise

    def _start(self) -> RedisClusterSet:
        for n in self.nodes:
            n.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found (package redis-tools / redis-server)")
        subprocess.run([cli, "--cluster", "create",
                        *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run([cli, "-p", str(self.nodes[0].port), "cluster", "info"],
                                 capture_output=True, text=True, timeout=5).stdout
            if "cluster_state:ok" in out:
                return self
            time.sleep(0.1)
        raise RuntimeError("redis cluster did not reach cluster_state:ok")

    def close(self) -> None:
        for n in self.nodes:
            n.close()


class RedisSentinelSet:
    """A real master + replica + 3 sentinels (quorum 2), persistence on."""

    MASTER_NAME = "bffgate-master"

    def __init__(self) -> None:
        self.master = RedisServer(appendonly=True)
        self.replica = RedisServer(appendonly=True)
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[ChildProcess] = []
        self.dir = Path(tempfile.mkdtemp(prefix="bffgate-sentinel-"))

    @property
    def hosts(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.sentinel_ports]

    def start(self) -> RedisSentinelSet:
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> RedisSentinelSet:
        self.master.start()
        self.replica.extra_args = ["--replicaof", "127.0.0.1", str(self.master.port)]
        self.replica.start()
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {self.MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {self.MASTER_NAME} 1\n")
            self.sentinels.append(ChildProcess(
                f"redis sentinel on port {port}", [redis_binary(), str(conf), "--sentinel"],
                self.dir / f"sentinel-{port}.log").start())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.master_port() == self.master.port and self._replica_linked():
                return self
            time.sleep(0.1)
        raise RuntimeError("sentinels did not see the master and its replica")

    def _cli(self, port: int, *args: str) -> str:
        cli = shutil.which("redis-cli") or "redis-cli"
        try:
            return subprocess.run([cli, "-p", str(port), *args], capture_output=True,
                                  text=True, timeout=5).stdout
        except subprocess.TimeoutExpired:
            return ""

    def _replica_linked(self) -> bool:
        return "master_link_status:up" in self._cli(self.replica.port, "info", "replication")

    def master_port(self) -> int | None:
        for port in self.sentinel_ports:
            out = self._cli(port, "sentinel", "get-master-addr-by-name", self.MASTER_NAME).split()
            if len(out) == 2:
                return int(out[1])
        return None

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop(5)
        self.master.close()
        self.replica.close()
        shutil.rmtree(self.dir, ignore_errors=True)
