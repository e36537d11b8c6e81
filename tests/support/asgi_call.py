"""Drive an ASGI app with one raw HTTP request and collect its answer, no sockets: the unit
tests of the edge (``Gateway.public``, the admin app) use it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == ["application/problem+json"]
        return dict(json.loads(self.body))

    def cleared_cookie(self, name: str) -> bool:
        """True when the answer clears cookie ``name`` (empty value, Max-Age=0)."""
        return any(c.startswith(f"{name}=;") and "Max-Age=0" in c
                   for c in self.headers.get("set-cookie", []))


async def call(app: Any, method: str, path: str, headers: list[tuple[str, str]] | None = None,
               *, peer: str = "127.0.0.1",
               receive: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> Answer:
    """One request to ``app``; the default ``receive`` sends an empty body, then waits (a
    client that stays) until the answer is out."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path,
             "raw_path": path.encode("latin-1"), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"app.test")] + [(k.lower().encode(), v.encode("latin-1"))
                                                    for k, v in (headers or [])],
             "client": (peer, 5000), "server": ("127.0.0.1", 8080)}
    sent: list[dict[str, Any]] = []

    async def default_receive() -> dict[str, Any]:
        if not sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive or default_receive, send)
    hdrs: dict[str, list[str]] = {}
    for k, v in sent[0]["headers"]:
        hdrs.setdefault(k.decode().lower(), []).append(v.decode())
    return Answer(sent[0]["status"], hdrs, b"".join(m.get("body", b"") for m in sent[1:]))
