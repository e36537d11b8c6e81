"""A real OTLP/HTTP trace receiver for tests: an aiohttp server in a background thread
accepting ``POST /v1/traces`` (protobuf, optionally gzip), decoded with opentelemetry-proto
into plain span dicts. ``raw`` keeps every request body as received (for the secret scan)."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from support.idp import free_port

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    return getattr(v, kind) if kind else None


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


class OtlpReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        spans = []
        for rs in req.resource_spans:
            resource = _attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append({
                        "name": s.name, "kind": s.kind, "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                        "attributes": _attributes(s.attributes),
                        "links": [{"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex(),
                                   "attributes": _attributes(ln.attributes)} for ln in s.links],
                        "events": [{"name": e.name, "attributes": _attributes(e.attributes)}
                                   for e in s.events],
                        "status": s.status.code, "status_message": s.status.message,
                        "resource": resource, "scope": ss.scope.name,
                        "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                    })
        with self._lock:
            self.raw.append(body)
            self.content_types.append(request.headers.get("Content-Type", ""))
            self.spans.extend(spans)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def start(self) -> OtlpReceiver:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/traces", self._traces)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="otlp-receiver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the OTLP receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, found: Callable[[list[dict[str, Any]]], Any],
                 timeout: float = 10.0) -> Any:
        """Poll until ``found(spans)`` is truthy; returns it (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            result = found(self.snapshot())
            if result:
                return result
            if time.monotonic() > deadline:
                names = sorted({s["name"] for s in self.snapshot()})
                raise AssertionError(f"spans not exported in {timeout} s; have: {names}")
            time.sleep(0.05)


def children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in spans
            if s["trace_id"] == parent["trace_id"] and s["parent"] == parent["span_id"]]
