"""Redis memory per session: create N realistic sessions through the real SessionService
and RedisStore in a fresh redis-server, and report used_memory growth per session.

    python bench/session_memory.py [--sessions 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
import time
from pathlib import Path

import redis

from bffgate.clock import SystemClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.model import NewTokens
from bffgate.session.service import SessionService
from bffgate.store.redis import RedisStore, create_redis_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis import RedisServer


def _jwt(size: int) -> str:
    """A JWT-shaped token of about ``size`` bytes (typical RS256 access/ID token)."""
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"k1","typ":"at+jwt"}').decode()
    body = base64.urlsafe_b64encode(json.dumps(
        {"sub": secrets.token_hex(8), "pad": secrets.token_hex(max(1, (size - 400) // 2))}
    ).encode()).decode().rstrip("=")
    return f"{head}.{body}.{secrets.token_urlsafe(256)}"


async def main(n: int) -> None:
    server = RedisServer().start()  # no persistence; stopped by PID below
    port = server.port
    try:
        sync = redis.Redis(port=port)
        before = int(sync.info("memory")["used_memory"])
        store = RedisStore(create_redis_client(f"redis://127.0.0.1:{port}/0"))
        svc = SessionService(store, CookieCodec([secrets.token_urlsafe(32)]), SystemClock(),
                             idle_timeout=1800, absolute_timeout=28800, refresh_ahead=60)
        at, it, rt = _jwt(1000), _jwt(1000), secrets.token_urlsafe(48)
        claims = {"sub": "user", "name": "Some User", "email": "some.user@example.com",
                  "email_verified": True, "iss": "https://idp.example.com"}
        started = time.perf_counter()
        for i in range(n):
            await svc.create(NewTokens(at, rt, it, time.time() + 300), sub=f"user-{i}",
                             idp_sid=f"sid-{i}", claims=claims)
            if i and i % 5000 == 0:
                print(f"  {i} sessions…", flush=True)
        elapsed = time.perf_counter() - started
        after = int(sync.info("memory")["used_memory"])
        keys = sync.dbsize()
        await store.close()
        per = (after - before) / n
        print(f"sessions: {n}, keys: {keys}, token sizes: access {len(at)} B, id {len(it)} B, "
              f"refresh {len(rt)} B")
        print(f"redis used_memory growth: {(after - before) / 2**20:.1f} MiB "
              f"= {per:.0f} bytes per session (record + sub/sid index entries)")
        print(f"creation rate: {n / elapsed:.0f} sessions/s (one client, sequential)")
    finally:
        server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=20000)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(main(p.parse_args().sessions))
