"""Run ASGI apps with uvicorn on several listeners in one event loop, with one graceful
shutdown for all of them (SIGTERM/SIGINT: stop accepting, drain in-flight requests, exit).
A worker of ``server.workers`` > 1 serves the sockets its supervisor bound (``sockets``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Callable, Generator, Mapping
from typing import Any

import uvicorn

from bffgate.http_parsers import protocol_class
from bffgate.listeners import check_listeners

GRACEFUL_SECONDS = 20.0  # SIGTERM: how long in-flight requests may take to finish
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """The collector set for serving, once the app has started (``bffgate serve``).

    What start-up made (modules, settings, routes, keys, the IdP's metadata) lives as long
    as the process: out of the cyclic collector's sight, so that a full collection under
    load walks only what requests made (shorter pauses: the p99 of bench/compare.py).
    And the youngest generation is collected after 10,000 net allocations, not 700: a
    call's objects are freed by reference counting as it ends, so at 700 the collector
    mostly walked the 50 calls in flight (measured under wrk -c50: ~16 us of collection
    per call, ~8 % of the gateway's CPU; at 10,000, none in a 20,000-call run). Cyclic
    garbage (an exception and its traceback) still goes at the next collection.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve_all``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def run(main: Any) -> Any:
    """Run the coroutine on uvloop when it is installed (uvicorn only picks the loop in its
    own ``Server.run``, which ``serve_all`` does not use), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _config(app: Any, listen: str, *, graceful: float, http_parser: str) -> uvicorn.Config:
    kwargs: dict[str, Any] = {
        "lifespan": "off", "access_log": False, "server_header": False,
        "date_header": True, "timeout_graceful_shutdown": graceful, "log_config": None,
        "proxy_headers": False, "timeout_keep_alive": 30, "interface": "asgi3",
        # Our subclasses of uvicorn's protocols: every framing error gets a problem+json
        # answer (bffgate.http_protocol). WebSocket only for an app with websocket routes
        # (bffgate.endpoints.websocket.WebSocketGate); the protocols let only a well-formed
        # handshake on such a route through. Bounded: one 16 MiB message at most. Compression
        # is per hop: permessage-deflate is accepted only from a client that offers it, and
        # only then offered upstream (README "WebSockets").
        "http": protocol_class(http_parser),
        "ws": "websockets-sansio" if hasattr(app, "websocket_path") else "none",
        "ws_max_size": 16 * 1024 * 1024, "ws_max_queue": 4, "ws_per_message_deflate": True,
    }
    if listen.startswith("unix:"):
        return uvicorn.Config(app, uds=listen[5:], **kwargs)
    host, _, port = listen.rpartition(":")
    return uvicorn.Config(app, host=host.strip("[]"), port=int(port), **kwargs)


# Called each second with (HTTP requests served so far, connections open) per listen
# address; False stops the servers (a worker whose supervisor is gone).
Tick = Callable[[Mapping[str, tuple[int, int]]], bool]


async def serve_all(apps: list[tuple[Any, str]], *, graceful: float = GRACEFUL_SECONDS,
                    on_started: Any = None, http_parser: str = "auto",
                    sockets: Mapping[str, list[socket.socket]] | None = None,
                    tick: Tick | None = None) -> None:
    """``http_parser`` is ``server.http_parser``: auto (httptools when installed), h11 or
    httptools. ``sockets``: already bound (by the workers' supervisor) per listen address."""
    if sockets is None:
        # A busy port raises ListenerUnavailable here (one line from the CLI), not uvicorn's
        # startup traceback; the CLI checks before starting too, this closes the gap since.
        check_listeners(listen for _, listen in apps)
    servers = [_Server(_config(app, listen, graceful=graceful, http_parser=http_parser))
               for app, listen in apps]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for s in servers:
            s.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(s.serve(sockets=sockets[listen] if sockets else None))
             for s, (_, listen) in zip(servers, apps, strict=True)]
    if on_started is not None:
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.02)
        if all(s.started for s in servers):
            on_started()
    ticker = asyncio.create_task(_ticks(tick, servers, apps, stop)) if tick else None
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    if ticker is not None:
        ticker.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for t in done:
        if t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    if any(not s.started for s in servers):
        raise SystemExit(1)


async def _ticks(tick: Tick, servers: list[_Server], apps: list[tuple[Any, str]],
                 stop: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(1.0)
        if not tick({listen: (s.server_state.total_requests, len(s.server_state.connections))
                     for s, (_, listen) in zip(servers, apps, strict=True)}):
            stop()
            return
