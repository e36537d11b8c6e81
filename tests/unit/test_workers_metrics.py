"""bffgate.metrics under server.workers > 1 (prometheus-client multiprocess mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import Gauge

from bffgate.metrics import Metrics, multiprocess_mode
from support.gateway import child_env

# Forks two "workers" that each count, then renders in the parent: the merged values.
SCRIPT = """
import os
from bffgate.metrics import Metrics, multiprocess_mode
assert multiprocess_mode()
for n in (1, 2):
    pid = os.fork()
    if pid == 0:
        m = Metrics()
        m.proxy_requests.labels("/api", "2xx").inc(n)
        m.websockets_open.inc(n)
        m.worker_requests.labels("public").set(10 * n)
        os._exit(0)
    os.waitpid(pid, 0)
print(Metrics().render().decode())
"""


def test_not_in_workers_mode_each_instance_has_its_own_values() -> None:
    assert not multiprocess_mode()
    a, b = Metrics(), Metrics()
    a.proxy_requests.labels("/api", "2xx").inc()
    assert b'bffgate_proxy_requests_total{route="/api",status_class="2xx"} 1.0' in a.render()
    assert b"bffgate_proxy_requests_total{" not in b.render()


def test_render_merges_every_process_of_the_directory(tmp_path: Path) -> None:
    env = child_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert 'bffgate_proxy_requests_total{route="/api",status_class="2xx"} 3.0' in out
    assert "bffgate_websockets_open 3.0" in out  # livesum: both processes still "alive"
    assert sorted(line.rsplit(" ", 1)[1] for line in out.splitlines()
                  if line.startswith("bffgate_worker_http_requests{")) == ["10.0", "20.0"]


def test_every_gauge_says_how_workers_combine() -> None:
    """A Gauge's default multiprocess mode ("all": one series per pid, dead ones kept) is
    rarely what a gauge of the gateway means: each one names its mode."""
    gauges = [v for v in vars(Metrics()).values() if isinstance(v, Gauge)]
    assert gauges
    for g in gauges:
        assert g._multiprocess_mode != "all", f"{g._name}: set multiprocess_mode"
