"""An echo upstream API in a background thread: records what the gateway forwarded."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from typing import Any

import uvicorn

from support.idp import free_port


class EchoUpstream:
    """``/anything`` → JSON {method, path, query, headers, body_sha256, body_len,
    body_spread (seconds between the body's first and last piece)}; sets ``upstream=1``.
    ``/slow?s=N`` sleeps; ``/big?n=N`` streams N bytes in chunks; ``/status/N`` answers N."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[dict[str, Any]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        arrived: list[float] = []  # when each piece of the body came in (time.monotonic)
        while True:
            msg = await receive()
            if msg.get("body"):
                body += msg["body"]
                arrived.append(time.monotonic())
            if not msg.get("more_body"):
                break
        path: str = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        record = {
            "method": scope["method"], "path": path,
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body_sha256": hashlib.sha256(body).hexdigest(), "body_len": len(body),
            "body_spread": arrived[-1] - arrived[0] if arrived else 0.0,
        }
        self.seen.append(record)
        if "/slow" in path:
            await asyncio.sleep(float(dict(_q(record["query"])).get("s", "1")))
        if "/status/" in path:
            status = int(path.rsplit("/", 1)[1])
            payload = json.dumps({"status": status}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"set-cookie", b"upstream=1; Path=/")]})
            await send({"type": "http.response.body", "body": payload})
            return
        if "/big" in path:
            n = int(dict(_q(record["query"])).get("n", "1048576"))
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            chunk = b"x" * 65536
            sent = 0
            while sent < n:
                part = chunk[: min(len(chunk), n - sent)]
                sent += len(part)
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        # The echo returned to the browser never carries the bearer token itself (tests read
        # the full record from ``seen``), nor a DPoP proof; it says only that one was present.
        shown = dict(record, headers=[[k, "<present>" if k.lower() in ("authorization", "dpop")
                                       else v]
                                      for k, v in record["headers"]])
        payload = json.dumps(shown).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"set-cookie", b"upstream=1; Path=/"),
                                (b"connection", b"x-hop"), (b"x-hop", b"1")]})
        await send({"type": "http.response.body", "body": payload})

    def start(self) -> EchoUpstream:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error",
                                lifespan="off", access_log=False, interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(5)

    def last_for(self, path_part: str) -> dict[str, Any]:
        for rec in reversed(self.seen):
            if path_part in rec["path"]:
                return rec
        raise AssertionError(f"upstream never saw {path_part}")


def _q(query: str) -> list[tuple[str, str]]:
    out = []
    for part in query.split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out.append((k, v))
    return out


def header_values(record: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in record["headers"] if k.lower() == name.lower()]
