"""The benchmark's upstream: a small aiohttp.web server, run in its own process.

    python bench/_upstream.py PORT

Endpoints (all under /api so the gateway route ``/api`` maps 1:1):
  GET  /api/data                 1 KB JSON (the load-test target)
  POST /api/echo                 reads the body as a stream, answers
                                 {"sha256", "length", "first_to_last_s", "chunked"}
  GET  /api/stream?size=N&chunk=C&delay=D
                                 N deterministic bytes, chunked (no Content-Length),
                                 in C-byte chunks with D seconds between chunks
  GET  /api/headers              the request headers it received, as JSON
  GET  /api/setcookie            answers with ``Set-Cookie: upstream_sid=...`` (the
                                 gateway must neither pass it on nor replay it)
  GET  /_count                   {"data": n, "bearer": m}: GET /api/data requests served
                                 so far, and how many of them carried a Bearer token
                                 (outside /api: gateways do not route it; compare.py)

The parent waits for the port to accept connections.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time

from aiohttp import web

# 1 KB of JSON exactly (the figure the benchmark's name promises).
_ITEMS = [{"id": i, "name": f"item-{i:04d}", "ok": True} for i in range(24)]
_doc = {"items": _ITEMS, "pad": ""}
_pad = 1024 - len(json.dumps(_doc, separators=(",", ":")).encode())
_doc["pad"] = "x" * _pad
DATA = json.dumps(_doc, separators=(",", ":")).encode()
assert len(DATA) == 1024, len(DATA)


def stream_bytes(size: int) -> bytes:
    """The deterministic content /api/stream sends (the parent recomputes it)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


COUNT = {"data": 0, "bearer": 0}


async def data(request: web.Request) -> web.Response:
    COUNT["data"] += 1
    if request.headers.get("Authorization", "").startswith("Bearer "):
        COUNT["bearer"] += 1
    return web.Response(body=DATA, content_type="application/json")


async def count(_request: web.Request) -> web.Response:
    return web.json_response(COUNT)


async def echo(request: web.Request) -> web.Response:
    h = hashlib.sha256()
    n = 0
    first = last = None
    async for chunk in request.content.iter_any():
        now = time.monotonic()
        if first is None:
            first = now
        last = now
        h.update(chunk)
        n += len(chunk)
    return web.json_response({
        "sha256": h.hexdigest(), "length": n,
        "first_to_last_s": (last - first) if first is not None and last is not None else 0.0,
        "chunked": request.headers.get("Transfer-Encoding", "").lower() == "chunked",
        "content_length": request.headers.get("Content-Length"),
    })


async def stream(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", str(1 << 20)))
    chunk = int(request.query.get("chunk", str(64 * 1024)))
    delay = float(request.query.get("delay", "0"))
    body = stream_bytes(size)
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(0, size, chunk):
        if i and delay:
            await asyncio.sleep(delay)
        await resp.write(body[i:i + chunk])
    await resp.write_eof()
    return resp


async def headers(request: web.Request) -> web.Response:
    return web.json_response([[k.decode("latin-1"), v.decode("latin-1")]
                              for k, v in request.raw_headers])


async def setcookie(_request: web.Request) -> web.Response:
    resp = web.json_response({"ok": True})
    resp.headers["Set-Cookie"] = "upstream_sid=user-a-secret; Path=/"
    return resp


def main() -> None:
    port = int(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/data", data)
    app.router.add_post("/api/echo", echo)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/headers", headers)
    app.router.add_get("/api/setcookie", setcookie)
    app.router.add_get("/_count", count)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                handle_signals=True)


if __name__ == "__main__":
    main()
