"""The probe's run as Prometheus metrics: a node-exporter textfile (written atomically:
a temporary file in the same directory, then rename) and/or a Pushgateway push."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from bffgate.probe.result import Findings

JOB = "bffgate_probe"


def probe_registry(findings: Findings, duration_s: float) -> CollectorRegistry:
    """bffgate_probe_success, _duration_seconds, _last_run_timestamp_seconds and, per check,
    bffgate_probe_check_success{check} and bffgate_probe_check_duration_seconds{check}."""
    registry = CollectorRegistry()
    Gauge("bffgate_probe_success", "1 when every check of the last probe run passed",
          registry=registry).set(1 if findings.healthy else 0)
    Gauge("bffgate_probe_duration_seconds", "How long the last probe run took",
          registry=registry).set(duration_s)
    Gauge("bffgate_probe_last_run_timestamp_seconds", "When the last probe run ended (Unix time)",
          registry=registry).set(time.time())
    ok = Gauge("bffgate_probe_check_success", "1 when the check passed in the last run",
               ["check"], registry=registry)
    took = Gauge("bffgate_probe_check_duration_seconds", "How long the check took in the last "
                 "run", ["check"], registry=registry)
    for check in findings.checks:
        ok.labels(check.name).set(1 if check.ok else 0)
        took.labels(check.name).set(check.duration_ms / 1000)
    return registry


def write_textfile(path: str, registry: CollectorRegistry) -> None:
    """Atomic: node-exporter never reads half a file. Raises OSError."""
    write_to_textfile(path, registry)


def push(url: str, registry: CollectorRegistry, timeout: float) -> None:
    """PUT to the Pushgateway (job bffgate_probe): replaces the last run's metrics, so a
    check that did not run this time does not linger. Raises OSError on failure."""
    push_to_gateway(url, job=JOB, registry=registry, timeout=timeout)
