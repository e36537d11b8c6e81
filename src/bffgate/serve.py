"""``bffgate serve``: the gateway on its listeners, in this process (``server.workers`` = 1)
or in N worker processes sharing them (bffgate.workers)."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Mapping
from typing import Any

from bffgate import __version__
from bffgate.config import ConfigError, Settings
from bffgate.listeners import bind_listeners, close_listeners
from bffgate.logs import flush, get_logger
from bffgate.server import GRACEFUL_SECONDS, run, serve_all, tune_gc
from bffgate.workers import WorkerContext, supervise

# Nothing here imports bffgate.app (nor prometheus_client) at module level: with workers,
# the supervisor must set the metrics directory before prometheus_client is imported.


def listener_names(settings: Settings) -> dict[str, str]:
    """Each listen address and its name (``bffgate_worker_http_requests{listener}``)."""
    names = {settings.server.listen: "public"}
    if settings.server.admin_listen:
        names[settings.server.admin_listen] = "admin"
    return names


def serve(settings: Settings, workers: int) -> int:
    """Serve until SIGTERM/SIGINT; the exit code. A busy port raises ListenerUnavailable."""
    if workers == 1:
        try:
            run(_gateway(settings))
        except ConfigError as exc:
            print(f"bffgate: {exc}", file=sys.stderr)
            return 1
        return 0
    sockets = bind_listeners(listener_names(settings), workers)
    try:
        return supervise(workers, sockets, functools.partial(_worker, settings),
                         graceful=GRACEFUL_SECONDS,
                         on_started=functools.partial(_started, settings),
                         preload=functools.partial(importlib.import_module, "bffgate.app"))
    finally:
        close_listeners(sockets)


def _started(settings: Settings, pids: list[int] | None = None) -> None:
    s = settings.server
    extra: dict[str, Any] = {"workers": len(pids), "worker_pids": pids} if pids else {}
    get_logger().info("gateway.started", listen=s.listen, admin_listen=s.admin_listen,
                      public_url=s.public_url, routes=len(settings.routes),
                      store=settings.session.store, version=__version__, **extra)


def _worker(settings: Settings, ctx: WorkerContext) -> int:
    """One worker process: its own gateway on the supervisor's sockets."""
    try:
        run(_gateway(settings, ctx))
    except ConfigError as exc:
        ctx.fail(f"bffgate: {exc}")
        return 1
    return 0


async def _gateway(settings: Settings, ctx: WorkerContext | None = None) -> None:
    from bffgate.app import Gateway

    log = get_logger()
    gw = Gateway(settings)
    try:
        await gw.start()
    except ConfigError:  # a check that needs the IdP's metadata (route token modes)
        await gw.stop()
        raise
    tune_gc()
    names = listener_names(settings)
    apps: list[tuple[Any, str]] = [(gw.public, settings.server.listen)]
    if settings.server.admin_listen:
        apps.append((gw.admin, settings.server.admin_listen))
    worker: dict[str, Any] = {}
    try:
        if ctx is None:
            await serve_all(apps, http_parser=settings.server.http_parser,
                            on_started=functools.partial(_started, settings))
        else:
            worker = {"worker": ctx.slot}
            requests, connections = gw.metrics.worker_requests, gw.metrics.worker_connections

            def tick(served: Mapping[str, tuple[int, int]]) -> bool:
                for listen, (done, open_now) in served.items():
                    requests.labels(names[listen]).set(done)
                    connections.labels(names[listen]).set(open_now)
                return ctx.supervisor_alive()  # an orphan stops serving

            await serve_all(apps, http_parser=settings.server.http_parser,
                            sockets=ctx.sockets, on_started=ctx.ready, tick=tick)
    finally:
        await gw.stop()
        log.info("gateway.stopped", **worker)
        flush()  # the held log lines (log.flush_interval): a worker leaves with os._exit
