"""Prometheus metrics (prefix ``bffgate_``): PKCE SLIs, refresh outcomes, proxy traffic.

With ``server.workers`` > 1 the supervisor sets PROMETHEUS_MULTIPROC_DIR before any worker
imports prometheus_client, which then keeps every value in per-process files there
(prometheus_client.values picks its value class once, at import); ``render`` merges the
files of all workers (MultiProcessCollector), whichever worker answers /metrics. A Gauge
must say how its workers' values combine (``multiprocess_mode``: livesum, liveall, max...);
Counters and Histograms are summed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as _values


def multiprocess_mode() -> bool:
    """True in a worker of ``server.workers`` > 1 (values live in PROMETHEUS_MULTIPROC_DIR)."""
    return _values.ValueClass is not _values.MutexValue


class Metrics:
    """One registry per gateway instance (tests run several in one process); in a worker
    the values are the process's share of the workers' files (see the module's note)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.logins_started = Counter("bffgate_logins_started", "Logins started", registry=r)
        self.login_results = Counter("bffgate_login_results", "Callback outcomes by reason",
                                     ["outcome", "reason"], registry=r)
        self.token_exchange = Counter("bffgate_token_exchange", "Code exchanges by result "
                                      "(invalid_grant = verifier mismatch or expired code)",
                                      ["result"], registry=r)
        self.callback_missing_params = Counter(
            "bffgate_callback_missing_params", "Callbacks missing code or state", ["param"],
            registry=r)
        # M3: the /bff/login handler itself (refusals included), sub-millisecond buckets.
        self.login_start_duration = Histogram(
            "bffgate_login_start_duration_seconds", "Time spent in the /bff/login handler",
            buckets=(.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5),
            registry=r)
        # M5: each login attempt counted once, where it ends: refused at /bff/login
        # (step login) or answered at /bff/callback (step callback).
        self.login_attempts = Counter(
            "bffgate_login_attempts", "Login attempts by the step that ended them (login, "
            "callback), outcome (succeeded, failed) and reason", ["step", "outcome", "reason"],
            registry=r)
        self.login_duration = Histogram(
            "bffgate_login_duration_seconds", "Login start to successful callback",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600), registry=r)
        self.refresh = Counter("bffgate_refresh", "Refresh outcomes", ["outcome"], registry=r)
        self.proxy_requests = Counter("bffgate_proxy_requests", "Proxied requests",
                                      ["route", "status_class"], registry=r)
        self.proxy_latency = Histogram(
            "bffgate_proxy_duration_seconds",
            "Proxied request duration, to the end of the response body (or the refusal)",
            ["route"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10), registry=r)
        self.upstream_errors = Counter("bffgate_upstream_errors", "Upstream failures",
                                       ["route", "kind"], registry=r)
        self.redis_errors = Counter("bffgate_redis_errors", "Session store errors", registry=r)
        self.csrf_rejections = Counter("bffgate_csrf_rejections", "CSRF rejections",
                                       registry=r)
        self.redactions = Counter("bffgate_log_redactions", "Values redacted from log lines",
                                  registry=r)
        self.route_exchange = Counter(
            "bffgate_route_exchange", "Token exchanges (RFC 8693) of token = exchange routes, "
            "by outcome: exchanged, cached, refused, unavailable", ["route", "outcome"],
            registry=r)
        self.client_token = Counter(
            "bffgate_client_token", "Client-credentials tokens of token = client | "
            "user_or_client routes, per request by outcome: cached, issued, failed",
            ["route", "outcome"], registry=r)
        self.websockets_open = Gauge("bffgate_websockets_open", "Open proxied WebSockets",
                                     registry=r, multiprocess_mode="livesum")
        self.websocket_upgrades = Counter(
            "bffgate_websocket_upgrades", "WebSocket handshakes by outcome: 101, or the "
            "refusal's status", ["outcome"], registry=r)
        self.websocket_frames = Counter("bffgate_websocket_frames", "WebSocket messages "
                                        "relayed, by direction", ["direction"], registry=r)
        self.websocket_bytes = Counter("bffgate_websocket_bytes", "WebSocket payload bytes "
                                       "relayed, by direction", ["direction"], registry=r)
        self.dpop_nonce_retries = Counter(
            "bffgate_dpop_nonce_retries", "DPoP token requests sent again with the IdP's "
            "nonce (use_dpop_nonce)", registry=r)

        # Workers only (bffgate.serve samples uvicorn's counts each second): HTTP requests
        # each worker has answered and its open connections, per listener; one series per
        # live worker (label pid).
        self.worker_requests = Gauge(
            "bffgate_worker_http_requests", "HTTP responses completed by each worker process "
            "(server.workers > 1), by listener", ["listener"], registry=r,
            multiprocess_mode="liveall")
        self.worker_connections = Gauge(
            "bffgate_worker_http_connections", "Open client connections of each worker "
            "process (server.workers > 1), by listener", ["listener"], registry=r,
            multiprocess_mode="liveall")

    def render(self) -> bytes:
        if multiprocess_mode():
            from prometheus_client.multiprocess import MultiProcessCollector

            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(merged))
        return bytes(generate_latest(self.registry))
