"""Ending sessions: the one way logout, re-login, back-channel logout, admin and CLI do it.

``end_sessions`` deletes the sessions it is pointed at (one session the browser presented,
one by store key, every session of a subject or of an IdP session) and audits each one.
The session a browser presented can be opened, so its refresh token is then revoked at the
IdP (RFC 7009: best effort, a failure never keeps the session alive) and ``session.ended``
says whether the IdP confirmed it. The others are found through the store's indexes and
cannot be opened without their cookie: they are deleted (``session.revoked``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import assert_never

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.session.model import LoadedSession
from bffgate.store.base import SessionRecords


@dataclass(frozen=True)
class ById:
    key: str  # the store key (found from an admin id by session/inventory.py; never shown)
    sub: str | None = None  # when known, its index entry goes too


@dataclass(frozen=True)
class BySub:
    sub: str


@dataclass(frozen=True)
class BySid:
    idp_sid: str
    sub: str | None = None  # when known, its index entries go too


Sessions = LoadedSession | ById | BySub | BySid

# refresh token -> True when the IdP confirmed the revocation; never raises
Revoker = Callable[[str], Awaitable[bool]]


async def end_sessions(store: SessionRecords, which: Sessions, *, reason: str,
                       revoke: Revoker | None = None,
                       event: AuditEvent = AuditEvent.SESSION_REVOKED) -> int:
    """End the sessions ``which`` names, audit each one; returns how many ended.

    ``revoke`` applies to a presented session only (None: its refresh token is kept, e.g.
    a re-login sharing the IdP session, whose grant the new session uses). ``event``: what
    a session ended without its cookie is audited as (``session.evicted`` for the per-user
    limit)."""
    if isinstance(which, LoadedSession):
        return await _end_presented(store, which, reason, revoke)
    match which:
        case ById(key=key, sub=sub):
            keys, sid = [key], None
        case BySub(sub=sub):
            keys, sid = await store.keys_for_sub(sub), None
        case BySid(idp_sid=sid, sub=sub):
            keys = await store.keys_for_idp_sid(sid)
        case _:
            assert_never(which)
    ended = 0
    for key in keys:
        if await store.delete_session(key, sub=sub, idp_sid=sid):
            ended += 1
            audit.emit(event, reason=reason, session=key[:16], sub=sub)
    return ended


async def _end_presented(store: SessionRecords, session: LoadedSession, reason: str,
                         revoke: Revoker | None) -> int:
    # Deleted first: the cookie stops working at once, whatever the IdP does next.
    deleted = await store.delete_session(session.key, sub=session.data.sub,
                                         idp_sid=session.data.idp_sid)
    refresh_token = session.data.tokens.refresh_token
    detail: str | None = None
    if refresh_token and revoke is None:
        detail = "refresh_token_revoked=False (kept: same IdP session as the new login)"
    elif refresh_token and revoke is not None:
        detail = f"refresh_token_revoked={await revoke(refresh_token)}"
    audit.emit(AuditEvent.SESSION_ENDED, reason=reason, sub=session.data.sub,
               session=session.handle.short, detail=detail)
    return int(deleted)
