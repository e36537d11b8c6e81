"""How doctor words its findings: one line per check, a failure's cause from the innermost
transport error, and URLs without their password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from bffgate.config import Settings
from bffgate.errors import GatewayError

REDIS_FIX = ("is Redis running there? check redis.url (host, port, password, rediss:// for "
             "TLS) or BFFGATE_REDIS__URL")


class Report:
    """Prints one line per check and counts the failures."""

    def __init__(self) -> None:
        self.failures = 0

    def ok(self, what: str, detail: str = "") -> None:
        print(f"[ok] {what}{': ' + detail if detail else ''}", flush=True)

    def fail(self, what: str, where: str, cause: str, fix: str) -> None:
        self.failures += 1
        print(f"[FAIL] {what}: {where}: {cause}; {fix}", flush=True)

    def note(self, what: str, detail: str) -> None:
        print(f"[??] {what}: {detail}", flush=True)


def safe_url(url: str) -> str:
    """``url`` without its password (redis://:secret@host -> redis://:***@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def cause(exc: BaseException) -> str:
    """The cause in words, from the innermost exception a transport library raised: what
    went wrong, not the name of our wrapper."""
    chain: list[BaseException] = [exc]
    while len(chain) < 10:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt is None:
            break
        chain.append(nxt)
    if any(isinstance(e, ConnectionRefusedError) or "Error 111 " in str(e)
           or "Connection refused" in str(e) for e in chain):
        return "connection refused (nothing listens there)"
    if any(isinstance(e, TimeoutError | httpx.TimeoutException) for e in chain):
        return "timed out"
    if any(isinstance(e, httpx.ConnectError) for e in chain):
        return f"cannot connect ({chain[-1]})"
    inner = chain[-1]
    text = " ".join(str(inner).split())
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def store_failure(settings: Settings, exc: GatewayError) -> str:
    """One line for an unreachable Redis: where, why, what to try (no password shown)."""
    return f"session store: {redis_where(settings)}: {cause(exc)}; {REDIS_FIX}"


def redis_where(settings: Settings) -> str:
    return f"Redis {safe_url(settings.redis.url.get())} (redis.url)"


