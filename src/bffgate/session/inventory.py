"""What administrators see of sessions (the admin API, ``bffgate sessions``), read from the
records' plain fields without the cookie and without sliding any TTL.

A session's admin ``id`` is ``<admin handle>.<base64url(sub)>``: the handle is random per
session (``SessionData.admin_id``), the sub part lets the gateway find it through the sub
index (no index of its own). Neither part is the cookie, the session id, the store key or
anything derived from them, so an id shown to an operator can't be turned into a session.

``last_seen_at`` costs no write: every store read of a session slides its idle TTL to
min(idle, absolute remaining), so while the idle window binds the last read was
``idle - PTTL`` ago. The near-cache reads the store at most once a second per session and
process, so it lags the latest request by about a second. In the session's last
``idle_timeout`` before its absolute expiry the TTL carries no such trace: last_seen_at is
then the earliest it can be (``absolute - idle``, not before ``created_at``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bffgate.audit import AuditEvent
from bffgate.session.ending import ById, end_sessions
from bffgate.session.record import RecordFacts, RecordUnreadable, read_facts
from bffgate.store.base import PeekedSession, SessionRecords

_ID_SUB_MAX = 1024  # characters of the encoded sub an id may carry


def admin_id(handle: str, sub: str) -> str:
    return f"{handle}.{base64.urlsafe_b64encode(sub.encode()).rstrip(b'=').decode('ascii')}"


def parse_admin_id(value: str) -> tuple[str, str] | None:
    """(handle, sub) of an admin id; None when it can't be one."""
    handle, sep, encoded = value.partition(".")
    if not sep or not handle or not encoded or len(encoded) > _ID_SUB_MAX:
        return None
    try:
        sub = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (handle, sub) if admin_id(handle, sub) == value else None


def hashed_sid(idp_sid: str | None) -> str | None:
    """The IdP session id as the admin API shows it: 16 hex of its SHA-256 (sessions of one
    IdP session share it; the sid itself is not shown)."""
    return None if idp_sid is None else hashlib.sha256(idp_sid.encode()).hexdigest()[:16]


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class SessionView:
    """One session as an administrator sees it. ``key`` (the store key) is for ending it
    and is never shown whole: its first 16 hex characters are the audit log's ``session``
    label, a one-way label that names no key anyone can use."""

    key: str
    facts: RecordFacts
    last_seen_at: float
    idle_expires_at: float

    @property
    def id(self) -> str:
        return admin_id(self.facts.admin_id, self.facts.sub)

    def to_json(self) -> dict[str, Any]:
        f = self.facts
        origin = f.origin
        return {
            "id": self.id, "sub": f.sub,
            "created_at": rfc3339(f.created_at), "last_seen_at": rfc3339(self.last_seen_at),
            "expires_at": rfc3339(f.absolute_expires_at),
            "idle_expires_at": rfc3339(self.idle_expires_at),
            "refreshed_at": rfc3339(f.refreshed_at), "refresh_count": f.refresh_count,
            "client_ip": origin.client_ip if origin else None,
            "user_agent": origin.user_agent if origin else None,
            "idp_sid": hashed_sid(f.idp_sid),
            # the audit log's ``session`` field of this session's events (ending.py)
            "audit_session": self.key[:16],
        }


def view(key: str, peeked: PeekedSession, *, now: float, idle: float) -> SessionView | None:
    """The view of a peeked record at ``now`` (``idle``: session.idle_timeout in seconds)."""
    try:
        facts = read_facts(peeked.data)
    except RecordUnreadable:
        return None
    ttl = peeked.ttl_ms / 1000
    absolute = peeked.absolute_expiry_ms / 1000
    # While the idle window binds the TTL dates the last slide; once the absolute expiry
    # binds, the last slide was at absolute - idle or later.
    idle_binds = ttl < absolute - now - 0.5
    seen = now - (idle - ttl) if idle_binds else absolute - idle
    return SessionView(key, facts, min(now, max(facts.created_at, seen)), now + ttl)


class SessionInventory:
    """Sessions of a user, or one by admin id, as views; no write."""

    def __init__(self, store: SessionRecords, *, idle_timeout: float) -> None:
        self._store, self._idle = store, idle_timeout

    async def of_sub(self, sub: str, now: float) -> list[SessionView]:
        """The live sessions of ``sub``, oldest first."""
        keys = await self._store.keys_for_sub(sub)
        peeked = await self._store.peek_sessions(keys) if keys else []
        views = [v for key, p in zip(keys, peeked, strict=True) if p is not None
                 and (v := view(key, p, now=now, idle=self._idle)) is not None
                 and v.facts.sub == sub]
        return sorted(views, key=lambda v: (v.facts.created_at, v.id))

    async def by_id(self, value: str, now: float) -> SessionView | None:
        parsed = parse_admin_id(value)
        if parsed is None:
            return None
        handle, sub = parsed
        return next((v for v in await self.of_sub(sub, now) if v.facts.admin_id == handle),
                    None)

    async def evict_beyond(self, sub: str, limit: int, *, keep: str, now: float) -> int:
        """session.max_per_user: end the oldest sessions of ``sub`` beyond ``limit`` (0: no
        limit), only ones older than ``keep`` (the store key of the session just created),
        so two logins at once never end each other: the later one ends the earlier. Each is
        audited ``session.evicted``. Returns how many ended."""
        if limit <= 0:
            return 0
        views = await self.of_sub(sub, now)  # oldest first
        kept = next((i for i, v in enumerate(views) if v.key == keep), len(views))
        oldest = views[:kept][:max(0, len(views) - limit)]
        ended = 0
        for v in oldest:
            ended += await end_sessions(self._store, ById(v.key, sub), reason="max_per_user",
                                        event=AuditEvent.SESSION_EVICTED)
        return ended


@dataclass(frozen=True)
class SessionLimit:
    """session.max_per_user, applied after each login (endpoints/callback.py)."""

    inventory: SessionInventory
    max_per_user: int

    async def after_login(self, sub: str, *, keep: str, now: float) -> int:
        return await self.inventory.evict_beyond(sub, self.max_per_user, keep=keep, now=now)
